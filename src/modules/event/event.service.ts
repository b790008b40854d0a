/**
 * The ordered event log.
 *
 * Contract: events are written inside the caller's transaction, at its end, after taking one
 * advisory lock, so sequence numbers are assigned and committed in the same order — a reader
 * that saw sequence N will never later see a new event below N. Lock order, for every
 * transaction: pipeline rows first (lockPipelines, in id order), then job and other rows, the
 * event lock last. Events are published to subscribers only after their transaction
 * committed. `stream()` replays the log after a cursor and then follows live events with no
 * gap and no duplicate.
 */
import type { Prisma } from '../../generated/prisma/client.js';
import type { PrismaClient } from '../../db/client.js';
import { isTransactionConflict } from '../../db/conflicts.js';
import { ConflictError, CursorExpiredError, ValidationError, type AppError } from '../../errors.js';
import { ALL, type EventMessage, type PubSub } from '../../pubsub/pubsub.js';
import { DEFAULT_WORKSPACE_ID, currentAudit, currentWorkspaceId } from '../../tenancy/scope.js';
import { auditEvent } from './audit.js';
import { OPT_IN_EVENT_TYPES, isOptInEventType, type EventType, type NewEvent } from './event.types.js';

export type Tx = Prisma.TransactionClient;

/** Advisory lock key that serialises event appends across processes. */
const EVENT_LOCK = 727_001;

/** Runs of a transaction the database keeps aborting as a deadlock or serialisation failure. */
const CONFLICT_ATTEMPTS = 5;

export interface EventFilter {
  /** Required for anything a client sees: events of other workspaces never match. */
  workspaceId?: string | null;
  pipelineId?: string | null;
  jobId?: string | null;
  connectorId?: string | null;
  types?: EventType[] | null;
  since?: Date | null;
  until?: Date | null;
}

export type EventRow = Awaited<ReturnType<PrismaClient['event']['findFirstOrThrow']>>;

/** Runs in the transaction that appended `row` (e.g. to queue outbox rows atomically with it). */
export type EventHook = (tx: Tx, row: EventRow) => Promise<void>;

export function toMessage(row: EventRow): EventMessage {
  return {
    sequence: row.sequence.toString(),
    id: row.id,
    workspaceId: row.workspaceId,
    type: row.type,
    pipelineId: row.pipelineId,
    jobId: row.jobId,
    connectorId: row.connectorId,
    message: row.message,
    data: row.data,
    createdAt: row.createdAt.toISOString(),
  };
}

export function matches(filter: EventFilter, e: EventMessage): boolean {
  if (filter.workspaceId && e.workspaceId !== filter.workspaceId) return false;
  if (filter.pipelineId && e.pipelineId !== filter.pipelineId) return false;
  if (filter.jobId && e.jobId !== filter.jobId) return false;
  if (filter.connectorId && e.connectorId !== filter.connectorId) return false;
  if (filter.types?.length ? !filter.types.includes(e.type as EventType) : isOptInEventType(e.type)) return false;
  if (filter.since && new Date(e.createdAt) < filter.since) return false;
  if (filter.until && new Date(e.createdAt) > filter.until) return false;
  return true;
}

export function whereOf(filter: EventFilter): Prisma.EventWhereInput {
  return {
    ...(filter.workspaceId ? { workspaceId: filter.workspaceId } : {}),
    ...(filter.pipelineId ? { pipelineId: filter.pipelineId } : {}),
    ...(filter.jobId ? { jobId: filter.jobId } : {}),
    ...(filter.connectorId ? { connectorId: filter.connectorId } : {}),
    type: filter.types?.length ? { in: filter.types } : { notIn: [...OPT_IN_EVENT_TYPES] },
    ...(filter.since || filter.until
      ? { createdAt: { ...(filter.since ? { gte: filter.since } : {}), ...(filter.until ? { lte: filter.until } : {}) } }
      : {}),
  };
}

export function parseSequence(cursor: string, field = 'after'): bigint {
  if (!/^\d{1,19}$/.test(cursor)) throw new ValidationError('invalid cursor', [{ path: field, message: 'expected an event cursor (a sequence number)' }]);
  return BigInt(cursor);
}

