/**
 * Pipelines: source → (mapping) → destination, with the Formance lifecycle.
 *
 * Promises: an action not allowed in the current state throws InvalidTransitionError and
 * changes nothing; a stale `expectedVersion` throws ConflictError; every transition is one
 * transaction (state, jobs, event) that locks the pipeline row first, judges the action
 * against the state it finds there, and is published on `pipelineStateChanged` after commit.
 * Actions return at once; running jobs converge to the new state at their next batch boundary.
 */
import type { PrismaClient } from '../../db/client.js';
import { Prisma } from '../../generated/prisma/client.js';
import { getDestinationDriver, getSourceDriver } from '../../engine/drivers/index.js';
import type { Catalog, ConfiguredStream, StreamStates, SyncMode, WriteMode } from '../../engine/drivers/types.js';
import { ConflictError, ConnectorFailedError, InvalidTransitionError, NotFoundError, ResourceLimitError, ValidationError, type FieldError } from '../../errors.js';
import type { PreviewRecord } from '../../engine/preview.js';
import type { DriverTasks } from '../../engine/runner/driver-tasks.js';
import type { MappingSpec } from '../../engine/mapping/mapping.js';
import type { PipelineStateMessage, PubSub } from '../../pubsub/pubsub.js';
import { requireName, type DriverConfigResolver } from '../connector/connector.service.js';
import { CommitThenThrow, type EventService } from '../event/event.service.js';
import type { JobService } from '../job/job.service.js';
import { ACTIVE_STATUSES } from '../job/job.rows.js';
import { availableActions, isRunningState, next, type PipelineAction, type PipelineState, type PipelineTransition } from './lifecycle.js';
import { lockPipeline, recordTransition } from './pipeline.transitions.js';
import { checkSchedule, scheduleOf, type TriggerService } from './trigger.service.js';
import type { ScheduleUnit } from '../../engine/scheduler/schedule.js';
import { requireWorkspaceId } from '../../tenancy/scope.js';

export interface StreamInput {
  name: string;
  fields?: string[] | null;
  syncMode?: SyncMode | null;
  cursorField?: string[] | null;
  primaryKey?: string[] | null;
  destinationName?: string | null;
  writeMode?: WriteMode | null;
}

/** When and how a pipeline runs (Algolia task settings + Open Connector job options). */
export interface RunSettings {
  trigger?: 'ON_DEMAND' | 'SCHEDULE' | 'SUBSCRIPTION' | null;
  schedule?: { cron?: string | null; timezone?: string | null; every?: number | null; unit?: ScheduleUnit | null } | null;
  enabled?: boolean | null;
  allowParallelRuns?: boolean | null;
  concurrencyPolicy?: 'SKIP' | 'QUEUE' | null;
  catchUp?: 'SKIP' | 'RUN_ONCE' | null;
  executionTimeoutMs?: number | null;
  autoStopAfterFailures?: number | null;
}

function runSettings(input: RunSettings, current?: Row) {
  const trigger = input.trigger ?? current?.trigger ?? 'ON_DEMAND';
  const sched =
    input.schedule !== undefined
      ? { cron: input.schedule?.cron ?? null, timezone: input.schedule?.timezone ?? 'UTC', every: input.schedule?.every ?? null, unit: input.schedule?.unit ?? null }
      : current
        ? scheduleOf(current)
        : { cron: null, timezone: 'UTC', every: null, unit: null };
  checkSchedule(trigger, sched);
  const errors: FieldError[] = [];
  const timeout = input.executionTimeoutMs === undefined ? (current?.executionTimeoutMs ?? null) : input.executionTimeoutMs;
  if (timeout != null && (!Number.isInteger(timeout) || timeout < 1000 || timeout > 7 * 86_400_000)) {
    errors.push({ path: 'executionTimeoutMs', message: 'must be from 1000 ms to 7 days' });
  }
  const autoStop = input.autoStopAfterFailures ?? current?.autoStopAfterFailures ?? 5;
  if (!Number.isInteger(autoStop) || autoStop < 0 || autoStop > 1000) errors.push({ path: 'autoStopAfterFailures', message: 'must be from 0 (never) to 1000' });
  if (errors.length) throw new ValidationError('invalid pipeline', errors);
  return {
    data: {
      trigger,
      scheduleCron: sched.cron,
      scheduleTimezone: sched.timezone ?? 'UTC',
      scheduleEvery: sched.every,
      scheduleUnit: sched.unit,
      enabled: input.enabled ?? current?.enabled ?? true,
      allowParallelRuns: input.allowParallelRuns ?? current?.allowParallelRuns ?? false,
      concurrencyPolicy: input.concurrencyPolicy ?? current?.concurrencyPolicy ?? 'SKIP',
      catchUp: input.catchUp ?? current?.catchUp ?? 'SKIP',
      executionTimeoutMs: timeout,
      autoStopAfterFailures: autoStop,
    },
    rescheduled: input.schedule !== undefined || input.trigger != null || input.enabled != null,
  };
}

