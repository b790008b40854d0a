import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, InvalidTransitionError, NotFoundError, ValidationError } from '../../errors.js';
import type { ConfiguredStream } from '../../engine/drivers/types.js';
import type { PipelineStateMessage } from '../../pubsub/pubsub.js';
import { ConnectorRef, SyncModeEnum, WriteModeEnum } from '../connector/connector.graphql.js';
import { MappingRef } from '../mapping/mapping.graphql.js';
import { ACTIONS, TRANSITIONS, type PipelineAction, type PipelineTransition } from './lifecycle.js';

export const PipelineStateEnum = builder.enumType('PipelineState', {
  description:
    'Lifecycle state of a pipeline. startPipeline: STOP → INIT; the first successful load: INIT → READY; ' +
    'pausePipeline / resumePipeline: INIT|READY ⇄ PAUSE; stopPipeline: → STOP; resetPipeline: → INIT with the cursor cleared.',
  values: {
    STOP: { description: 'Nothing runs and nothing is scheduled. New pipelines start here.' },
    INIT: { description: 'The initial load runs (from the saved cursor, or from scratch after a reset).' },
    READY: { description: 'Caught up; runs on its trigger, incrementally.' },
    PAUSE: { description: 'Paused; `resume` returns to `previousState` and continues from the cursor.' },
  } as const,
});

/** One description per action; typed by PipelineAction so a new action cannot go undocumented. */
const ACTION_DESCRIPTIONS: Record<PipelineAction, string> = {
  START: 'startPipeline: STOP → INIT, queueing the initial load.',
  STOP: 'stopPipeline: INIT, READY or PAUSE → STOP.',
  PAUSE: 'pausePipeline: INIT or READY → PAUSE.',
  RESUME: 'resumePipeline: PAUSE → the previous state.',
  RESET: 'resetPipeline: any state → INIT with the cursor cleared.',
  RUN: 'runPipeline: queue a SYNC run without a state change (INIT or READY only).',
};

export const PipelineActionEnum = builder.enumType('PipelineAction', {
  description: 'Something a client may do to a pipeline: a lifecycle transition, or RUN (see Pipeline.availableActions).',
  values: Object.fromEntries(ACTIONS.map((a) => [a, { value: a, description: ACTION_DESCRIPTIONS[a] }])) as {
    [K in PipelineAction]: { value: K; description: string };
  },
});

export const TriggerEnum = builder.enumType('PipelineTrigger', {
  description: 'What starts runs once the pipeline is READY (Algolia task triggers).',
  values: {
    ON_DEMAND: { description: 'Only runPipeline.' },
    SCHEDULE: { description: 'The schedule (cron or every N units), plus runPipeline.' },
    SUBSCRIPTION: { description: 'Records pushed to the pipeline endpoint (POST /pipelines/<id>/records), plus runPipeline.' },
  } as const,
});
const ScheduleUnitEnum = builder.enumType('ScheduleUnit', {
  description: 'Unit of an interval schedule (`every` N units). DAYS, WEEKS and MONTHS are calendar steps in UTC.',
  values: {
    MINUTES: { value: 'MINUTES', description: 'N × 60 seconds.' },
    HOURS: { value: 'HOURS', description: 'N × 3600 seconds.' },
    DAYS: { value: 'DAYS', description: 'N calendar days (UTC).' },
    WEEKS: { value: 'WEEKS', description: 'N × 7 calendar days (UTC).' },
    MONTHS: { value: 'MONTHS', description: 'N calendar months (UTC).' },
  } as const,
});
const ConcurrencyPolicyEnum = builder.enumType('ConcurrencyPolicy', {
  description: 'What a trigger does when it finds a job queued or running and parallel runs are off.',
  values: { SKIP: { description: 'Skip this run (an event says so).' }, QUEUE: { description: 'Queue a job behind the active one.' } } as const,
});
const CatchUpPolicyEnum = builder.enumType('CatchUpPolicy', {
  description: 'Schedule fires missed while Sluice was down.',
  values: { SKIP: { description: 'Skip them (an event says so).' }, RUN_ONCE: { description: 'Run once at start.' } } as const,
});

