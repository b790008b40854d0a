/**
 * Workspaces and their API keys.
 *
 * Contract:
 * - An API key is `sk_` + 43 base64url characters (256 random bits). Only its SHA-256 is
 *   stored; the key itself is returned once, by `createApiKey`. `prefix` (the first 11
 *   characters) identifies it in lists, logs and audit events.
 * - Scopes are ordered READ < WRITE < ADMIN. A key may create keys up to its own scope, never
 *   above; ADMIN keys of the default workspace (and trusted local access) operate the instance:
 *   they create workspaces.
 * - `authenticate` answers null for an unknown, revoked or expired key. Revocation takes
 *   effect at once in this process (the lookup cache is cleared) and within `CACHE_MS`
 *   in any other (at once where the `apiKeyRevoked` message arrives, see `forget`). An
 *   expiry is honoured to the millisecond, cached or not. Concurrent look-ups of one key
 *   (a burst of sockets connecting) share one database read.
 * - `revokeApiKey` publishes `apiKeyRevoked` after its transaction committed; the live
 *   connection registry (live-connections.ts) ends the key's open sockets and streams.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../../db/client.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { EventService } from '../event/event.service.js';
import { ALL, type PubSub } from '../../pubsub/pubsub.js';
import {
  API_KEY_SHAPE,
  DEFAULT_WORKSPACE_ID,
  currentAuth,
  runAsSystem,
  runInWorkspace,
  scopeIncludes,
  type ApiKeyScopeName,
  type AuthContext,
} from '../../tenancy/scope.js';

const CACHE_MS = 5_000;
/** `lastUsedAt` is written at most this often per key. */
const TOUCH_MS = 60_000;

export const LOCAL_AUTH: AuthContext = Object.freeze({
  workspaceId: DEFAULT_WORKSPACE_ID,
  apiKeyId: null,
  keyPrefix: 'local',
  scope: 'ADMIN',
});

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function newKey(): { key: string; prefix: string; hash: string } {
  const key = `sk_${randomBytes(32).toString('base64url')}`;
  return { key, prefix: key.slice(0, 11), hash: hashKey(key) };
}


/** A key row still grants access: neither revoked nor expired at `now`. */
function isUsable(row: { revokedAt: Date | null; expiresAt: Date | null }, now = Date.now()): boolean {
  return !row.revokedAt && (!row.expiresAt || row.expiresAt.getTime() > now);
}

/** A workspace name: trimmed, 1–200 characters. */
function workspaceName(name: string): string {
  const clean = name.trim();
  if (!clean || clean.length > 200) throw new ValidationError('invalid name', [{ path: 'name', message: 'expected 1–200 characters' }]);
  return clean;
}

export interface CreateApiKeyInput {
  name: string;
  scope: ApiKeyScopeName;
  expiresAt?: Date | null;
}

/** The caller in the current scope; services use it to check what a key may do. */
function caller(): AuthContext {
  const auth = currentAuth();
  if (!auth) throw new Error('no caller in scope');
  return auth;
}

/** True for callers that operate the instance (create workspaces, rotate keys). */
export function isInstanceAdmin(auth: AuthContext): boolean {
  return auth.workspaceId === DEFAULT_WORKSPACE_ID && auth.scope === 'ADMIN';
}

