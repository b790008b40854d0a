/**
 * Jobs, the command side: what resolvers, pipelines, connectors and triggers call — create,
 * start runs under the concurrency rules, dispatch, stop, cancel, and the progress stream.
 * The runner's side (begin, checkpoint, finish, retry, recovery) is JobHost (job.host.ts).
 *
 * Promises: jobs are created inside the caller's transaction and dispatched after commit;
 * stopping a running job takes effect at its next batch boundary (the host records the
 * outcome), waiting ones end at once with an event. Every transaction that changes a job
 * locks its pipeline first (see lockPipelines), so job changes and lifecycle actions never
 * deadlock.
 */
import type { PrismaClient } from '../../db/client.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { Runner } from '../../engine/runner/runner.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { JobProgressMessage, PubSub } from '../../pubsub/pubsub.js';
import type { EventService, Tx } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';
import { lockConnectorPipelines } from '../pipeline/pipeline.transitions.js';
import type { JobLogService } from './job.logs.js';
import { ACTIVE_STATUSES, createJob, ensurePushJob, jobTotals, lockJobPipeline, TERMINAL_STATUSES, type JobDispatch, type JobRow, type PipelineRow } from './job.rows.js';

export { ACTIVE_STATUSES } from './job.rows.js';


type RunTrigger = 'MANUAL' | 'SCHEDULE' | 'SUBSCRIPTION';

/** What the command side needs of the runner: whether a job runs in this process, and stopping it. */
export type RunControl = Pick<Runner, 'isRunning' | 'requestStop'>;

