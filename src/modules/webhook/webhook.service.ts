/**
 * Webhook endpoints (Standard Webhooks): CRUD, secrets, the outbox hook, redelivery and replay.
 *
 * Promises:
 * - An event is queued for every matching enabled endpoint in the transaction that records
 *   it (`outboxHook`, registered on the event service), so a crash never loses a delivery.
 * - An endpoint's secret is returned only by create and rotate; during a rotation overlap
 *   deliveries are signed with both the new and the previous secret.
 * - Secrets are stored as key-ring ciphertext bound to the endpoint and field
 *   (`webhook:<id>:secret`, `webhook:<id>:previousSecret`) and decrypted only to sign
 *   (`openSecret`); a legacy clear-text or unbound (v1) secret keeps working and is re-sealed
 *   at start or at the next rotation.
 * - Events about an endpoint (WEBHOOK_*) are never queued for that endpoint itself.
 */
import { timingSafeEqual } from 'node:crypto';
import { globalId } from '../../ids.js';
import type { PrismaClient } from '../../db/client.js';
import { CursorExpiredError, NotFoundError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { toMessage, type EventRow, type EventService, type Tx } from '../event/event.service.js';
import { isOptInEventType, type EventType, type NewEvent } from '../event/event.types.js';
import { newRowId } from '../../db/ids.js';
import { bindingOf, KeyRingError, type KeyRing } from '../../security/keyring.js';
import { generateSecret, SECRET_PREFIX } from './signing.js';
import { requireWorkspaceId, runAsSystem } from '../../tenancy/scope.js';

export type EndpointRow = NonNullable<Awaited<ReturnType<PrismaClient['webhookEndpoint']['findUnique']>>>;

/** What the outbox hook needs of an endpoint (the secret is not cached). */
interface CachedEndpoint {
  id: string;
  workspaceId: string;
  eventTypes: string[];
  pipelineIds: string[];
}

export interface CreateWebhookInput {
  url: string;
  description?: string | null;
  eventTypes?: EventType[] | null;
  pipelineIds?: string[] | null;
  enabled?: boolean | null;
  /** A given signing secret (config as code; `checkWebhookSecret`) instead of a generated one. */
  secret?: string | null;
}

export interface UpdateWebhookInput {
  id: string;
  url?: string | null;
  description?: string | null;
  eventTypes?: EventType[] | null;
  pipelineIds?: string[] | null;
  enabled?: boolean | null;
}

/** The stored signing secrets of an endpoint. */
export type WebhookSecretField = 'secret' | 'previousSecret';

/** Where an endpoint's signing secret is bound: `webhook:<id>:secret` or `webhook:<id>:previousSecret`. */
export function webhookSecretBinding(endpointId: string, field: WebhookSecretField): string {
  return bindingOf('webhook', endpointId, field);
}

/** Default rotation overlap: the previous secret stays valid for 24 h. */
export const DEFAULT_OVERLAP_SECONDS = 86_400;
const MAX_OVERLAP_SECONDS = 30 * 86_400;
/** Cached endpoints are re-read at least this often (other processes may have changed them). */
const CACHE_TTL_MS = 5_000;

/** The `webhook-id` of an event's deliveries: the same for every retry, redelivery and replay. */
export function messageIdOf(eventId: string): string {
  return `msg_${eventId}`;
}

/** The Standard Webhooks body of an event: `{ type, timestamp, data }` (ids are Relay global ids). */
export function eventBody(row: EventRow): string {
  const e = toMessage(row);
  return JSON.stringify({
    type: e.type,
    timestamp: e.createdAt,
    data: {
      id: globalId('Event', e.id),
      cursor: e.sequence,
      type: e.type,
      message: e.message,
      pipelineId: e.pipelineId ? globalId('Pipeline', e.pipelineId) : null,
      jobId: e.jobId ? globalId('Job', e.jobId) : null,
      connectorId: e.connectorId ? globalId('Connector', e.connectorId) : null,
      data: e.data ?? null,
      createdAt: e.createdAt,
    },
  });
}

function endpointOfEvent(row: Pick<EventRow, 'type' | 'data'>): string | null {
  if (!row.type.startsWith('WEBHOOK_')) return null;
  const d = row.data as { endpointId?: unknown } | null;
  return typeof d?.endpointId === 'string' ? d.endpointId : null;
}

export function endpointMatches(ep: CachedEndpoint, row: Pick<EventRow, 'type' | 'data' | 'pipelineId' | 'workspaceId'>): boolean {
  // An endpoint only ever receives its own workspace's events.
  if (ep.workspaceId !== row.workspaceId) return false;
  if (ep.eventTypes.length ? !ep.eventTypes.includes(row.type) : isOptInEventType(row.type)) return false;
  if (ep.pipelineIds.length && (!row.pipelineId || !ep.pipelineIds.includes(row.pipelineId))) return false;
  // No loops: an endpoint never receives the events about itself.
  if (endpointOfEvent(row) === ep.id) return false;
  return true;
}

/**
 * A signing secret given by a client (config as code): `whsec_` + base64 of 24–64 bytes, as
 * `generateSecret` makes them. Throws ValidationError at `path`.
 */
export function checkWebhookSecret(secret: string, path = 'secret'): string {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : null;
  const bytes = raw !== null && /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64').length : 0;
  if (bytes < 24 || bytes > 64) {
    throw new ValidationError('invalid webhook secret', [{ path, message: `must be ${SECRET_PREFIX} followed by the base64 of 24 to 64 bytes` }]);
  }
  return secret;
}

/** An absolute http(s) URL, normalized as it is stored; ValidationError at `url` otherwise. */
export function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    throw new ValidationError('invalid URL', [{ path: 'url', message: 'expected an absolute http(s) URL' }]);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ValidationError('invalid URL', [{ path: 'url', message: 'only http and https URLs are supported' }]);
  }
  return u.toString();
}

