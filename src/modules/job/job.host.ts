/**
 * The runner's host: what a worker process calls to run jobs (RunnerHost) — begin, checkpoint,
 * progress, log, finish — plus retries of failed attempts and recovery at start. Owns the
 * status transitions of a running job and what each one writes. Needs no GraphQL and no HTTP
 * server: a worker builds it with the runner and the queue only.
 *
 * Promises: a job reaches RUNNING only while its pipeline runs and its connectors are not
 * paused; checkpoints of a job that is no longer RUNNING (e.g. after a reset) are ignored
 * except for their dead letters; every status change writes an event; a job left RUNNING by
 * a dead process is recovered at start (resumed, paused or cancelled per its pipeline); a job
 * stopped by a pause that was undone before its batch boundary follows its pipeline (queued
 * again if it runs, cancelled if it stopped); a retryable failure is queued again after its
 * backoff. Every transaction that changes a job locks its pipeline first (see lockPipelines).
 */
import type { PrismaClient } from '../../db/client.js';
import { pgJson, pgText } from '../../db/pg-text.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { ConfiguredStream, StreamStates, WriteMode } from '../../engine/drivers/types.js';
import type { MappingSpec } from '../../engine/mapping/mapping.js';
import { subCounters, type Counters, type JobPlan } from '../../engine/runner/protocol.js';
import type { CheckpointData, JobOutcome, RunnerHost } from '../../engine/runner/runner.js';
import type { Logger } from '../../logger.js';
import type { PipelineStateMessage, PubSub } from '../../pubsub/pubsub.js';
import type { EventService } from '../event/event.service.js';
import type { DriverConfigResolver } from '../connector/connector.service.js';
import type { FileScope } from '../../security/file-roots.js';
import { recordTransition } from '../pipeline/pipeline.transitions.js';
import { isRunningState, type PipelineState } from '../pipeline/lifecycle.js';
import { runAsSystem } from '../../tenancy/scope.js';
import { claimableBatches, countersData, ensurePushJob, jobTotals, lockJobPipeline, TERMINAL_STATUSES, retryDelayMs, type JobDispatch } from './job.rows.js';
import type { JobEnded, JobObserver, JobStarted } from './job.observer.js';
import type { JobLogMessage } from '../../pubsub/pubsub.js';
import type { JobLogService, NewJobLogLine } from './job.logs.js';
import type { LogExtra, LogLevel } from '../../engine/runner/protocol.js';

const PROGRESS_EVENT_INTERVAL_MS = 2000;

/** An attempt's end as finish's transaction saw it (the observer's JobEnded once timed and counted). */
type AttemptEnd = Omit<JobEnded, 'durationMs' | 'totals' | 'attemptDelta'> & { startedAt: Date | null };

export interface JobHostDeps {
  db: PrismaClient;
  events: EventService;
  pubsub: PubSub;
  log: Logger;
  /** Connector configs for drivers, secrets decrypted (plans carry them to the worker). */
  driverConfig: DriverConfigResolver;
  /** Where follow-up jobs, due retries and recovered jobs go. */
  dispatch: JobDispatch;
  /** Called after a job changed its pipeline (READY, auto-stop) so triggers can re-arm. */
  onPipelineChanged?: (pipelineId: string) => void;
  /** Hears every attempt start and end after its transaction committed (metrics, server logs; see job.observer.ts). */
  observer?: JobObserver;
  /** The jobs' own logs (Job.logs): driver lines, HTTP requests, start / finish / failure / retry lines. */
  logs?: JobLogService;
}

export class JobHost implements RunnerHost {
  private readonly db: PrismaClient;
  private readonly events: EventService;
  private readonly pubsub: PubSub;
  private readonly logger: Logger;
  private readonly driverConfig: DriverConfigResolver;
  private readonly dispatch: JobDispatch;
  private readonly onPipelineChanged?: (pipelineId: string) => void;
  private readonly lastProgressEvent = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly observer?: JobObserver;
  private readonly logs?: JobLogService;
  /** Attempts begun by this process: when, and the totals they started from (the observer's per-attempt delta). */
  private readonly attemptsBegun = new Map<string, { at: number; totals: Counters }>();

