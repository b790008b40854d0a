import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, InvalidTransitionError, NotFoundError, ValidationError } from '../../errors.js';
import type { ConfiguredStream } from '../../engine/drivers/types.js';
import type { PipelineStateMessage } from '../../pubsub/pubsub.js';
import { ConnectorRef, SyncModeEnum, WriteModeEnum } from '../connector/connector.graphql.js';
import { MappingRef } from '../mapping/mapping.graphql.js';
import { ACTIONS, TRANSITIONS, type PipelineTransition } from './lifecycle.js';

export const PipelineStateEnum = builder.enumType('PipelineState', {
  values: {
    STOP: { description: 'Nothing runs and nothing is scheduled. New pipelines start here.' },
    INIT: { description: 'The initial load runs (from the saved cursor, or from scratch after a reset).' },
    READY: { description: 'Caught up; runs on its trigger, incrementally.' },
    PAUSE: { description: 'Paused; `resume` returns to `previousState` and continues from the cursor.' },
  } as const,
});

export const PipelineActionEnum = builder.enumType('PipelineAction', { values: ACTIONS });

export const TriggerEnum = builder.enumType('PipelineTrigger', {
  description: 'What starts runs once the pipeline is READY (Algolia task triggers).',
  values: {
    ON_DEMAND: { description: 'Only runPipeline.' },
    SCHEDULE: { description: 'The schedule (cron or every N units), plus runPipeline.' },
    SUBSCRIPTION: { description: 'Records pushed to the pipeline endpoint (POST /pipelines/<id>/records), plus runPipeline.' },
  } as const,
});
const ScheduleUnitEnum = builder.enumType('ScheduleUnit', { values: ['MINUTES', 'HOURS', 'DAYS', 'WEEKS', 'MONTHS'] as const });
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
  fields: (t) => ({
    cron: t.exposeString('cron', { nullable: true, description: '5 fields, or 6 with seconds first.' }),
    timezone: t.exposeString('timezone'),
    every: t.exposeInt('every', { nullable: true }),
    unit: t.field({ type: ScheduleUnitEnum, nullable: true, resolve: (s) => s.unit }),
  }),
});
const ScheduleInput = builder.inputType('ScheduleInput', {
  description: 'Either `cron` (+ `timezone`) or `every` + `unit`.',
  fields: (t) => ({
    cron: t.string({ description: 'e.g. `0 */6 * * *`, or `*/10 * * * * *` with seconds.' }),
    timezone: t.string({ defaultValue: 'UTC', description: 'IANA time zone the cron is evaluated in.' }),
    every: t.int(),
    unit: t.field({ type: ScheduleUnitEnum }),
  }),
});

const ConfiguredStreamRef = builder.objectRef<ConfiguredStream>('ConfiguredStream').implement({
  description: 'A stream as configured in a pipeline (Airbyte syncCatalog entry).',
  fields: (t) => ({
    name: t.exposeString('name'),
    fields: t.stringList({ nullable: true, description: 'Selected fields; null means all.', resolve: (s) => s.fields ?? null }),
    syncMode: t.field({ type: SyncModeEnum, resolve: (s) => s.syncMode }),
    cursorField: t.stringList({ nullable: true, resolve: (s) => s.cursorField ?? null }),
    primaryKey: t.stringList({ nullable: true, resolve: (s) => s.primaryKey ?? null }),
    destinationName: t.string({ description: 'Destination table / object; defaults to the stream name.', resolve: (s) => s.destinationName ?? s.name }),
    writeMode: t.field({ type: WriteModeEnum, nullable: true, description: "Overrides the pipeline's write mode for this stream.", resolve: (s) => s.writeMode ?? null }),
  }),
});

const StreamInput = builder.inputType('StreamInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    fields: t.stringList({ description: 'Selected fields; omit for all.' }),
    syncMode: t.field({ type: SyncModeEnum, defaultValue: 'FULL_REFRESH' }),
    cursorField: t.stringList(),
    primaryKey: t.stringList({ description: 'Needed for UPSERT and MERGE (names after mapping).' }),
    destinationName: t.string(),
    writeMode: t.field({ type: WriteModeEnum, description: "Overrides the pipeline's write mode for this stream (e.g. INCREMENTAL + UPSERT = Airbyte's append + deduped)." }),
  }),
});

