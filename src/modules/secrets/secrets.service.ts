/**
 * Key rotation and the binding migration: re-seal every secret at rest under the primary key,
 * bound to its row and field (see keyring.ts).
 *
 * Contract:
 * - Covers every workspace (runs in system scope): connector config secret fields,
 *   authentication secrets, webhook endpoint secrets (current and previous). Legacy clear text
 *   and unbound (v1) ciphertext are sealed as bound v2 too.
 * - Rotation, with a key file: a new primary key is generated and persisted next to the old
 *   ones first; everything is re-encrypted in one transaction (rows locked, so no concurrent
 *   write is lost); only after the commit does the file drop the old keys. A failure (a value
 *   that does not decrypt included: its binding is named) leaves every key in the file (nothing
 *   is unreadable) and the new one primary; running it again finishes.
 * - Rotation, with SLUICE_SECRET_KEYS: the operator puts the new key first (keeping the old
 *   ones) and restarts; rotation re-encrypts under that primary, then the old keys may be removed.
 * - Binding migration (`bindUnbound`, run at every start after the SQL migrations, before the
 *   server listens): every value that is not yet bound (clear text, v1) is re-sealed as v2 for
 *   its row and field, in one transaction with the rows locked (same lock order as rotation).
 *   It is idempotent: a first pass without locks looks for such values and the transaction runs
 *   only when there are some, so a start with nothing to do writes nothing. A v1 value that does
 *   not decrypt is left as it is and reported (a warning naming its binding): every use of it
 *   keeps failing with a clear error, and the start is not blocked by one bad row. It runs in
 *   TypeScript, not in a SQL migration, because only the process holding the keys can encrypt;
 *   servers still running an older version on the same PostgreSQL may write v1 values again,
 *   which the next start (or rotation, or a write of that row) binds.
 * - One rotation or migration at a time per process. Never logs a secret (counts, key ids and
 *   bindings only).
 */
import type { PrismaClient } from '../../db/client.js';
import type { Prisma } from '../../generated/prisma/client.js';
import type { Logger } from '../../logger.js';
import { resealAuthentication } from '../authentication/authentication.service.js';
import { driverSecretPaths, ownerOf, resealSecrets, type ResealOptions } from '../connector/secrets.js';
import { webhookSecretBinding, type WebhookSecretField } from '../webhook/webhook.service.js';
import { runAsSystem } from '../../tenancy/scope.js';
import { isBound, KeyRingError, type KeyRing } from '../../security/keyring.js';

export interface ResealCounts {
  /** Rows whose secrets were re-encrypted. */
  connectors: number;
  authentications: number;
  webhooks: number;
}

export interface RotationResult extends ResealCounts {
  /** The primary key everything is encrypted with now. */
  keyId: string;
  /** Keys removed from the key file (empty with configured keys). */
  retiredKeyIds: string[];
}

export interface BindResult extends ResealCounts {
  /** Bindings of unbound values that did not decrypt and were left as they are. */
  unreadable: string[];
}

const TX_OPTIONS = { maxWait: 30_000, timeout: 10 * 60_000 };

type Client = Prisma.TransactionClient | PrismaClient;

export class SecretsRotationService {
  /** The last job started (rotation or binding); the next one runs after it. */
  private tail: Promise<unknown> = Promise.resolve();
  private current: { kind: 'rotate' | 'bind'; promise: Promise<unknown> } | null = null;

  constructor(
    private readonly db: PrismaClient,
    private readonly ring: KeyRing,
    private readonly log: Logger,
  ) {}

  /** Rotates (see the module contract); concurrent calls share one rotation. */
  rotate(): Promise<RotationResult> {
    return this.exclusive('rotate', () => this.runRotation());
  }

  /** The binding migration (see the module contract): every unbound secret re-sealed bound to its row. */
  bindUnbound(): Promise<BindResult> {
    return this.exclusive('bind', () => this.runBinding());
  }

  /** One job at a time, in system scope: a call of the kind waiting or running shares it, another kind runs after it. */
  private exclusive<T>(kind: 'rotate' | 'bind', fn: () => Promise<T>): Promise<T> {
    if (this.current?.kind === kind) return this.current.promise as Promise<T>;
    const promise = this.tail.catch(() => undefined).then(() => runAsSystem(fn));
    const entry = { kind, promise };
    this.current = entry;
    this.tail = promise;
    promise
      .finally(() => {
        if (this.current === entry) this.current = null;
      })
      .catch(() => undefined);
    return promise;
  }