  constructor(deps: JobHostDeps) {
    this.db = deps.db;
    this.events = deps.events;
    this.pubsub = deps.pubsub;
    this.logger = deps.log;
    this.driverConfig = deps.driverConfig;
    this.dispatch = deps.dispatch;
    this.onPipelineChanged = deps.onPipelineChanged;
    this.observer = deps.observer;
    this.logs = deps.logs;
  }

  /** Calls the observer; its failures never reach the job. */
  private observe(fn: (o: JobObserver) => void): void {
    if (!this.observer) return;
    try {
      fn(this.observer);
    } catch (err) {
      this.logger.warn({ err }, 'job observer failed');
    }
  }

  /** Dispatches a QUEUED job when its retry is due (kept in memory; recover() re-arms after a restart). */
  private scheduleRetry(jobId: string, at: Date) {
    clearTimeout(this.retryTimers.get(jobId));
    const timer = setTimeout(() => runAsSystem(() => {
      this.retryTimers.delete(jobId);
      void this.db.job
        .findUnique({ where: { id: jobId }, select: { id: true, pipelineId: true, status: true } })
        .then((j) => (j?.status === 'QUEUED' ? this.dispatch(j) : undefined))
        .catch((err: unknown) => this.logger.error({ err, jobId }, 'retry dispatch failed'));
    }), Math.max(0, at.getTime() - Date.now()));
    timer.unref();
    this.retryTimers.set(jobId, timer);
  }

  /** Drops the waiting retry timers (shutdown); their jobs stay QUEUED in the database. */
  close() {
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
  }

  /** Re-dispatches jobs that were QUEUED or RUNNING when the process last stopped. */
  async recover() {
    const running = await this.db.job.findMany({ where: { status: 'RUNNING', kind: { in: ['SYNC', 'RESET', 'REPLAY'] } }, include: { pipeline: true } });
    for (const job of running) {
      let recoveredLog: JobLogMessage[] = [];
      await this.events.transaction(async (tx, emit) => {
        recoveredLog = [];
        await lockJobPipeline(tx, job.id);
        await tx.jobAttempt.updateMany({
          where: { jobId: job.id, finishedAt: null },
          data: { status: 'FAILED', finishedAt: new Date(), error: 'the process stopped during this attempt' },
        });
        const state = job.pipeline?.state;
        const status = state === 'INIT' || state === 'READY' ? 'QUEUED' : state === 'PAUSE' ? 'PAUSED' : 'CANCELLED';
        await tx.job.update({ where: { id: job.id }, data: { status } });
        await emit({
          type: status === 'QUEUED' ? 'JOB_QUEUED' : status === 'PAUSED' ? 'JOB_PAUSED' : 'JOB_CANCELLED',
          pipelineId: job.pipelineId,
          jobId: job.id,
          message: `job recovered after restart: ${status === 'QUEUED' ? 'resuming from its checkpoint' : status.toLowerCase()}`,
        });
        if (this.logs) {
          const what = status === 'QUEUED' ? 'resuming from its last checkpoint' : `now ${status} (its pipeline is ${state ?? 'gone'})`;
          recoveredLog = await this.logs.insert(tx, job.id, [
            { level: 'warn', attempt: job.attempts, message: `job recovered after restart: the process stopped during attempt ${job.attempts}; ${what}`, data: { status } },
          ], { last: status === 'CANCELLED' });
        }
      });
      this.logs?.publish(recoveredLog);
    }
    const queued = await this.db.job.findMany({ where: { status: 'QUEUED', kind: { in: ['SYNC', 'RESET', 'REPLAY'] } }, orderBy: { createdAt: 'asc' } });
    for (const job of queued) {
      if (job.nextAttemptAt && job.nextAttemptAt.getTime() > Date.now()) this.scheduleRetry(job.id, job.nextAttemptAt);
      else await this.dispatch(job);
    }
    return { recovered: running.length, queued: queued.length };
  }