export class JobService {
  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    private readonly pubsub: PubSub,
    private readonly runner: RunControl,
    /** Hands QUEUED jobs to the queue (after their transaction committed). */
    readonly dispatch: JobDispatch,
    /** Where a job that ends without running writes its last log line. */
    private readonly logs: JobLogService,
  ) {}

  /**
   * A waiting job (QUEUED or PAUSED) was cancelled inside `tx`: its last log line is written
   * there; the returned callback, run after commit, ends its live streams (the final progress
   * message and that line), as the runner's finish does for a job that ran.
   */
  private async endedWaiting(tx: Tx, job: JobRow, message: string): Promise<() => void> {
    const lines = await this.logs.insert(tx, job.id, [{ level: 'info', message, attempt: job.attempts }], { last: true });
    return () => {
      this.logs.publish(lines);
      this.pubsub.publish('jobProgress', job.id, {
        jobId: job.id,
        pipelineId: job.pipelineId ?? '',
        status: 'CANCELLED',
        ...jobTotals(job),
        final: true,
        at: new Date().toISOString(),
      });
    };
  }

  async get(id: string) {
    const j = await this.db.job.findUnique({ where: { id } });
    if (!j) throw new NotFoundError('Job', id);
    return j;
  }

  /** Creates a QUEUED job for a pipeline inside the caller's transaction; dispatch it after commit. */
  create(
    tx: Tx,
    emit: (e: NewEvent) => Promise<void>,
    pipeline: PipelineRow,
    kind: 'SYNC' | 'RESET' | 'REPLAY',
    trigger: string,
    result?: Prisma.InputJsonValue,
  ): Promise<JobRow> {
    return createJob(tx, emit, pipeline, kind, trigger, result);
  }

  /**
   * Makes sure a SUBSCRIPTION job will drain the pipeline's pushed records: none is created
   * when one is already waiting (it claims every batch when it starts).
   */
  ensurePushJob(tx: Tx, emit: (e: NewEvent) => Promise<void>, p: PipelineRow): Promise<JobRow | null> {
    return ensurePushJob(tx, emit, p);
  }

  /**
   * Starts a run for a trigger under the pipeline's concurrency rules: with a job already
   * queued or running and parallel runs off, the run is skipped (SKIP, with an event) or
   * queued behind it (QUEUE). Dispatch the returned job after commit.
   */
  async startRun(
    tx: Tx,
    emit: (e: NewEvent) => Promise<void>,
    p: PipelineRow,
    trigger: RunTrigger,
    data?: Record<string, unknown>,
  ): Promise<{ job: JobRow | null; skipped: string | null }> {
    const [run] = await this.startRuns(tx, [p], trigger, () => data ?? {});
    for (const e of run!.events) await emit(e);
    return { job: run!.job, skipped: run!.skipped };
  }

  /**
   * startRun for many pipelines in a few queries (a burst of schedule fires). Returns, in the
   * order given, each pipeline's new job (null when skipped) and the events the caller appends
   * for it (JOB_QUEUED or RUN_SKIPPED).
   */
  async startRuns(
    tx: Tx,
    pipelines: PipelineRow[],
    trigger: RunTrigger,
    dataOf: (p: PipelineRow) => Record<string, unknown>,
  ): Promise<{ job: JobRow | null; skipped: string | null; events: NewEvent[] }[]> {
    const serial = pipelines.filter((p) => !p.allowParallelRuns).map((p) => p.id);
    const active = new Map<string, { id: string; status: string }>();
    if (serial.length) {
      const rows = await tx.job.findMany({
        where: { pipelineId: { in: serial }, status: { in: [...ACTIVE_STATUSES] }, kind: { in: ['SYNC', 'RESET', 'REPLAY'] } },
        orderBy: { createdAt: 'asc' },
        select: { id: true, status: true, pipelineId: true },
      });
      for (const j of rows) if (j.pipelineId && !active.has(j.pipelineId)) active.set(j.pipelineId, j);
    }
    const toRun = pipelines.filter((p) => !(active.has(p.id) && p.concurrencyPolicy === 'SKIP'));
    const mappingIds = [...new Set(toRun.map((p) => p.mappingId).filter((id): id is string => !!id))];
    const versions = new Map(
      (mappingIds.length ? await tx.mapping.findMany({ where: { id: { in: mappingIds } }, select: { id: true, version: true } }) : []).map((m) => [m.id, m.version]),
    );
    const created = toRun.length
      ? await tx.job.createManyAndReturn({
          data: toRun.map((p) => ({
            workspaceId: p.workspaceId,
            kind: 'SYNC' as const,
            pipelineId: p.id,
            trigger,
            status: 'QUEUED' as const,
            mappingId: p.mappingId,
            mappingVersion: p.mappingId ? (versions.get(p.mappingId) ?? null) : null,
            cursorStart: (p.cursor ?? Prisma.DbNull) as Prisma.InputJsonValue,
          })),
        })
      : [];
    const jobOf = new Map(created.map((j) => [j.pipelineId, j]));
    return pipelines.map((p) => {
      const job = jobOf.get(p.id);
      if (job) return { job, skipped: null, events: [{ type: 'JOB_QUEUED', pipelineId: p.id, jobId: job.id, message: `sync job queued (${trigger.toLowerCase()})` }] };
      const a = active.get(p.id)!;
      const reason = `${trigger.toLowerCase()} run skipped: job ${a.id} is ${a.status.toLowerCase()} and parallel runs are off`;
      return { job: null, skipped: reason, events: [{ type: 'RUN_SKIPPED', pipelineId: p.id, jobId: a.id, message: reason, data: { trigger, ...dataOf(p) } }] };
    });
  }

  /**
   * Stops the pipeline's active jobs: running ones at their next batch boundary (their
   * status converges when the worker exits), waiting ones at once. With `discard`, running
   * jobs are marked CANCELLED now so their later checkpoints are ignored (reset).
   */
  async stopActiveJobs(tx: Tx, emit: (e: NewEvent) => Promise<void>, pipelineId: string, reason: 'PAUSED' | 'CANCELLED', discard = false) {
    const jobs = await tx.job.findMany({ where: { pipelineId, status: { in: [...ACTIVE_STATUSES] } } });
    const afterCommit: (() => void)[] = [];
    for (const job of jobs) {
      const runningHere = this.runner.isRunning(job.id);
      if (job.status === 'RUNNING' && runningHere && !discard) {
        afterCommit.push(() => this.runner.requestStop(job.id, reason));
        continue;
      }
      if (job.status === 'PAUSED' && reason === 'PAUSED') continue;
      const status = reason === 'PAUSED' ? 'PAUSED' : 'CANCELLED';
      const row = await tx.job.update({
        where: { id: job.id },
        data: { status, ...(status === 'CANCELLED' ? { finishedAt: new Date() } : {}) },
      });
      // A job that was not running here ends now; one running here ends through the runner.
      if (status === 'CANCELLED' && !runningHere) afterCommit.push(await this.endedWaiting(tx, row, `job cancelled while ${job.status.toLowerCase()}: its pipeline was stopped or reset`));
      await emit({
        type: status === 'PAUSED' ? 'JOB_PAUSED' : 'JOB_CANCELLED',
        pipelineId,
        jobId: job.id,
        message: `job ${status === 'PAUSED' ? 'paused' : 'cancelled'}`,
      });
      if (runningHere) afterCommit.push(() => this.runner.requestStop(job.id, 'CANCELLED'));
    }
    return () => afterCommit.forEach((f) => f());
  }

  lockPipelinesOf(tx: Tx, connectorId: string): Promise<void> {
    return lockConnectorPipelines(tx, connectorId);
  }

  /** A connector was paused: its pipelines' jobs stop at a checkpoint (PAUSED), pipeline states unchanged. */
  async suspendForConnector(tx: Tx, emit: (e: NewEvent) => Promise<void>, connectorId: string) {
    const jobs = await tx.job.findMany({
      where: { status: { in: ['QUEUED', 'RUNNING'] }, pipeline: { OR: [{ sourceId: connectorId }, { destinationId: connectorId }] } },
    });
    const stops: string[] = [];
    for (const job of jobs) {
      if (job.status === 'RUNNING' && this.runner.isRunning(job.id)) {
        stops.push(job.id);
        continue;
      }
      await tx.job.update({ where: { id: job.id }, data: { status: 'PAUSED' } });
      await emit({ type: 'JOB_PAUSED', pipelineId: job.pipelineId, jobId: job.id, connectorId, message: 'job paused: connector paused' });
    }
    return async () => {
      for (const id of stops) this.runner.requestStop(id, 'PAUSED');
    };
  }

  /** A connector resumed: paused jobs of running pipelines whose connectors are all unpaused continue. */
  async resumeForConnector(tx: Tx, emit: (e: NewEvent) => Promise<void>, connectorId: string) {
    const jobs = await tx.job.findMany({
      where: {
        status: 'PAUSED',
        pipeline: {
          state: { in: ['INIT', 'READY'] },
          OR: [{ sourceId: connectorId }, { destinationId: connectorId }],
          source: { paused: false },
          destination: { paused: false },
        },
      },
      orderBy: { createdAt: 'asc' },
    });
    for (const job of jobs) {
      await tx.job.update({ where: { id: job.id }, data: { status: 'QUEUED' } });
      await emit({ type: 'JOB_QUEUED', pipelineId: job.pipelineId, jobId: job.id, connectorId, message: 'job queued: connector resumed' });
    }
    return async () => {
      for (const job of jobs) await this.dispatch(job);
    };
  }

  /** cancelJob: waiting jobs end at once; a running job stops at its next batch boundary. */
  async cancel(id: string) {
    const job = await this.get(id);
    if (!['QUEUED', 'RUNNING', 'PAUSED'].includes(job.status)) {
      throw new ValidationError('job is not active', [{ path: 'id', message: `job is already ${job.status}` }]);
    }
    if (job.status === 'RUNNING' && this.runner.requestStop(id, 'CANCELLED')) return job;
    let after: () => void = () => undefined;
    const updated = await this.events.transaction(async (tx, emit) => {
      await lockJobPipeline(tx, id);
      const now = await tx.job.findUniqueOrThrow({ where: { id }, select: { status: true } });
      if (!(ACTIVE_STATUSES as readonly string[]).includes(now.status)) {
        throw new ValidationError('job is not active', [{ path: 'id', message: `job is already ${now.status}` }]);
      }
      const row = await tx.job.update({ where: { id }, data: { status: 'CANCELLED', finishedAt: new Date() } });
      await emit({ type: 'JOB_CANCELLED', pipelineId: job.pipelineId, jobId: id, message: 'job cancelled' });
      after = await this.endedWaiting(tx, row, `job cancelled while ${now.status.toLowerCase()} (cancelJob)`);
      return row;
    });
    after();
    return updated;
  }

  /**
   * The job's current counters, then live progress; ends after a final message with a
   * terminal status. Subscribes before reading the snapshot so no update falls between.
   */
  async *progressStream(jobId: string): AsyncGenerator<JobProgressMessage> {
    const live = this.pubsub.subscribe('jobProgress', jobId);
    try {
      const job = await this.get(jobId);
      const terminal = TERMINAL_STATUSES.has(job.status);
      yield {
        jobId,
        pipelineId: job.pipelineId,
        status: job.status,
        ...jobTotals(job),
        final: terminal,
        at: new Date().toISOString(),
      };
      if (terminal) return;
      for await (const m of live) {
        yield m;
        if (m.final && TERMINAL_STATUSES.has(m.status)) return;
      }
    } finally {
      await live.return?.();
    }
  }
}