  private async runRotation(): Promise<RotationResult> {
    const keyId = this.ring.beginFileRotation();
    let counts: ResealCounts;
    try {
      counts = await this.db.$transaction(async (tx) => (await this.resealAll(tx, { write: true })).counts, TX_OPTIONS);
    } catch (err) {
      this.log.error({ err, keyId }, 'key rotation failed: secrets keep their keys (all still in the key ring); run it again');
      throw err;
    }
    const retiredKeyIds = this.ring.finishFileRotation();
    const result = { keyId, retiredKeyIds, ...counts };
    this.log.info(result, 'secrets re-encrypted under the primary key');
    return result;
  }

  private async runBinding(): Promise<BindResult> {
    const bind = { needs: (v: string) => !isBound(v), skipUnreadable: true };
    // Without locks first: most starts have nothing to do and should not lock every row.
    const found = await this.resealAll(this.db, { ...bind, write: false });
    let result: BindResult = { ...found.counts, unreadable: found.unreadable };
    if (found.counts.connectors + found.counts.authentications + found.counts.webhooks > 0) {
      const done = await this.db.$transaction((tx) => this.resealAll(tx, { ...bind, write: true }), TX_OPTIONS);
      result = { ...done.counts, unreadable: done.unreadable };
      this.log.info({ connectors: result.connectors, authentications: result.authentications, webhooks: result.webhooks }, 'secrets re-sealed bound to their rows');
    }
    for (const binding of result.unreadable) this.log.warn({ binding }, 'a stored secret does not decrypt and was left as it is: send the value again');
    return result;
  }

  /**
   * Re-seals what `options.needs` selects (default: everything not bound under the primary key),
   * bound to its row and field; with `write` inside `db` (a transaction, rows locked first),
   * else only counting what would change.
   */
  private async resealAll(db: Client, options: ResealOptions & { write: boolean }): Promise<{ counts: ResealCounts; unreadable: string[] }> {
    const { write, ...reseal } = options;
    if (write) {
      // Lock first: a concurrent update must not be overwritten with what we read before it.
      await db.$queryRaw`SELECT "id" FROM "Connector" FOR UPDATE`;
      await db.$queryRaw`SELECT "id" FROM "Authentication" FOR UPDATE`;
      await db.$queryRaw`SELECT "id" FROM "WebhookEndpoint" FOR UPDATE`;
    }
    const unreadable: string[] = [];

    let connectors = 0;
    for (const c of await db.connector.findMany({ select: { id: true, driver: true, config: true } })) {
      const r = resealSecrets(driverSecretPaths(c.driver), c.config, this.ring, ownerOf('connector', c.id), reseal);
      unreadable.push(...r.unreadable);
      if (!r.changed) continue;
      if (write) await db.connector.update({ where: { id: c.id }, data: { config: r.config as Prisma.InputJsonValue } });
      connectors++;
    }

    let authentications = 0;
    for (const a of await db.authentication.findMany({ select: { id: true, type: true, config: true } })) {
      const r = resealAuthentication(a, this.ring, reseal);
      unreadable.push(...r.unreadable);
      if (!r.changed) continue;
      if (write) await db.authentication.update({ where: { id: a.id }, data: { config: r.config as Prisma.InputJsonValue } });
      authentications++;
    }

    let webhooks = 0;
    const needs = reseal.needs ?? ((v: string) => this.ring.needsReseal(v));
    for (const w of await db.webhookEndpoint.findMany({ select: { id: true, secret: true, previousSecret: true } })) {
      const data: Partial<Record<WebhookSecretField, string>> = {};
      for (const field of ['secret', 'previousSecret'] as const) {
        const value = w[field];
        if (!value || !needs(value)) continue;
        const binding = webhookSecretBinding(w.id, field);
        try {
          data[field] = this.ring.encrypt(this.ring.decrypt(value, binding), binding);
        } catch (err) {
          if (!(err instanceof KeyRingError) || !reseal.skipUnreadable) throw err;
          unreadable.push(binding);
        }
      }
      if (!Object.keys(data).length) continue;
      if (write) await db.webhookEndpoint.update({ where: { id: w.id }, data });
      webhooks++;
    }
    return { counts: { connectors, authentications, webhooks }, unreadable };
  }
}