interface ScheduleShape {
  cron: string | null;
  timezone: string;
  every: number | null;
  unit: 'MINUTES' | 'HOURS' | 'DAYS' | 'WEEKS' | 'MONTHS' | null;
}
const ScheduleRef = builder.objectRef<ScheduleShape>('Schedule').implement({
  description: 'When a SCHEDULE pipeline fires: a cron expression in a time zone, or every N units.',
  fields: (t) => ({
    cron: t.exposeString('cron', { nullable: true, description: '5 fields, or 6 with seconds first.' }),
    timezone: t.exposeString('timezone', { description: 'IANA time zone the cron is evaluated in (default UTC); interval schedules ignore it.' }),
    every: t.exposeInt('every', { nullable: true, description: 'Fire every this many `unit`s (1–10000); null for a cron schedule.' }),
    unit: t.field({ type: ScheduleUnitEnum, nullable: true, description: 'Unit of `every`; null for a cron schedule.', resolve: (s) => s.unit }),
  }),
});
const ScheduleInput = builder.inputType('ScheduleInput', {
  description: 'Either `cron` (+ `timezone`) or `every` + `unit`.',
  fields: (t) => ({
    cron: t.string({ description: 'e.g. `0 */6 * * *`, or `*/10 * * * * *` with seconds.' }),
    timezone: t.string({ defaultValue: 'UTC', description: 'IANA time zone the cron is evaluated in.' }),
    every: t.int({ description: 'Fire every this many `unit`s (1–10000); give with `unit`, not with `cron`.' }),
    unit: t.field({ type: ScheduleUnitEnum, description: 'Unit of `every`; required with it.' }),
  }),
});

const ConfiguredStreamRef = builder.objectRef<ConfiguredStream>('ConfiguredStream').implement({
  description: 'A stream as configured in a pipeline (Airbyte syncCatalog entry).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Stream name as the source discovers it.' }),
    fields: t.stringList({ nullable: true, description: 'Selected fields; null means all.', resolve: (s) => s.fields ?? null }),
    syncMode: t.field({ type: SyncModeEnum, description: 'How each run reads this stream: all of it, or from the saved cursor.', resolve: (s) => s.syncMode }),
    cursorField: t.stringList({
      nullable: true,
      description: "Field the INCREMENTAL cursor follows; null means the source's default cursor field.",
      resolve: (s) => s.cursorField ?? null,
    }),
    primaryKey: t.stringList({
      nullable: true,
      description: 'Fields identifying a record, used by UPSERT and MERGE (defaults to the key the source defines); null when there is none.',
      resolve: (s) => s.primaryKey ?? null,
    }),
    destinationName: t.string({ description: 'Destination table / object; defaults to the stream name.', resolve: (s) => s.destinationName ?? s.name }),
    writeMode: t.field({ type: WriteModeEnum, nullable: true, description: "Overrides the pipeline's write mode for this stream.", resolve: (s) => s.writeMode ?? null }),
  }),
});

const StreamInput = builder.inputType('StreamInput', {
  description: 'One stream to sync and how (an Airbyte configured stream), checked against the source catalog when it can be discovered.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'A stream the source discovers; each stream at most once.' }),
    fields: t.stringList({ description: 'Selected fields; omit for all.' }),
    syncMode: t.field({
      type: SyncModeEnum,
      defaultValue: 'FULL_REFRESH',
      description: 'Must be one the stream supports; INCREMENTAL cannot be combined with the OVERWRITE write mode.',
    }),
    cursorField: t.stringList({ description: "Field the INCREMENTAL cursor follows; omit for the source's default." }),
    primaryKey: t.stringList({ description: 'Needed for UPSERT and MERGE (names after mapping).' }),
    destinationName: t.string({ description: 'Destination table / object; default the stream name.' }),
    writeMode: t.field({ type: WriteModeEnum, description: "Overrides the pipeline's write mode for this stream (e.g. INCREMENTAL + UPSERT = Airbyte's append + deduped)." }),
  }),
});

