/** The dispatch port over the job queue: what the command side and the runner host hand QUEUED jobs to. */
import type { JobQueue } from '../../engine/queue/queue.js';
import type { JobDispatch } from './job.rows.js';

export class QueueDispatch {
  private closed = false;

  constructor(private readonly queue: JobQueue) {}

  /** Enqueues the job (grouped by pipeline unless `parallel`); a no-op after close(). */
  readonly dispatch: JobDispatch = async (job, parallel = false) => {
    if (this.closed) return;
    await this.queue.enqueue({ jobId: job.id, group: parallel ? null : job.pipelineId });
  };

  /** Stops dispatching (shutdown); jobs not yet handed over stay QUEUED in the database. */
  close(): void {
    this.closed = true;
  }
}
