/**
 * Connectors: a driver plus a config validated against the driver's JSON Schema spec.
 * Every change writes an event. A connector used by a pipeline cannot be deleted.
 *
 * Secrets: config fields the spec marks secret are stored encrypted (see secrets.ts) and
 * decrypted only in `driverConfig`, which is what every driver call (check, discover, preview,
 * job start) gets; a referenced authentication replaces the inline `auth` there. Messages
 * coming back from a driver are scrubbed of every secret value before they are stored,
 * emitted or returned.
 */
import { globalId } from '../../ids.js';
import type { PrismaClient } from '../../db/client.js';
import { pgJson, pgText } from '../../db/pg-text.js';
import type { Authentication, Prisma } from '../../generated/prisma/client.js';
import type { HttpAuth } from '../../engine/drivers/http/auth.js';
import { getDriver, listDrivers, originOf, validateConfig } from '../../engine/drivers/index.js';
import type { Catalog, CheckResult, ConnectorRole, Driver, DriverContext } from '../../engine/drivers/types.js';
import { ConflictError, ConnectorFailedError, InUseError, NotFoundError, ResourceLimitError, ValidationError, type FieldError } from '../../errors.js';
import type { DriverTasks } from '../../engine/runner/driver-tasks.js';
import { driverContext } from '../../engine/drivers/context.js';
import type { EventService, Tx } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';
import { KeyRingError, type KeyRing } from '../../security/keyring.js';
import type { FileRootsOptions, FileScope } from '../../security/file-roots.js';
import { scrubberFor } from '../../security/secrets-redact.js';
import type { AuthenticationService } from '../authentication/authentication.service.js';
import { differingSecrets, driverSecretPaths, mergeSecrets, openSecrets, ownerOf, resealSecrets, sealSecrets, secretValues } from './secrets.js';
import { newRowId } from '../../db/ids.js';
import { requireWorkspaceId, workspaceFileScope } from '../../tenancy/scope.js';

export interface CreateConnectorInput {
  name: string;
  driver: string;
  role?: ConnectorRole | null;
  config?: unknown;
  paused?: boolean | null;
  /** A stored authentication to use instead of inline credentials (drivers with `auth` only). */
  authenticationId?: string | null;
}

export interface UpdateConnectorInput {
  id: string;
  name?: string | null;
  config?: unknown;
  /** undefined: unchanged; null: no authentication any more. */
  authenticationId?: string | null;
  expectedVersion?: number | null;
}

/** What a driver needs of a connector row. */
export interface ConnectorForDriver {
  /** The row id: its secrets are bound to it. */
  id: string;
  name?: string;
  /** Whose files the driver may touch. */
  workspaceId: string;
  driver: string;
  config: unknown;
  authenticationId?: string | null;
}

/** A connector config ready for its driver, and the secret values to keep out of messages. */
export interface DriverConfig {
  config: unknown;
  secrets: string[];
  /** `text` without any of the secrets. */
  scrub(text: string): string;
  /** The files of the connector's workspace: plain data for a job plan or a worker. */
  files: FileScope;
  /** The context for driver calls made here (built from `files`). */
  ctx: DriverContext;
}

/** Resolves a connector's config for its driver (ConnectorService.driverConfig). */
export type DriverConfigResolver = (c: ConnectorForDriver, db?: Pick<PrismaClient, 'authentication'>) => Promise<DriverConfig>;

/** Drivers that take credentials (`auth` in their config) can use a stored authentication. */
export function acceptsAuthentication(driver: Driver): boolean {
  const props = (driver.configSchema as { properties?: Record<string, unknown> }).properties;
  return !!props && 'auth' in props;
}

/** What pausing a connector does to jobs (implemented by the job service). */
export interface ConnectorJobs {
  /** Locks the pipelines using the connector; the first thing a transaction that suspends or resumes their jobs does. */
  lockPipelinesOf(tx: Tx, connectorId: string): Promise<void>;
  suspendForConnector(tx: Tx, emit: (e: NewEvent) => Promise<void>, connectorId: string): Promise<() => Promise<void>>;
  resumeForConnector(tx: Tx, emit: (e: NewEvent) => Promise<void>, connectorId: string): Promise<() => Promise<void>>;
}

