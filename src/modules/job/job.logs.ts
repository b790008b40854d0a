/**
 * The job log (Airbyte attempt logs): lines from a job's drivers (through its worker), every HTTP
 * request they make, and the runner's own lines (start, finish, failures, retries, recovery),
 * stored in JobLog and published on the `jobLogs` topic once stored. No GraphQL here: the runner
 * host writes through it, resolvers and subscriptions read through it.
 *
 * Promises:
 * - `append` never waits and never writes on its own: lines are buffered per job and written in
 *   batches — every FLUSH_MS, at FLUSH_LINES lines, and when the attempt finishes — one insert
 *   per batch, never one per line.
 * - Nothing secret is stored or published: the job's secret values (JobPlan.secrets, in every
 *   form secrets-redact knows) and the values of secret-looking URL query parameters are
 *   replaced by `***` in the message and in every string of `data` (keys included).
 * - Capped per job: at most `maxLines` lines of the SOURCE, MAPPING and DESTINATION stages over
 *   all attempts. The first line beyond adds one WARN line "log capped at N lines; further lines
 *   dropped" whose `dropped` counts every line dropped since (Job.logsDropped). RUNNER lines are
 *   always kept (a few per attempt). Memory per job is bounded by the cap.
 * - Ids increase in insertion order: the id is a stable cursor, oldest first.
 * - A batch the database refuses (e.g. the job was deleted meanwhile) is dropped and reported to
 *   the process log; logging never fails a job.
 */
import type { PrismaClient } from '../../db/client.js';
import { pgJson, pgText } from '../../db/pg-text.js';
import { scrubSecretQueryValues } from '../../engine/drivers/http/client.js';
import type { LogLevel, LogStage } from '../../engine/runner/protocol.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { Logger } from '../../logger.js';
import type { JobLogMessage, PubSub } from '../../pubsub/pubsub.js';
import { mapStrings, scrubberFor } from '../../security/secrets-redact.js';
import type { Tx } from '../event/event.service.js';

export type JobLogLevel = JobLogMessage['level'];
export type JobLogStage = JobLogMessage['stage'];

/** Levels from the least to the most severe. */
export const JOB_LOG_LEVELS: readonly JobLogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
/** The stages whose lines count towards the cap (RUNNER lines are always kept). */
const CAPPED_STAGES: JobLogStage[] = ['SOURCE', 'MAPPING', 'DESTINATION'];

/** `level` and every more severe one. */
export function levelsFrom(level: JobLogLevel | null | undefined): JobLogLevel[] {
  return level ? JOB_LOG_LEVELS.slice(JOB_LOG_LEVELS.indexOf(level)) : [...JOB_LOG_LEVELS];
}

const FLUSH_MS = 250;
const FLUSH_LINES = 100;
const MAX_MESSAGE_CHARS = 8 * 1024;
const MAX_DATA_CHARS = 16 * 1024;

/** A line as the host hands it over. */
export interface NewJobLogLine {
  level: LogLevel;
  message: string;
  stage?: LogStage;
  data?: Record<string, unknown>;
  at?: number | Date;
  /** Default: the job's current attempt (as last opened). */
  attempt?: number;
}

interface Row {
  jobId: string;
  attempt: number;
  at: Date;
  level: JobLogLevel;
  stage: JobLogStage;
  message: string;
  data: Prisma.InputJsonValue | undefined;
}

interface JobState {
  jobId: string;
  attempt: number;
  scrub: (text: string) => string;
  /** An attempt of the job runs here (open → close), since `openedAt` (ms). */
  open: boolean;
  openedAt: number | null;
  loading: Promise<void> | null;
  loaded: boolean;
  /** Lines of capped stages stored or buffered. */
  kept: number;
  /** The "log capped" line, once written. */
  capId: bigint | null;
  /** Dropped lines not yet added to the capped line. */
  droppedPending: number;
  buffer: Row[];
  timer: NodeJS.Timeout | null;
  flushing: Promise<void> | null;
  again: boolean;
}

const SELECT = { id: true, jobId: true, attempt: true, at: true, level: true, stage: true, message: true, data: true } as const;
type Stored = Prisma.JobLogGetPayload<{ select: typeof SELECT }>;