export const PipelineRef = builder.prismaNode('Pipeline', {
  id: { field: 'id', description: 'Global ID of the pipeline.' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'source → mapping → destination, with a lifecycle (STOP / INIT / READY / PAUSE).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name (1–200 characters).' }),
    source: t.relation('source', { description: 'The SOURCE connector records are read from; fixed at creation.' }),
    destination: t.relation('destination', { description: 'The DESTINATION connector records are written to.' }),
    mapping: t.relation('mapping', { nullable: true, description: 'The mapping applied to every record before it is written; null means records are written as read.' }),
    streams: t.field({
      type: [ConfiguredStreamRef],
      description: 'The streams each run syncs, with their sync settings.',
      resolve: (p) => p.streams as unknown as ConfiguredStream[],
    }),
    writeMode: t.field({ type: WriteModeEnum, description: 'How the destination applies records, for every stream that does not override it.', resolve: (p) => p.writeMode }),
    batchSize: t.exposeInt('batchSize', { description: 'Records per batch (1–100000); progress is checkpointed at each batch boundary.' }),
    failureThreshold: t.exposeFloat('failureThreshold', { description: 'Percent of failed records above which a job fails.' }),
    maxAttempts: t.exposeInt('maxAttempts', { description: 'Attempts per job for retryable failures; each retry resumes from the last checkpoint.' }),
    retryBackoffMs: t.exposeInt('retryBackoffMs', { description: 'First retry delay; each later one ×3 with jitter, capped at 10 minutes.' }),
    state: t.field({
      type: PipelineStateEnum,
      description: 'Lifecycle state; change it with the start/stop/pause/resume/resetPipeline mutations (see availableActions).',
      resolve: (p) => p.state,
    }),
    previousState: t.field({
      type: PipelineStateEnum,
      nullable: true,
      description: 'State before the last transition (resumePipeline returns to it from PAUSE); null before the first transition.',
      resolve: (p) => p.previousState,
    }),
    stateReason: t.exposeString('stateReason', {
      nullable: true,
      description: 'Why the pipeline is where it is, e.g. `last job failed: …` or why it was stopped automatically; null when there is nothing to say (each transition sets or clears it).',
    }),
    cursor: t.field({ type: 'JSON', nullable: true, description: 'Per-stream state confirmed by the destination.', resolve: (p) => p.cursor }),
    version: t.exposeInt('version', { description: 'Increases on every change; pass as expectedVersion for optimistic concurrency.' }),
    availableActions: t.field({
      type: [PipelineActionEnum],
      description: 'Lifecycle actions allowed in the current state.',
      resolve: (p, _a, ctx) => ctx.services.pipelines.availableActions(p),
    }),
    active: t.boolean({
      description: 'True when the pipeline runs (INIT/READY) and none of its connectors is paused.',
      resolve: async (p, _a, ctx) => (await ctx.services.pipelines.activity(p)).active,
    }),
    inactiveReason: t.string({
      nullable: true,
      description: 'Why `active` is false, e.g. `pipeline is STOP` or `connector paused: <names>`; null when active.',
      resolve: async (p, _a, ctx) => (await ctx.services.pipelines.activity(p)).reason }),
    jobs: t.relatedConnection('jobs', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description: 'The jobs of this pipeline (sync, reset, replay and push runs), newest first; 20 per page by default, at most 100.',
      query: { orderBy: { id: 'desc' } },
    }),
    currentJob: t.prismaField({
      type: 'Job',
      nullable: true,
      description: 'The queued, running or paused job, if any.',
      resolve: (q, p, _a, ctx) =>
        ctx.db.job.findFirst({ ...q, where: { pipelineId: p.id, status: { in: ['QUEUED', 'RUNNING', 'PAUSED'] } }, orderBy: { id: 'desc' } }),
    }),
    deadLetters: t.relatedConnection('deadLetters', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description:
        "Records that failed to be read, mapped or written in this pipeline's jobs, newest first; re-run them with replayFailedRecords. 20 per page by default, at most 100.",
      query: { orderBy: { id: 'desc' } },
    }),
    trigger: t.field({ type: TriggerEnum, description: 'What starts runs while the pipeline is INIT or READY and enabled.', resolve: (p) => p.trigger }),
    schedule: t.field({
      type: ScheduleRef,
      nullable: true,
      description: 'When the SCHEDULE trigger fires; null when no schedule is set.',
      resolve: (p) =>
        p.scheduleCron || p.scheduleEvery
          ? { cron: p.scheduleCron, timezone: p.scheduleTimezone, every: p.scheduleEvery, unit: p.scheduleUnit }
          : null,
    }),
    enabled: t.exposeBoolean('enabled', { description: 'Whether the trigger fires (enablePipeline / disablePipeline); the lifecycle state is separate.' }),
    nextRunAt: t.expose('nextRunAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Next planned schedule fire; null when nothing is scheduled (trigger not SCHEDULE, disabled, or not INIT/READY).',
    }),
    lastRunAt: t.expose('lastRunAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Planned time of the last schedule fire; null if the schedule never fired. Manual and push runs do not set it.',
    }),
    allowParallelRuns: t.exposeBoolean('allowParallelRuns', {
      description: 'Whether a triggered run may start while another job is queued or running; when false, concurrencyPolicy decides.',
    }),
    concurrencyPolicy: t.field({
      type: ConcurrencyPolicyEnum,
      description: 'What a trigger does when a job is already active and parallel runs are off.',
      resolve: (p) => p.concurrencyPolicy,
    }),
    catchUp: t.field({ type: CatchUpPolicyEnum, description: 'What happens at start-up to schedule fires missed while Sluice was down.', resolve: (p) => p.catchUp }),
    executionTimeoutMs: t.exposeInt('executionTimeoutMs', {
      nullable: true,
      description: 'Longest a job may run, in ms; a job running longer is stopped and fails. Null means no limit.',
    }),
    autoStopAfterFailures: t.exposeInt('autoStopAfterFailures', { description: 'Consecutive failed jobs after which the pipeline stops (0: never).' }),
    consecutiveFailures: t.exposeInt('consecutiveFailures', {
      description: 'Failed jobs in a row; a successful job resets it to 0. Reaching autoStopAfterFailures stops the pipeline.',
    }),
    pushPath: t.string({
      description: 'Where to POST records (JSON array or NDJSON) for the SUBSCRIPTION trigger, with `Authorization: Bearer <push token>`.',
      resolve: (p) => `/pipelines/${p.id}/records`,
    }),
    hasPushToken: t.boolean({
      description: 'Whether a push token has been created (createPushToken); the token itself is only shown when created.',
      resolve: (p) => !!p.pushTokenHash,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the pipeline was created.' }),
    updatedAt: t.expose('updatedAt', {
      type: 'DateTime',
      description: 'When the pipeline row last changed: settings, state, cursor or schedule bookkeeping.',
    }),
  }),
});