  // ---- RunnerHost ----

  async begin(jobId: string): Promise<JobPlan | null> {
    let plan: JobPlan | null = null;
    let pausedMsg: string | null = null;
    let started: JobStarted | null = null;
    let logStart: { attempt: number; kind: string } | null = null;
    await this.events.transaction(async (tx, emit) => {
      [plan, pausedMsg] = [null, null];
      await lockJobPipeline(tx, jobId);
      const job = await tx.job.findUnique({ where: { id: jobId }, include: { pipeline: { include: { source: true, destination: true } } } });
      if (!job || job.status !== 'QUEUED' || !job.pipeline) return;
      const p = job.pipeline;
      if (p.state !== 'INIT' && p.state !== 'READY') {
        const status = p.state === 'PAUSE' ? 'PAUSED' : 'CANCELLED';
        await tx.job.update({ where: { id: jobId }, data: { status } });
        await emit({ type: status === 'PAUSED' ? 'JOB_PAUSED' : 'JOB_CANCELLED', pipelineId: p.id, jobId, message: `job not started: pipeline is ${p.state}` });
        return;
      }
      const paused = [p.source, p.destination].filter((c) => c.paused);
      if (paused.length) {
        pausedMsg = `connector(s) paused: ${paused.map((c) => c.name).join(', ')}`;
        await tx.job.update({ where: { id: jobId }, data: { status: 'PAUSED' } });
        await emit({ type: 'JOB_PAUSED', pipelineId: p.id, jobId, message: `job waiting: ${pausedMsg}` });
        return;
      }
      let mapping: MappingSpec | null = null;
      if (job.mappingId && job.mappingVersion) {
        const v = await tx.mappingVersion.findUnique({ where: { mappingId_version: { mappingId: job.mappingId, version: job.mappingVersion } } });
        mapping = (v?.spec ?? null) as MappingSpec | null;
      }
      const attempt = job.attempts + 1;
      logStart = { attempt, kind: job.kind };
      await tx.job.update({
        where: { id: jobId },
        data: { status: 'RUNNING', attempts: attempt, startedAt: job.startedAt ?? new Date(), error: null, nextAttemptAt: null },
      });
      await tx.jobAttempt.create({ data: { jobId, number: attempt, status: 'RUNNING' } });
      started = { jobId, pipelineId: p.id, workspaceId: job.workspaceId, kind: job.kind, attempt, trigger: job.trigger };
      await emit({
        type: 'JOB_STARTED',
        pipelineId: p.id,
        jobId,
        message: attempt === 1 ? `${job.kind.toLowerCase()} job started` : `${job.kind.toLowerCase()} job resumed (attempt ${attempt})`,
        data: { attempt },
      });
      let state = (p.cursor ?? {}) as StreamStates;
      if (job.attempts === 0 && job.kind === 'SYNC' && job.trigger !== 'START') {
        // A new run starts full-refresh streams from scratch; incremental ones continue from their cursor.
        const streams = p.streams as unknown as ConfiguredStream[];
        const kept = { ...state };
        for (const s of streams) if (s.syncMode === 'FULL_REFRESH') delete kept[s.name];
        if (Object.keys(kept).length !== Object.keys(state).length) {
          state = kept;
          await tx.pipeline.update({ where: { id: p.id }, data: { cursor: Object.keys(kept).length ? (kept as Prisma.InputJsonValue) : Prisma.DbNull } });
          await tx.job.update({ where: { id: jobId }, data: { cursorStart: kept as Prisma.InputJsonValue } });
        }
      }
      let replay: JobPlan['replay'];
      if (job.trigger === 'SUBSCRIPTION') {
        // Claim the pushed batches, oldest first: those of an earlier attempt, new ones, and those
        // left by a push job that ended without delivering them (failed or cancelled).
        const batches = await tx.pushBatch.findMany({
          where: await claimableBatches(tx, p.id, jobId),
          orderBy: { sequence: 'asc' },
          take: 20,
        });
        await tx.pushBatch.updateMany({ where: { sequence: { in: batches.map((b) => b.sequence) } }, data: { jobId } });
        replay = batches.flatMap((b) => (b.records as unknown[]).map((record) => ({ stream: b.stream, record })));
      } else if (job.kind === 'REPLAY') {
        const ids = ((job.result ?? {}) as { deadLetterIds?: string[] }).deadLetterIds ?? [];
        const rows = await tx.deadLetter.findMany({ where: { id: { in: ids } }, orderBy: { id: 'asc' }, select: { stream: true, record: true } });
        replay = rows.map((r) => ({ stream: r.stream, record: r.record }));
      }
      const writeMode = p.writeMode as WriteMode;
      // Secrets are decrypted for the worker only; a connector whose secrets cannot be read fails the job (not retried).
      let source: unknown = {};
      let destination: unknown = {};
      let secrets: string[] = [];
      let configError: string | undefined;
      let files: FileScope | null = null;
      try {
        const [s, d] = [await this.driverConfig(p.source, tx), await this.driverConfig(p.destination, tx)];
        [source, destination, secrets, files] = [s.config, d.config, [...s.secrets, ...d.secrets], s.files];
      } catch (err) {
        configError = `cannot prepare the connectors' credentials: ${(err as Error).message}`;
      }
      plan = {
        jobId,
        ...(replay ? { replay } : {}),
        ...(configError ? { configError } : {}),
        secrets,
        pipelineId: p.id,
        source: { driver: p.source.driver, config: source },
        destination: { driver: p.destination.driver, config: destination },
        streams: p.streams as unknown as ConfiguredStream[],
        files,
        state,
        executionTimeoutMs: p.executionTimeoutMs,
        mapping,
        writeMode,
        batchSize: p.batchSize,
        failureThreshold: p.failureThreshold,
        streamTotals: (job.streamStats ?? {}) as unknown as Record<string, Counters>,
        totals: jobTotals(job),
      };
    });
    if (pausedMsg) this.logger.info({ jobId }, pausedMsg);
    const [begun, e] = [plan as JobPlan | null, started as JobStarted | null];
    if (begun && e) {
      this.attemptsBegun.set(jobId, { at: Date.now(), totals: { ...begun.totals } });
      this.observe((o) => o.jobStarted(e));
    }
    if (pausedMsg) this.logs?.append(jobId, { level: 'info', message: `job not started: ${pausedMsg}` });
    const [planned, opened] = [plan as JobPlan | null, logStart as { attempt: number; kind: string } | null];
    if (planned && opened && this.logs) {
      // The worker sends at most what the job's log cap still allows.
      planned.logBudget = await this.logs.open(jobId, opened.attempt, planned.secrets ?? []).catch((err: unknown) => {
        this.logger.warn({ err, jobId }, 'job log: could not read its size; no cap for the worker');
        return undefined;
      });
      this.logs.append(jobId, startLine(planned, opened.attempt, opened.kind));
    }
    return plan;
  }