export interface PipelineInput extends RunSettings {
  name: string;
  sourceId: string;
  destinationId: string;
  mappingId?: string | null;
  streams?: StreamInput[] | null;
  writeMode?: WriteMode | null;
  batchSize?: number | null;
  failureThreshold?: number | null;
  maxAttempts?: number | null;
  retryBackoffMs?: number | null;
}

export interface PipelineUpdate extends RunSettings {
  id: string;
  name?: string | null;
  destinationId?: string | null;
  mappingId?: string | null;
  streams?: StreamInput[] | null;
  writeMode?: WriteMode | null;
  batchSize?: number | null;
  failureThreshold?: number | null;
  maxAttempts?: number | null;
  retryBackoffMs?: number | null;
  expectedVersion?: number | null;
}

/** The numeric settings out of range, and a write mode the destination driver does not support. */
function settingErrors(
  input: { writeMode: WriteMode; batchSize: number; failureThreshold: number; maxAttempts: number; retryBackoffMs: number },
  destDriver: ReturnType<typeof getDestinationDriver>,
): FieldError[] {
  const errors: FieldError[] = [];
  if (!Number.isInteger(input.batchSize) || input.batchSize < 1 || input.batchSize > 100_000) {
    errors.push({ path: 'batchSize', message: 'must be a whole number from 1 to 100000' });
  }
  if (!(input.failureThreshold >= 0 && input.failureThreshold <= 100)) errors.push({ path: 'failureThreshold', message: 'must be a percentage from 0 to 100' });
  if (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1 || input.maxAttempts > 20) {
    errors.push({ path: 'maxAttempts', message: 'must be a whole number from 1 to 20' });
  }
  if (!Number.isInteger(input.retryBackoffMs) || input.retryBackoffMs < 0 || input.retryBackoffMs > 3_600_000) {
    errors.push({ path: 'retryBackoffMs', message: 'must be from 0 to 3600000 milliseconds' });
  }
  if (destDriver && !destDriver.supportedWriteModes.includes(input.writeMode)) {
    errors.push({ path: 'writeMode', message: `driver "${destDriver.name}" supports ${destDriver.supportedWriteModes.join(', ')}` });
  }
  return errors;
}

/** Dead letters one REPLAY job takes; run it again for more. */
export const MAX_REPLAY = 100_000;

type Row = NonNullable<Awaited<ReturnType<PrismaClient['pipeline']['findUnique']>>>;

