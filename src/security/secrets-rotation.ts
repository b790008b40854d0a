/**
 * Key rotation: re-encrypts every secret at rest under the primary key.
 *
 * Contract:
 * - Covers every workspace (runs in system scope): connector config secret fields,
 *   authentication secrets, webhook endpoint secrets (current and previous). Legacy clear text
 *   is encrypted too.
 * - With a key file: a new primary key is generated and persisted next to the old ones first;
 *   everything is re-encrypted in one transaction (rows locked, so no concurrent write is
 *   lost); only after the commit does the file drop the old keys. A failure leaves every key
 *   in the file (nothing is unreadable) and the new one primary; running it again finishes.
 * - With SLUICE_SECRET_KEYS: the operator puts the new key first (keeping the old ones) and
 *   restarts; rotation re-encrypts under that primary, then the old keys may be removed.
 * - One rotation at a time per process. Never logs a secret (counts and key ids only).
 */
import type { PrismaClient } from '../db/client.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import { resealAuthentication } from '../modules/authentication/authentication.service.js';
import { driverSecretPaths, resealSecrets } from '../modules/connector/secrets.js';
import { runAsSystem } from '../modules/workspace/scope.js';
import type { KeyRing } from './keyring.js';

export interface RotationResult {
  /** The primary key everything is encrypted with now. */
  keyId: string;
  /** Keys removed from the key file (empty with configured keys). */
  retiredKeyIds: string[];
  /** Rows whose secrets were re-encrypted. */
  connectors: number;
  authentications: number;
  webhooks: number;
}

const TX_OPTIONS = { maxWait: 30_000, timeout: 10 * 60_000 };

export class SecretsRotationService {
  private running: Promise<RotationResult> | null = null;

  constructor(
    private readonly db: PrismaClient,
    private readonly ring: KeyRing,
    private readonly log: Logger,
  ) {}

  /** Rotates (see the module contract); concurrent calls share one rotation. */
  rotate(): Promise<RotationResult> {
    this.running ??= runAsSystem(() => this.run()).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<RotationResult> {
    const keyId = this.ring.beginFileRotation();
    let counts: { connectors: number; authentications: number; webhooks: number };
    try {
      counts = await this.db.$transaction((tx) => this.resealAll(tx), TX_OPTIONS);
    } catch (err) {
      this.log.error({ err, keyId }, 'key rotation failed: secrets keep their keys (all still in the key ring); run it again');
      throw err;
    }
    const retiredKeyIds = this.ring.finishFileRotation();
    const result = { keyId, retiredKeyIds, ...counts };
    this.log.info(result, 'secrets re-encrypted under the primary key');
    return result;
  }

  /** Re-encrypts every secret under the primary key, inside `tx`. */
  private async resealAll(tx: Prisma.TransactionClient): Promise<{ connectors: number; authentications: number; webhooks: number }> {
    // Lock first: a concurrent update must not be overwritten with what we read before it.
    await tx.$queryRaw`SELECT "id" FROM "Connector" FOR UPDATE`;
    await tx.$queryRaw`SELECT "id" FROM "Authentication" FOR UPDATE`;
    await tx.$queryRaw`SELECT "id" FROM "WebhookEndpoint" FOR UPDATE`;

    let connectors = 0;
    for (const c of await tx.connector.findMany({ select: { id: true, driver: true, config: true } })) {
      const r = resealSecrets(driverSecretPaths(c.driver), c.config, this.ring);
      if (!r.changed) continue;
      await tx.connector.update({ where: { id: c.id }, data: { config: r.config as Prisma.InputJsonValue } });
      connectors++;
    }

    let authentications = 0;
    for (const a of await tx.authentication.findMany({ select: { id: true, type: true, config: true } })) {
      const r = resealAuthentication(a, this.ring);
      if (!r.changed) continue;
      await tx.authentication.update({ where: { id: a.id }, data: { config: r.config as Prisma.InputJsonValue } });
      authentications++;
    }

    let webhooks = 0;
    for (const w of await tx.webhookEndpoint.findMany({ select: { id: true, secret: true, previousSecret: true } })) {
      const data: { secret?: string; previousSecret?: string } = {};
      if (w.secret && this.ring.needsReseal(w.secret)) data.secret = this.ring.reseal(w.secret);
      if (w.previousSecret && this.ring.needsReseal(w.previousSecret)) data.previousSecret = this.ring.reseal(w.previousSecret);
      if (!Object.keys(data).length) continue;
      await tx.webhookEndpoint.update({ where: { id: w.id }, data });
      webhooks++;
    }
    return { connectors, authentications, webhooks };
  }
}