  async checkpoint(jobId: string, data: CheckpointData): Promise<void> {
    const now = Date.now();
    const emitProgress = now - (this.lastProgressEvent.get(jobId) ?? 0) >= PROGRESS_EVENT_INTERVAL_MS;
    if (emitProgress) this.lastProgressEvent.set(jobId, now);
    await this.events.transaction(async (tx, emit) => {
      await lockJobPipeline(tx, jobId);
      const job = await tx.job.findUnique({ where: { id: jobId }, select: { status: true, pipelineId: true } });
      if (!job?.pipelineId) return;
      if (data.deadLetters.length) {
        await tx.deadLetter.createMany({
          data: data.deadLetters.map((d) => {
            const record = pgJson(d.record ?? null);
            const note = record !== (d.record ?? null) ? ' (its NUL characters are stored as U+FFFD)' : '';
            return { jobId, pipelineId: job.pipelineId!, stream: d.stream, stage: d.stage, error: pgText(d.error) + note, record: record as Prisma.InputJsonValue };
          }),
        });
      }
      if (job.status !== 'RUNNING') return;
      let cursor: StreamStates | undefined;
      if (data.state) {
        const p = await tx.pipeline.findUnique({ where: { id: job.pipelineId }, select: { cursor: true } });
        cursor = { ...((p?.cursor ?? {}) as StreamStates), ...pgJson(data.state) };
        await tx.pipeline.update({ where: { id: job.pipelineId }, data: { cursor: cursor as Prisma.InputJsonValue } });
      }
      await tx.job.update({
        where: { id: jobId },
        data: {
          ...countersData(data.totals),
          streamStats: data.streamTotals as unknown as Prisma.InputJsonValue,
          ...(cursor ? { cursorEnd: cursor as Prisma.InputJsonValue } : {}),
        },
      });
      if (emitProgress) {
        await emit({
          type: 'JOB_PROGRESS',
          pipelineId: job.pipelineId,
          jobId,
          message: `${data.totals.recordsRead} read, ${data.totals.recordsWritten} written, ${data.totals.recordsFailed} failed`,
          data: data.totals,
        });
      }
    });
  }