/**
 * What a transaction returns to commit its changes and events and still answer the caller with
 * a typed error (e.g. a skipped run: RUN_SKIPPED is recorded, the caller gets CONFLICT). The
 * mutation's audit line in that transaction names the error's code.
 */
export class CommitThenThrow {
  constructor(readonly error: AppError) {}
}

export class EventService {
  /** Pipeline / job / connector id → workspace, for events written in system scope (see workspaceOf). */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly db: PrismaClient,
    private readonly pubsub: PubSub,
    /** Called after each event insert, inside the same transaction (webhook outbox). */
    private readonly hooks: readonly EventHook[] = [],
  ) {}

  /** Highest sequence removed by retention (0 when nothing was pruned). */
  async prunedThrough(): Promise<bigint> {
    const state = await this.db.eventLogState.findUnique({ where: { id: 1 } });
    return state?.prunedThrough ?? 0n;
  }

  /** Throws CURSOR_EXPIRED when events after `after` may have been pruned. */
  async assertCursor(after: bigint | null): Promise<void> {
    if (after === null) return;
    const floor = await this.prunedThrough();
    if (after < floor) throw new CursorExpiredError(after.toString(), floor.toString());
  }

  /**
   * Runs `fn` in a transaction; events passed to `emit` (one) or `emitMany` (several, in order)
   * are appended, in the order given, when `fn` has returned — the event lock is the last lock
   * the transaction takes, so it never waits for another lock while holding it — and published
   * after the transaction commits. The audit line of the mutation being served, if no earlier
   * transaction carried it, is appended last and commits with the rest (see MutationAudit).
   *
   * A transaction the database aborts as a deadlock or serialisation failure is run again
   * (`fn` must be safe to re-run: reset what it collects at its start), at most
   * CONFLICT_ATTEMPTS times in all; then ConflictError. Nothing is changed in either case.
   */
  async transaction<T>(
    fn: (tx: Tx, emit: (e: NewEvent) => Promise<void>, emitMany: (events: NewEvent[]) => Promise<void>) => Promise<T | CommitThenThrow>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let value: T | CommitThenThrow;
      try {
        value = await this.attempt(fn);
      } catch (err) {
        if (!isTransactionConflict(err)) throw err;
        if (attempt >= CONFLICT_ATTEMPTS) {
          throw new ConflictError(`the database aborted this change ${attempt} times as conflicting with concurrent changes; nothing was changed: retry`);
        }
        // Jittered backoff so the transactions that collided do not collide again.
        await new Promise((r) => setTimeout(r, Math.random() * 20 * 2 ** attempt));
        continue;
      }
      if (value instanceof CommitThenThrow) throw value.error;
      return value;
    }
  }

  private async attempt<T>(
    fn: (tx: Tx, emit: (e: NewEvent) => Promise<void>, emitMany: (events: NewEvent[]) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const written: EventRow[] = [];
    const carrier = currentAudit();
    let carried = false;
    let settle = () => {};
    try {
      const result = await this.db.$transaction(
        async (tx) => {
          const pending: NewEvent[] = [];
          const value = await fn(
            tx,
            async (e) => void pending.push(e),
            async (events) => void pending.push(...events),
          );
          if (carrier && carrier.audit.state === 'open') {
            carrier.audit.state = 'pending';
            carrier.audit.settled = new Promise<void>((r) => (settle = r));
            carrier.audit.outcome = value instanceof CommitThenThrow ? value.error.code : 'OK';
            carried = true;
            pending.push(auditEvent(carrier.auth, carrier.audit, carrier.audit.outcome));
          }
          if (pending.length) written.push(...(await this.insert(tx, pending)));
          return value;
        },
        { timeout: 30_000, maxWait: 30_000 },
      );
      if (carried) carrier!.audit.state = 'written';
      for (const row of written) this.pubsub.publish('events', ALL, toMessage(row));
      return result;
    } catch (err) {
      if (carried && carrier!.audit.state === 'pending') carrier!.audit.state = 'open';
      throw err;
    } finally {
      settle();
    }
  }

  /** Appends events in order under the event lock (one multi-row insert numbers them in order). */
  private async insert(tx: Tx, events: NewEvent[]): Promise<EventRow[]> {
    await tx.$queryRawUnsafe(`select 1 as ok from pg_advisory_xact_lock(${EVENT_LOCK})`);
    const data: Prisma.EventUncheckedCreateInput[] = [];
    for (const e of events) data.push(toCreate(e, await workspaceOf(tx, e, this.owners)));
    const rows = (await tx.event.createManyAndReturn({ data })).sort((a, b) => (a.sequence < b.sequence ? -1 : 1));
    for (const row of rows) for (const hook of this.hooks) await hook(tx, row);
    return rows;
  }

  /** Appends events in a transaction of their own. */
  async append(...events: NewEvent[]): Promise<void> {
    await this.transaction(async (_tx, emit) => {
      for (const e of events) await emit(e);
    });
  }

  async latestSequence(): Promise<bigint> {
    const last = await this.db.event.findFirst({ orderBy: { sequence: 'desc' }, select: { sequence: true } });
    return last?.sequence ?? 0n;
  }

  /**
   * Events matching `filter` with sequence > `after` (or, with no cursor, those committed
   * from now on), in sequence order, each exactly once. The live subscription is opened
   * before the replay query; a live event that arrives ahead of a sequence not yet seen
   * triggers a read of the missing range from the log, and anything at or below the last
   * sequence handled is dropped — so reordering or a late subscriber never loses or repeats.
   */
  async *stream(filter: EventFilter, after: bigint | null, signal?: AbortSignal): AsyncGenerator<EventMessage> {
    await this.assertCursor(after);
    let last = after ?? (await this.latestSequence());
    const live = this.pubsub.subscribe('events', ALL);
    const onAbort = () => void live.return?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    const self = this;
    async function* readLog(below: bigint | null) {
      for (;;) {
        const page = await self.db.event.findMany({
          where: { ...whereOf(filter), sequence: below === null ? { gt: last } : { gt: last, lt: below } },
          orderBy: { sequence: 'asc' },
          take: 500,
        });
        for (let i = 0; i < page.length; i++) {
          // A long replay must not starve the API (it would otherwise run from one
          // continuation to the next without letting requests in): let other work run.
          if (i % 50 === 49) await new Promise((r) => setImmediate(r));
          const row = page[i]!;
          last = row.sequence;
          yield toMessage(row);
        }
        if (page.length < 500) return;
      }
    }
    try {
      if (after !== null) yield* readLog(null);
      for await (const e of live) {
        const seq = BigInt(e.sequence);
        if (seq <= last) continue;
        if (seq > last + 1n) yield* readLog(seq);
        last = seq;
        if (matches(filter, e)) yield e;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await live.return?.();
    }
  }
}

/**
 * The workspace an event belongs to: given explicitly, else the caller's, else the owner of
 * the pipeline / job / connector it names (background work), else the default workspace.
 * `owners` caches the lookups: an object's workspace never changes.
 */
async function workspaceOf(tx: Tx, e: NewEvent, owners: Map<string, string>): Promise<string> {
  if (e.workspaceId) return e.workspaceId;
  const current = currentWorkspaceId();
  if (current) return current;
  const lookups: Array<[string | null | undefined, (id: string) => Promise<{ workspaceId: string } | null>]> = [
    [e.pipelineId, (id) => tx.pipeline.findUnique({ where: { id }, select: { workspaceId: true } })],
    [e.jobId, (id) => tx.job.findUnique({ where: { id }, select: { workspaceId: true } })],
    [e.connectorId, (id) => tx.connector.findUnique({ where: { id }, select: { workspaceId: true } })],
  ];
  for (const [id, find] of lookups) {
    if (!id) continue;
    const cached = owners.get(id);
    if (cached) return cached;
    const row = await find(id);
    if (row) {
      if (owners.size >= 10_000) owners.clear();
      owners.set(id, row.workspaceId);
      return row.workspaceId;
    }
  }
  return DEFAULT_WORKSPACE_ID;
}

function toCreate(e: NewEvent, workspaceId: string): Prisma.EventUncheckedCreateInput {
  return {
    workspaceId,
    type: e.type,
    message: e.message,
    pipelineId: e.pipelineId ?? null,
    jobId: e.jobId ?? null,
    connectorId: e.connectorId ?? null,
    data: (e.data ?? undefined) as Prisma.InputJsonValue | undefined,
  };
}