export class WorkspaceService {
  private readonly cache = new Map<string, { auth: AuthContext | null; at: number }>();
  private readonly touched = new Map<string, number>();
  /** Key id → when it was last seen usable (answers `isActive` within CACHE_MS). */
  private readonly usableAt = new Map<string, number>();
  /** Key hash → the database read in flight for it. */
  private readonly lookups = new Map<string, Promise<AuthContext | null>>();
  /** Bumped by every `forget`: a read that raced a revocation is not cached. */
  private revocations = 0;

  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    private readonly pubsub: PubSub,
  ) {}

  /** Resolves a presented key to its caller; null when it is unknown, revoked or expired. */
  async authenticate(key: string): Promise<AuthContext | null> {
    if (!API_KEY_SHAPE.test(key)) return null;
    const hash = hashKey(key);
    const now = Date.now();
    const hit = this.cache.get(hash);
    let auth: AuthContext | null;
    if (hit && now - hit.at < CACHE_MS) auth = hit.auth;
    else {
      let lookup = this.lookups.get(hash);
      if (!lookup) {
        lookup = this.lookUp(hash).finally(() => this.lookups.delete(hash));
        this.lookups.set(hash, lookup);
      }
      auth = await lookup;
    }
    if (auth?.expiresAt && auth.expiresAt.getTime() <= Date.now()) return null;
    if (auth?.apiKeyId && now - (this.touched.get(auth.apiKeyId) ?? 0) > TOUCH_MS) {
      this.touched.set(auth.apiKeyId, now);
      const id = auth.apiKeyId;
      void runAsSystem(() => this.db.apiKey.update({ where: { id }, data: { lastUsedAt: new Date(now) } })).catch(() => undefined);
    }
    return auth;
  }

  /** Reads a key by hash and caches the answer. */
  private async lookUp(hash: string): Promise<AuthContext | null> {
    const epoch = this.revocations;
    const row = await runAsSystem(() => this.db.apiKey.findUnique({ where: { hash } }));
    const now = Date.now();
    const auth: AuthContext | null =
      row && isUsable(row, now)
        ? { workspaceId: row.workspaceId, apiKeyId: row.id, keyPrefix: row.prefix, scope: row.scope, expiresAt: row.expiresAt }
        : null;
    if (epoch !== this.revocations) return auth;
    if (this.cache.size > 10_000) {
      this.cache.clear();
      this.usableAt.clear();
    }
    this.cache.set(hash, { auth, at: now });
    if (auth?.apiKeyId) this.usableAt.set(auth.apiKeyId, now);
    return auth;
  }

  /** Drops a revoked key from the caches (this process revoked it, or heard of it). */
  forget(apiKeyId: string): void {
    this.revocations++;
    for (const [hash, entry] of this.cache) if (entry.auth?.apiKeyId === apiKeyId) this.cache.delete(hash);
    this.usableAt.delete(apiKeyId);
  }

  /** True while the key is neither revoked nor expired. */
  async isActive(id: string): Promise<boolean> {
    const seen = this.usableAt.get(id);
    if (seen !== undefined && Date.now() - seen < CACHE_MS) return true;
    const row = await runAsSystem(() => this.db.apiKey.findUnique({ where: { id }, select: { revokedAt: true, expiresAt: true } }));
    const usable = !!row && isUsable(row);
    if (usable) this.usableAt.set(id, Date.now());
    return usable;
  }

  /**
   * Makes sure an ADMIN key with exactly this value exists in the default workspace
   * (`SLUICE_BOOTSTRAP_API_KEY`), so a server reachable only from other hosts can be operated.
   */
  async ensureBootstrapKey(key: string): Promise<void> {
    if (!API_KEY_SHAPE.test(key)) throw new Error('SLUICE_BOOTSTRAP_API_KEY must look like sk_ followed by 43 base64url characters (create one with: node -e "console.log(\'sk_\'+require(\'crypto\').randomBytes(32).toString(\'base64url\'))")');
    const hash = hashKey(key);
    await runAsSystem(async () => {
      const existing = await this.db.apiKey.findUnique({ where: { hash } });
      if (existing) return;
      await this.db.apiKey.create({
        data: { workspaceId: DEFAULT_WORKSPACE_ID, name: 'bootstrap (SLUICE_BOOTSTRAP_API_KEY)', prefix: key.slice(0, 11), hash, scope: 'ADMIN' },
      });
    });
  }

  async current() {
    const auth = caller();
    const ws = await this.db.workspace.findUnique({ where: { id: auth.workspaceId } });
    if (!ws) throw new NotFoundError('Workspace', auth.workspaceId);
    return ws;
  }

  /** Renames the caller's workspace (ADMIN). */
  async rename(name: string) {
    const auth = caller();
    return this.db.workspace.update({ where: { id: auth.workspaceId }, data: { name: workspaceName(name) } });
  }

  /** Creates a workspace and its first ADMIN key (instance operators only). */
  async createWorkspace(name: string) {
    const auth = caller();
    if (!isInstanceAdmin(auth)) throw new ForbiddenError('only an ADMIN key of the default workspace can create workspaces', 'ADMIN');
    const clean = workspaceName(name);
    const { key, prefix, hash } = newKey();
    const { workspace, apiKey } = await runAsSystem(() =>
      this.db.$transaction(async (tx) => {
        const workspace = await tx.workspace.create({ data: { name: clean } });
        const apiKey = await tx.apiKey.create({
          data: { workspaceId: workspace.id, name: 'admin', prefix, hash, scope: 'ADMIN', createdById: auth.apiKeyId },
        });
        return { workspace, apiKey };
      }),
    );
    await this.events.append({ type: 'WORKSPACE_CREATED', message: `workspace "${workspace.name}" created by ${auth.keyPrefix}`, data: { workspaceId: workspace.id } });
    await runInWorkspace({ workspaceId: workspace.id, apiKeyId: auth.apiKeyId, keyPrefix: auth.keyPrefix, scope: 'ADMIN' }, () =>
      this.events.append({ type: 'WORKSPACE_CREATED', message: `workspace "${workspace.name}" created`, data: { apiKeyId: apiKey.id } }),
    );
    return { workspace, apiKey, key };
  }

  async createApiKey(input: CreateApiKeyInput) {
    const auth = caller();
    const name = input.name.trim();
    const problems = [];
    if (!name || name.length > 200) problems.push({ path: 'name', message: 'expected 1–200 characters' });
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) problems.push({ path: 'expiresAt', message: 'must be in the future' });
    if (problems.length) throw new ValidationError('invalid API key', problems);
    if (!scopeIncludes(auth.scope, input.scope)) {
      throw new ForbiddenError(`a ${auth.scope} key cannot create a ${input.scope} key: a key never grants more than its creator has`, input.scope);
    }
    const { key, prefix, hash } = newKey();
    const apiKey = await this.events.transaction(async (tx, emit) => {
      const row = await tx.apiKey.create({
        data: { workspaceId: auth.workspaceId, name, prefix, hash, scope: input.scope, createdById: auth.apiKeyId, expiresAt: input.expiresAt ?? null },
      });
      await emit({ type: 'API_KEY_CREATED', message: `API key "${name}" (${prefix}…, ${input.scope}) created by ${auth.keyPrefix}`, data: { apiKeyId: row.id, scope: row.scope } });
      return row;
    });
    return { apiKey, key };
  }

  /** Revokes a key. ADMIN keys revoke any key of the workspace; others only keys they created, or themselves. */
  async revokeApiKey(id: string) {
    const auth = caller();
    const row = await this.db.apiKey.findUnique({ where: { id } });
    if (!row) throw new NotFoundError('ApiKey', id);
    if (auth.scope !== 'ADMIN' && row.createdById !== auth.apiKeyId && row.id !== auth.apiKeyId) {
      throw new ForbiddenError('only an ADMIN key can revoke keys it did not create', 'ADMIN');
    }
    if (row.revokedAt) return row;
    const revoked = await this.events.transaction(async (tx, emit) => {
      const r = await tx.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
      await emit({ type: 'API_KEY_REVOKED', message: `API key "${r.name}" (${r.prefix}…) revoked by ${auth.keyPrefix}`, data: { apiKeyId: r.id } });
      return r;
    });
    this.forget(id);
    this.pubsub.publish('apiKeyRevoked', ALL, { apiKeyId: id, workspaceId: revoked.workspaceId, at: (revoked.revokedAt ?? new Date()).toISOString() });
    return revoked;
  }

  /**
   * Throws NOT_FOUND unless every object named is visible to the caller (subscriptions check
   * this at subscribe time, so another workspace's id is refused rather than silently empty).
   */
  async assertVisible(ids: { pipelineId?: string | null; jobId?: string | null; connectorId?: string | null }): Promise<void> {
    if (ids.pipelineId && !(await this.db.pipeline.findUnique({ where: { id: ids.pipelineId }, select: { id: true } }))) throw new NotFoundError('Pipeline', ids.pipelineId);
    if (ids.jobId && !(await this.db.job.findUnique({ where: { id: ids.jobId }, select: { id: true } }))) throw new NotFoundError('Job', ids.jobId);
    if (ids.connectorId && !(await this.db.connector.findUnique({ where: { id: ids.connectorId }, select: { id: true } }))) throw new NotFoundError('Connector', ids.connectorId);
  }
}