const PipelineFilter = builder.inputType('PipelineFilter', {
  description: 'Filters for `pipelines`; every condition given must hold.',
  fields: (t) => ({
    state: t.field({ type: PipelineStateEnum, description: 'Only pipelines in this state.' }),
    sourceId: t.globalID({ for: ConnectorRef, description: 'Only pipelines reading from this source connector.' }),
    destinationId: t.globalID({ for: ConnectorRef, description: 'Only pipelines writing to this destination connector.' }),
    nameContains: t.string({ description: 'Only pipelines whose name contains this text (case-insensitive).' }),
  }),
});

type Filter = typeof PipelineFilter.$inferInput;
function pipelineWhere(f: Filter | null | undefined) {
  return {
    ...(f?.state ? { state: f.state } : {}),
    ...(f?.sourceId ? { sourceId: f.sourceId.id } : {}),
    ...(f?.destinationId ? { destinationId: f.destinationId.id } : {}),
    ...(f?.nameContains ? { name: { contains: f.nameContains, mode: 'insensitive' as const } } : {}),
  };
}

builder.queryFields((t) => ({
  pipeline: t.prismaField({
    type: 'Pipeline',
    nullable: true,
    description: 'A pipeline by ID; null when there is none (in your workspace).',
    args: { id: t.arg.globalID({ required: true, for: PipelineRef, description: 'Global ID of the pipeline.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.pipeline.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  pipelines: t.prismaConnection({
    type: 'Pipeline',
    cursor: 'id',
    ...PAGE,
    description: 'The pipelines of your workspace, oldest first; 20 per page by default, at most 100.',
    args: { filter: t.arg({ type: PipelineFilter, description: 'Only pipelines matching every condition given; omit for all.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.pipeline.findMany({ ...query, where: pipelineWhere(args.filter), orderBy: { id: 'asc' } }),
    totalCount: (_p, args, ctx) => ctx.db.pipeline.count({ where: pipelineWhere(args.filter) }),
  }),
}));

const CreatePipelineInput = builder.inputType('CreatePipelineInput', {
  description: 'A new pipeline. It starts in STOP: nothing runs until startPipeline.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name (1–200 characters after trimming).' }),
    sourceId: t.globalID({ required: true, for: ConnectorRef, description: 'A SOURCE connector; it cannot be changed later.' }),
    destinationId: t.globalID({ required: true, for: ConnectorRef, description: 'A DESTINATION connector whose driver supports the write modes used.' }),
    mappingId: t.globalID({ for: MappingRef, description: 'Mapping applied to every record; omit to write records as read.' }),
    streams: t.field({ type: [StreamInput], description: "Omit to select every stream the source discovers." }),
    writeMode: t.field({
      type: WriteModeEnum,
      defaultValue: 'APPEND',
      description: 'How the destination applies records, for every stream that does not override it; the destination driver must support it.',
    }),
    batchSize: t.int({ defaultValue: 5000, description: 'Records per batch (1–100000); checkpoints happen at batch boundaries.' }),
    failureThreshold: t.float({ defaultValue: 5, description: 'Percent of failed records above which a job fails.' }),
    maxAttempts: t.int({ defaultValue: 3, description: 'Attempts per job for retryable failures (1–20).' }),
    retryBackoffMs: t.int({ defaultValue: 10000, description: 'First retry delay in ms; later ones ×3 with jitter.' }),
    trigger: t.field({ type: TriggerEnum, description: 'What starts runs (default ON_DEMAND); SCHEDULE needs `schedule`.' }),
    schedule: t.field({ type: ScheduleInput, description: 'When the SCHEDULE trigger fires; required for that trigger.' }),
    enabled: t.boolean({ description: 'Whether the trigger fires (default true).' }),
    allowParallelRuns: t.boolean({ description: 'Let triggered runs start while another job is active (default false).' }),
    concurrencyPolicy: t.field({ type: ConcurrencyPolicyEnum, description: 'With parallel runs off and a job active: SKIP the run (default) or QUEUE it.' }),
    catchUp: t.field({ type: CatchUpPolicyEnum, description: 'Schedule fires missed while Sluice was down: SKIP them (default) or RUN_ONCE at start.' }),
    executionTimeoutMs: t.int({ description: 'A job running longer fails (1000 ms – 7 days).' }),
    autoStopAfterFailures: t.int({ description: 'Stop after this many consecutive failed jobs (0: never; default 5).' }),
  }),
});

const UpdatePipelineInput = builder.inputType('UpdatePipelineInput', {
  description: 'Changes take effect from the next job.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: PipelineRef, description: 'The pipeline to change.' }),
    name: t.string({ description: 'New display name (1–200 characters); omit to keep.' }),
    destinationId: t.globalID({ for: ConnectorRef, description: 'New DESTINATION connector; omit to keep.' }),
    mappingId: t.globalID({ for: MappingRef, description: 'Set to null to remove the mapping.' }),
    streams: t.field({
      type: [StreamInput],
      description: 'Replaces the whole stream list (an empty list selects every stream the source discovers); omit to keep.',
    }),
    writeMode: t.field({ type: WriteModeEnum, description: 'New default write mode; omit to keep.' }),
    batchSize: t.int({ description: 'Records per batch (1–100000); omit to keep.' }),
    failureThreshold: t.float({ description: 'Percent (0–100) of failed records above which a job fails; omit to keep.' }),
    maxAttempts: t.int({ description: 'Attempts per job for retryable failures (1–20); omit to keep.' }),
    retryBackoffMs: t.int({ description: 'First retry delay in ms (0–3600000); omit to keep.' }),
    trigger: t.field({ type: TriggerEnum, description: 'New trigger; omit to keep. SCHEDULE needs a schedule (given here or already set).' }),
    schedule: t.field({ type: ScheduleInput, description: 'Replaces the schedule; null removes it, omit to keep.' }),
    enabled: t.boolean({ description: 'Turn the trigger on or off; omit to keep.' }),
    allowParallelRuns: t.boolean({ description: 'Let triggered runs start while another job is active; omit to keep.' }),
    concurrencyPolicy: t.field({ type: ConcurrencyPolicyEnum, description: 'SKIP or QUEUE a run that finds a job active; omit to keep.' }),
    catchUp: t.field({ type: CatchUpPolicyEnum, description: 'SKIP or RUN_ONCE schedule fires missed while down; omit to keep.' }),
    executionTimeoutMs: t.int({ description: 'A job running longer fails (1000 ms – 7 days).' }),
    autoStopAfterFailures: t.int({ description: 'Stop after this many consecutive failed jobs (0: never; default 5).' }),
    expectedVersion: t.int({ description: 'Fail with CONFLICT unless the pipeline is at this version (Pipeline.version).' }),
  }),
});

