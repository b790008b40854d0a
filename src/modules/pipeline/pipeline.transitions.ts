/**
 * Recording a lifecycle transition: the row update (guarded by state and version), the
 * event, and the message to publish once the transaction has committed.
 */
import type { Tx } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';
import type { PipelineStateMessage } from '../../pubsub/pubsub.js';
import { ConflictError } from '../../errors.js';
import { Prisma } from '../../generated/prisma/client.js';
import type { PipelineState } from './lifecycle.js';

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
