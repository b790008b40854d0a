/**
 * Triggers (Algolia tasks): ON_DEMAND runs, SCHEDULE fires and SUBSCRIPTION pushes.
 *
 * Promises: a schedule fire creates at most one job across any number of processes — the
 * fire is a compare-and-set on the pipeline's `nextRunAt`; scheduling follows the pipeline
 * (armed only while enabled and INIT/READY); missed fires follow the catch-up policy at
 * start; pushed records are committed to the database before the endpoint answers.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PrismaClient } from '../../db/client.js';
import type { Prisma } from '../../generated/prisma/client.js';
import { nextFire, validateSchedule, type Schedule, type ScheduleUnit } from '../../engine/scheduler/schedule.js';
import { Scheduler } from '../../engine/scheduler/scheduler.js';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { EventService } from '../event/event.service.js';
import type { JobService } from '../job/job.service.js';
import { isRunningState, type PipelineState } from './lifecycle.js';

type Row = NonNullable<Awaited<ReturnType<PrismaClient['pipeline']['findUnique']>>>;

export const MAX_PUSH_RECORDS = 100_000;

export function scheduleOf(p: Pick<Row, 'scheduleCron' | 'scheduleTimezone' | 'scheduleEvery' | 'scheduleUnit'>): Schedule {
  return { cron: p.scheduleCron, timezone: p.scheduleTimezone, every: p.scheduleEvery, unit: p.scheduleUnit as ScheduleUnit | null };
}

export function checkSchedule(trigger: string, s: Schedule): void {
  const errors = validateSchedule(s);
  if (trigger === 'SCHEDULE' && !s.cron && !s.every) errors.push({ path: 'schedule', message: 'a SCHEDULE trigger needs a cron expression or every/unit' });
  if (errors.length) throw new ValidationError('invalid schedule', errors);
}

const hash = (token: string) => createHash('sha256').update(token).digest();

export class TriggerService {
  readonly scheduler: Scheduler;

  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    private readonly jobs: JobService,
    private readonly log: Logger,
  ) {
    this.scheduler = new Scheduler((id, at) => this.fire(id, at));
  }

  /** Next fire the pipeline should have now, or null when it should not be scheduled. */
  private desiredNext(p: Row, after: Date, anchor: Date): Date | null {
    if (p.trigger !== 'SCHEDULE' || !p.enabled || !isRunningState(p.state as PipelineState)) return null;
    return nextFire(scheduleOf(p), after, anchor);
  }

  /**
   * Re-derives the pipeline's next fire after a change (state, schedule, enable) and arms
   * it. `reschedule` recomputes even when a future fire is already set (schedule edited).
   */
  async refresh(id: string, reschedule = false): Promise<void> {
    const p = await this.db.pipeline.findUnique({ where: { id } });
    if (!p) {
      this.scheduler.arm(id, null);
      return;
    }
    const now = new Date();
    let next = this.desiredNext(p, now, p.lastRunAt ?? now);
    if (next && p.nextRunAt && p.nextRunAt > now && !reschedule) next = p.nextRunAt;
    if ((next?.getTime() ?? null) !== (p.nextRunAt?.getTime() ?? null)) {
      await this.db.pipeline.update({ where: { id }, data: { nextRunAt: next } });
    }
    this.scheduler.arm(id, next);
  }

  /** At start: arm every schedule; fires missed while down are skipped or run once (catch-up policy). */
  async start(): Promise<{ armed: number; caughtUp: number; skipped: number }> {
    const pipelines = await this.db.pipeline.findMany({ where: { trigger: 'SCHEDULE', enabled: true, state: { in: ['INIT', 'READY'] } } });
    let caughtUp = 0;
    let skipped = 0;
    const now = new Date();
    for (const p of pipelines) {
      if (p.nextRunAt && p.nextRunAt <= now) {
        if (p.catchUp === 'RUN_ONCE') {
          caughtUp++;
          await this.fire(p.id, p.nextRunAt);
          continue;
        }
        skipped++;
        const next = this.desiredNext(p, now, p.nextRunAt);
        await this.events.transaction(async (tx, emit) => {
          await tx.pipeline.update({ where: { id: p.id }, data: { nextRunAt: next } });
          await emit({
            type: 'SCHEDULE_SKIPPED',
            pipelineId: p.id,
            message: `fire due at ${p.nextRunAt!.toISOString()} was missed while Sluice was down; catch-up policy SKIP`,
            data: { scheduledAt: p.nextRunAt!.toISOString(), reason: 'MISSED' },
          });
        });
        this.scheduler.arm(p.id, next);
      } else await this.refresh(p.id);
    }
    return { armed: this.scheduler.armedCount(), caughtUp, skipped };
  }

  close(): void {
    this.scheduler.close();
  }

  /** A schedule fire: exactly one job per (pipeline, scheduled time), or a skip with its reason. */
  async fire(id: string, scheduledAt: Date): Promise<void> {
    const firedAt = Date.now();
    let next: Date | null = null;
    let dispatch: { job: { id: string; pipelineId: string | null }; parallel: boolean } | null = null;
    try {
      await this.events.transaction(async (tx, emit) => {
        const p = await tx.pipeline.findUnique({ where: { id } });
        if (!p || p.nextRunAt?.getTime() !== scheduledAt.getTime()) return;
        next = this.desiredNext(p, new Date(Math.max(Date.now(), scheduledAt.getTime())), scheduledAt);
        const claimed = await tx.pipeline.updateMany({ where: { id, nextRunAt: scheduledAt }, data: { nextRunAt: next, lastRunAt: scheduledAt } });
        if (claimed.count === 0) return;
        const lateMs = firedAt - scheduledAt.getTime();
        if (p.trigger !== 'SCHEDULE' || !p.enabled || !isRunningState(p.state as PipelineState)) {
          await emit({
            type: 'SCHEDULE_SKIPPED',
            pipelineId: id,
            message: `schedule fire skipped: pipeline is ${p.enabled ? p.state : 'disabled'}`,
            data: { scheduledAt: scheduledAt.toISOString(), reason: p.enabled ? p.state : 'DISABLED' },
          });
          return;
        }
        await emit({
          type: 'SCHEDULE_FIRED',
          pipelineId: id,
          message: `schedule fired (due ${scheduledAt.toISOString()}, ${lateMs} ms late)`,
          data: { scheduledAt: scheduledAt.toISOString(), lateMs, nextRunAt: (next as Date | null)?.toISOString() ?? null },
        });
        const res = await this.jobs.startRun(tx, emit, p, 'SCHEDULE', { scheduledAt: scheduledAt.toISOString() });
        if (res.job) dispatch = { job: res.job, parallel: p.allowParallelRuns };
      });
    } catch (err) {
      this.log.error({ err, pipelineId: id }, 'schedule fire failed');
      // Re-arm from the database so a transient failure does not stop the schedule.
      await this.refresh(id).catch(() => undefined);
      return;
    }
    const d = dispatch as { job: { id: string; pipelineId: string | null }; parallel: boolean } | null;
    if (d) await this.jobs.dispatch(d.job, d.parallel);
    this.scheduler.arm(id, next);
  }

  async setEnabled(id: string, enabled: boolean) {
    const p = await this.db.pipeline.findUnique({ where: { id } });
    if (!p) throw new NotFoundError('Pipeline', id);
    if (p.enabled !== enabled) {
      await this.events.transaction(async (tx, emit) => {
        await tx.pipeline.update({ where: { id }, data: { enabled, version: { increment: 1 } } });
        await emit({
          type: enabled ? 'PIPELINE_ENABLED' : 'PIPELINE_DISABLED',
          pipelineId: id,
          message: `pipeline "${p.name}" ${enabled ? 'enabled' : 'disabled'}: its ${p.trigger.toLowerCase()} trigger is ${enabled ? 'on' : 'off'}`,
        });
      });
    }
    await this.refresh(id, true);
    return this.db.pipeline.findUniqueOrThrow({ where: { id } });
  }

  /** A new push token for the pipeline's endpoint (replaces the old one); returned once, stored hashed. */
  async createPushToken(id: string): Promise<string> {
    const p = await this.db.pipeline.findUnique({ where: { id } });
    if (!p) throw new NotFoundError('Pipeline', id);
    const token = `sluice_push_${randomBytes(32).toString('base64url')}`;
    await this.db.pipeline.update({ where: { id }, data: { pushTokenHash: hash(token).toString('hex') } });
    return token;
  }

  /** True when `token` is the pipeline's push token (constant-time comparison). */
  verifyPushToken(p: Pick<Row, 'pushTokenHash'>, token: string): boolean {
    if (!p.pushTokenHash) return false;
    const expected = Buffer.from(p.pushTokenHash, 'hex');
    const got = hash(token);
    return expected.length === got.length && timingSafeEqual(expected, got);
  }

  /**
   * Durably accepts pushed records: they are committed (PushBatch rows) before this
   * returns; a SUBSCRIPTION job drains them in micro-batches through the mapping.
   */
  async acceptPush(p: Row, stream: string, records: Record<string, unknown>[]): Promise<{ accepted: number; jobId: string | null }> {
    if (p.state === 'STOP') throw new ConflictError('pipeline is STOP: start it before pushing records');
    if (records.length > MAX_PUSH_RECORDS) throw new ValidationError('too many records', [{ path: 'body', message: `at most ${MAX_PUSH_RECORDS} records per request` }]);
    let job: { id: string; pipelineId: string | null } | null = null;
    await this.events.transaction(async (tx, emit) => {
      const CHUNK = 5000;
      for (let i = 0; i < records.length; i += CHUNK) {
        const chunk = records.slice(i, i + CHUNK);
        await tx.pushBatch.create({ data: { pipelineId: p.id, stream, records: chunk as Prisma.InputJsonValue, count: chunk.length } });
      }
      await emit({ type: 'PUSH_ACCEPTED', pipelineId: p.id, message: `${records.length} pushed record(s) accepted for stream "${stream}"`, data: { count: records.length, stream } });
      job = await this.jobs.ensurePushJob(tx, emit, p);
    });
    const j = job as { id: string; pipelineId: string | null } | null;
    if (j) await this.jobs.dispatch(j);
    return { accepted: records.length, jobId: j?.id ?? null };
  }
}
