/**
 * Timers for pipeline schedules, driven by node-schedule. One armed fire per pipeline: the
 * service computes the next fire time (schedule.ts), arms it here, and re-arms after each
 * fire. Exactly-once across processes is the fire handler's job (a compare-and-set on the
 * pipeline's nextRunAt in the database), not the timer's.
 */
import schedule from 'node-schedule';

export type FireHandler = (pipelineId: string, scheduledAt: Date) => Promise<void>;

export class Scheduler {
  private readonly armed = new Map<string, { at: number; job: schedule.Job }>();
  private closed = false;

  constructor(private readonly onFire: FireHandler) {}

  /** Arms the pipeline's next fire at `at` (replacing any armed one); null disarms. */
  arm(pipelineId: string, at: Date | null): void {
    const current = this.armed.get(pipelineId);
    if (current && at && current.at === at.getTime()) return;
    current?.job.cancel();
    this.armed.delete(pipelineId);
    if (!at || this.closed) return;
    const when = at.getTime() <= Date.now() ? new Date(Date.now() + 1) : at;
    const job = schedule.scheduleJob(when, () => {
      this.armed.delete(pipelineId);
      void this.onFire(pipelineId, at);
    });
    if (job) this.armed.set(pipelineId, { at: at.getTime(), job });
  }

  armedCount(): number {
    return this.armed.size;
  }

  close(): void {
    this.closed = true;
    for (const { job } of this.armed.values()) job.cancel();
    this.armed.clear();
  }
}
