/**
 * What both sides of the job service share: the job rows they create, the lock every job
 * transaction takes first, and the dispatch port (how a QUEUED job reaches the queue).
 */
import type { PrismaClient } from '../../db/client.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { Counters } from '../../engine/runner/protocol.js';
import type { Tx } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';
import { lockPipelines } from '../pipeline/pipeline.transitions.js';

export const ACTIVE_STATUSES = ['QUEUED', 'RUNNING', 'PAUSED'] as const;
/** Statuses a job never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

export type PipelineRow = NonNullable<Awaited<ReturnType<PrismaClient['pipeline']['findUnique']>>>;
export type JobRow = NonNullable<Awaited<ReturnType<PrismaClient['job']['findUnique']>>>;
export type Emit = (e: NewEvent) => Promise<void>;

/**
 * Hands a QUEUED job to the queue after its transaction committed; jobs of one pipeline run
 * one at a time unless `parallel`. Does nothing once the process is shutting down.
 */
export type JobDispatch = (job: { id: string; pipelineId: string | null }, parallel?: boolean) => Promise<void>;

/** Creates a QUEUED job for a pipeline inside the caller's transaction; dispatch it after commit. */
export async function createJob(
  tx: Tx,
  emit: Emit,
  pipeline: PipelineRow,
  kind: 'SYNC' | 'RESET' | 'REPLAY',
  trigger: string,
  result?: Prisma.InputJsonValue,
): Promise<JobRow> {
  const mapping = pipeline.mappingId ? await tx.mapping.findUnique({ where: { id: pipeline.mappingId }, select: { version: true } }) : null;
  const job = await tx.job.create({
    data: {
      workspaceId: pipeline.workspaceId,
      kind,
      pipelineId: pipeline.id,
      trigger,
      status: 'QUEUED',
      mappingId: pipeline.mappingId,
      mappingVersion: mapping?.version ?? null,
      cursorStart: (pipeline.cursor ?? Prisma.DbNull) as Prisma.InputJsonValue,
      ...(result !== undefined ? { result } : {}),
    },
  });
  await emit({ type: 'JOB_QUEUED', pipelineId: pipeline.id, jobId: job.id, message: `${kind.toLowerCase()} job queued (${trigger.toLowerCase()})` });
  return job;
}

/**
 * Makes sure a SUBSCRIPTION job will drain the pipeline's pushed records: none is created
 * when one is already waiting (it claims every batch when it starts).
 */
export async function ensurePushJob(tx: Tx, emit: Emit, p: PipelineRow): Promise<JobRow | null> {
  const waiting = await tx.job.findFirst({ where: { pipelineId: p.id, trigger: 'SUBSCRIPTION', status: { in: ['QUEUED', 'PAUSED'] } } });
  if (waiting) return null;
  return createJob(tx, emit, p, 'SYNC', 'SUBSCRIPTION');
}

/** Locks the job's pipeline (lock order: the pipeline before its jobs, see lockPipelines). */
export async function lockJobPipeline(tx: Tx, jobId: string): Promise<void> {
  const j = await tx.job.findUnique({ where: { id: jobId }, select: { pipelineId: true } });
  if (j?.pipelineId) await lockPipelines(tx, [j.pipelineId]);
}

/**
 * Pushed batches the push job `jobId` may take: unclaimed ones and those claimed by a job that
 * is no longer active (its own earlier attempt, or a push job that failed or was cancelled), so
 * a record answered 202 is never stranded. Batches of another active push job are left to it.
 */
export async function claimableBatches(tx: Tx, pipelineId: string, jobId: string): Promise<Prisma.PushBatchWhereInput> {
  const others = await tx.job.findMany({
    where: { pipelineId, trigger: 'SUBSCRIPTION', status: { in: [...ACTIVE_STATUSES] }, id: { not: jobId } },
    select: { id: true },
  });
  return { pipelineId, OR: [{ jobId: null }, { jobId: { notIn: others.map((j) => j.id) } }] };
}

/** Exponential backoff (×3 per attempt, capped at 10 minutes) with equal jitter. */
export function retryDelayMs(attempt: number, baseMs: number): number {
  const d = Math.min(600_000, baseMs * 3 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + Math.random() * (d / 2));
}

/** A job row's counters (BigInt columns) as numbers: the inverse of countersData. */
export function jobTotals(job: { recordsRead: bigint; recordsWritten: bigint; recordsFailed: bigint; bytesRead: bigint; bytesWritten: bigint }): Counters {
  return {
    recordsRead: Number(job.recordsRead),
    recordsWritten: Number(job.recordsWritten),
    recordsFailed: Number(job.recordsFailed),
    bytesRead: Number(job.bytesRead),
    bytesWritten: Number(job.bytesWritten),
  };
}

export function countersData(c: Counters) {
  return {
    recordsRead: BigInt(c.recordsRead),
    recordsWritten: BigInt(c.recordsWritten),
    recordsFailed: BigInt(c.recordsFailed),
    bytesRead: BigInt(c.bytesRead),
    bytesWritten: BigInt(c.bytesWritten),
  };
}