  progress(jobId: string, pipelineId: string, totals: Counters, status: string, final: boolean): void {
    this.pubsub.publish('jobProgress', jobId, { jobId, pipelineId, status, ...totals, final, at: new Date().toISOString() });
  }

  log(jobId: string, level: LogLevel, message: string, extra: LogExtra = {}): void {
    const stage = extra.stage ?? 'RUNNER';
    this.logger[level]({ jobId, stage }, message);
    this.logs?.append(jobId, { level, message, stage, ...(extra.data ? { data: extra.data } : {}), ...(extra.at ? { at: extra.at } : {}) });
  }

  logsDropped(jobId: string, count: number): void {
    this.logs?.dropped(jobId, count);
  }

  /** Tells the observer an attempt ended (finish committed), with what this attempt added to the totals. */
  private attemptEnded(ended: AttemptEnd | null, finalStatus: string | null, totals: Counters): void {
    if (!ended) return;
    const { startedAt, ...e } = ended;
    const begun = this.attemptsBegun.get(e.jobId);
    this.attemptsBegun.delete(e.jobId);
    if (!finalStatus) return;
    const from = begun?.totals;
    const attemptDelta = from ? subCounters(totals, from) : undefined;
    const durationMs = Date.now() - (begun?.at ?? startedAt?.getTime() ?? Date.now());
    this.observe((o) => o.jobEnded({ ...e, durationMs, totals: { ...totals }, ...(attemptDelta ? { attemptDelta } : {}) }));
  }

