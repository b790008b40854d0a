import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { JobProgressMessage } from '../../pubsub/pubsub.js';
import type { Counters } from '../../engine/runner/protocol.js';
import { ConnectorRef } from '../connector/connector.graphql.js';
import { PipelineRef } from '../pipeline/pipeline.graphql.js';

export const JobKindEnum = builder.enumType('JobKind', {
  values: {
    SYNC: { description: 'A load: the initial load after start, or a run.' },
    RESET: { description: 'The reload from scratch queued by reset.' },
    CHECK: { description: 'A connector check.' },
    DISCOVER: { description: 'A connector discover.' },
    REPLAY: { description: 'Re-runs dead-lettered records through the current mapping into the destination (replayFailedRecords).' },
  } as const,
});

export const JobStatusEnum = builder.enumType('JobStatus', {
  values: {
    QUEUED: { description: 'Waiting for a runner slot (or to resume after a restart).' },
    RUNNING: {},
    PAUSED: { description: 'Stopped at a checkpoint; continues when the pipeline (or its connector) resumes.' },
    SUCCEEDED: {},
    FAILED: {},
    CANCELLED: {},
  } as const,
});

const DeadLetterStageEnum = builder.enumType('DeadLetterStage', { values: ['READ', 'MAPPING', 'WRITE'] as const });

const StreamStatsRef = builder.objectRef<Counters & { stream: string }>('StreamStats').implement({
  fields: (t) => ({
    stream: t.exposeString('stream'),
    recordsRead: t.field({ type: 'SafeInt', resolve: (s) => s.recordsRead }),
    recordsWritten: t.field({ type: 'SafeInt', resolve: (s) => s.recordsWritten }),
    recordsFailed: t.field({ type: 'SafeInt', resolve: (s) => s.recordsFailed }),
    bytesRead: t.field({ type: 'SafeInt', resolve: (s) => s.bytesRead }),
    bytesWritten: t.field({ type: 'SafeInt', resolve: (s) => s.bytesWritten }),
  }),
});