const PipelineActionInput = builder.inputType('PipelineActionInput', {
  description: 'The pipeline a lifecycle action or deletion applies to, optionally guarded by its version.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: PipelineRef, description: 'The pipeline.' }),
    expectedVersion: t.int({ description: 'Fail with CONFLICT unless the pipeline is at this version.' }),
  }),
});

const PipelineIdInput = builder.inputType('PipelineIdInput', {
  description: 'Identifies one pipeline.',
  fields: (t) => ({ id: t.globalID({ required: true, for: PipelineRef, description: 'The pipeline.' }) }),
});

const actionDocs: Record<PipelineTransition, string> = {
  START: 'STOP → INIT: queues the initial load (from the saved cursor).',
  STOP: 'Any → STOP: a running job ends at its next batch boundary; the cursor is kept.',
  PAUSE: 'INIT|READY → PAUSE: a running job ends at its next batch boundary with its cursor checkpointed.',
  RESUME: 'PAUSE → previousState: the paused job continues from its cursor.',
  RESET: 'Any → INIT with the cursor cleared: running jobs are discarded and a fresh load is queued.',
};

const ReplayFailedRecordsInput = builder.inputType('ReplayFailedRecordsInput', {
  description: 'Which dead letters of the pipeline to replay (all when no filter is given; at most 100000 per job).',
  fields: (t) => ({
    pipelineId: t.globalID({ required: true, for: PipelineRef, description: 'The pipeline whose dead letters to replay.' }),
    jobId: t.globalID({ description: 'Only the dead letters of this job.' }),
    stream: t.string({ description: 'Only the dead letters of this stream.' }),
    stage: t.string({ description: 'READ, MAPPING or WRITE.' }),
    ids: t.globalIDList({ description: 'Only these dead letters.' }),
  }),
});