export const PipelineRef = builder.prismaNode('Pipeline', {
  id: { field: 'id' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'source → mapping → destination, with a lifecycle (STOP / INIT / READY / PAUSE).',
  fields: (t) => ({
    name: t.exposeString('name'),
    source: t.relation('source'),
    destination: t.relation('destination'),
    mapping: t.relation('mapping', { nullable: true }),
    streams: t.field({ type: [ConfiguredStreamRef], resolve: (p) => p.streams as unknown as ConfiguredStream[] }),
    writeMode: t.field({ type: WriteModeEnum, resolve: (p) => p.writeMode }),
    batchSize: t.exposeInt('batchSize'),
    failureThreshold: t.exposeFloat('failureThreshold', { description: 'Percent of failed records above which a job fails.' }),
    maxAttempts: t.exposeInt('maxAttempts', { description: 'Attempts per job for retryable failures; each retry resumes from the last checkpoint.' }),
    retryBackoffMs: t.exposeInt('retryBackoffMs', { description: 'First retry delay; each later one ×3 with jitter, capped at 10 minutes.' }),
    state: t.field({ type: PipelineStateEnum, resolve: (p) => p.state }),
    previousState: t.field({ type: PipelineStateEnum, nullable: true, resolve: (p) => p.previousState }),
    stateReason: t.exposeString('stateReason', { nullable: true }),
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
    inactiveReason: t.string({ nullable: true, resolve: async (p, _a, ctx) => (await ctx.services.pipelines.activity(p)).reason }),
    jobs: t.relatedConnection('jobs', { cursor: 'id', ...PAGE, totalCount: true, query: { orderBy: { id: 'desc' } } }),
    currentJob: t.prismaField({
      type: 'Job',
      nullable: true,
      description: 'The queued, running or paused job, if any.',
      resolve: (q, p, _a, ctx) =>
        ctx.db.job.findFirst({ ...q, where: { pipelineId: p.id, status: { in: ['QUEUED', 'RUNNING', 'PAUSED'] } }, orderBy: { id: 'desc' } }),
    }),
    deadLetters: t.relatedConnection('deadLetters', { cursor: 'id', ...PAGE, totalCount: true, query: { orderBy: { id: 'desc' } } }),
    trigger: t.field({ type: TriggerEnum, resolve: (p) => p.trigger }),
    schedule: t.field({
      type: ScheduleRef,
      nullable: true,
      resolve: (p) =>
        p.scheduleCron || p.scheduleEvery
          ? { cron: p.scheduleCron, timezone: p.scheduleTimezone, every: p.scheduleEvery, unit: p.scheduleUnit }
          : null,
    }),
    enabled: t.exposeBoolean('enabled', { description: 'Whether the trigger fires (enablePipeline / disablePipeline); the lifecycle state is separate.' }),
    nextRunAt: t.expose('nextRunAt', { type: 'DateTime', nullable: true }),
    lastRunAt: t.expose('lastRunAt', { type: 'DateTime', nullable: true }),
    allowParallelRuns: t.exposeBoolean('allowParallelRuns'),
    concurrencyPolicy: t.field({ type: ConcurrencyPolicyEnum, resolve: (p) => p.concurrencyPolicy }),
    catchUp: t.field({ type: CatchUpPolicyEnum, resolve: (p) => p.catchUp }),
    executionTimeoutMs: t.exposeInt('executionTimeoutMs', { nullable: true }),
    autoStopAfterFailures: t.exposeInt('autoStopAfterFailures', { description: 'Consecutive failed jobs after which the pipeline stops (0: never).' }),
    consecutiveFailures: t.exposeInt('consecutiveFailures'),
    pushPath: t.string({
      description: 'Where to POST records (JSON array or NDJSON) for the SUBSCRIPTION trigger, with `Authorization: Bearer <push token>`.',
      resolve: (p) => `/pipelines/${p.id}/records`,
    }),
    hasPushToken: t.boolean({ resolve: (p) => !!p.pushTokenHash }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const PipelineFilter = builder.inputType('PipelineFilter', {
  fields: (t) => ({
    state: t.field({ type: PipelineStateEnum }),
    sourceId: t.globalID({ for: ConnectorRef }),
    destinationId: t.globalID({ for: ConnectorRef }),
    nameContains: t.string(),
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
    args: { id: t.arg.globalID({ required: true, for: PipelineRef }) },
    resolve: (query, _r, args, ctx) => ctx.db.pipeline.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  pipelines: t.prismaConnection({
    type: 'Pipeline',
    cursor: 'id',
    ...PAGE,
    args: { filter: t.arg({ type: PipelineFilter }) },
    resolve: (query, _r, args, ctx) => ctx.db.pipeline.findMany({ ...query, where: pipelineWhere(args.filter), orderBy: { id: 'asc' } }),
    totalCount: (_p, args, ctx) => ctx.db.pipeline.count({ where: pipelineWhere(args.filter) }),
  }),
}));

const CreatePipelineInput = builder.inputType('CreatePipelineInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    sourceId: t.globalID({ required: true, for: ConnectorRef }),
    destinationId: t.globalID({ required: true, for: ConnectorRef }),
    mappingId: t.globalID({ for: MappingRef }),
    streams: t.field({ type: [StreamInput], description: "Omit to select every stream the source discovers." }),
    writeMode: t.field({ type: WriteModeEnum, defaultValue: 'APPEND' }),
    batchSize: t.int({ defaultValue: 5000, description: 'Records per batch (1–100000); checkpoints happen at batch boundaries.' }),
    failureThreshold: t.float({ defaultValue: 5, description: 'Percent of failed records above which a job fails.' }),
    maxAttempts: t.int({ defaultValue: 3, description: 'Attempts per job for retryable failures (1–20).' }),
    retryBackoffMs: t.int({ defaultValue: 10000, description: 'First retry delay in ms; later ones ×3 with jitter.' }),
    trigger: t.field({ type: TriggerEnum }),
    schedule: t.field({ type: ScheduleInput }),
    enabled: t.boolean(),
    allowParallelRuns: t.boolean(),
    concurrencyPolicy: t.field({ type: ConcurrencyPolicyEnum }),
    catchUp: t.field({ type: CatchUpPolicyEnum }),
    executionTimeoutMs: t.int({ description: 'A job running longer fails (1000 ms – 7 days).' }),
    autoStopAfterFailures: t.int({ description: 'Stop after this many consecutive failed jobs (0: never; default 5).' }),
  }),
});

const UpdatePipelineInput = builder.inputType('UpdatePipelineInput', {
  description: 'Changes take effect from the next job.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: PipelineRef }),
    name: t.string(),
    destinationId: t.globalID({ for: ConnectorRef }),
    mappingId: t.globalID({ for: MappingRef, description: 'Set to null to remove the mapping.' }),
    streams: t.field({ type: [StreamInput] }),
    writeMode: t.field({ type: WriteModeEnum }),
    batchSize: t.int(),
    failureThreshold: t.float(),
    maxAttempts: t.int(),
    retryBackoffMs: t.int(),
    trigger: t.field({ type: TriggerEnum }),
    schedule: t.field({ type: ScheduleInput }),
    enabled: t.boolean(),
    allowParallelRuns: t.boolean(),
    concurrencyPolicy: t.field({ type: ConcurrencyPolicyEnum }),
    catchUp: t.field({ type: CatchUpPolicyEnum }),
    executionTimeoutMs: t.int({ description: 'A job running longer fails (1000 ms – 7 days).' }),
    autoStopAfterFailures: t.int({ description: 'Stop after this many consecutive failed jobs (0: never; default 5).' }),
    expectedVersion: t.int(),
  }),
});

const PipelineActionInput = builder.inputType('PipelineActionInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: PipelineRef }),
    expectedVersion: t.int({ description: 'Fail with CONFLICT unless the pipeline is at this version.' }),
  }),
});