export const JobRef = builder.prismaNode('Job', {
  id: { field: 'id' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'One run (Airbyte job / Algolia run) with its attempts and counters.',
  fields: (t) => ({
    kind: t.field({ type: JobKindEnum, resolve: (j) => j.kind }),
    status: t.field({ type: JobStatusEnum, resolve: (j) => j.status }),
    trigger: t.exposeString('trigger', { description: 'START, MANUAL, RESET (later: SCHEDULE, SUBSCRIPTION).' }),
    pipeline: t.relation('pipeline', { nullable: true }),
    connector: t.relation('connector', { nullable: true }),
    mappingVersion: t.exposeInt('mappingVersion', { nullable: true, description: 'The mapping version this job ran with.' }),
    attempts: t.exposeInt('attempts'),
    attemptHistory: t.relation('attemptsList', { query: { orderBy: { number: 'asc' } } }),
    recordsRead: t.expose('recordsRead', { type: 'SafeInt' }),
    recordsWritten: t.expose('recordsWritten', { type: 'SafeInt' }),
    recordsFailed: t.expose('recordsFailed', { type: 'SafeInt' }),
    bytesRead: t.expose('bytesRead', { type: 'SafeInt' }),
    bytesWritten: t.expose('bytesWritten', { type: 'SafeInt' }),
    streams: t.field({
      type: [StreamStatsRef],
      description: 'Counters per stream.',
      resolve: (j) => Object.entries((j.streamStats ?? {}) as unknown as Record<string, Counters>).map(([stream, c]) => ({ stream, ...c })),
    }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime', nullable: true, description: 'When the next attempt of a retrying job is due.' }),
    cursorStart: t.field({ type: 'JSON', nullable: true, resolve: (j) => j.cursorStart }),
    cursorEnd: t.field({ type: 'JSON', nullable: true, description: 'The last state this job confirmed.', resolve: (j) => j.cursorEnd }),
    error: t.exposeString('error', { nullable: true }),
    result: t.field({ type: 'JSON', nullable: true, description: 'CHECK / DISCOVER output.', resolve: (j) => j.result }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    durationMs: t.int({
      nullable: true,
      resolve: (j) => (j.startedAt ? (j.finishedAt ?? new Date()).getTime() - j.startedAt.getTime() : null),
    }),
    deadLetters: t.relatedConnection('deadLetters', { cursor: 'id', ...PAGE, totalCount: true, query: { orderBy: { id: 'asc' } } }),
  }),
});

builder.prismaObject('JobAttempt', {
  fields: (t) => ({
    number: t.exposeInt('number'),
    status: t.field({ type: JobStatusEnum, resolve: (a) => a.status }),
    recordsRead: t.expose('recordsRead', { type: 'SafeInt' }),
    recordsWritten: t.expose('recordsWritten', { type: 'SafeInt' }),
    recordsFailed: t.expose('recordsFailed', { type: 'SafeInt' }),
    error: t.exposeString('error', { nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.prismaNode('DeadLetter', {
  id: { field: 'id' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'A record that failed reading, mapping or writing, kept with its error.',
  fields: (t) => ({
    job: t.relation('job'),
    stream: t.exposeString('stream'),
    stage: t.field({ type: DeadLetterStageEnum, resolve: (d) => d.stage as 'READ' | 'MAPPING' | 'WRITE' }),
    error: t.exposeString('error'),
    record: t.field({ type: 'JSON', resolve: (d) => d.record }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const JobFilter = builder.inputType('JobFilter', {
  fields: (t) => ({
    pipelineId: t.globalID({ for: PipelineRef }),
    connectorId: t.globalID({ for: ConnectorRef }),
    kinds: t.field({ type: [JobKindEnum] }),
    statuses: t.field({ type: [JobStatusEnum] }),
    createdAfter: t.field({ type: 'DateTime' }),
    createdBefore: t.field({ type: 'DateTime' }),
  }),
});

function jobWhere(f: typeof JobFilter.$inferInput | null | undefined) {
  return {
    ...(f?.pipelineId ? { pipelineId: f.pipelineId.id } : {}),
    ...(f?.connectorId ? { connectorId: f.connectorId.id } : {}),
    ...(f?.kinds?.length ? { kind: { in: f.kinds } } : {}),
    ...(f?.statuses?.length ? { status: { in: f.statuses } } : {}),
    ...(f?.createdAfter || f?.createdBefore
      ? { createdAt: { ...(f.createdAfter ? { gte: f.createdAfter } : {}), ...(f.createdBefore ? { lte: f.createdBefore } : {}) } }
      : {}),
  };
}

builder.queryFields((t) => ({
  job: t.prismaField({
    type: 'Job',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: JobRef }) },
    resolve: (query, _r, args, ctx) => ctx.db.job.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  jobs: t.prismaConnection({
    type: 'Job',
    cursor: 'id',
    ...PAGE,
    description: 'Jobs, newest first.',
    args: { filter: t.arg({ type: JobFilter }) },
    resolve: (query, _r, args, ctx) => ctx.db.job.findMany({ ...query, where: jobWhere(args.filter), orderBy: { id: 'desc' } }),
    totalCount: (_p, args, ctx) => ctx.db.job.count({ where: jobWhere(args.filter) }),
  }),
}));

const JobIdInput = builder.inputType('JobIdInput', { fields: (t) => ({ id: t.globalID({ required: true, for: JobRef }) }) });

builder.mutationFields((t) => ({
  cancelJob: t.prismaField({
    type: 'Job',
    description: 'A waiting job ends at once; a running job stops at its next batch boundary (watch jobProgress for the final status).',
    args: { input: t.arg({ type: JobIdInput, required: true }) },
    errors: { types: [NotFoundError, ValidationError], dataField: { name: 'job' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.jobs.cancel(input.id.id),
  }),
}));

const JobProgressRef = builder.objectRef<JobProgressMessage>('JobProgress').implement({
  description: 'Counters of a running job; `final` marks the last message of a run.',
  fields: (t) => ({
    jobId: t.id({ resolve: (m) => encodeGlobalID('Job', m.jobId) }),
    job: t.prismaField({ type: 'Job', nullable: true, resolve: (q, m, _a, ctx) => ctx.db.job.findUnique({ ...q, where: { id: m.jobId } }) }),
    status: t.field({ type: JobStatusEnum, resolve: (m) => m.status as never }),
    recordsRead: t.field({ type: 'SafeInt', resolve: (m) => m.recordsRead }),
    recordsWritten: t.field({ type: 'SafeInt', resolve: (m) => m.recordsWritten }),
    recordsFailed: t.field({ type: 'SafeInt', resolve: (m) => m.recordsFailed }),
    bytesRead: t.field({ type: 'SafeInt', resolve: (m) => m.bytesRead }),
    bytesWritten: t.field({ type: 'SafeInt', resolve: (m) => m.bytesWritten }),
    final: t.exposeBoolean('final'),
    at: t.field({ type: 'DateTime', resolve: (m) => m.at }),
  }),
});

builder.subscriptionFields((t) => ({
  jobProgress: t.field({
    type: JobProgressRef,
    description:
      'Progress of one job: first its current counters, then updates a few times a second while it runs, then a final message. ' +
      'Completes after a terminal status (SUCCEEDED, FAILED, CANCELLED); a paused job keeps the subscription open.',
    args: { jobId: t.arg.globalID({ required: true, for: JobRef }) },
    subscribe: async (_r, args, ctx) => {
      // Refused at subscribe time when the job is not visible (another workspace's, or none).
      await ctx.services.jobs.get(args.jobId.id);
      return ctx.services.jobs.progressStream(args.jobId.id);
    },
    resolve: (m) => m,
  }),
}));
