/**
 * Event retention: prunes events older than `days` and beyond the newest `count`, in
 * batches, with the finished outbox rows (DELIVERED / FAILED webhook deliveries) of pruned
 * events. The highest pruned sequence is recorded (EventLogState.prunedThrough) in the same
 * transaction as each batch, so a resumable stream or query given an older cursor gets
 * CURSOR_EXPIRED instead of silently skipping events; newer cursors keep working.
 *
 * Job logs follow their job's events: in the same pass, the log lines of every job that has
 * ended (SUCCEEDED, FAILED, CANCELLED) and has no event left are deleted, in batches. A job
 * still active keeps its log however old it is.
 */
import type { RetentionConfig } from '../../config.js';
import type { PrismaClient } from '../../db/client.js';
import type { Logger } from '../../logger.js';

const BATCH = 5_000;
/** Jobs whose logs are pruned per round. */
const JOB_BATCH = 100;
const DAY_MS = 86_400_000;

export interface PruneResult {
  events: number;
  deliveries: number;
  /** Job log lines deleted (of ended jobs whose events are all pruned). */
  jobLogs: number;
  prunedThrough: string;
}

export class RetentionService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = true;

  constructor(
    private readonly db: PrismaClient,
    private readonly config: RetentionConfig,
    private readonly log: Logger,
  ) {}

  /** Prunes periodically (first run shortly after start) while a limit is configured. */
  start(): void {
    if (!this.stopped || (!this.config.days && !this.config.count)) return;
    this.stopped = false;
    this.arm(Math.min(this.config.intervalMs, 5_000));
  }

  private arm(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.prune()
        .then((r) => {
          if (r.events || r.deliveries || r.jobLogs) this.log.info(r, 'event retention: pruned');
        })
        .catch((err: unknown) => this.log.error({ err }, 'event retention failed'))
        .finally(() => {
          this.running = null;
          this.arm(this.config.intervalMs);
        });
    }, ms);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** The highest sequence to prune now under the configured limits (0: nothing). */
  async cutoff(now: Date = new Date(), limits: { days: number; count: number } = this.config): Promise<bigint> {
    let cut = 0n;
    if (limits.days > 0) {
      const since = new Date(now.getTime() - limits.days * DAY_MS);
      const firstKept = await this.db.event.findFirst({ where: { createdAt: { gte: since } }, orderBy: { sequence: 'asc' }, select: { sequence: true } });
      if (firstKept) cut = firstKept.sequence - 1n;
      else {
        const last = await this.db.event.findFirst({ orderBy: { sequence: 'desc' }, select: { sequence: true } });
        cut = last?.sequence ?? 0n;
      }
    }
    if (limits.count > 0) {
      const oldestKept = await this.db.event.findFirst({ orderBy: { sequence: 'desc' }, skip: limits.count - 1, select: { sequence: true } });
      if (oldestKept && oldestKept.sequence - 1n > cut) cut = oldestKept.sequence - 1n;
    }
    return cut;
  }

  /** One pruning pass (`now` and `limits` are for tests and tools). */
  async prune(now: Date = new Date(), limits: { days: number; count: number } = this.config): Promise<PruneResult> {
    const cut = await this.cutoff(now, limits);
    let events = 0;
    while (cut > 0n) {
      const batch = await this.db.event.findMany({
        where: { sequence: { lte: cut } },
        orderBy: { sequence: 'asc' },
        take: BATCH,
        select: { sequence: true },
      });
      if (!batch.length) break;
      const upTo = batch[batch.length - 1]!.sequence;
      await this.db.$transaction(async (tx) => {
        const res = await tx.event.deleteMany({ where: { sequence: { lte: upTo } } });
        events += res.count;
        const state = await tx.eventLogState.findUnique({ where: { id: 1 } });
        if (!state) await tx.eventLogState.create({ data: { id: 1, prunedThrough: upTo } });
        else if (state.prunedThrough < upTo) await tx.eventLogState.update({ where: { id: 1 }, data: { prunedThrough: upTo } });
      });
      if (batch.length < BATCH) break;
    }
    const state = await this.db.eventLogState.findUnique({ where: { id: 1 } });
    const prunedThrough = state?.prunedThrough ?? 0n;
    // Finished outbox rows whose event is gone (pending ones keep their own copy of the body).
    let deliveries = 0;
    if (prunedThrough > 0n) {
      for (;;) {
        const ids = await this.db.webhookDelivery.findMany({
          where: { eventSequence: { lte: prunedThrough }, status: { in: ['DELIVERED', 'FAILED'] } },
          select: { id: true },
          take: BATCH,
        });
        if (!ids.length) break;
        const res = await this.db.webhookDelivery.deleteMany({ where: { id: { in: ids.map((i) => i.id) } } });
        deliveries += res.count;
        if (ids.length < BATCH) break;
      }
    }
    const jobLogs = prunedThrough > 0n ? await this.pruneJobLogs() : 0;
    return { events, deliveries, jobLogs, prunedThrough: prunedThrough.toString() };
  }

  /** Deletes the log lines of ended jobs that have no event left, a few jobs at a time. */
  private async pruneJobLogs(): Promise<number> {
    let deleted = 0;
    for (;;) {
      const jobs = await this.db.$queryRaw<{ id: string }[]>`
        SELECT j."id"::text AS id FROM "Job" j
        WHERE j."status" IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
          AND EXISTS (SELECT 1 FROM "JobLog" l WHERE l."jobId" = j."id")
          AND NOT EXISTS (SELECT 1 FROM "Event" e WHERE e."jobId" = j."id")
        LIMIT ${JOB_BATCH}`;
      if (!jobs.length) break;
      for (;;) {
        // Lines of those jobs, in bounded batches (a job holds up to its log cap plus a few).
        const ids = await this.db.jobLog.findMany({ where: { jobId: { in: jobs.map((j) => j.id) } }, select: { id: true }, take: BATCH });
        if (!ids.length) break;
        const res = await this.db.jobLog.deleteMany({ where: { id: { in: ids.map((i) => i.id) } } });
        deleted += res.count;
        if (ids.length < BATCH) break;
      }
      if (jobs.length < JOB_BATCH) break;
    }
    return deleted;
  }
}