const PipelineIdInput = builder.inputType('PipelineIdInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: PipelineRef }) }),
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
    pipelineId: t.globalID({ required: true, for: PipelineRef }),
    jobId: t.globalID({ description: 'Only the dead letters of this job.' }),
    stream: t.string(),
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
    args: { input: t.arg({ type: ReplayFailedRecordsInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, InvalidTransitionError, ConflictError], dataField: { name: 'job' } },
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
    args: { input: t.arg({ type: CreatePipelineInput, required: true }) },
    errors: { types: [ValidationError], dataField: { name: 'pipeline' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.pipelines.create({ ...input, sourceId: input.sourceId.id, destinationId: input.destinationId.id, mappingId: input.mappingId?.id ?? null }),
  }),
  updatePipeline: t.prismaField({
    type: 'Pipeline',
    args: { input: t.arg({ type: UpdatePipelineInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'pipeline' } },
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
    args: { input: t.arg({ type: PipelineActionInput, required: true }) },
    errors: { types: [NotFoundError, ConflictError], dataField: { name: 'pipeline' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.pipelines.delete(input.id.id, input.expectedVersion),
  }),
  ...Object.fromEntries(
    TRANSITIONS.map((action) => [
      `${action.toLowerCase()}Pipeline`,
      t.prismaField({
        type: 'Pipeline',
        description: actionDocs[action],
        args: { input: t.arg({ type: PipelineActionInput, required: true }) },
        errors: { types: [NotFoundError, InvalidTransitionError, ConflictError], dataField: { name: 'pipeline' } },
        resolve: (_q, _r, { input }, ctx) => ctx.services.pipelines.act(input.id.id, action, input.expectedVersion),
      }),
    ]),
  ),
  enablePipeline: t.prismaField({
    type: 'Pipeline',
    description: "Turns the pipeline's trigger on (schedule armed, pushes drained) without touching its lifecycle state.",
    args: { input: t.arg({ type: PipelineIdInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'pipeline' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.triggers.setEnabled(input.id.id, true),
  }),
  disablePipeline: t.prismaField({
    type: 'Pipeline',
    description: "Turns the pipeline's trigger off without touching its lifecycle state.",
    args: { input: t.arg({ type: PipelineIdInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'pipeline' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.triggers.setEnabled(input.id.id, false),
  }),
  createPushToken: t.field({
    type: PushTokenRef,
    description: "A new token for the pipeline's push endpoint, shown once (the previous one stops working).",
    args: { input: t.arg({ type: PipelineIdInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'pushToken' } },
    resolve: async (_r, { input }, ctx) => ({ token: await ctx.services.triggers.createPushToken(input.id.id), path: `/pipelines/${input.id.id}/records` }),
  }),
  runPipeline: t.prismaField({
    type: 'Job',
    description: 'Queues a new SYNC job now (pipeline INIT or READY, no job active). Full-refresh streams restart; incremental ones continue.',
    args: { input: t.arg({ type: PipelineIdInput, required: true }) },
    errors: { types: [NotFoundError, InvalidTransitionError, ConflictError], dataField: { name: 'job' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.pipelines.run(input.id.id),
  }),
}));

const PushTokenRef = builder.objectRef<{ token: string; path: string }>('PushToken').implement({
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Send as `Authorization: Bearer <token>`. Shown only now.' }),
    path: t.exposeString('path', { description: 'POST JSON arrays or NDJSON here.' }),
  }),
});

const PipelineStateChangeRef = builder.objectRef<PipelineStateMessage>('PipelineStateChange').implement({
  fields: (t) => ({
    pipeline: t.prismaField({
      type: 'Pipeline',
      nullable: true,
      description: 'The pipeline as it is now (null once deleted).',
      resolve: (q, m, _a, ctx) => ctx.db.pipeline.findUnique({ ...q, where: { id: m.pipelineId } }),
    }),
    pipelineId: t.id({ resolve: (m) => encodeGlobalID('Pipeline', m.pipelineId) }),
    action: t.exposeString('action', { description: 'START, STOP, PAUSE, RESUME, RESET, or INITIAL_LOAD_COMPLETED.' }),
    state: t.field({ type: PipelineStateEnum, resolve: (m) => m.state as never }),
    previousState: t.field({ type: PipelineStateEnum, nullable: true, resolve: (m) => m.previousState as never }),
    reason: t.exposeString('reason', { nullable: true }),
    version: t.exposeInt('version'),
    at: t.field({ type: 'DateTime', resolve: (m) => m.at }),
  }),
});

builder.subscriptionFields((t) => ({
  pipelineStateChanged: t.field({
    type: PipelineStateChangeRef,
    description: 'Every lifecycle transition of one pipeline, live.',
    args: { pipelineId: t.arg.globalID({ required: true, for: PipelineRef }) },
    subscribe: async (_r, args, ctx) => {
      await ctx.services.pipelines.get(args.pipelineId.id);
      return ctx.services.pubsub.subscribe('pipelineStateChanged', args.pipelineId.id);
    },
    resolve: (m) => m,
  }),
}));
