/**
 * The webhook delivery loop: drains the durable outbox (WebhookDelivery rows) off the hot path.
 *
 * Promises:
 * - At least once: a row is DELIVERED only after a 2xx; a crash or stop before that leaves it
 *   PENDING, and it is sent again (same `webhook-id`) after a restart.
 * - Each attempt is one POST with Standard Webhooks headers, a per-attempt timeout, no
 *   redirects followed, through the outbound-request guard seam of the HTTP client.
 * - Every attempt is recorded (time, status, latency, error). Failures retry with an
 *   exponential schedule with jitter (×1, ×6, ×24, ×120, ×720, ×1440, ×3600, ×7200 the base
 *   delay: 5 s … 10 h by default), or after Retry-After when the receiver sends one, until
 *   the delivery is older than the max age (then FAILED).
 * - 410 Gone disables the endpoint at once; an endpoint with no success for `disableAfterMs`
 *   is disabled; both write WEBHOOK_DISABLED.
 * - Per endpoint, deliveries go out one at a time in event order; endpoints are served
 *   independently, so a slow or dead endpoint never blocks the others.
 * - Several processes can run the loop. A process claims due rows (`FOR UPDATE SKIP LOCKED`)
 *   with a lease (`leaseUntil`, `leaseOwner`: `leaseMs` ahead) and renews the leases of every
 *   row it still holds each `heartbeatMs`, so an attempt slower than the lease is never sent
 *   twice while its process lives. An endpoint with a live lease on any row is not claimed by
 *   another process (its order is kept). A killed process stops renewing: its rows are claimed
 *   again once the lease has passed (30 s by default), with nothing else to clean up. A row
 *   whose lease this process lost (renewal found it held by another) is not sent by it again.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { globalId } from '../../ids.js';
import type { WebhookConfig } from '../../config.js';
import type { PrismaClient } from '../../db/client.js';
import { parseRetryAfter, redactUrl, request } from '../../engine/drivers/http/client.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { ALL, type PubSub } from '../../pubsub/pubsub.js';
import { signedHeaders } from './signing.js';
import type { EndpointRow, WebhookService } from './webhook.service.js';
import { runAsSystem } from '../../tenancy/scope.js';
import { readBodySnippet } from '../../engine/drivers/http/body.js';

/** Retry delays as multiples of the base delay (the last one repeats). */
export const RETRY_SCHEDULE = [1, 6, 24, 120, 720, 1440, 3600, 7200, 7200];
const CLAIM_LIMIT = 20;
const MAX_WORKERS = 16;
const RESPONSE_SNIPPET = 1024;

export interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  response: string | null;
  retryAfterMs: number | null;
}

/** Delay before the next attempt after attempt `n` (1-based) failed: schedule × base, ±20 % jitter. */
export function retryDelay(n: number, baseMs: number, random: () => number = Math.random): number {
  const mult = RETRY_SCHEDULE[Math.min(Math.max(n, 1), RETRY_SCHEDULE.length) - 1]!;
  return Math.round(mult * baseMs * (0.8 + 0.4 * random()));
}

/** The secrets to sign with now, as stored: the current one first, plus the previous one during a rotation overlap. */
export function activeSecrets(ep: Pick<EndpointRow, 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, now = new Date()): string[] {
  const out = [ep.secret];
  if (ep.previousSecret && ep.previousSecretExpiresAt && ep.previousSecretExpiresAt > now) out.push(ep.previousSecret);
  return out;
}

type Claimed = NonNullable<Awaited<ReturnType<PrismaClient['webhookDelivery']['findUnique']>>>;

