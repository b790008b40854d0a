/**
 * Timers for pipeline schedules, driven by node-schedule. One armed fire per pipeline: the
 * service computes the next fire time (schedule.ts), arms it here, and re-arms after each
 * fire. Exactly-once across processes is the fire handler's job (a compare-and-set on the
 * pipeline's nextRunAt in the database), not the timer's.
 *
 * Pipelines due at the same instant share one timer and are handed to the handler together:
 * node-schedule runs due invocations one per event-loop turn, so a timer per pipeline would
 * make the k-th of a thousand same-minute fires wait for the work of the k-1 before it.
 */
import schedule from 'node-schedule';
import { runAsSystem } from '../../tenancy/scope.js';

export type FireHandler = (pipelineIds: string[], scheduledAt: Date) => Promise<void>;

export class Scheduler {
  /** pipeline id → the instant it is armed for. */
  private readonly armed = new Map<string, number>();
  /** instant → its timer and the pipelines due then. */
  private readonly slots = new Map<number, { job: schedule.Job; ids: Set<string> }>();
  private closed = false;

  constructor(private readonly onFire: FireHandler) {}

  /** Arms the pipeline's next fire at `at` (replacing any armed one); null disarms. */
  arm(pipelineId: string, at: Date | null): void {
    const current = this.armed.get(pipelineId);
    if (current !== undefined && at && current === at.getTime()) return;
    if (current !== undefined) {
      const slot = this.slots.get(current);
      slot?.ids.delete(pipelineId);
      if (slot && slot.ids.size === 0) {
        slot.job.cancel();
        this.slots.delete(current);
      }
      this.armed.delete(pipelineId);
    }
    if (!at || this.closed) return;
    const t = at.getTime();
    let slot = this.slots.get(t);
    if (!slot) {
      const when = t <= Date.now() ? new Date(Date.now() + 1) : at;
      // Fires serve every workspace, whoever armed the timer.
      const job = schedule.scheduleJob(when, () => runAsSystem(() => this.run(t)));
      if (!job) return;
      slot = { job, ids: new Set() };
      this.slots.set(t, slot);
    }
    slot.ids.add(pipelineId);
    this.armed.set(pipelineId, t);
  }

  private run(t: number): void {
    const slot = this.slots.get(t);
    if (!slot) return;
    this.slots.delete(t);
    for (const id of slot.ids) this.armed.delete(id);
    void this.onFire([...slot.ids], new Date(t));
  }

  armedCount(): number {
    return this.armed.size;
  }

  close(): void {
    this.closed = true;
    for (const { job } of this.slots.values()) job.cancel();
    this.slots.clear();
    this.armed.clear();
  }
}
