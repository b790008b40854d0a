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
import { checkInput } from '../../security/input-check.js';
import type { EventService } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';
import type { JobService } from '../job/job.service.js';
import { isRunningState, type PipelineState } from './lifecycle.js';
import { lockPipeline, lockPipelines } from './pipeline.transitions.js';

type Row = NonNullable<Awaited<ReturnType<PrismaClient['pipeline']['findUnique']>>>;

export const MAX_PUSH_RECORDS = 100_000;

/** Pipelines claimed per transaction when many fires are due at the same instant. */
const FIRE_CHUNK = 100;

type Dispatch = { job: { id: string; pipelineId: string | null }; parallel: boolean };

export function scheduleOf(p: Pick<Row, 'scheduleCron' | 'scheduleTimezone' | 'scheduleEvery' | 'scheduleUnit'>): Schedule {
  return { cron: p.scheduleCron, timezone: p.scheduleTimezone, every: p.scheduleEvery, unit: p.scheduleUnit as ScheduleUnit | null };
}

export function checkSchedule(trigger: string, s: Schedule): void {
  const errors = validateSchedule(s);
  if (trigger === 'SCHEDULE' && !s.cron && s.every == null && s.unit == null) errors.push({ path: 'schedule', message: 'a SCHEDULE trigger needs a cron expression or every/unit' });
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
    this.scheduler = new Scheduler((ids, at) => this.fireAll(ids, at));
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
    // Keep a planned fire — even one that is due but not fired yet (it fires at once when armed):
    // recomputing from now would silently drop it.
    if (next && p.nextRunAt && !reschedule) next = p.nextRunAt;
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
    const runOnce = new Map<number, string[]>();
    for (const p of pipelines) {
      if (p.nextRunAt && p.nextRunAt <= now) {
        if (p.catchUp === 'RUN_ONCE') {
          caughtUp++;
          const due = runOnce.get(p.nextRunAt.getTime());
          if (due) due.push(p.id);
          else runOnce.set(p.nextRunAt.getTime(), [p.id]);
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
    for (const [at, ids] of runOnce) await this.fireAll(ids, new Date(at));
    return { armed: this.scheduler.armedCount(), caughtUp, skipped };
  }

  private closed = false;

  close(): void {
    this.closed = true;
    this.scheduler.close();
  }

  /** A schedule fire: exactly one job per (pipeline, scheduled time), or a skip with its reason. */
  fire(id: string, scheduledAt: Date): Promise<void> {
    return this.fireAll([id], scheduledAt);
  }

  /**
   * The fires due at one instant, claimed FIRE_CHUNK pipelines per transaction with a few
   * queries each (a thousand pipelines on one cron are a burst, not a thousand transactions);
   * their jobs are dispatched once every fire is committed. A chunk that fails is retried one
   * pipeline at a time, so one bad pipeline does not cost the others their fire.
   */
  async fireAll(ids: string[], scheduledAt: Date): Promise<void> {
    const timerLateMs = Date.now() - scheduledAt.getTime();
    const dispatches: Dispatch[] = [];
    for (let i = 0; i < ids.length; i += FIRE_CHUNK) {
      // Shutting down: fires not yet claimed stay due and follow the catch-up policy at next start.
      if (this.closed) return;
      // Let requests waiting for the database in between chunks (one connection with PGlite).
      if (i > 0) await new Promise((r) => setTimeout(r, 0));
      const chunk = ids.slice(i, i + FIRE_CHUNK);
      for (const part of await this.claimOrSplit(chunk, scheduledAt, timerLateMs)) dispatches.push(part);
    }
    for (const d of dispatches) await this.jobs.dispatch(d.job, d.parallel);
  }

  private async claimOrSplit(ids: string[], scheduledAt: Date, timerLateMs: number): Promise<Dispatch[]> {
    try {
      return await this.claim(ids, scheduledAt, timerLateMs);
    } catch (err) {
      if (ids.length > 1) {
        const out: Dispatch[] = [];
        for (const id of ids) out.push(...(await this.claimOrSplit([id], scheduledAt, timerLateMs)));
        return out;
      }
      this.log.error({ err, pipelineId: ids[0] }, 'schedule fire failed');
      // Re-arm from the database so a transient failure does not stop the schedule.
      await this.refresh(ids[0]!).catch(() => undefined);
      return [];
    }
  }

  /**
   * Claims the pipelines' fire at `scheduledAt` in one transaction: locks their rows and takes
   * those still due then (a compare-and-set on nextRunAt, so a fire is claimed once across
   * processes), moves nextRunAt/lastRunAt on, records SCHEDULE_FIRED (or SCHEDULE_SKIPPED)
   * and starts their runs; re-arms them after commit.
   */
  private async claim(ids: string[], scheduledAt: Date, timerLateMs: number): Promise<Dispatch[]> {
    const at = scheduledAt.toISOString();
    const next = new Map<string, Date | null>();
    let dispatches: Dispatch[] = [];
    // One log line per fire, written once the fire committed.
    let fired: { message: string; fields: Record<string, unknown> }[] = [];
    await this.events.transaction(async (tx, _emit, emitMany) => {
      next.clear();
      dispatches = [];
      fired = [];
      // Rows locked in id order: a process claiming the same fire waits here, then finds them moved on.
      await lockPipelines(tx, ids);
      const due = await tx.pipeline.findMany({ where: { id: { in: ids }, nextRunAt: scheduledAt } });
      if (!due.length) return;
      const after = new Date(Math.max(Date.now(), scheduledAt.getTime()));
      const byNext = new Map<number | null, string[]>();
      for (const p of due) {
        const n = this.desiredNext(p, after, scheduledAt);
        next.set(p.id, n);
        const key = n?.getTime() ?? null;
        const group = byNext.get(key);
        if (group) group.push(p.id);
        else byNext.set(key, [p.id]);
      }
      for (const [key, group] of byNext) {
        await tx.pipeline.updateMany({ where: { id: { in: group } }, data: { nextRunAt: key === null ? null : new Date(key), lastRunAt: scheduledAt } });
      }
      const runnable = due.filter((p) => p.trigger === 'SCHEDULE' && p.enabled && isRunningState(p.state as PipelineState));
      const runs = await this.jobs.startRuns(tx, runnable, 'SCHEDULE', () => ({ scheduledAt: at }));
      const runOf = new Map(runnable.map((p, i) => [p.id, runs[i]!]));
      // Late as seen from outside: when the fire is recorded and its job queued (timerLateMs: when the timer ran).
      const lateMs = Date.now() - scheduledAt.getTime();
      const events: NewEvent[] = [];
      for (const p of due) {
        const run = runOf.get(p.id);
        if (!run) {
          events.push({
            type: 'SCHEDULE_SKIPPED',
            pipelineId: p.id,
            message: `schedule fire skipped: pipeline is ${p.enabled ? p.state : 'disabled'}`,
            data: { scheduledAt: at, reason: p.enabled ? p.state : 'DISABLED' },
          });
          fired.push({ message: 'schedule fire skipped', fields: { pipelineId: p.id, workspaceId: p.workspaceId, scheduledAt: at, reason: p.enabled ? p.state : 'DISABLED' } });
          continue;
        }
        events.push(
          {
            type: 'SCHEDULE_FIRED',
            pipelineId: p.id,
            message: `schedule fired (due ${at}, ${lateMs} ms late)`,
            data: { scheduledAt: at, lateMs, timerLateMs, nextRunAt: next.get(p.id)?.toISOString() ?? null },
          },
          ...run.events,
        );
        if (run.job) dispatches.push({ job: run.job, parallel: p.allowParallelRuns });
        fired.push({
          message: 'schedule fired',
          fields: { pipelineId: p.id, workspaceId: p.workspaceId, ...(run.job ? { jobId: run.job.id } : { skipped: run.skipped }), scheduledAt: at, lateMs, nextRunAt: next.get(p.id)?.toISOString() ?? null },
        });
      }
      await emitMany(events);
    });
    for (const f of fired) this.log.info(f.fields, f.message);
    for (const [id, n] of next) this.scheduler.arm(id, n);
    // Pipelines whose fire was not due any more (re-planned meanwhile, or claimed by another
    // process): arm whatever the database now plans, so their schedule keeps running.
    const stale = ids.filter((id) => !next.has(id));
    if (stale.length) {
      const rows = await this.db.pipeline.findMany({ where: { id: { in: stale } }, select: { id: true, nextRunAt: true } });
      for (const r of rows) if (r.nextRunAt && r.nextRunAt.getTime() !== scheduledAt.getTime()) this.scheduler.arm(r.id, r.nextRunAt);
    }
    return dispatches;
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
    if (records.length > MAX_PUSH_RECORDS) throw new ValidationError('too many records', [{ path: 'body', message: `at most ${MAX_PUSH_RECORDS} records per request` }]);
    // Stored as jsonb: no NUL character, bounded nesting (paths like `records[3].name`).
    checkInput(records, 'records', 'invalid records');
    let job: { id: string; pipelineId: string | null } | null = null;
    await this.events.transaction(async (tx, emit) => {
      job = null;
      const now = await lockPipeline(tx, p.id);
      if (now.state === 'STOP') throw new ConflictError('pipeline is STOP: start it before pushing records');
      const CHUNK = 5000;
      for (let i = 0; i < records.length; i += CHUNK) {
        const chunk = records.slice(i, i + CHUNK);
        await tx.pushBatch.create({ data: { pipelineId: p.id, stream, records: chunk as Prisma.InputJsonValue, count: chunk.length } });
      }
      await emit({ type: 'PUSH_ACCEPTED', pipelineId: p.id, message: `${records.length} pushed record(s) accepted for stream "${stream}"`, data: { count: records.length, stream } });
      job = await this.jobs.ensurePushJob(tx, emit, now);
    });
    const j = job as { id: string; pipelineId: string | null } | null;
    if (j) await this.jobs.dispatch(j);
    return { accepted: records.length, jobId: j?.id ?? null };
  }
}