export class DeliveryService {
  private stopped = true;
  private timer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private ticking = false;
  private again = false;
  private abort = new AbortController();
  private readonly busy = new Set<string>();
  private readonly workers = new Set<Promise<void>>();
  private live: AsyncIterableIterator<unknown> | null = null;
  /** This loop's lease owner id (new at every start). */
  private owner = randomUUID();
  /** Rows this process holds a lease on: claimed, not yet recorded or released. */
  private readonly held = new Set<string>();
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: PrismaClient,
    private readonly webhooks: WebhookService,
    private readonly pubsub: PubSub,
    private readonly config: WebhookConfig,
    private readonly log: Logger,
    /** `sluice_webhook_deliveries_total{outcome}`: one count per recorded attempt. */
    private readonly metrics?: Pick<Metrics, 'webhookDelivery'>,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.owner = randomUUID();
    this.abort = new AbortController();
    this.heartbeat = setInterval(() => void this.renewLeases(), this.config.heartbeatMs);
    // Every attempt in flight listens on this signal.
    setMaxListeners(MAX_WORKERS * 4, this.abort.signal);
    // Committed events may have queued deliveries: look at once instead of waiting for the poll.
    const live = this.pubsub.subscribe('events', ALL);
    this.live = live;
    void (async () => {
      for await (const _e of live) if (this.webhooks.mayHaveEndpoints()) this.wake();
    })().catch(() => undefined);
    this.schedule(0);
  }

  /** Stops polling, aborts attempts in flight (their rows stay PENDING) and waits for the workers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.abort.abort(new Error('Sluice is shutting down'));
    await this.live?.return?.();
    while (this.ticking || this.workers.size) {
      await Promise.allSettled([...this.workers]);
      if (this.ticking) await new Promise((r) => setTimeout(r, 5));
    }
    // The workers released their rows; only then may the leases stop being renewed.
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /**
   * The heartbeat: pushes the lease of every row this process holds `leaseMs` ahead. A row
   * not renewed (another process holds it now, or it is gone) is dropped: it is not sent from here.
   */
  private async renewLeases(): Promise<void> {
    const ids = [...this.held];
    if (!ids.length) return;
    const until = new Date(Date.now() + this.config.leaseMs);
    try {
      const renewed = await runAsSystem(
        () => this.db.$queryRaw<{ id: string }[]>`
          UPDATE "WebhookDelivery" SET "leaseUntil" = CAST(${until.toISOString()} AS timestamp(3))
          WHERE "leaseOwner" = ${this.owner} AND "id"::text IN (${Prisma.join(ids)})
          RETURNING "id"::text AS "id"`,
      );
      const kept = new Set(renewed.map((r) => r.id));
      for (const id of ids) {
        if (kept.has(id) || !this.held.has(id)) continue;
        this.held.delete(id);
        this.log.warn({ deliveryId: id }, 'webhook delivery lease lost (another process holds it now); not sending it from here');
      }
    } catch (err) {
      if (!this.stopped) this.log.warn({ err }, 'could not renew webhook delivery leases');
    }
  }

  /** Looks for due deliveries soon (debounced). */
  wake(): void {
    if (this.stopped || this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      void this.tick();
    }, 10);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  /** Delivery serves every workspace, whoever woke it: a tick always runs in system scope. */
  private tick(): Promise<void> {
    return runAsSystem(() => this.tickInScope());
  }

  private async tickInScope(): Promise<void> {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    this.again = false;
    let claimedAny = false;
    try {
      claimedAny = await this.claimAndSpawn();
    } catch (err) {
      if (!this.stopped) this.log.error({ err }, 'webhook delivery poll failed');
    } finally {
      this.ticking = false;
      this.schedule(this.again || (claimedAny && this.workers.size < MAX_WORKERS) ? 0 : this.config.pollMs);
    }
  }

  /** Claims due rows of endpoints not being served and starts one worker per endpoint. */
  private async claimAndSpawn(): Promise<boolean> {
    if (this.workers.size >= MAX_WORKERS) return false;
    const now = new Date();
    const lease = new Date(now.getTime() + this.config.leaseMs);
    const busy = [...this.busy];
    const notBusy = busy.length ? Prisma.sql`AND d2."endpointId"::text NOT IN (${Prisma.join(busy)})` : Prisma.empty;
    // Timestamps are UTC without time zone (Prisma's convention): pass them as UTC text.
    const at = Prisma.sql`CAST(${now.toISOString()} AS timestamp(3))`;
    const claimed = await this.db.$queryRaw<{ id: string }[]>`
      UPDATE "WebhookDelivery" SET "leaseUntil" = CAST(${lease.toISOString()} AS timestamp(3)), "leaseOwner" = ${this.owner}
      WHERE "id" IN (
        SELECT d2."id" FROM "WebhookDelivery" d2 JOIN "WebhookEndpoint" e ON e."id" = d2."endpointId"
        WHERE d2."status" = 'PENDING' AND d2."nextAttemptAt" <= ${at} AND (d2."leaseUntil" IS NULL OR d2."leaseUntil" <= ${at}) AND e."enabled" ${notBusy}
          AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d3 WHERE d3."endpointId" = d2."endpointId" AND d3."leaseUntil" > ${at} AND d3."status" = 'PENDING')
        ORDER BY d2."eventSequence", d2."createdAt"
        LIMIT ${CLAIM_LIMIT}
        FOR UPDATE OF d2 SKIP LOCKED)
      RETURNING "id"::text AS "id"`;
    if (!claimed.length) return false;
    for (const c of claimed) this.held.add(c.id);
    const rows = await this.db.webhookDelivery.findMany({
      where: { id: { in: claimed.map((c) => c.id) } },
      orderBy: [{ eventSequence: 'asc' }, { createdAt: 'asc' }],
    });
    const byEndpoint = new Map<string, Claimed[]>();
    for (const r of rows) byEndpoint.set(r.endpointId, [...(byEndpoint.get(r.endpointId) ?? []), r]);
    for (const [endpointId, list] of byEndpoint) {
      this.busy.add(endpointId);
      const w: Promise<void> = this.serve(endpointId, list)
        .catch((err: unknown) => {
          if (!this.stopped) this.log.error({ err, endpointId }, 'webhook delivery failed unexpectedly');
        })
        .finally(() => {
          this.busy.delete(endpointId);
          this.workers.delete(w);
          if (!this.stopped) this.wake();
        });
      this.workers.add(w);
    }
    return true;
  }

  /** Sends one endpoint's claimed rows in order; on a failure the rest wait with the failed one. Every row it does not record is released. */
  private async serve(endpointId: string, rows: Claimed[]): Promise<void> {
    let i = 0;
    let releaseAt: Date | null = null;
    try {
      for (; i < rows.length; i++) {
        if (this.stopped) return;
        const ep = await this.db.webhookEndpoint.findUnique({ where: { id: endpointId } });
        if (!ep || !ep.enabled) return;
        const d = rows[i]!;
        // Lost to another process (the heartbeat could not renew it): that one sends it; keep the order, stop here.
        if (!this.held.has(d.id)) return;
        const result = await this.attempt(ep, d.messageId, d.body, this.abort.signal);
        if (this.stopped && !result.ok && this.abort.signal.aborted) return; // not a real attempt: retried after restart
        const next = await this.record(ep, d, result);
        if (next !== 'delivered') {
          i++;
          if (next instanceof Date) releaseAt = next;
          return;
        }
      }
    } finally {
      const rest = rows.slice(i).map((r) => r.id).filter((id) => this.held.has(id));
      if (rest.length) {
        await this.db.webhookDelivery
          .updateMany({
            where: { id: { in: rest }, leaseOwner: this.owner },
            data: { leaseUntil: null, leaseOwner: null, ...(releaseAt ? { nextAttemptAt: releaseAt } : {}) },
          })
          .catch((err: unknown) => this.log.warn({ err }, 'could not release webhook deliveries (their leases expire on their own)'));
      }
      for (const id of rest) this.held.delete(id);
    }
  }

  /** One signed POST; never throws (an aborted stop shows as a failed result). */
  async attempt(ep: Pick<EndpointRow, 'id' | 'url' | 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, messageId: string, body: string, signal?: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      // Inside the try: a secret that cannot be decrypted is a failed attempt, recorded like any other.
      const secrets = activeSecrets(ep).map((s, i) => this.webhooks.openSecret(ep.id, i === 0 ? 'secret' : 'previousSecret', s));
      const headers = { ...signedHeaders(secrets, messageId, body), 'content-type': 'application/json' };
      const res = await request(
        ep.url,
        { method: 'POST', headers, body },
        {
          maxAttempts: 1,
          timeoutMs: this.config.timeoutMs,
          redirect: 'manual',
          acceptStatus: () => true,
          label: 'webhook',
          ...(signal ? { signal } : {}),
        },
      );
      const response = await readBodySnippet(res, RESPONSE_SNIPPET, this.config.timeoutMs - elapsed());
      const latencyMs = elapsed();
      const status = res.status;
      const ok = status >= 200 && status < 300;
      let error: string | null = null;
      if (status >= 300 && status < 400) error = `HTTP ${status}: redirect not followed${res.headers.get('location') ? ` (to ${redactUrl(res.headers.get('location')!)})` : ''}`;
      else if (!ok) error = `HTTP ${status}${res.statusText ? ` ${res.statusText}` : ''}`;
      return { ok, statusCode: status, latencyMs, error, response: response || null, retryAfterMs: ok ? null : parseRetryAfter(res.headers.get('retry-after')) };
    } catch (err) {
      return { ok: false, statusCode: null, latencyMs: elapsed(), error: err instanceof Error ? err.message : String(err), response: null, retryAfterMs: null };
    }
  }

  /** Records an attempt; returns 'delivered', the next attempt time, or 'stop' (failed for good / endpoint disabled). */
  private async record(ep: EndpointRow, d: Claimed, r: AttemptResult): Promise<'delivered' | 'stop' | Date> {
    const now = new Date();
    const number = d.attempts + 1;
    const attempt = { deliveryId: d.id, number, at: now, statusCode: r.statusCode, latencyMs: r.latencyMs, error: r.error, response: r.response };
    // Recording an attempt releases the row's lease.
    const base = { attempts: number, lastAttemptAt: now, lastStatusCode: r.statusCode, lastError: r.error, leaseUntil: null, leaseOwner: null };
    this.held.delete(d.id);
    if (r.ok) {
      await this.db.$transaction([
        this.db.webhookAttempt.create({ data: attempt }),
        this.db.webhookDelivery.update({ where: { id: d.id }, data: { ...base, status: 'DELIVERED', deliveredAt: now } }),
        this.db.webhookEndpoint.update({ where: { id: ep.id }, data: { failingSince: null, lastSuccessAt: now } }),
      ]);
      this.metrics?.webhookDelivery('delivered');
      return 'delivered';
    }
    if (r.statusCode === 410) {
      await this.db.$transaction([
        this.db.webhookAttempt.create({ data: attempt }),
        this.db.webhookDelivery.update({ where: { id: d.id }, data: { ...base, status: 'FAILED' } }),
      ]);
      await this.webhooks.disable(ep.id, 'the endpoint answered 410 Gone');
      this.metrics?.webhookDelivery('disabled');
      return 'stop';
    }
    const expired = now.getTime() - d.queuedAt.getTime() >= this.config.maxAgeMs;
    const delay = r.retryAfterMs ?? retryDelay(number, this.config.retryBaseMs);
    const next = new Date(now.getTime() + Math.min(delay, this.config.maxAgeMs));
    const failingSince = ep.failingSince ?? now;
    await this.db.$transaction([
      this.db.webhookAttempt.create({ data: attempt }),
      this.db.webhookDelivery.update({ where: { id: d.id }, data: expired ? { ...base, status: 'FAILED' } : { ...base, nextAttemptAt: next } }),
      this.db.webhookEndpoint.updateMany({ where: { id: ep.id, failingSince: null }, data: { failingSince } }),
    ]);
    if (now.getTime() - failingSince.getTime() >= this.config.disableAfterMs) {
      await this.webhooks.disable(ep.id, `every delivery failed for ${Math.round((now.getTime() - failingSince.getTime()) / 1000)} s (last: ${r.error ?? 'error'})`);
      this.metrics?.webhookDelivery('disabled');
      return 'stop';
    }
    this.metrics?.webhookDelivery(expired ? 'failed' : 'retrying');
    return expired ? 'stop' : next;
  }

  /** Sends a test message now (not queued, not retried) and reports the answer. */
  async ping(id: string): Promise<AttemptResult & { webhookId: string }> {
    const ep = await this.webhooks.get(id);
    const webhookId = `msg_ping_${randomUUID()}`;
    const timestamp = new Date().toISOString();
    const body = JSON.stringify({
      type: 'WEBHOOK_PING',
      timestamp,
      data: { endpointId: globalId('WebhookEndpoint', ep.id), message: 'Sluice webhook test', createdAt: timestamp },
    });
    return { ...(await this.attempt(ep, webhookId, body)), webhookId };
  }
}
