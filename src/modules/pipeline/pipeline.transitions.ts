/**
 * Recording a lifecycle transition: the row update (guarded by state and version), the
 * event, and the message to publish once the transaction has committed; and the pipeline row
 * locks every transaction that changes a pipeline or its jobs takes first.
 */
import type { Tx } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';
import type { PipelineStateMessage } from '../../pubsub/pubsub.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { PrismaClient } from '../../db/client.js';
import { currentWorkspaceId } from '../../tenancy/scope.js';
import type { PipelineState } from './lifecycle.js';

type PipelineRow = NonNullable<Awaited<ReturnType<PrismaClient['pipeline']['findUnique']>>>;

/**
 * Locks pipeline rows (FOR NO KEY UPDATE, in id order). The first lock of every transaction
 * that changes a pipeline's state or its jobs, so that such transactions queue on the
 * pipeline instead of deadlocking over its jobs (the event lock is always taken last, see
 * EventService.transaction). Raw SQL is not tenant-guarded: restricted to the caller's
 * workspace here.
 */
export async function lockPipelines(tx: Tx, ids: string[]): Promise<void> {
  if (!ids.length) return;
  const ws = currentWorkspaceId();
  const sorted = [...new Set(ids)].sort();
  await tx.$queryRaw`select id from "Pipeline" where id = any(${sorted}::uuid[]) and (${ws}::uuid is null or "workspaceId" = ${ws}::uuid) order by id for no key update`;
}

/** Locks one pipeline (see lockPipelines) and reads it as it is now; NotFoundError when it is gone. */
export async function lockPipeline(tx: Tx, id: string): Promise<PipelineRow> {
  await lockPipelines(tx, [id]);
  const p = await tx.pipeline.findUnique({ where: { id } });
  if (!p) throw new NotFoundError('Pipeline', id);
  return p;
}

/** Locks the pipelines reading from or writing to a connector (see lockPipelines). */
export async function lockConnectorPipelines(tx: Tx, connectorId: string): Promise<void> {
  const ws = currentWorkspaceId();
  await tx.$queryRaw`select id from "Pipeline" where ("sourceId" = ${connectorId}::uuid or "destinationId" = ${connectorId}::uuid) and (${ws}::uuid is null or "workspaceId" = ${ws}::uuid) order by id for no key update`;
}

export interface TransitionRow {
  id: string;
  name: string;
  state: PipelineState;
  version: number;
}

export async function recordTransition(
  tx: Tx,
  emit: (e: NewEvent) => Promise<void>,
  p: TransitionRow,
  action: string,
  to: PipelineState,
  options: { reason?: string | null; clearCursor?: boolean; jobId?: string | null } = {},
): Promise<PipelineStateMessage> {
  const res = await tx.pipeline.updateMany({
    where: { id: p.id, version: p.version, state: p.state },
    data: {
      state: to,
      previousState: p.state,
      stateReason: options.reason ?? null,
      version: { increment: 1 },
      ...(options.clearCursor ? { cursor: Prisma.DbNull } : {}),
    },
  });
  if (res.count === 0) {
    const now = await tx.pipeline.findUnique({ where: { id: p.id }, select: { version: true } });
    throw new ConflictError('pipeline is in use: it changed while this action ran; re-read and retry', now?.version);
  }
  await emit({
    type: 'PIPELINE_STATE_CHANGED',
    pipelineId: p.id,
    jobId: options.jobId ?? null,
    message: `pipeline "${p.name}" ${p.state} → ${to} (${action.toLowerCase()})${options.reason ? `: ${options.reason}` : ''}`,
    data: { action, from: p.state, to, reason: options.reason ?? null },
  });
  return {
    pipelineId: p.id,
    action,
    state: to,
    previousState: p.state,
    reason: options.reason ?? null,
    version: p.version + 1,
    at: new Date().toISOString(),
  };
}