  /**
   * The attempt's closing RUNNER lines, written in finish's transaction: its failure (ERROR, with
   * the stack of an unexpected error), the retry it waits for (WARN), then how it ended with its
   * counters and duration — marked last when the job ended for good.
   */
  private async finishLog(
    tx: Prisma.TransactionClient,
    jobId: string,
    f: {
      attempt: number;
      status: string;
      outcome: JobOutcome;
      error: string | null;
      totals: Counters;
      durationMs: number | null;
      retryAt: Date | null;
      maxAttempts: number;
      resumes: boolean;
      discarded: boolean;
    },
  ): Promise<JobLogMessage[]> {
    if (!this.logs) return [];
    const lines: NewJobLogLine[] = [];
    const { attempt } = f;
    const stack = f.outcome.status === 'FAILED' ? f.outcome.stack : undefined;
    if (f.error && !f.discarded) {
      const interrupted = f.outcome.status === 'INTERRUPTED';
      lines.push({
        level: interrupted ? 'warn' : 'error',
        attempt,
        message: interrupted ? `attempt ${attempt} ${f.error}` : `attempt ${attempt} failed: ${f.error}`,
        data: { outcome: f.outcome.status, ...(f.outcome.status === 'FAILED' ? { retryable: f.outcome.retryable } : {}), ...(stack ? { stack } : {}) },
      });
    }
    if (f.retryAt) {
      const seconds = Math.round((f.retryAt.getTime() - Date.now()) / 1000);
      lines.push({
        level: 'warn',
        attempt,
        message: `retrying from the last checkpoint in ${seconds}s (attempt ${attempt + 1} of ${f.maxAttempts})`,
        data: { nextAttempt: attempt + 1, maxAttempts: f.maxAttempts, nextAttemptAt: f.retryAt.toISOString() },
      });
    }
    const how = f.discarded
      ? `ended after its job was already ${f.status} (its work is discarded)`
      : f.retryAt
        ? 'failed; the job is retried'
        : f.status === 'QUEUED'
          ? f.resumes
            ? 'paused, and queued again (its pipeline runs again)'
            : 'interrupted; the job resumes at the next start'
          : f.status === 'SUCCEEDED'
            ? 'succeeded'
            : f.status === 'FAILED'
              ? 'failed'
              : f.status === 'PAUSED'
                ? 'paused at a checkpoint'
                : 'cancelled';
    const t = f.totals;
    const took = f.durationMs !== null ? ` in ${f.durationMs} ms` : '';
    lines.push({
      level: f.status === 'FAILED' ? 'error' : f.retryAt || (f.status === 'QUEUED' && !f.resumes) ? 'warn' : 'info',
      attempt,
      message: `attempt ${attempt} ${how}: ${t.recordsRead} read, ${t.recordsWritten} written, ${t.recordsFailed} failed${took} (job ${f.status})`,
      data: { attempt, status: f.status, outcome: f.outcome.status, ...t, ...(f.durationMs !== null ? { durationMs: f.durationMs } : {}) },
    });
    const last = TERMINAL_STATUSES.has(f.status);
    return this.logs.insert(tx, jobId, lines, { last });
  }