export class ConnectorService {
  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    private readonly jobs: ConnectorJobs,
    private readonly ring: KeyRing,
    private readonly authentications: AuthenticationService,
    private readonly files: FileRootsOptions,
    /** Where check and discover run: a worker thread with time and memory limits. */
    private readonly driverTasks: DriverTasks,
  ) {}

  /** The driver context of a workspace (its files folder; the extra roots for the default one). */
  contextFor(workspaceId: string): { files: FileScope; ctx: DriverContext } {
    const files = workspaceFileScope(this.files, workspaceId);
    return { files, ctx: driverContext(files) };
  }

  /**
   * The config a driver gets: secrets decrypted, and the referenced authentication (decrypted)
   * as `auth`, overriding inline credentials. `db` may be a transaction. Throws KeyRingError
   * when a secret cannot be decrypted, NotFoundError when the authentication is gone.
   */
  async driverConfig(c: ConnectorForDriver, db: Pick<PrismaClient, 'authentication'> = this.db): Promise<DriverConfig> {
    const paths = driverSecretPaths(c.driver);
    const config = openSecrets(paths, c.config, this.ring, ownerOf('connector', c.id));
    const auth = c.authenticationId ? await this.authentications.httpAuth(c.authenticationId, db) : null;
    return { ...forDriver(paths, config, auth), ...this.contextFor(c.workspaceId) };
  }

  /**
   * Config as code (plan): the secret config paths of a stored connector whose value differs
   * from the plaintext `plain` (compared decrypted, here; a value that does not decrypt counts
   * as changed). Only paths are returned, never a value.
   */
  changedSecrets(c: Pick<ConnectorForDriver, 'id' | 'driver' | 'config'>, plain: unknown): string[] {
    return differingSecrets(driverSecretPaths(c.driver), c.config, plain, this.ring, ownerOf('connector', c.id));
  }

  /** `driverConfig` that reports a failure as a message (for check/discover results) instead of throwing. */
  private async driverConfigOrError(c: ConnectorForDriver & { name: string }): Promise<DriverConfig | { error: string }> {
    try {
      return await this.driverConfig(c);
    } catch (err) {
      if (err instanceof KeyRingError) return { error: `cannot decrypt the secrets of connector "${c.name}": ${err.message}` };
      if (err instanceof NotFoundError) return { error: `the authentication of connector "${c.name}" no longer exists` };
      throw err;
    }
  }

  /** Validates an authentication reference for a driver (it must exist in the caller's workspace); returns its row. */
  private async checkAuthentication(driver: Driver, id: string | null | undefined): Promise<Authentication | null> {
    if (id == null) return null;
    if (!acceptsAuthentication(driver)) {
      throw new ValidationError('authentication not supported', [{ path: 'authenticationId', message: `driver "${driver.name}" does not take credentials` }]);
    }
    const a = await this.db.authentication.findUnique({ where: { id } });
    if (!a) throw new ValidationError('unknown authentication', [{ path: 'authenticationId', message: 'no such authentication' }]);
    return a;
  }

  definitions(role?: ConnectorRole | null): Driver[] {
    return listDrivers(role ?? undefined);
  }

  definition(driver: string): Driver {
    const d = getDriver(driver);
    if (!d) throw new NotFoundError('ConnectorDefinition', driver);
    return d;
  }

  async get(id: string) {
    const c = await this.db.connector.findUnique({ where: { id } });
    if (!c) throw new NotFoundError('Connector', id);
    return c;
  }

  /**
   * Validates a config for a driver; returns it with defaults filled in. The driver's own
   * checks (local paths inside the workspace's files roots, statements) run too.
   */
  validate(driverName: string, config: unknown, role?: ConnectorRole | null, workspaceId = requireWorkspaceId()): { driver: Driver; config: Record<string, unknown> } {
    const driver = getDriver(driverName);
    if (!driver) {
      const known = listDrivers().map((d) => d.name).join(', ');
      throw new ValidationError('unknown driver', [{ path: 'driver', message: `no driver "${driverName}"; available: ${known}` }]);
    }
    if (role && role !== driver.role) {
      throw new ValidationError('role mismatch', [{ path: 'role', message: `driver "${driverName}" is a ${driver.role}, not a ${role}` }]);
    }
    const result = validateConfig(driver, config);
    if (!result.ok) {
      throw new ValidationError(
        `invalid config for driver "${driverName}"`,
        result.errors.map((e) => ({ path: e.path ? `config.${e.path}` : 'config', message: e.message })),
      );
    }
    const problems = driver.validate?.(result.config as never, this.contextFor(workspaceId).ctx) ?? [];
    if (problems.length) {
      throw new ValidationError(
        `invalid config for driver "${driverName}"`,
        problems.map((e) => ({ path: e.path ? `config.${e.path}` : 'config', message: e.message })),
      );
    }
    return { driver, config: result.config as Record<string, unknown> };
  }

  async create(input: CreateConnectorInput) {
    const name = requireName(input.name);
    const paths = driverSecretPaths(input.driver);
    // Placeholders have nothing to keep in a new connector: mergeSecrets refuses them.
    const merged = mergeSecrets(paths, input.config, null, null);
    const { driver, config } = this.validate(input.driver, merged.config, input.role);
    const authenticationId = (await this.checkAuthentication(driver, input.authenticationId))?.id ?? null;
    // The id exists before the insert: the secrets are sealed bound to it.
    const id = newRowId();
    const sealed = sealSecrets(paths, config, this.ring, ownerOf('connector', id));
    return this.events.transaction(async (tx, emit) => {
      const c = await tx.connector.create({
        data: {
          id,
          workspaceId: requireWorkspaceId(),
          name,
          driver: driver.name,
          role: driver.role,
          config: sealed as Prisma.InputJsonValue,
          authenticationId,
          paused: input.paused ?? false,
        },
      });
      await emit({ type: 'CONNECTOR_CREATED', connectorId: c.id, message: `connector "${c.name}" (${c.driver}) created` });
      return c;
    });
  }

  async update(input: UpdateConnectorInput) {
    const current = await this.get(input.id);
    const name = input.name == null ? current.name : requireName(input.name);
    const paths = driverSecretPaths(current.driver);
    let config: typeof current.config;
    if (input.config !== undefined && input.config !== null) {
      // Placeholders keep the stored secrets (their ciphertext, unchanged); new values are encrypted.
      const owner = ownerOf('connector', current.id);
      const merged = mergeSecrets(paths, input.config, current.config, { ring: this.ring, owner });
      const { driver, config: validated } = this.validate(current.driver, merged.config, null, current.workspaceId);
      this.refuseCredentialsToNewOrigin(driver, current, validated, merged.kept, input.authenticationId);
      config = sealSecrets(paths, validated, this.ring, owner, merged.kept) as typeof config;
    } else {
      // Any write encrypts what is still legacy clear text (or unbound, or under an old key); a value that does not open stays as it is.
      config = resealSecrets(paths, current.config, this.ring, ownerOf('connector', current.id), { skipUnreadable: true }).config as typeof config;
    }
    const authenticationId =
      input.authenticationId === undefined
        ? current.authenticationId
        : ((await this.checkAuthentication(this.definition(current.driver), input.authenticationId))?.id ?? null);
    return this.events.transaction(async (tx, emit) => {
      const res = await tx.connector.updateMany({
        where: { id: current.id, version: input.expectedVersion ?? current.version },
        data: { name, config: config as Prisma.InputJsonValue, authenticationId, version: { increment: 1 } },
      });
      if (res.count === 0) {
        const now = await tx.connector.findUnique({ where: { id: current.id } });
        if (!now) throw new NotFoundError('Connector', current.id);
        throw new ConflictError(`connector was changed concurrently (version ${now.version})`, now.version);
      }
      await emit({ type: 'CONNECTOR_UPDATED', connectorId: current.id, message: `connector "${name}" updated` });
      return tx.connector.findUniqueOrThrow({ where: { id: current.id } });
    });
  }

  /**
   * Stored credentials do not follow a changed address: when an update moves a connector's
   * origin (the driver's `"origin": true` fields, see originOf) elsewhere, every secret kept
   * through a placeholder must be sent again, and a referenced authentication must be named
   * again (`authenticationId`). Otherwise VALIDATION_FAILED naming those paths; nothing changes.
   */
  private refuseCredentialsToNewOrigin(
    driver: Driver,
    current: { id: string; config: unknown; authenticationId: string | null },
    next: unknown,
    kept: ReadonlyMap<string, string>,
    authenticationId: string | null | undefined,
  ): void {
    const keepsAuthentication = current.authenticationId !== null && authenticationId === undefined;
    if (kept.size === 0 && !keepsAuthentication) return;
    let before: Map<string, string> | null;
    try {
      before = originOf(driver, openSecrets(driverSecretPaths(driver.name), current.config, this.ring, ownerOf('connector', current.id)));
    } catch {
      before = null; // undecryptable stored origin: treated as changed
    }
    const after = originOf(driver, next);
    const changed = [...new Set([...(before?.keys() ?? []), ...after.keys()])].filter((p) => before?.get(p) !== after.get(p));
    if (before !== null && changed.length === 0) return;
    const fields = before === null ? 'the address' : changed.map((p) => `config.${p}`).join(', ');
    const why = `${fields} changed to another address, and a stored credential never follows a changed address`;
    const errors: FieldError[] = [...kept.keys()].map((p) => ({ path: `config.${p}`, message: `${why}: send this secret again` }));
    if (keepsAuthentication) errors.push({ path: 'authenticationId', message: `${why}: name the authentication again (or null)` });
    throw new ValidationError('stored credentials do not follow a changed address', errors);
  }

  async delete(id: string) {
    const c = await this.get(id);
    return this.events.transaction(async (tx, emit) => {
      const users = await tx.pipeline.findMany({
        where: { OR: [{ sourceId: id }, { destinationId: id }] },
        select: { id: true, name: true },
      });
      if (users.length) {
        throw new InUseError(
          `connector "${c.name}" is used by ${users.length} pipeline(s): ${users.map((u) => u.name).join(', ')}`,
          users.map((u) => globalId('Pipeline', u.id)),
        );
      }
      await tx.connector.delete({ where: { id } });
      await emit({ type: 'CONNECTOR_DELETED', connectorId: id, message: `connector "${c.name}" deleted` });
      return c;
    });
  }

  /**
   * Feldera-style connector pause: pipelines using the connector keep their state but
   * become inactive; their running jobs stop at a checkpoint (PAUSED) and continue when
   * the connector resumes.
   */
  async setPaused(id: string, paused: boolean) {
    const c = await this.get(id);
    if (c.paused === paused) return c;
    let after: () => Promise<void> = async () => {};
    const updated = await this.events.transaction(async (tx, emit) => {
      // Lock order: the pipelines whose jobs this suspends or resumes, before anything else.
      await this.jobs.lockPipelinesOf(tx, id);
      const row = await tx.connector.update({ where: { id }, data: { paused, version: { increment: 1 } } });
      await emit({
        type: paused ? 'CONNECTOR_PAUSED' : 'CONNECTOR_RESUMED',
        connectorId: id,
        message: `connector "${c.name}" ${paused ? 'paused' : 'resumed'}`,
      });
      after = paused ? await this.jobs.suspendForConnector(tx, emit, id) : await this.jobs.resumeForConnector(tx, emit, id);
      return row;
    });
    await after();
    return updated;
  }

  /** Runs the driver's real check; records the outcome on the connector, as a CHECK job and an event. */
  async check(id: string): Promise<{ connector: Awaited<ReturnType<ConnectorService['get']>>; result: CheckResult; jobId: string }> {
    const c = await this.get(id);
    const startedAt = new Date();
    const driver = this.definition(c.driver);
    const dc = await this.driverConfigOrError(c);
    const checked: CheckResult = 'error' in dc ? { ok: false, message: dc.error } : await this.runCheck(driver, dc);
    // Stored (text) and emitted: a NUL from the external system becomes U+FFFD.
    const result: CheckResult = { ok: checked.ok, message: pgText(checked.message) };
    return this.events.transaction(async (tx, emit) => {
      const connector = await tx.connector.update({
        where: { id },
        data: { lastCheckOk: result.ok, lastCheckAt: new Date(), lastCheckMessage: result.message },
      });
      const job = await tx.job.create({
        data: {
          workspaceId: c.workspaceId,
          kind: 'CHECK',
          connectorId: id,
          status: result.ok ? 'SUCCEEDED' : 'FAILED',
          attempts: 1,
          startedAt,
          finishedAt: new Date(),
          error: result.ok ? null : result.message,
          result: result as unknown as Prisma.InputJsonValue,
        },
      });
      await emit({
        type: 'CONNECTOR_CHECKED',
        connectorId: id,
        jobId: job.id,
        message: `check of "${c.name}" ${result.ok ? 'succeeded' : 'failed'}: ${result.message}`,
        data: { ok: result.ok },
      });
      return { connector, result, jobId: job.id };
    });
  }

  /** Checks a config that is not saved (Airbyte's check for a new source), optionally with a stored authentication. */
  async checkConfig(driverName: string, config: unknown, authenticationId?: string | null): Promise<CheckResult> {
    const paths = driverSecretPaths(driverName);
    const merged = mergeSecrets(paths, config, null, null);
    const v = this.validate(driverName, merged.config);
    const authentication = await this.checkAuthentication(v.driver, authenticationId);
    // The validated plaintext goes to the driver as is: an incoming `enc:…` string stays a literal value.
    const dc = forDriver(paths, v.config, authentication && this.authentications.toHttpAuth(authentication));
    return this.runCheck(v.driver, { ...dc, ...this.contextFor(requireWorkspaceId()) });
  }

  /** The driver's check in a driver-task worker; a failure or a limit is a failed check, never a throw. */
  private async runCheck(driver: Driver, dc: DriverConfig): Promise<CheckResult> {
    try {
      const r = await this.driverTasks.run({ kind: 'check', driver: driver.name, config: dc.config, files: dc.files }, dc.secrets);
      return { ok: r.ok, message: dc.scrub(r.message) };
    } catch (err) {
      return { ok: false, message: dc.scrub((err as Error).message) };
    }
  }

  async discover(id: string): Promise<{ catalog: Catalog; jobId: string }> {
    const c = await this.get(id);
    const driver = this.definition(c.driver);
    const startedAt = new Date();
    let catalog: Catalog | null = null;
    let error: string | null = null;
    let limited: ResourceLimitError | null = null;
    const dc = await this.driverConfigOrError(c);
    if ('error' in dc) error = dc.error;
    else {
      try {
        // Stored as jsonb: a NUL in a discovered name becomes U+FFFD.
        catalog = pgJson(await this.driverTasks.run({ kind: 'discover', driver: driver.name, config: dc.config, files: dc.files }, dc.secrets));
      } catch (err) {
        if (err instanceof ResourceLimitError) limited = err;
        error = pgText(dc.scrub((err as Error).message));
      }
    }
    const jobId = await this.events.transaction(async (tx, emit) => {
      const job = await tx.job.create({
        data: {
          workspaceId: c.workspaceId,
          kind: 'DISCOVER',
          connectorId: id,
          status: catalog ? 'SUCCEEDED' : 'FAILED',
          attempts: 1,
          startedAt,
          finishedAt: new Date(),
          error,
          result: (catalog ?? undefined) as Prisma.InputJsonValue | undefined,
        },
      });
      await emit({
        type: 'CONNECTOR_DISCOVERED',
        connectorId: id,
        jobId: job.id,
        message: catalog ? `discovered ${catalog.streams.length} stream(s) in "${c.name}"` : `discover of "${c.name}" failed: ${error}`,
      });
      return job.id;
    });
    if (limited) throw limited;
    if (!catalog) throw new ConnectorFailedError(`discover of "${c.name}" failed: ${error ?? 'unknown error'}`, id);
    return { catalog, jobId };
  }
}

/**
 * A plaintext config ready for its driver: the authentication's credentials (if any) as `auth`,
 * overriding inline ones, and every secret value to keep out of messages.
 */
function forDriver(paths: readonly string[], config: unknown, authentication: { auth: HttpAuth; secrets: string[] } | null): Omit<DriverConfig, 'files' | 'ctx'> {
  const secrets = secretValues(paths, config);
  if (authentication) {
    config = { ...((config ?? {}) as Record<string, unknown>), auth: authentication.auth };
    secrets.push(...authentication.secrets);
  }
  return { config, secrets, scrub: scrubberFor(secrets) };
}

function requireName(name: string): string {
  const n = name.trim();
  if (!n) throw new ValidationError('invalid name', [{ path: 'name', message: 'must not be empty' }]);
  if (n.length > 200) throw new ValidationError('invalid name', [{ path: 'name', message: 'at most 200 characters' }]);
  return n;
}

export { requireName };