function toMessage(r: Stored, last = false): JobLogMessage {
  return {
    id: r.id.toString(),
    jobId: r.jobId,
    attempt: r.attempt,
    at: r.at.toISOString(),
    level: r.level,
    stage: r.stage,
    message: r.message,
    data: r.data ?? null,
    last,
  };
}

/** A log cursor (the decimal id), or null when it is not one. */
export function parseLogCursor(cursor: string | null | undefined): bigint | null {
  if (cursor == null || !/^\d{1,19}$/.test(cursor)) return null;
  return BigInt(cursor);
}

export interface JobLogQuery {
  jobId: string;
  /** Only this attempt's lines. */
  attempt?: number | null;
  levels?: JobLogLevel[];
  after?: bigint | null;
  before?: bigint | null;
  limit: number;
  /** Newest first (for `last`). */
  inverted?: boolean;
}

export class JobLogService {
  private readonly jobs = new Map<string, JobState>();
  private readonly maxLines: number;

  constructor(
    private readonly db: PrismaClient,
    private readonly pubsub: PubSub,
    private readonly log: Logger,
    options: { maxLines: number },
  ) {
    this.maxLines = Math.max(1, Math.floor(options.maxLines));
  }

  // ---- writing (the runner host) ----

  /**
   * An attempt starts: later lines belong to it and have `secrets` removed. Resolves with how
   * many driver lines the job may still keep (JobPlan.logBudget).
   */
  async open(jobId: string, attempt: number, secrets: readonly string[]): Promise<number> {
    const st = this.state(jobId);
    st.open = true;
    st.openedAt = Date.now();
    st.attempt = attempt;
    st.scrub = scrubberFor(secrets);
    await this.load(st);
    return Math.max(0, this.maxLines - st.kept);
  }

  /** The attempt ended: the job's state is forgotten once its buffer is written. */
  close(jobId: string): void {
    const st = this.jobs.get(jobId);
    if (!st) return;
    st.open = false;
    this.evictIfIdle(st);
  }

  /** Buffers one line (never waits). Lines of capped stages beyond the cap are counted, not kept. */
  append(jobId: string, line: NewJobLogLine): void {
    const st = this.state(jobId);
    if ((line.stage ?? 'RUNNER') !== 'RUNNER') {
      if (st.kept >= this.maxLines) {
        this.drop(st, 1);
        return;
      }
      st.kept++;
    }
    st.buffer.push(this.row(st, line));
    this.schedule(st);
  }

  /** Lines dropped before they reached the host (the worker's budget was spent). */
  dropped(jobId: string, count: number): void {
    if (count > 0) this.drop(this.state(jobId), count);
  }

  /** Writes everything buffered for the job (and waits for a write in flight). */
  async flush(jobId: string): Promise<void> {
    const st = this.jobs.get(jobId);
    if (!st) return;
    while (st.buffer.length || st.droppedPending || st.flushing) await this.kick(st);
  }

  /**
   * RUNNER lines written inside the caller's transaction (so they commit with the change they
   * describe, e.g. a job's final status). Flush the job's buffer first so they come last; publish
   * the result after the commit with `publish`.
   */
  async insert(tx: Tx, jobId: string, lines: NewJobLogLine[], options: { last?: boolean } = {}): Promise<JobLogMessage[]> {
    if (!lines.length) return [];
    const st = this.jobs.get(jobId) ?? this.transient(jobId);
    const rows = lines.map((l) => this.row(st, { ...l, stage: 'RUNNER' }));
    const created = await tx.jobLog.createManyAndReturn({ data: rows, select: SELECT });
    return created.map((r, i) => toMessage(r, options.last === true && i === created.length - 1));
  }

  /** Publishes lines written with `insert`, after their transaction committed. */
  publish(messages: JobLogMessage[]): void {
    for (const m of messages) this.pubsub.publish('jobLogs', m.jobId, m);
  }

  /** Milliseconds since the job's running attempt was opened here; null when none is. */
  attemptDurationMs(jobId: string): number | null {
    const at = this.jobs.get(jobId)?.openedAt;
    return at == null ? null : Date.now() - at;
  }

  // ---- reading (resolvers, subscriptions) ----