  async finish(jobId: string, outcome: JobOutcome, totals: Counters, streamTotals: Record<string, Counters>): Promise<void> {
    this.lastProgressEvent.delete(jobId);
    let published: PipelineStateMessage[] = [];
    let retryAt: Date | null = null;
    let followUp: { id: string; pipelineId: string | null } | null = null;
    let pipelineId: string | null = null;
    // What the observer hears of this attempt (set on every path that returns a status).
    let attemptEnd: AttemptEnd | null = null;
    // The attempt's last log lines, written with its outcome and published after the commit.
    let finishLog: JobLogMessage[] = [];
    const durationMs = this.logs?.attemptDurationMs(jobId) ?? null;
    // Every line the worker sent comes before them.
    await this.logs?.flush(jobId);
    const finalStatus = await this.events.transaction(async (tx, emit) => {
      [published, retryAt, followUp, pipelineId] = [[], null, null, null];
      finishLog = [];
      await lockJobPipeline(tx, jobId);
      const job = await tx.job.findUnique({
        where: { id: jobId },
        include: { pipeline: { include: { source: { select: { paused: true } }, destination: { select: { paused: true } } } } },
      });
      if (!job) return null;
      pipelineId = job.pipelineId;
      const { bytesRead: _br, bytesWritten: _bw, ...recordCounts } = countersData(totals);
      const attemptData = { ...recordCounts, finishedAt: new Date() };
      // Already ended elsewhere (reset/cancel discarded it): keep that status.
      if (job.status !== 'RUNNING') {
        await tx.jobAttempt.updateMany({ where: { jobId, finishedAt: null }, data: { ...attemptData, status: 'CANCELLED' } });
        finishLog = await this.finishLog(tx, jobId, { attempt: job.attempts, status: job.status, outcome, error: null, totals, durationMs, retryAt: null, maxAttempts: 0, resumes: false, discarded: true });
        attemptEnd = { jobId, pipelineId: job.pipelineId, workspaceId: job.workspaceId, kind: job.kind, status: 'CANCELLED', attempt: job.attempts, error: null, startedAt: job.startedAt };
        return job.status;
      }
      let status: 'SUCCEEDED' | 'FAILED' | 'PAUSED' | 'CANCELLED' | 'QUEUED';
      let error: string | null = null;
      switch (outcome.status) {
        case 'SUCCEEDED':
          status = 'SUCCEEDED';
          break;
        case 'FAILED':
          error = pgText(outcome.error);
          if (outcome.retryable && job.pipeline && job.attempts < job.pipeline.maxAttempts && (job.pipeline.state === 'INIT' || job.pipeline.state === 'READY')) {
            status = 'QUEUED';
            retryAt = new Date(Date.now() + retryDelayMs(job.attempts, job.pipeline.retryBackoffMs));
          } else status = 'FAILED';
          break;
        case 'PAUSED':
          // The pause that stopped it may have been undone before it reached its batch boundary
          // (pipeline resumed, or stopped): the job follows its pipeline as it is now.
          if (job.pipeline && isRunningState(job.pipeline.state as PipelineState) && !job.pipeline.source.paused && !job.pipeline.destination.paused) {
            status = 'QUEUED';
            followUp = job;
          } else status = job.pipeline?.state === 'STOP' ? 'CANCELLED' : 'PAUSED';
          break;
        case 'CANCELLED':
          status = 'CANCELLED';
          break;
        case 'INTERRUPTED':
          status = 'QUEUED';
          error = 'interrupted by shutdown; resumes at next start';
          break;
        case 'TIMEOUT':
          status = 'FAILED';
          error = `execution timeout: ran longer than ${Math.round((job.pipeline?.executionTimeoutMs ?? 0) / 1000)}s`;
          break;
      }
      const ended = TERMINAL_STATUSES.has(status);
      await tx.job.update({
        where: { id: jobId },
        data: {
          status,
          error,
          nextAttemptAt: retryAt,
          streamStats: streamTotals as unknown as Prisma.InputJsonValue,
          ...countersData(totals),
          ...(ended ? { finishedAt: new Date() } : {}),
        },
      });
      await tx.jobAttempt.updateMany({
        where: { jobId, finishedAt: null },
        data: { ...attemptData, status: status === 'QUEUED' ? (followUp ? 'PAUSED' : 'FAILED') : status, error },
      });
      const observed = retryAt ? 'RETRYING' : status === 'QUEUED' ? (followUp ? 'PAUSED' : 'INTERRUPTED') : status;
      attemptEnd = { jobId, pipelineId: job.pipelineId, workspaceId: job.workspaceId, kind: job.kind, status: observed, attempt: job.attempts, error, startedAt: job.startedAt };
      const summary = `${totals.recordsRead} read, ${totals.recordsWritten} written, ${totals.recordsFailed} failed`;
      finishLog = await this.finishLog(tx, jobId, {
        attempt: job.attempts,
        status,
        outcome,
        error,
        totals,
        durationMs,
        retryAt,
        maxAttempts: job.pipeline?.maxAttempts ?? 0,
        resumes: followUp !== null,
        discarded: false,
      });
      if (retryAt) {
        const seconds = Math.round((retryAt.getTime() - Date.now()) / 1000);
        await emit({
          type: 'JOB_RETRYING',
          pipelineId: job.pipelineId,
          jobId,
          message: `attempt ${job.attempts} failed: ${error}; retrying from the last checkpoint in ${seconds}s (attempt ${job.attempts + 1} of ${job.pipeline!.maxAttempts})`,
          data: { attempt: job.attempts, nextAttemptAt: retryAt.toISOString(), error },
        });
        return status;
      }
      const type = ({ SUCCEEDED: 'JOB_SUCCEEDED', FAILED: 'JOB_FAILED', PAUSED: 'JOB_PAUSED', CANCELLED: 'JOB_CANCELLED', QUEUED: 'JOB_QUEUED' } as const)[status];
      await emit({
        type,
        pipelineId: job.pipelineId,
        jobId,
        message: `job ${status === 'QUEUED' ? (followUp ? 'queued to resume from its checkpoint (its pipeline runs again)' : 'interrupted') : status.toLowerCase()}: ${error ? `${error}; ` : ''}${summary}`,
        data: { ...totals, error },
      });
      const p = job.pipeline;
      if (job.trigger === 'SUBSCRIPTION' && status === 'SUCCEEDED' && p) {
        await tx.pushBatch.deleteMany({ where: { jobId } });
        const more = await tx.pushBatch.count({ where: await claimableBatches(tx, p.id, jobId) });
        if (more) followUp = await ensurePushJob(tx, emit, p);
      }
      if (job.kind === 'REPLAY' && status === 'SUCCEEDED') {
        // Replayed records that failed again were dead-lettered anew under this job.
        const ids = ((job.result ?? {}) as { deadLetterIds?: string[] }).deadLetterIds ?? [];
        await tx.deadLetter.deleteMany({ where: { id: { in: ids } } });
      } else if (p && status === 'SUCCEEDED' && p.state === 'INIT' && job.kind !== 'REPLAY') {
        published.push(await recordTransition(tx, emit, { ...p, state: p.state as PipelineState }, 'INITIAL_LOAD_COMPLETED', 'READY', { jobId }));
      } else if (p && status === 'FAILED') {
        const failures = p.consecutiveFailures + 1;
        await tx.pipeline.update({ where: { id: p.id }, data: { stateReason: `last job failed: ${error}`, consecutiveFailures: failures } });
        if (p.autoStopAfterFailures > 0 && failures >= p.autoStopAfterFailures && p.state !== 'STOP') {
          const reason = `stopped after ${failures} consecutive failed jobs (last: ${error})`;
          const fresh = await tx.pipeline.findUniqueOrThrow({ where: { id: p.id } });
          published.push(await recordTransition(tx, emit, { ...fresh, state: fresh.state as PipelineState }, 'AUTO_STOP', 'STOP', { reason, jobId }));
          await emit({ type: 'PIPELINE_AUTO_STOPPED', pipelineId: p.id, jobId, message: `pipeline "${p.name}" ${reason}`, data: { failures } });
        }
      }
      if (p && status === 'SUCCEEDED' && p.consecutiveFailures !== 0) {
        await tx.pipeline.update({ where: { id: p.id }, data: { consecutiveFailures: 0 } });
      }
      return status;
    });
    this.attemptEnded(attemptEnd as AttemptEnd | null, finalStatus, totals);
    this.logs?.publish(finishLog);
    this.logs?.close(jobId);
    for (const m of published) this.pubsub.publish('pipelineStateChanged', m.pipelineId, m);
    if (retryAt) this.scheduleRetry(jobId, retryAt);
    const follow = followUp as { id: string; pipelineId: string | null } | null;
    if (follow) await this.dispatch(follow);
    if (pipelineId) this.onPipelineChanged?.(pipelineId);
    if (finalStatus) {
      const job = await this.db.job.findUnique({ where: { id: jobId }, select: { pipelineId: true } });
      this.progress(jobId, job?.pipelineId ?? '', totals, finalStatus, true);
    }
  }
}

