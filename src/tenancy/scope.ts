/**
 * Tenant scope of the current asynchronous call chain.
 *
 * Contract:
 * - Code serving a request runs inside `runInWorkspace(auth, fn)`; the scoped Prisma client
 *   (`scopedPrisma`) then adds the caller's workspace to every read and write of a
 *   tenant-owned model, so another workspace's rows are invisible (not found) and new rows
 *   belong to the caller's workspace.
 * - Background work (job execution, schedule fires, webhook delivery, retention, start-up
 *   recovery) runs inside `runAsSystem(fn)` and sees every workspace. Entry points that may
 *   be first reached from a request (timers armed by a mutation, the job queue) must enter
 *   system scope themselves, because asynchronous context is inherited from the creator.
 * - Async iterators resume in their consumer's context, not their creator's: subscription
 *   streams are re-bound with `bindIterator`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FileRootsOptions, FileScope } from '../security/file-roots.js';

export type ApiKeyScopeName = 'READ' | 'WRITE' | 'ADMIN';

/** The shape of an API key: `sk_` + 256 random bits in base64url. */
export const API_KEY_SHAPE = /^sk_[A-Za-z0-9_-]{43}$/;

/** The well-known id of the workspace created by the migration (and used by local access). */
export const DEFAULT_WORKSPACE_ID = '00000000-0000-4000-8000-000000000001';

/** Who is calling: the workspace, the key (null for trusted local access) and its scope. */
export interface AuthContext {
  workspaceId: string;
  /** The API key's id, or null for trusted local (loopback) access without a key. */
  apiKeyId: string | null;
  /** The key's display prefix (`sk_…`), or `local`. */
  keyPrefix: string;
  scope: ApiKeyScopeName;
  /** When the key stops granting access (null or absent: never). */
  expiresAt?: Date | null;
}

/**
 * The audit line of the mutation being served. The first event-log transaction that commits
 * during the mutation carries it (so it commits atomically with the mutation's changes); when
 * none does, the mutation's wrapper writes it alone with the outcome. Background work never
 * sees it (system scope and other workspaces start a fresh scope).
 */
export interface MutationAudit {
  /** The mutation field, e.g. `startPipeline`. */
  readonly mutation: string;
  readonly requestId: string;
  /**
   * open: not written yet; pending: inside a transaction not yet committed; written: committed
   * with that transaction; closed: the mutation has ended (nothing may carry it any more).
   */
  state: 'open' | 'pending' | 'written' | 'closed';
  /** The outcome the line was written with (set with `pending`). */
  outcome?: string;
  /** Resolves when the transaction that took it (pending) has committed or rolled back. */
  settled?: Promise<void>;
}

export type Scope = { kind: 'workspace'; auth: AuthContext; audit?: MutationAudit } | { kind: 'system' };

const storage = new AsyncLocalStorage<Scope>();

export function runInWorkspace<T>(auth: AuthContext, fn: () => T): T {
  return storage.run({ kind: 'workspace', auth }, fn);
}

/** Runs a mutation's resolver in the current workspace scope with its audit line attached. */
export function runAudited<T>(audit: MutationAudit, fn: () => T): T {
  const s = storage.getStore();
  if (s?.kind !== 'workspace') return fn();
  return storage.run({ ...s, audit }, fn);
}

/** The audit line of the mutation being served, while it may still be carried by a transaction. */
export function currentAudit(): { auth: AuthContext; audit: MutationAudit } | null {
  const s = storage.getStore();
  return s?.kind === 'workspace' && s.audit?.state === 'open' ? { auth: s.auth, audit: s.audit } : null;
}

export function runAsSystem<T>(fn: () => T): T {
  return storage.run({ kind: 'system' }, fn);
}

export function currentScope(): Scope | undefined {
  return storage.getStore();
}

/** The workspace of the current request, or null in system scope / outside any scope. */
export function currentWorkspaceId(): string | null {
  const s = storage.getStore();
  return s?.kind === 'workspace' ? s.auth.workspaceId : null;
}

/** The files a workspace's connectors may touch: its own folder (and, for the default workspace, the extra roots). */
export function workspaceFileScope(files: FileRootsOptions, workspaceId: string): FileScope {
  return { ...files, workspaceId, isDefault: workspaceId === DEFAULT_WORKSPACE_ID };
}

const RANK: Record<ApiKeyScopeName, number> = { READ: 1, WRITE: 2, ADMIN: 3 };

/** True when `have` includes everything `need` allows (ADMIN ⊃ WRITE ⊃ READ). */
export function scopeIncludes(have: ApiKeyScopeName, need: ApiKeyScopeName): boolean {
  return RANK[have] >= RANK[need];
}

/** An async iterator whose every step runs in `scope` (see the module contract). */
export function bindIterator<T>(it: AsyncIterator<T> & Partial<AsyncIterable<T>>, scope: Scope | undefined): AsyncIterableIterator<T> {
  if (!scope) return it as AsyncIterableIterator<T>;
  const bound: AsyncIterableIterator<T> = {
    next: (...args: [] | [unknown]) => storage.run(scope, () => it.next(...(args as []))),
    return: (value?: unknown) => storage.run(scope, () => (it.return ? it.return(value as T) : Promise.resolve({ done: true as const, value: value as T }))),
    throw: (err?: unknown) => storage.run(scope, () => (it.throw ? it.throw(err) : Promise.reject(err))),
    [Symbol.asyncIterator]() {
      return bound;
    },
  };
  return bound;
}

/** The current request's workspace; throws outside a workspace scope (a programming error). */
export function requireWorkspaceId(): string {
  const id = currentWorkspaceId();
  if (!id) throw new Error('no workspace in scope');
  return id;
}

/** The current request's caller, or null in system scope. */
export function currentAuth(): AuthContext | null {
  const s = storage.getStore();
  return s?.kind === 'workspace' ? s.auth : null;
}
