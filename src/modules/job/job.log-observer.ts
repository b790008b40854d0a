/**
 * The server-log side of the job observer port (job.observer.ts): one structured line when an
 * attempt starts ("job started") and one when it ends ("job finished": info, warn when it is
 * retried or interrupted, error when it failed), plus "job failed" (error; warn while it is
 * retried) carrying the error. Every line names jobId, pipelineId and workspaceId. Jobs run
 * from the queue, not from a request: there is no requestId to carry.
 */
import type { Logger } from '../../logger.js';
import type { JobEnded, JobObserver } from './job.observer.js';

function levelOf(status: JobEnded['status']): 'info' | 'warn' | 'error' {
  if (status === 'FAILED') return 'error';
  if (status === 'RETRYING' || status === 'INTERRUPTED') return 'warn';
  return 'info';
}

export function jobLogObserver(log: Logger): JobObserver {
  return {
    jobStarted: (e) => {
      log.info({ jobId: e.jobId, pipelineId: e.pipelineId, workspaceId: e.workspaceId, kind: e.kind, attempt: e.attempt, trigger: e.trigger }, 'job started');
    },
    jobEnded: (e) => {
      const ids = { jobId: e.jobId, pipelineId: e.pipelineId, workspaceId: e.workspaceId };
      log[levelOf(e.status)](
        {
          ...ids,
          kind: e.kind,
          status: e.status,
          attempt: e.attempt,
          recordsRead: e.totals.recordsRead,
          recordsWritten: e.totals.recordsWritten,
          recordsFailed: e.totals.recordsFailed,
          durationMs: Math.round(e.durationMs),
          ...(e.error ? { error: e.error } : {}),
        },
        'job finished',
      );
      if (e.error && (e.status === 'FAILED' || e.status === 'RETRYING')) {
        log[e.status === 'FAILED' ? 'error' : 'warn']({ ...ids, kind: e.kind, attempt: e.attempt, retrying: e.status === 'RETRYING', error: e.error }, 'job failed');
      }
    },
  };
}