  /** One page of a job's log, oldest first (newest first when `inverted`). */
  async page(q: JobLogQuery): Promise<JobLogMessage[]> {
    const rows = await this.db.jobLog.findMany({
      where: this.where(q),
      orderBy: { id: q.inverted ? 'desc' : 'asc' },
      take: q.limit,
      select: SELECT,
    });
    return rows.map((r) => toMessage(r));
  }

  count(q: Pick<JobLogQuery, 'jobId' | 'attempt' | 'levels'>): Promise<number> {
    return this.db.jobLog.count({ where: this.where(q) });
  }

  /** Lines of the job dropped beyond the cap (stored, i.e. as of the last flush). */
  async droppedCount(jobId: string, attempt?: number | null): Promise<number> {
    const r = await this.db.jobLog.aggregate({ where: { jobId, ...(attempt != null ? { attempt } : {}), dropped: { gt: 0 } }, _sum: { dropped: true } });
    return r._sum.dropped ?? 0;
  }

  /**
   * The job's lines as they are stored, live: with `after`, first every stored line after that
   * cursor, then live ones, with no gap and no duplicate. Ends after the finish line of a job
   * that ended for good, or at once when `ended()` says it already had (after the replay).
   */
  async *stream(jobId: string, levels: JobLogLevel[], after: bigint | null, ended: () => Promise<boolean>): AsyncGenerator<JobLogMessage> {
    const live = this.pubsub.subscribe('jobLogs', jobId);
    let last = after ?? -1n;
    const self = this;
    async function* replay(): AsyncGenerator<JobLogMessage> {
      for (;;) {
        const page = await self.page({ jobId, levels, after: last, limit: 500 });
        for (const m of page) {
          last = BigInt(m.id);
          yield m;
        }
        if (page.length < 500) return;
      }
    }
    try {
      if (after !== null) yield* replay();
      if (await ended()) {
        // Lines stored between the replay and the end are still owed to a resuming caller.
        if (after !== null) yield* replay();
        return;
      }
      for await (const m of live) {
        const id = BigInt(m.id);
        if (id <= last) continue;
        last = id;
        if (levels.includes(m.level)) yield m;
        if (m.last) return;
      }
    } finally {
      await live.return?.();
    }
  }

  // ---- internals ----

  private where(q: Pick<JobLogQuery, 'jobId' | 'attempt' | 'levels' | 'after' | 'before'>): Prisma.JobLogWhereInput {
    const id = { ...(q.after != null ? { gt: q.after } : {}), ...(q.before != null ? { lt: q.before } : {}) };
    return {
      jobId: q.jobId,
      ...(q.attempt != null ? { attempt: q.attempt } : {}),
      ...(q.levels && q.levels.length < JOB_LOG_LEVELS.length ? { level: { in: q.levels } } : {}),
      ...(q.after != null || q.before != null ? { id } : {}),
    };
  }

  private transient(jobId: string): JobState {
    return {
      jobId,
      attempt: 0,
      scrub: (t) => t,
      open: false,
      openedAt: null,
      loading: null,
      loaded: false,
      kept: 0,
      capId: null,
      droppedPending: 0,
      buffer: [],
      timer: null,
      flushing: null,
      again: false,
    };
  }

  private state(jobId: string): JobState {
    let st = this.jobs.get(jobId);
    if (!st) {
      st = this.transient(jobId);
      this.jobs.set(jobId, st);
      void this.load(st).catch(() => undefined);
    }
    return st;
  }

  /** Reads how much of the cap the job has used (once per state). */
  private load(st: JobState): Promise<void> {
    if (st.loaded) return Promise.resolve();
    st.loading ??= (async () => {
      const [kept, cap, job] = await Promise.all([
        this.db.jobLog.count({ where: { jobId: st.jobId, stage: { in: CAPPED_STAGES } } }),
        this.db.jobLog.findFirst({ where: { jobId: st.jobId, dropped: { gt: 0 } }, select: { id: true } }),
        st.attempt ? null : this.db.job.findUnique({ where: { id: st.jobId }, select: { attempts: true } }),
      ]);
      if (!st.attempt && job) {
        st.attempt = job.attempts;
        for (const r of st.buffer) if (!r.attempt) r.attempt = job.attempts;
      }
      st.capId = cap?.id ?? null;
      // Lines buffered before the count was known: keep what fits, drop the newest of the rest.
      let excess = kept + st.kept - this.maxLines;
      if (excess > 0) {
        for (let i = st.buffer.length - 1; i >= 0 && excess > 0; i--) {
          if (st.buffer[i]!.stage === 'RUNNER') continue;
          st.buffer.splice(i, 1);
          excess--;
          st.droppedPending++;
        }
      }
      st.kept = Math.min(this.maxLines, kept + st.kept);
      st.loaded = true;
    })().catch((err: unknown) => {
      st.loading = null;
      throw err;
    });
    return st.loading;
  }