/** The RUNNER line that opens an attempt: what it runs. */
function startLine(plan: JobPlan, attempt: number, kind: string): NewJobLogLine {
  const streams = plan.streams.map((st) => `${st.name} (${st.syncMode}${st.writeMode && st.writeMode !== plan.writeMode ? `, ${st.writeMode}` : ''})`);
  const what = plan.replay ? `; replaying ${plan.replay.length} record(s)` : '';
  const resumed = Object.keys(plan.state ?? {}).length ? `; resuming ${Object.keys(plan.state).length} stream(s) from their state` : '';
  return {
    level: 'info',
    attempt,
    message:
      `attempt ${attempt} started (${kind.toLowerCase()}): ${plan.source.driver} → ${plan.destination.driver}, ` +
      `streams: ${streams.join(', ') || 'none'}; write mode ${plan.writeMode}${what}${resumed}`,
    data: {
      attempt,
      kind,
      source: plan.source.driver,
      destination: plan.destination.driver,
      writeMode: plan.writeMode,
      batchSize: plan.batchSize,
      streams: plan.streams.map((st) => ({ name: st.name, syncMode: st.syncMode, writeMode: st.writeMode ?? plan.writeMode })),
      ...(plan.replay ? { replayRecords: plan.replay.length } : {}),
      ...(plan.mapping ? { mapping: true } : {}),
    },
  };
}