builder.mutationFields((t) => ({
  replayFailedRecords: t.prismaField({
    type: 'Job',
    description:
      "Queues a REPLAY job that re-runs dead-lettered source records through the pipeline's current mapping into its destination " +
      '(e.g. after a mapping fix). Records that fail again are dead-lettered under the new job; the replayed ones are removed when it succeeds.',
    args: { input: t.arg({ type: ReplayFailedRecordsInput, required: true, description: 'The pipeline and which of its dead letters to replay.' }) },
    errors: {
      types: [ValidationError, NotFoundError, InvalidTransitionError, ConflictError],
      dataField: { name: 'job', description: 'The queued REPLAY job.' },
    },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.pipelines.replayFailed(input.pipelineId.id, {
        jobId: input.jobId?.id ?? null,
        stream: input.stream ?? null,
        stage: input.stage ?? null,
        ids: input.ids?.map((i) => i.id) ?? null,
      }),
  }),
  createPipeline: t.prismaField({
    type: 'Pipeline',
    description:
      "Creates a pipeline in STOP after checking its connectors, mapping, settings and streams against the source's discovered catalog; " +
      'VALIDATION_FAILED lists every problem (also when streams are omitted and the source cannot be discovered). Nothing runs until startPipeline.',
    args: { input: t.arg({ type: CreatePipelineInput, required: true, description: 'The new pipeline.' }) },
    errors: { types: [ValidationError], dataField: { name: 'pipeline', description: 'The created pipeline, in STOP.' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.pipelines.create({ ...input, sourceId: input.sourceId.id, destinationId: input.destinationId.id, mappingId: input.mappingId?.id ?? null }),
  }),
  updatePipeline: t.prismaField({
    type: 'Pipeline',
    description:
      "Changes a pipeline's settings (omitted fields keep their value), validated as in createPipeline; effective from the next job. " +
      'NOT_FOUND when the pipeline does not exist; CONFLICT when it is not at expectedVersion.',
    args: { input: t.arg({ type: UpdatePipelineInput, required: true, description: 'The pipeline and the settings to change.' }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'pipeline', description: 'The pipeline with its new settings.' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.pipelines.update({
        ...input,
        id: input.id.id,
        destinationId: input.destinationId?.id ?? undefined,
        mappingId: input.mappingId === undefined ? undefined : (input.mappingId?.id ?? null),
      }),
  }),
  deletePipeline: t.prismaField({
    type: 'Pipeline',
    description: 'Deletes the pipeline, its jobs and dead letters; active jobs are cancelled. Its events remain in the log.',
    args: { input: t.arg({ type: PipelineActionInput, required: true, description: 'The pipeline, and optionally the version it must be at (else CONFLICT).' }) },
    errors: { types: [NotFoundError, ConflictError], dataField: { name: 'pipeline', description: 'The pipeline as it was just before it was deleted.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.pipelines.delete(input.id.id, input.expectedVersion),
  }),
  ...Object.fromEntries(
    TRANSITIONS.map((action) => [
      `${action.toLowerCase()}Pipeline`,
      t.prismaField({
        type: 'Pipeline',
        description: `${actionDocs[action]} INVALID_TRANSITION (listing the allowed actions) when not allowed in the current state; CONFLICT when not at expectedVersion.`,
        args: { input: t.arg({ type: PipelineActionInput, required: true, description: 'The pipeline, and optionally the version it must be at.' }) },
        errors: {
          types: [NotFoundError, InvalidTransitionError, ConflictError],
          dataField: { name: 'pipeline', description: 'The pipeline in its new state (running jobs follow at their next batch boundary).' },
        },
        resolve: (_q, _r, { input }, ctx) => ctx.services.pipelines.act(input.id.id, action, input.expectedVersion),
      }),
    ]),
  ),
  enablePipeline: t.prismaField({
    type: 'Pipeline',
    description: "Turns the pipeline's trigger on (schedule armed, pushes drained) without touching its lifecycle state.",
    args: { input: t.arg({ type: PipelineIdInput, required: true, description: 'The pipeline to enable.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'pipeline', description: 'The pipeline, with `enabled` true.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.triggers.setEnabled(input.id.id, true),
  }),
  disablePipeline: t.prismaField({
    type: 'Pipeline',
    description: "Turns the pipeline's trigger off without touching its lifecycle state.",
    args: { input: t.arg({ type: PipelineIdInput, required: true, description: 'The pipeline to disable.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'pipeline', description: 'The pipeline, with `enabled` false.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.triggers.setEnabled(input.id.id, false),
  }),
  createPushToken: t.field({
    type: PushTokenRef,
    description: "A new token for the pipeline's push endpoint, shown once (the previous one stops working).",
    args: { input: t.arg({ type: PipelineIdInput, required: true, description: 'The pipeline to create a push token for.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'pushToken', description: 'The new token and the path to push records to.' } },
    resolve: async (_r, { input }, ctx) => ({ token: await ctx.services.triggers.createPushToken(input.id.id), path: `/pipelines/${input.id.id}/records` }),
  }),
  runPipeline: t.prismaField({
    type: 'Job',
    description: 'Queues a new SYNC job now (pipeline INIT or READY, no job active). Full-refresh streams restart; incremental ones continue.',
    args: { input: t.arg({ type: PipelineIdInput, required: true, description: 'The pipeline to run.' }) },
    errors: { types: [NotFoundError, InvalidTransitionError, ConflictError], dataField: { name: 'job', description: 'The queued SYNC job.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.pipelines.run(input.id.id),
  }),
}));

const PushTokenRef = builder.objectRef<{ token: string; path: string }>('PushToken').implement({
  description: "A credential for the pipeline's push endpoint (SUBSCRIPTION trigger); only createPushToken returns it.",
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Send as `Authorization: Bearer <token>`. Shown only now.' }),
    path: t.exposeString('path', { description: 'POST JSON arrays or NDJSON here.' }),
  }),
});

const PipelineStateChangeRef = builder.objectRef<PipelineStateMessage>('PipelineStateChange').implement({
  description: 'One lifecycle transition of a pipeline, published once it has committed.',
  fields: (t) => ({
    pipeline: t.prismaField({
      type: 'Pipeline',
      nullable: true,
      description: 'The pipeline as it is now (null once deleted).',
      resolve: (q, m, _a, ctx) => ctx.db.pipeline.findUnique({ ...q, where: { id: m.pipelineId } }),
    }),
    pipelineId: t.id({ description: 'Global ID of the pipeline (also when it no longer exists).', resolve: (m) => encodeGlobalID('Pipeline', m.pipelineId) }),
    action: t.exposeString('action', { description: 'START, STOP, PAUSE, RESUME or RESET (the lifecycle mutations), INITIAL_LOAD_COMPLETED (the first job succeeded), or AUTO_STOP (stopped after autoStopAfterFailures consecutive failed jobs).' }),
    state: t.field({ type: PipelineStateEnum, description: 'State after the transition.', resolve: (m) => m.state as never }),
    previousState: t.field({ type: PipelineStateEnum, nullable: true, description: 'State before the transition.', resolve: (m) => m.previousState as never }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'Why Sluice made the transition itself (e.g. stopped after consecutive failed jobs); null for client actions.',
    }),
    version: t.exposeInt('version', { description: "The pipeline's version after the transition." }),
    at: t.field({ type: 'DateTime', description: 'When the transition was recorded.', resolve: (m) => m.at }),
  }),
});

builder.subscriptionFields((t) => ({
  pipelineStateChanged: t.field({
    type: PipelineStateChangeRef,
    description: 'Every lifecycle transition of one pipeline, live.',
    args: {
      pipelineId: t.arg.globalID({ required: true, for: PipelineRef, description: 'The pipeline to watch; the subscription fails when it does not exist.' }),
    },
    subscribe: async (_r, args, ctx) => {
      await ctx.services.pipelines.get(args.pipelineId.id);
      return ctx.services.pubsub.subscribe('pipelineStateChanged', args.pipelineId.id);
    },
    resolve: (m) => m,
  }),
}));
