/**
 * The process-wide outbound-address seam every driver connection goes through (HTTP requests
 * in http/client.ts, database connections in postgres/common.ts). The policy itself lives in
 * src/security/outbound-guard.ts; app.ts installs it in the API thread and the job runner
 * installs the same one (from `settings`) in every job worker, so a driver is guarded alike
 * wherever it runs. With nothing installed (driver unit tests) connections are not checked.
 */
import type { Dispatcher } from 'undici';
import { createOutboundGuard, type OutboundGuard, type OutboundGuardOptions } from '../../../security/outbound-guard.js';

export { answerLookup, type LookupCallback } from '../../../security/outbound-guard.js';

export type GuardFn = (url: URL) => Promise<void>;

/** A database server a driver is about to connect to (after its defaults were applied). */
export interface DatabaseTarget {
  host: string;
  port: number;
  database: string;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** What recreates an installed guard in another thread (plain data, structured-cloneable). */
export interface OutboundGuardSettings {
  /** Allow-list entries (SLUICE_OUTBOUND_ALLOW). */
  allow: string[];
  /** Database servers no connector may use, whatever the allow-list says (Sluice's state database). */
  protectedDatabases: DatabaseTarget[];
}

/** An installed guard. */
export interface OutboundGuardHook {
  /** Refuses a URL (throws) before each HTTP attempt and redirect hop. */
  guardUrl: GuardFn;
  /** The fetch dispatcher every request uses while it is installed (connect-time checks). */
  dispatcher?: Dispatcher;
  /**
   * Resolves and judges a database target; resolves to the checked addresses the connection
   * must use (never re-resolve the name: that would reopen DNS rebinding). Throws an error with
   * code `ERR_OUTBOUND_REFUSED` naming the host and the reason.
   */
  checkDatabase?(target: DatabaseTarget): Promise<ResolvedAddress[]>;
  settings?: OutboundGuardSettings;
}

let installed: OutboundGuardHook | null = null;

/**
 * Installs (or with null removes) the process-wide guard; returns the one it replaces. A bare
 * function is a URL guard without a dispatcher.
 */
export function setOutboundGuard(guard: GuardFn | OutboundGuardHook | null): OutboundGuardHook | null {
  const previous = installed;
  installed = typeof guard === 'function' ? { guardUrl: guard } : guard;
  return previous;
}

export function outboundGuard(): OutboundGuardHook | null {
  return installed;
}

export const OUTBOUND_REFUSED_CODE = 'ERR_OUTBOUND_REFUSED';

/** The guard's refusal in an error's cause chain, if any. */
export function outboundRefusal(e: unknown): Error | null {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    if ((c as NodeJS.ErrnoException).code === OUTBOUND_REFUSED_CODE) return c;
  }
  return null;
}

/**
 * Creates a guard (the policy of src/security/outbound-guard.ts) and installs it in this seam for every outbound connection of the process (drivers and
 * webhooks: HTTP through http/client.ts, PostgreSQL through postgres/common.ts `connect`). `uninstall()` puts the previous guard back (if this one
 * is still installed) and closes the connections.
 */
export function installOutboundGuard(options: OutboundGuardOptions = {}): { guard: OutboundGuard; uninstall(): Promise<void> } {
  const guard = createOutboundGuard(options);
  const hook: OutboundGuardHook = { guardUrl: guard.check, dispatcher: guard.dispatcher, checkDatabase: guard.checkDatabase, settings: guard.settings };
  const previous = setOutboundGuard(hook);
  return {
    guard,
    uninstall: async () => {
      const current = setOutboundGuard(previous);
      // Someone installed another guard since: keep theirs.
      if (current !== hook) setOutboundGuard(current);
      await guard.close();
    },
  };
}
