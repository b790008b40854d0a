/**
 * The process-wide outbound-address seam every driver connection goes through (HTTP requests
 * in http-client.ts, database connections in postgres.common.ts). The policy itself lives in
 * src/security/outbound-guard.ts; app.ts installs it in the API thread and the job runner
 * installs the same one (from `settings`) in every job worker, so a driver is guarded alike
 * wherever it runs. With nothing installed (driver unit tests) connections are not checked.
 */
import type dns from 'node:dns';
import type { Dispatcher } from 'undici';

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

export type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * Answers a socket's `lookup` (as `dns.lookup` would) with already checked addresses only, so
 * a connection goes exactly where the guard looked. ENOTFOUND when none fits `opts.family`.
 */
export function answerLookup(hostname: string, addresses: readonly ResolvedAddress[], opts: dns.LookupOptions, callback: LookupCallback): void {
  const wanted = opts.family === 4 || opts.family === 6 ? addresses.filter((a) => a.family === opts.family) : addresses;
  if (wanted.length === 0) {
    const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    err.code = 'ENOTFOUND';
    return callback(err, opts.all ? [] : '', undefined);
  }
  if (opts.all) return callback(null, wanted.map((a) => ({ address: a.address, family: a.family })));
  return callback(null, wanted[0]!.address, wanted[0]!.family);
}