  private row(st: JobState, line: NewJobLogLine): Row {
    const clean = (text: string) => pgText(scrubSecretQueryValues(st.scrub(text)));
    const message = clean(String(line.message ?? ''));
    const at = line.at instanceof Date ? line.at : new Date(line.at ?? Date.now());
    let data: Prisma.InputJsonValue | undefined;
    if (line.data !== undefined && line.data !== null) {
      const cleaned = pgJson(mapStrings(line.data, clean)) as Prisma.InputJsonValue;
      const json = JSON.stringify(cleaned);
      data = json === undefined ? undefined : json.length > MAX_DATA_CHARS ? { truncated: json.slice(0, MAX_DATA_CHARS) } : cleaned;
    }
    return {
      jobId: st.jobId,
      attempt: line.attempt ?? st.attempt,
      at: Number.isNaN(at.getTime()) ? new Date() : at,
      level: line.level.toUpperCase() as JobLogLevel,
      stage: line.stage ?? 'RUNNER',
      message: message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}…` : message,
      data,
    };
  }

  private drop(st: JobState, n: number) {
    st.droppedPending += n;
    this.schedule(st);
  }

  private schedule(st: JobState) {
    if (st.buffer.length >= FLUSH_LINES) {
      void this.kick(st);
      return;
    }
    if (!st.timer && !st.flushing) {
      st.timer = setTimeout(() => void this.kick(st), FLUSH_MS);
      st.timer.unref?.();
    }
  }

  /** Starts a write (or asks the one in flight to go again); resolves when writing stops. */
  private kick(st: JobState): Promise<void> {
    if (st.timer) {
      clearTimeout(st.timer);
      st.timer = null;
    }
    if (st.flushing) {
      st.again = true;
      return st.flushing;
    }
    st.flushing = (async () => {
      try {
        do {
          st.again = false;
          await this.write(st);
        } while (st.again || st.buffer.length >= FLUSH_LINES);
      } finally {
        st.flushing = null;
        if (st.buffer.length || st.droppedPending) this.schedule(st);
        else this.evictIfIdle(st);
      }
    })();
    return st.flushing;
  }

  private async write(st: JobState): Promise<void> {
    try {
      await this.load(st);
    } catch (err) {
      this.log.error({ err, jobId: st.jobId }, 'job log: could not read the job log state; lines dropped');
      st.buffer = [];
      st.droppedPending = 0;
      return;
    }
    const rows = st.buffer.splice(0);
    const dropped = st.droppedPending;
    st.droppedPending = 0;
    const out: JobLogMessage[] = [];
    try {
      if (rows.length) {
        const created = await this.db.jobLog.createManyAndReturn({ data: rows, select: SELECT });
        for (const r of created) out.push(toMessage(r));
      }
      if (dropped) {
        if (st.capId === null) {
          const cap = await this.db.jobLog.create({
            data: { jobId: st.jobId, attempt: st.attempt, level: 'WARN', stage: 'RUNNER', message: `log capped at ${this.maxLines} lines; further lines dropped`, dropped },
            select: SELECT,
          });
          st.capId = cap.id;
          out.push(toMessage(cap));
        } else {
          await this.db.jobLog.update({ where: { id: st.capId }, data: { dropped: { increment: dropped } } });
        }
      }
    } catch (err) {
      this.log.warn({ err, jobId: st.jobId, lines: rows.length }, 'job log: could not store lines; dropped');
    }
    this.publish(out);
  }

  private evictIfIdle(st: JobState) {
    if (st.open || st.flushing || st.timer || st.buffer.length || st.droppedPending) return;
    if (this.jobs.get(st.jobId) === st) this.jobs.delete(st.jobId);
  }
}