function describe(ep: { url: string }): string {
  try {
    const u = new URL(ep.url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return ep.url;
  }
}

export class WebhookService {
  private cache: { at: number; endpoints: CachedEndpoint[] } | null = null;
  private generation = 0;
  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    private readonly log: Logger,
    private readonly ring: KeyRing,
    /** Wakes the delivery loop after redeliveries and replays were queued. */
    private readonly onQueued: () => void = () => {},
  ) {}

  /** A stored signing secret of endpoint `endpointId` in clear, to sign with (and nothing else). Throws KeyRingError when it does not open there. */
  openSecret(endpointId: string, field: WebhookSecretField, stored: string): string {
    return this.ring.decrypt(stored, webhookSecretBinding(endpointId, field));
  }

  /** The hook the event service runs after each insert, in the same transaction. */
  readonly outboxHook = async (tx: Tx, row: EventRow): Promise<void> => {
    const endpoints = await this.enabledEndpoints(tx);
    const targets = endpoints.filter((ep) => endpointMatches(ep, row));
    if (!targets.length) return;
    const body = eventBody(row);
    await tx.webhookDelivery.createMany({
      data: targets.map((ep) => ({
        endpointId: ep.id,
        messageId: messageIdOf(row.id),
        eventId: row.id,
        eventSequence: row.sequence,
        eventType: row.type,
        body,
      })),
    });
  };

  /** False when no endpoint is known to be enabled (the delivery loop need not wake up). */
  mayHaveEndpoints(): boolean {
    return this.cache === null || this.cache.endpoints.length > 0;
  }

  /** Enabled endpoints, cached; read through the caller's transaction when not cached. */
  private async enabledEndpoints(tx: Tx): Promise<CachedEndpoint[]> {
    const now = Date.now();
    if (this.cache && now - this.cache.at < CACHE_TTL_MS) return this.cache.endpoints;
    const gen = this.generation;
    // Every workspace's endpoints, whichever workspace's request emitted the event.
    const rows = await runAsSystem(async () =>
      await tx.webhookEndpoint.findMany({ where: { enabled: true }, select: { id: true, workspaceId: true, eventTypes: true, pipelineIds: true } }),
    );
    // A CRUD change that happened while we read invalidates what we read.
    if (gen === this.generation) this.cache = { at: now, endpoints: rows };
    return rows;
  }

  /** Drops the endpoint cache (every webhook change calls it, before and after committing). */
  invalidate(): void {
    this.generation++;
    this.cache = null;
  }

  private async change<T>(fn: (tx: Tx, emit: (e: NewEvent) => Promise<void>) => Promise<T>): Promise<T> {
    this.invalidate();
    try {
      return await this.events.transaction(fn);
    } finally {
      this.invalidate();
    }
  }

  async get(id: string): Promise<EndpointRow> {
    const ep = await this.db.webhookEndpoint.findUnique({ where: { id } });
    if (!ep) throw new NotFoundError('WebhookEndpoint', id);
    return ep;
  }

  private async checkPipelines(ids: string[] | null | undefined): Promise<string[]> {
    const unique = [...new Set(ids ?? [])];
    if (!unique.length) return [];
    const found = await this.db.pipeline.findMany({ where: { id: { in: unique } }, select: { id: true } });
    const missing = unique.filter((id) => !found.some((f) => f.id === id));
    if (missing.length) {
      throw new ValidationError('unknown pipeline', missing.map((id) => ({ path: 'pipelineIds', message: `pipeline ${globalId('Pipeline', id)} does not exist` })));
    }
    return unique;
  }

  async create(input: CreateWebhookInput): Promise<{ endpoint: EndpointRow; secret: string }> {
    const url = checkUrl(input.url);
    const pipelineIds = await this.checkPipelines(input.pipelineIds);
    const secret = input.secret != null ? checkWebhookSecret(input.secret) : generateSecret();
    // The id exists before the insert: the secret is sealed bound to it.
    const id = newRowId();
    const endpoint = await this.change(async (tx, emit) => {
      const ep = await tx.webhookEndpoint.create({
        data: {
          id,
          workspaceId: requireWorkspaceId(),
          url,
          description: input.description ?? null,
          eventTypes: [...new Set(input.eventTypes ?? [])],
          pipelineIds,
          enabled: input.enabled ?? true,
          secret: this.ring.encrypt(secret, webhookSecretBinding(id, 'secret')),
        },
      });
      await emit({ type: 'WEBHOOK_CREATED', message: `webhook endpoint ${describe(ep)} created`, data: { endpointId: ep.id } });
      return ep;
    });
    return { endpoint, secret };
  }

  async update(input: UpdateWebhookInput): Promise<EndpointRow> {
    const current = await this.get(input.id);
    const url = input.url == null ? current.url : checkUrl(input.url);
    const pipelineIds = input.pipelineIds == null ? current.pipelineIds : await this.checkPipelines(input.pipelineIds);
    const enabling = input.enabled === true && !current.enabled;
    return this.change(async (tx, emit) => {
      const ep = await tx.webhookEndpoint.update({
        where: { id: current.id },
        data: {
          url,
          pipelineIds,
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(input.eventTypes != null ? { eventTypes: [...new Set(input.eventTypes)] } : {}),
          ...(input.enabled != null ? { enabled: input.enabled } : {}),
          // Re-enabling starts afresh: no disabled reason, no failure streak.
          ...(enabling ? { disabledReason: null, failingSince: null } : {}),
          ...(input.enabled === false && current.enabled ? { disabledReason: 'disabled by a user' } : {}),
          version: { increment: 1 },
        },
      });
      await emit({ type: 'WEBHOOK_UPDATED', message: `webhook endpoint ${describe(ep)} updated`, data: { endpointId: ep.id, enabled: ep.enabled } });
      return ep;
    });
  }

  async delete(id: string): Promise<EndpointRow> {
    const ep = await this.get(id);
    await this.change(async (tx, emit) => {
      await tx.webhookEndpoint.delete({ where: { id } });
      await emit({ type: 'WEBHOOK_DELETED', message: `webhook endpoint ${describe(ep)} deleted`, data: { endpointId: id } });
    });
    return ep;
  }

  /**
   * Config as code (plan): whether `candidate` is the endpoint's current signing secret
   * (compared decrypted, here; a secret that does not decrypt matches nothing).
   */
  secretMatches(ep: Pick<EndpointRow, 'id' | 'secret'>, candidate: string): boolean {
    let current: string;
    try {
      current = this.openSecret(ep.id, 'secret', ep.secret);
    } catch (err) {
      if (!(err instanceof KeyRingError)) throw err;
      return false;
    }
    const a = Buffer.from(current, 'utf8');
    const b = Buffer.from(candidate, 'utf8');
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * A new secret (generated, or `secret` as given: config as code); the previous one is also
   * signed with for `overlapSeconds`.
   */
  async rotateSecret(id: string, overlapSeconds: number | null | undefined, given?: string | null): Promise<{ endpoint: EndpointRow; secret: string }> {
    const overlap = overlapSeconds ?? DEFAULT_OVERLAP_SECONDS;
    if (!Number.isInteger(overlap) || overlap < 0 || overlap > MAX_OVERLAP_SECONDS) {
      throw new ValidationError('invalid overlap', [{ path: 'overlapSeconds', message: `expected 0 to ${MAX_OVERLAP_SECONDS} seconds` }]);
    }
    const current = await this.get(id);
    const secret = given != null ? checkWebhookSecret(given) : generateSecret();
    const now = new Date();
    const previousSecret = overlap > 0 ? this.previousOf(current) : null;
    const endpoint = await this.change(async (tx, emit) => {
      const ep = await tx.webhookEndpoint.update({
        where: { id },
        data: {
          secret: this.ring.encrypt(secret, webhookSecretBinding(id, 'secret')),
          previousSecret,
          previousSecretExpiresAt: previousSecret ? new Date(now.getTime() + overlap * 1000) : null,
          secretRotatedAt: now,
          version: { increment: 1 },
        },
      });
      await emit({
        type: 'WEBHOOK_SECRET_ROTATED',
        message: `webhook endpoint ${describe(ep)}: secret rotated (previous secret valid for ${overlap} s)`,
        data: { endpointId: id, overlapSeconds: overlap },
      });
      return ep;
    });
    return { endpoint, secret };
  }

  /**
   * The current secret re-sealed as the previous one (bound to `previousSecret`); null when it
   * does not open (then nothing could be signed with it anyway: the rotation replaces it).
   */
  private previousOf(ep: EndpointRow): string | null {
    try {
      return this.ring.encrypt(this.openSecret(ep.id, 'secret', ep.secret), webhookSecretBinding(ep.id, 'previousSecret'));
    } catch (err) {
      if (!(err instanceof KeyRingError)) throw err;
      this.log.warn({ endpointId: ep.id, err: err.message }, 'webhook secret rotation: the current secret does not decrypt; no overlap');
      return null;
    }
  }

  /** Disables an endpoint with a reason and a WEBHOOK_DISABLED event (no-op when already disabled). */
  async disable(id: string, reason: string): Promise<void> {
    let workspaceId: string | null = null;
    await this.change(async (tx, emit) => {
      workspaceId = null;
      const res = await tx.webhookEndpoint.updateMany({ where: { id, enabled: true }, data: { enabled: false, disabledReason: reason, version: { increment: 1 } } });
      if (res.count === 0) return;
      const ep = await tx.webhookEndpoint.findUniqueOrThrow({ where: { id } });
      workspaceId = ep.workspaceId;
      await emit({ type: 'WEBHOOK_DISABLED', message: `webhook endpoint ${describe(ep)} disabled: ${reason}`, data: { endpointId: id, reason } });
    });
    // Logged once, by the call that disabled it (not when it was disabled already).
    const disabledIn = workspaceId as string | null;
    if (disabledIn) this.log.warn({ endpointId: id, workspaceId: disabledIn, reason }, 'webhook endpoint disabled');
  }

  /** Queues one delivery again (same webhook-id), now, whatever its status. */
  async redeliver(deliveryId: string) {
    const d = await this.db.webhookDelivery.findUnique({ where: { id: deliveryId } });
    if (!d) throw new NotFoundError('WebhookDelivery', deliveryId);
    const now = new Date();
    const row = await this.db.webhookDelivery.update({
      where: { id: deliveryId },
      data: { status: 'PENDING', nextAttemptAt: now, queuedAt: now, deliveredAt: null },
    });
    this.onQueued();
    return row;
  }

  /**
   * Queues again every retained event after `afterCursor` (up to `beforeCursor`) that
   * matches the endpoint's filters. Returns how many deliveries were queued.
   */
  async replay(endpointId: string, afterCursor: bigint, beforeCursor: bigint | null): Promise<number> {
    const ep = await this.get(endpointId);
    const floor = await this.events.prunedThrough();
    if (afterCursor < floor) throw new CursorExpiredError(afterCursor.toString(), floor.toString());
    let after = afterCursor;
    let queued = 0;
    for (;;) {
      const page = await this.db.event.findMany({
        where: {
          sequence: { gt: after, ...(beforeCursor !== null ? { lt: beforeCursor } : {}) },
          ...(ep.eventTypes.length ? { type: { in: ep.eventTypes } } : {}),
          ...(ep.pipelineIds.length ? { pipelineId: { in: ep.pipelineIds } } : {}),
        },
        orderBy: { sequence: 'asc' },
        take: 500,
      });
      const rows = page.filter((row) => endpointMatches(ep, row));
      if (rows.length) {
        const now = new Date();
        await this.db.webhookDelivery.createMany({
          data: rows.map((row) => ({
            endpointId: ep.id,
            messageId: messageIdOf(row.id),
            eventId: row.id,
            eventSequence: row.sequence,
            eventType: row.type,
            body: eventBody(row),
            nextAttemptAt: now,
            queuedAt: now,
          })),
        });
        queued += rows.length;
      }
      if (page.length < 500) break;
      after = page[page.length - 1]!.sequence;
    }
    if (queued) this.onQueued();
    return queued;
  }
}