export class PipelineService {
  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    private readonly pubsub: PubSub,
    private readonly jobs: JobService,
    /** Re-arms schedules after changes. */
    private readonly triggers: Pick<TriggerService, 'refresh'>,
    /** Connector configs for drivers, secrets decrypted. */
    private readonly driverConfig: DriverConfigResolver,
    /** Where previews and discovery run: a worker thread with time and memory limits. */
    private readonly driverTasks: DriverTasks,
  ) {}

  async get(id: string): Promise<Row> {
    const p = await this.db.pipeline.findUnique({ where: { id } });
    if (!p) throw new NotFoundError('Pipeline', id);
    return p;
  }

  availableActions(p: Pick<Row, 'state' | 'previousState'>): PipelineAction[] {
    return availableActions(p.state as PipelineState, p.previousState as PipelineState | null);
  }

  /** Feldera: active only if the pipeline runs and none of its connectors is paused. */
  async activity(p: Row): Promise<{ active: boolean; reason: string | null }> {
    if (!isRunningState(p.state as PipelineState)) return { active: false, reason: `pipeline is ${p.state}` };
    const paused = await this.db.connector.findMany({ where: { id: { in: [p.sourceId, p.destinationId] }, paused: true }, select: { name: true } });
    if (paused.length) return { active: false, reason: `connector paused: ${paused.map((c) => c.name).join(', ')}` };
    return { active: true, reason: null };
  }

  /**
   * Config as code (plan): the checks of create that need neither stored rows nor the
   * source's catalog (name, run settings and schedule, numeric ranges, the destination
   * driver's write modes), so a document is refused before anything is written. The stream
   * checks against the catalog still run at create / update. Throws ValidationError with
   * create's paths.
   */
  checkSettings(input: Omit<PipelineInput, 'sourceId' | 'destinationId' | 'mappingId' | 'streams'> & { destinationDriver: string }): void {
    requireName(input.name);
    runSettings(input);
    const errors = settingErrors(
      {
        writeMode: input.writeMode ?? 'APPEND',
        batchSize: input.batchSize ?? 5000,
        failureThreshold: input.failureThreshold ?? 5,
        maxAttempts: input.maxAttempts ?? 3,
        retryBackoffMs: input.retryBackoffMs ?? 10_000,
      },
      getDestinationDriver(input.destinationDriver),
    );
    if (errors.length) throw new ValidationError('invalid pipeline', errors);
  }

  async create(input: PipelineInput) {
    const name = requireName(input.name);
    const settings = runSettings(input);
    const resolved = await this.resolve({
      sourceId: input.sourceId,
      destinationId: input.destinationId,
      mappingId: input.mappingId ?? null,
      streams: input.streams ?? null,
      writeMode: input.writeMode ?? 'APPEND',
      batchSize: input.batchSize ?? 5000,
      failureThreshold: input.failureThreshold ?? 5,
      maxAttempts: input.maxAttempts ?? 3,
      retryBackoffMs: input.retryBackoffMs ?? 10_000,
    });
    return this.events.transaction(async (tx, emit) => {
      const p = await tx.pipeline.create({
        data: {
          workspaceId: requireWorkspaceId(),
          name,
          sourceId: input.sourceId,
          destinationId: input.destinationId,
          mappingId: input.mappingId ?? null,
          streams: resolved.streams as unknown as Prisma.InputJsonValue,
          writeMode: resolved.writeMode,
          batchSize: resolved.batchSize,
          failureThreshold: resolved.failureThreshold,
          maxAttempts: resolved.maxAttempts,
          retryBackoffMs: resolved.retryBackoffMs,
          ...settings.data,
        },
      });
      await emit({ type: 'PIPELINE_CREATED', pipelineId: p.id, message: `pipeline "${name}" created` });
      return p;
    });
  }

  async update(input: PipelineUpdate) {
    const current = await this.get(input.id);
    const name = input.name == null ? current.name : requireName(input.name);
    const settings = runSettings(input, current);
    const resolved = await this.resolve({
      sourceId: current.sourceId,
      destinationId: input.destinationId ?? current.destinationId,
      mappingId: input.mappingId === undefined ? current.mappingId : input.mappingId,
      streams: input.streams ?? (current.streams as unknown as StreamInput[]),
      writeMode: input.writeMode ?? (current.writeMode as WriteMode),
      batchSize: input.batchSize ?? current.batchSize,
      failureThreshold: input.failureThreshold ?? current.failureThreshold,
      maxAttempts: input.maxAttempts ?? current.maxAttempts,
      retryBackoffMs: input.retryBackoffMs ?? current.retryBackoffMs,
    });
    return this.events.transaction(async (tx, emit) => {
      // Without expectedVersion nothing is asked to be unchanged: a lifecycle transition that
      // committed while the config was validated (discovery runs in a worker) is no conflict.
      const version = input.expectedVersion ?? (await tx.pipeline.findUniqueOrThrow({ where: { id: current.id }, select: { version: true } })).version;
      const res = await tx.pipeline.updateMany({
        where: { id: current.id, version },
        data: {
          name,
          destinationId: input.destinationId ?? current.destinationId,
          mappingId: input.mappingId === undefined ? current.mappingId : input.mappingId,
          streams: resolved.streams as unknown as Prisma.InputJsonValue,
          writeMode: resolved.writeMode,
          batchSize: resolved.batchSize,
          failureThreshold: resolved.failureThreshold,
          maxAttempts: resolved.maxAttempts,
          retryBackoffMs: resolved.retryBackoffMs,
          ...settings.data,
          version: { increment: 1 },
        },
      });
      if (res.count === 0) throw await this.conflict(tx, current.id);
      await emit({ type: 'PIPELINE_UPDATED', pipelineId: current.id, message: `pipeline "${name}" updated` });
      return tx.pipeline.findUniqueOrThrow({ where: { id: current.id } });
    }).then(async (p) => {
      await this.triggers.refresh(p.id, settings.rescheduled);
      return this.get(p.id);
    });
  }

  async delete(id: string, expectedVersion?: number | null) {
    let afterCommit = () => {};
    const deleted = await this.events.transaction(async (tx, emit) => {
      const p = await lockPipeline(tx, id);
      if (expectedVersion != null && expectedVersion !== p.version) throw new ConflictError('pipeline changed concurrently', p.version);
      afterCommit = await this.jobs.stopActiveJobs(tx, emit, id, 'CANCELLED', true);
      await tx.pipeline.delete({ where: { id } });
      await emit({ type: 'PIPELINE_DELETED', pipelineId: id, message: `pipeline "${p.name}" deleted` });
      return p;
    });
    afterCommit();
    return deleted;
  }

  /**
   * Applies a lifecycle action. The state is read under the pipeline's lock, so concurrent
   * actions apply one after another, each to the state the previous one left.
   */
  async act(id: string, action: PipelineTransition, expectedVersion?: number | null): Promise<Row> {
    let message: PipelineStateMessage | null = null;
    let afterCommit = () => {};
    let dispatch: { id: string; pipelineId: string | null }[] = [];
    await this.events.transaction(async (tx, emit) => {
      [message, afterCommit, dispatch] = [null, () => {}, []];
      const p = await lockPipeline(tx, id);
      const state = p.state as PipelineState;
      const prev = p.previousState as PipelineState | null;
      const to = next(state, action, prev);
      if (to === null) throw new InvalidTransitionError(action, state, availableActions(state, prev));
      if (expectedVersion != null && expectedVersion !== p.version) {
        throw new ConflictError(`pipeline is at version ${p.version}, not ${expectedVersion}`, p.version);
      }
      switch (action) {
        case 'START': {
          message = await recordTransition(tx, emit, { ...p, state }, action, to);
          dispatch.push(await this.jobs.create(tx, emit, { ...p, state: to }, 'SYNC', 'START'));
          break;
        }
        case 'STOP':
          afterCommit = await this.jobs.stopActiveJobs(tx, emit, id, 'CANCELLED');
          message = await recordTransition(tx, emit, { ...p, state }, action, to);
          break;
        case 'PAUSE':
          afterCommit = await this.jobs.stopActiveJobs(tx, emit, id, 'PAUSED');
          message = await recordTransition(tx, emit, { ...p, state }, action, to);
          break;
        case 'RESUME': {
          message = await recordTransition(tx, emit, { ...p, state }, action, to);
          const paused = await tx.job.findMany({ where: { pipelineId: id, status: 'PAUSED' }, orderBy: { createdAt: 'asc' } });
          for (const j of paused) {
            await tx.job.update({ where: { id: j.id }, data: { status: 'QUEUED' } });
            await emit({ type: 'JOB_QUEUED', pipelineId: id, jobId: j.id, message: 'job queued to resume from its checkpoint' });
            dispatch.push(j);
          }
          break;
        }
        case 'RESET': {
          afterCommit = await this.jobs.stopActiveJobs(tx, emit, id, 'CANCELLED', true);
          message = await recordTransition(tx, emit, { ...p, state }, action, to, { clearCursor: true });
          dispatch.push(await this.jobs.create(tx, emit, { ...p, state: to, cursor: null }, 'RESET', 'RESET'));
          break;
        }
      }
    });
    afterCommit();
    if (message) this.pubsub.publish('pipelineStateChanged', id, message);
    for (const j of dispatch) await this.jobs.dispatch(j);
    await this.triggers.refresh(id);
    return this.get(id);
  }

  /**
   * replayFailedRecords: a REPLAY job re-runs dead-lettered source records through the
   * pipeline's current mapping into its destination. Records that fail again are
   * dead-lettered under the new job; the replayed ones are removed when it succeeds.
   */
  async replayFailed(id: string, filter: { jobId?: string | null; stream?: string | null; stage?: string | null; ids?: string[] | null }) {
    const job = await this.events.transaction(async (tx, emit) => {
      const p = await lockPipeline(tx, id);
      if (!isRunningState(p.state as PipelineState)) throw new InvalidTransitionError('REPLAY', p.state, this.availableActions(p));
      const active = await tx.job.findFirst({ where: { pipelineId: id, status: { in: [...ACTIVE_STATUSES] } } });
      if (active) throw new ConflictError(`pipeline already has an active job (${active.id}, ${active.status})`);
      const letters = await tx.deadLetter.findMany({
        where: {
          pipelineId: id,
          ...(filter.jobId ? { jobId: filter.jobId } : {}),
          ...(filter.stream ? { stream: filter.stream } : {}),
          ...(filter.stage ? { stage: filter.stage } : {}),
          ...(filter.ids?.length ? { id: { in: filter.ids } } : {}),
        },
        orderBy: { id: 'asc' },
        take: MAX_REPLAY,
        select: { id: true },
      });
      if (!letters.length) throw new ValidationError('nothing to replay', [{ path: 'filter', message: 'no dead letters match' }]);
      return this.jobs.create(tx, emit, p, 'REPLAY', 'MANUAL', { deadLetterIds: letters.map((l) => l.id) });
    });
    await this.jobs.dispatch(job);
    return job;
  }

  /** Pulls up to `limit` records from the live source and maps them; writes nothing. */
  async preview(id: string, limit: number, stream?: string | null): Promise<PreviewRecord[]> {
    const p = await this.get(id);
    const [source, mapping] = await Promise.all([
      this.db.connector.findUniqueOrThrow({ where: { id: p.sourceId } }),
      p.mappingId ? this.db.mapping.findUnique({ where: { id: p.mappingId } }) : null,
    ]);
    let streams = p.streams as unknown as ConfiguredStream[];
    if (stream) {
      streams = streams.filter((s) => s.name === stream);
      if (!streams.length) throw new ValidationError('unknown stream', [{ path: 'stream', message: `the pipeline has no stream "${stream}"` }]);
    }
    let scrub = (text: string) => text;
    try {
      const dc = await this.driverConfig(source);
      scrub = dc.scrub;
      const mappingSpec = (mapping?.spec ?? null) as MappingSpec | null;
      return await this.driverTasks.run({ kind: 'preview', driver: source.driver, config: dc.config, streams, mapping: mappingSpec, limit, files: dc.files }, dc.secrets);
    } catch (err) {
      if (err instanceof ResourceLimitError) throw err;
      throw new ConnectorFailedError(`reading from "${source.name}" failed: ${scrub((err as Error).message)}`, source.id);
    }
  }

  /** runPipeline: an ON_DEMAND run now (INIT or READY), under the pipeline's concurrency rules. */
  async run(id: string) {
    const { p, job } = await this.events.transaction(async (tx, emit) => {
      const p = await lockPipeline(tx, id);
      if (!isRunningState(p.state as PipelineState)) throw new InvalidTransitionError('RUN', p.state, this.availableActions(p));
      const { job, skipped } = await this.jobs.startRun(tx, emit, p, 'MANUAL');
      // A skipped run is recorded (RUN_SKIPPED) and answered CONFLICT.
      if (!job) return new CommitThenThrow(new ConflictError(skipped ?? 'pipeline already has an active job'));
      return { p, job };
    });
    await this.jobs.dispatch(job, p.allowParallelRuns);
    return job;
  }

  private async conflict(tx: Prisma.TransactionClient, id: string) {
    const now = await tx.pipeline.findUnique({ where: { id }, select: { version: true } });
    if (!now) return new NotFoundError('Pipeline', id);
    return new ConflictError(`pipeline was changed concurrently (version ${now.version})`, now.version);
  }

  /** Validates references, write mode and streams against the source's catalog. */
  private async resolve(input: {
    sourceId: string;
    destinationId: string;
    mappingId: string | null;
    streams: StreamInput[] | null;
    writeMode: WriteMode;
    batchSize: number;
    failureThreshold: number;
    maxAttempts: number;
    retryBackoffMs: number;
  }) {
    const errors: FieldError[] = [];
    const [source, destination, mapping] = await Promise.all([
      this.db.connector.findUnique({ where: { id: input.sourceId } }),
      this.db.connector.findUnique({ where: { id: input.destinationId } }),
      input.mappingId ? this.db.mapping.findUnique({ where: { id: input.mappingId } }) : null,
    ]);
    if (!source) errors.push({ path: 'sourceId', message: 'no such connector' });
    else if (source.role !== 'SOURCE') errors.push({ path: 'sourceId', message: `connector "${source.name}" is a ${source.role}, not a SOURCE` });
    if (!destination) errors.push({ path: 'destinationId', message: 'no such connector' });
    else if (destination.role !== 'DESTINATION') errors.push({ path: 'destinationId', message: `connector "${destination.name}" is a ${destination.role}, not a DESTINATION` });
    if (input.mappingId && !mapping) errors.push({ path: 'mappingId', message: 'no such mapping' });
    const destDriver = destination ? getDestinationDriver(destination.driver) : undefined;
    errors.push(...settingErrors(input, destDriver));
    if (errors.length) throw new ValidationError('invalid pipeline', errors);

    let catalog: Catalog | null = null;
    let discoverError: string | null = null;
    const srcDriver = getSourceDriver(source!.driver);
    let scrub = (text: string) => text;
    try {
      const dc = await this.driverConfig(source!);
      scrub = dc.scrub;
      catalog = srcDriver ? await this.driverTasks.run({ kind: 'discover', driver: srcDriver.name, config: dc.config, files: dc.files }, dc.secrets) : null;
    } catch (err) {
      discoverError = scrub((err as Error).message);
    }
    let streams: ConfiguredStream[];
    if (!input.streams || input.streams.length === 0) {
      if (!catalog) {
        throw new ValidationError('streams needed', [
          { path: 'streams', message: `the source could not be discovered (${discoverError ?? 'unknown driver'}); list the streams explicitly` },
        ]);
      }
      streams = catalog.streams.map((s) => ({
        name: s.name,
        fields: null,
        syncMode: s.supportedSyncModes.includes('INCREMENTAL') && input.writeMode !== 'OVERWRITE' ? 'INCREMENTAL' : 'FULL_REFRESH',
        cursorField: s.defaultCursorField ?? null,
        primaryKey: s.sourceDefinedPrimaryKey ?? null,
        destinationName: null,
      }));
    } else {
      streams = input.streams.map((s) => ({
        name: s.name,
        fields: s.fields ?? null,
        syncMode: s.syncMode ?? 'FULL_REFRESH',
        cursorField: s.cursorField ?? null,
        primaryKey: s.primaryKey ?? null,
        destinationName: s.destinationName ?? null,
        writeMode: s.writeMode ?? null,
      }));
    }
    const seen = new Set<string>();
    streams.forEach((s, i) => {
      const path = `streams[${i}]`;
      if (!s.name) errors.push({ path: `${path}.name`, message: 'must not be empty' });
      if (seen.has(s.name)) errors.push({ path: `${path}.name`, message: `stream "${s.name}" listed twice` });
      seen.add(s.name);
      const d = catalog?.streams.find((c) => c.name === s.name);
      if (catalog && !d) {
        errors.push({ path: `${path}.name`, message: `the source has no stream "${s.name}"; it has: ${catalog.streams.map((c) => c.name).join(', ')}` });
        return;
      }
      if (d) {
        if (!d.supportedSyncModes.includes(s.syncMode)) errors.push({ path: `${path}.syncMode`, message: `stream supports ${d.supportedSyncModes.join(', ')}` });
        const known = new Set(d.fields.map((f) => f.name));
        for (const f of s.fields ?? []) if (!known.has(f)) errors.push({ path: `${path}.fields`, message: `unknown field "${f}"` });
        s.primaryKey ??= d.sourceDefinedPrimaryKey ?? null;
      }
      const mode = s.writeMode ?? input.writeMode;
      if (mode === 'OVERWRITE' && s.syncMode === 'INCREMENTAL') {
        errors.push({ path: `${path}.syncMode`, message: 'OVERWRITE replaces the whole table: use FULL_REFRESH' });
      }
      if ((mode === 'UPSERT' || mode === 'MERGE') && !s.primaryKey?.length) {
        errors.push({ path: `${path}.primaryKey`, message: `${mode} needs a primary key` });
      }
      if (s.writeMode && destDriver && !destDriver.supportedWriteModes.includes(s.writeMode)) {
        errors.push({ path: `${path}.writeMode`, message: `driver "${destDriver.name}" supports ${destDriver.supportedWriteModes.join(', ')}` });
      }
    });
    if (errors.length) throw new ValidationError('invalid pipeline', errors);
    return { ...input, streams };
  }
}
