import { encodeGlobalID, resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { JobLogMessage, JobProgressMessage } from '../../pubsub/pubsub.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { levelsFrom, parseLogCursor, type JobLogLevel } from './job.logs.js';
import type { Counters } from '../../engine/runner/protocol.js';
import { ConnectorRef } from '../connector/connector.graphql.js';
import { PipelineRef } from '../pipeline/pipeline.graphql.js';
import { TERMINAL_STATUSES } from './job.rows.js';

export const JobKindEnum = builder.enumType('JobKind', {
  description: 'What a job does. SYNC, RESET and REPLAY jobs belong to a pipeline and run in a worker; CHECK and DISCOVER jobs belong to a connector and are recorded already finished.',
  values: {
    SYNC: { description: 'A load: the initial load after start, or a run.' },
    RESET: { description: 'The reload from scratch queued by reset.' },
    CHECK: { description: 'A connector check.' },
    DISCOVER: { description: 'A connector discover.' },
    REPLAY: { description: 'Re-runs dead-lettered records through the current mapping into the destination (replayFailedRecords).' },
  } as const,
});

export const JobStatusEnum = builder.enumType('JobStatus', {
  description:
    'Where a job is in its life: QUEUED → RUNNING → SUCCEEDED, FAILED or CANCELLED (the terminal statuses). ' +
    'A retryable failure goes back to QUEUED until the pipeline\'s maxAttempts is used up; pausing the pipeline or one of its connectors moves an active job to PAUSED.',
  values: {
    QUEUED: { description: 'Waiting for a runner slot (or to resume after a restart).' },
    RUNNING: { description: 'An attempt is running in a worker; counters and cursorEnd advance at each checkpoint.' },
    PAUSED: { description: 'Stopped at a checkpoint; continues when the pipeline (or its connector) resumes.' },
    SUCCEEDED: { description: 'Finished: every stream was read to its end and every record was written or dead-lettered. Terminal.' },
    FAILED: {
      description:
        'Ended with an error (see `error`): a non-retryable failure, the last of maxAttempts attempts, the execution timeout, the failure threshold, or a failed check or discover. Terminal.',
    },
    CANCELLED: { description: 'Ended by cancelJob, or by stopping or resetting its pipeline. Terminal.' },
  } as const,
});

const DeadLetterStageEnum = builder.enumType('DeadLetterStage', {
  description: 'Where in the pipeline a dead-lettered record failed.',
  values: {
    READ: { value: 'READ', description: 'The source could not read or parse the record.' },
    MAPPING: { value: 'MAPPING', description: "The pipeline's mapping threw on the record." },
    WRITE: { value: 'WRITE', description: 'The destination rejected the record.' },
  } as const,
});

const StreamStatsRef = builder.objectRef<Counters & { stream: string }>('StreamStats').implement({
  description: "One stream's share of a job's counters, over all its attempts, as of the last checkpoint.",
  fields: (t) => ({
    stream: t.exposeString('stream', { description: 'The stream name, as in the pipeline\'s streams.' }),
    recordsRead: t.field({ type: 'SafeInt', description: 'Records read from the source for this stream (dead-lettered ones included).', resolve: (s) => s.recordsRead }),
    recordsWritten: t.field({ type: 'SafeInt', description: 'Records the destination accepted for this stream.', resolve: (s) => s.recordsWritten }),
    recordsFailed: t.field({ type: 'SafeInt', description: 'Records of this stream that were dead-lettered (READ, MAPPING or WRITE).', resolve: (s) => s.recordsFailed }),
    bytesRead: t.field({ type: 'SafeInt', description: 'Bytes read for this stream, measured as the JSON of the record batches.', resolve: (s) => s.bytesRead }),
    bytesWritten: t.field({ type: 'SafeInt', description: 'Bytes written for this stream, as reported by the destination.', resolve: (s) => s.bytesWritten }),
  }),
});

const JobLogLevelEnum = builder.enumType('JobLogLevel', {
  description: 'How severe a job log line is, from DEBUG (every HTTP request) to ERROR (failures). A `level` filter keeps that level and the more severe ones.',
  values: {
    DEBUG: { description: 'Detail: every HTTP request a driver made that got an answer below 400.' },
    INFO: { description: 'The normal course of a job: attempt started, attempt finished, driver notes.' },
    WARN: { description: 'Something worth a look that did not fail the attempt: retried requests, skipped data, a retry of the job, the log cap.' },
    ERROR: { description: 'A failure: why an attempt failed (with the stack of an unexpected error in `data.stack`).' },
  } as const,
});

const JobLogStageEnum = builder.enumType('JobLogStage', {
  description: 'Which part of a job wrote a log line.',
  values: {
    SOURCE: { description: 'The source driver (reading), its HTTP requests included.' },
    MAPPING: { description: "The pipeline's mapping." },
    DESTINATION: { description: 'The destination driver (writing), its HTTP requests included.' },
    RUNNER: { description: 'The job runner: attempt start and finish, failures, retries, recovery after a restart, the log cap.' },
  } as const,
});

const JobLogLineRef = builder.objectRef<JobLogMessage>('JobLogLine').implement({
  description:
    "One line of a job's log (secrets removed). Lines come from the job's drivers, each HTTP request they made, and the runner; " +
    'at most SLUICE_JOB_LOG_MAX_LINES driver lines are kept per job (runner lines always are).',
  fields: (t) => ({
    cursor: t.exposeString('id', { description: 'Position of the line in the job log (increasing, oldest first); pass as `after` to page or to resume `jobLogs`.' }),
    jobId: t.id({ description: 'Global id of the job.', resolve: (m) => encodeGlobalID('Job', m.jobId) }),
    attempt: t.exposeInt('attempt', { description: 'The attempt the line belongs to (JobAttempt.number); 0 for a line written before the first attempt.' }),
    at: t.field({ type: 'DateTime', description: 'When the line was written.', resolve: (m) => m.at }),
    level: t.field({ type: JobLogLevelEnum, description: 'How severe it is.', resolve: (m) => m.level }),
    stage: t.field({ type: JobLogStageEnum, description: 'Which part of the job wrote it.', resolve: (m) => m.stage }),
    message: t.exposeString('message', { description: 'The line, in English; its wording may change between versions.' }),
    data: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'Details, when the line has any: `http` (method, url with secret query values as ***, status — 0 without an answer —, durationMs, attempt) for a request; ' +
        '`stack` of an unexpected error; counters, status and durationMs on a finish line; the plan on a start line.',
      resolve: (m) => m.data ?? null,
    }),
  }),
});

const JobLogConnection = builder.connectionObject({
  type: JobLogLineRef,
  name: 'JobLogConnection',
  fields: (c) => ({
    totalCount: c.int({
      description: 'How many lines match (same level filter), not only this page.',
      resolve: (conn) => (conn as unknown as { totalCount: () => Promise<number> }).totalCount(),
    }),
  }),
});

/** One page of a job's (or one attempt's) log lines, oldest first. */
async function logPage(
  ctx: GraphQLContext,
  jobId: string,
  attempt: number | null,
  args: { first?: number | null; last?: number | null; after?: string | null; before?: string | null; level?: JobLogLevel | null },
) {
  for (const key of ['after', 'before'] as const) {
    if (args[key] != null && parseLogCursor(args[key]) === null) {
      throw new ValidationError('invalid cursor', [{ path: key, message: 'expected a job log cursor (JobLogLine.cursor)' }]);
    }
  }
  const levels = levelsFrom(args.level);
  const conn = await resolveCursorConnection(
    { args, ...PAGE, toCursor: (m: JobLogMessage) => m.id },
    ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
      ctx.services.jobLogs.page({ jobId, attempt, levels, after: parseLogCursor(after), before: parseLogCursor(before), limit, inverted }),
  );
  return { ...conn, totalCount: () => ctx.services.jobLogs.count({ jobId, attempt, levels }) };
}

const LOG_DOC =
  'Oldest first; cursors are stable. Lines come from the drivers (their notes and every HTTP request, secrets removed), ' +
  'the mapping, and the runner (attempt started with its plan, finished with status, counters and duration, failures with their stack, retries, recovery). ' +
  'Lines beyond SLUICE_JOB_LOG_MAX_LINES per job are dropped (see logsDropped); pruned with the job\'s events (event retention).';

export const JobRef = builder.prismaNode('Job', {
  id: { field: 'id', description: 'Global id of the job.' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'One run (Airbyte job / Algolia run) with its attempts and counters.',
  fields: (t) => ({
    kind: t.field({ type: JobKindEnum, description: 'What the job does (load, reset, replay, check, discover).', resolve: (j) => j.kind }),
    status: t.field({ type: JobStatusEnum, description: 'Where the job is now; watch jobProgress or JOB_* events for changes.', resolve: (j) => j.status }),
    trigger: t.exposeString('trigger', { description: 'START, MANUAL, RESET (later: SCHEDULE, SUBSCRIPTION).' }),
    pipeline: t.relation('pipeline', { nullable: true, description: 'The pipeline of a SYNC, RESET or REPLAY job; null for CHECK and DISCOVER jobs.' }),
    connector: t.relation('connector', {
      nullable: true,
      description: 'The connector of a CHECK or DISCOVER job; null for pipeline jobs (see pipeline.source and pipeline.destination).',
    }),
    mappingVersion: t.exposeInt('mappingVersion', { nullable: true, description: 'The mapping version this job ran with.' }),
    attempts: t.exposeInt('attempts', {
      description: 'How many attempts have started (0 while the first one waits). Each retry, resume after a pause and recovery after a restart is one more.',
    }),
    attemptHistory: t.relation('attemptsList', { description: 'Every attempt of this job, first to last.', query: { orderBy: { number: 'asc' } } }),
    recordsRead: t.expose('recordsRead', {
      type: 'SafeInt',
      description: 'Records read from the source over all attempts, dead-lettered ones included; updated at each checkpoint (records the destination committed).',
    }),
    recordsWritten: t.expose('recordsWritten', { type: 'SafeInt', description: 'Records the destination accepted, over all attempts.' }),
    recordsFailed: t.expose('recordsFailed', {
      type: 'SafeInt',
      description: 'Records dead-lettered (see deadLetters), over all attempts. Above the pipeline\'s failureThreshold (percent of records read) the job fails.',
    }),
    bytesRead: t.expose('bytesRead', { type: 'SafeInt', description: 'Bytes read from the source, measured as the JSON of the record batches, over all attempts.' }),
    bytesWritten: t.expose('bytesWritten', { type: 'SafeInt', description: 'Bytes written, as reported by the destination, over all attempts.' }),
    streams: t.field({
      type: [StreamStatsRef],
      description: 'Counters per stream.',
      resolve: (j) => Object.entries((j.streamStats ?? {}) as unknown as Record<string, Counters>).map(([stream, c]) => ({ stream, ...c })),
    }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime', nullable: true, description: 'When the next attempt of a retrying job is due.' }),
    cursorStart: t.field({
      type: 'JSON',
      nullable: true,
      description:
        "The pipeline's per-stream state the job started from (a new run drops full-refresh streams, which start from scratch); null: from the beginning.",
      resolve: (j) => j.cursorStart,
    }),
    cursorEnd: t.field({ type: 'JSON', nullable: true, description: 'The last state this job confirmed.', resolve: (j) => j.cursorEnd }),
    error: t.exposeString('error', {
      nullable: true,
      description: 'Why the last attempt failed or was interrupted (secrets removed); null while running and after success. Cleared when a new attempt starts.',
    }),
    result: t.field({ type: 'JSON', nullable: true, description: 'CHECK / DISCOVER output.', resolve: (j) => j.result }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the job was created (queued).' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When its first attempt started; null if it never started.' }),
    finishedAt: t.expose('finishedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it reached SUCCEEDED, FAILED or CANCELLED; null while it is active.',
    }),
    durationMs: t.int({
      nullable: true,
      description:
        'Milliseconds from startedAt to finishedAt, or to now while the job is not finished (paused and retry waits included); null if it never started.',
      resolve: (j) => (j.startedAt ? (j.finishedAt ?? new Date()).getTime() - j.startedAt.getTime() : null),
    }),
    logs: t.connection(
      {
        type: JobLogLineRef,
        description: `The job's log over all its attempts. ${LOG_DOC}`,
        args: { level: t.arg({ type: JobLogLevelEnum, description: 'Only lines of this level and more severe ones; omitted: every level (DEBUG included).' }) },
        resolve: (j, args, ctx) => logPage(ctx, j.id, null, args) as never,
      },
      JobLogConnection,
    ),
    logsDropped: t.int({
      description: 'Lines dropped after the job log reached its cap (SLUICE_JOB_LOG_MAX_LINES); 0 when nothing was dropped.',
      resolve: (j, _a, ctx) => ctx.services.jobLogs.droppedCount(j.id),
    }),
    deadLetters: t.relatedConnection('deadLetters', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description: 'The records this job dead-lettered, oldest first. A successful replay deletes the dead letters it replayed.',
      query: { orderBy: { id: 'asc' } },
    }),
  }),
});

builder.prismaObject('JobAttempt', {
  description: 'One attempt of a job: a worker run from a checkpoint until it succeeded, failed, paused or was stopped.',
  fields: (t) => ({
    number: t.exposeInt('number', { description: 'Its position among the job\'s attempts, from 1.' }),
    status: t.field({
      type: JobStatusEnum,
      description: 'RUNNING while it runs, then how it ended: SUCCEEDED, FAILED (also when a shutdown interrupted it), PAUSED or CANCELLED.',
      resolve: (a) => a.status,
    }),
    recordsRead: t.expose('recordsRead', {
      type: 'SafeInt',
      description: "The job's records read when this attempt ended (earlier attempts included); 0 while it runs.",
    }),
    recordsWritten: t.expose('recordsWritten', {
      type: 'SafeInt',
      description: "The job's records written when this attempt ended (earlier attempts included); 0 while it runs.",
    }),
    recordsFailed: t.expose('recordsFailed', {
      type: 'SafeInt',
      description: "The job's dead-lettered records when this attempt ended (earlier attempts included); 0 while it runs.",
    }),
    error: t.exposeString('error', { nullable: true, description: 'Why this attempt failed or was interrupted; null when it did not fail.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', description: 'When this attempt started.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When this attempt ended; null while it runs.' }),
    logs: t.connection(
      {
        type: JobLogLineRef,
        description: `The log lines of this attempt only (as Job.logs). ${LOG_DOC}`,
        args: { level: t.arg({ type: JobLogLevelEnum, description: 'Only lines of this level and more severe ones; omitted: every level (DEBUG included).' }) },
        resolve: (a, args, ctx) => logPage(ctx, a.jobId, a.number, args) as never,
      },
      JobLogConnection,
    ),
  }),
});

builder.prismaNode('DeadLetter', {
  id: { field: 'id', description: 'Global id of the dead letter (replayFailedRecords can take a list of them).' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'A record that failed reading, mapping or writing, kept with its error.',
  fields: (t) => ({
    job: t.relation('job', { description: 'The job that dead-lettered the record.' }),
    stream: t.exposeString('stream', { description: 'The stream the record came from.' }),
    stage: t.field({ type: DeadLetterStageEnum, description: 'Where the record failed.', resolve: (d) => d.stage as 'READ' | 'MAPPING' | 'WRITE' }),
    error: t.exposeString('error', { description: 'What went wrong with this record (from the source, the mapping or the destination).' }),
    record: t.field({
      type: 'JSON',
      description:
        'The source record as read, before mapping (what a replay maps again). One over 64 KiB of JSON is stored as `{ truncated: "<its JSON, cut>" }`.',
      resolve: (d) => d.record,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the checkpoint that recorded it was saved.' }),
  }),
});

const JobFilter = builder.inputType('JobFilter', {
  description: 'Which jobs to list; every field given must match (omitted fields match all).',
  fields: (t) => ({
    pipelineId: t.globalID({ for: PipelineRef, description: "Only this pipeline's jobs (SYNC, RESET, REPLAY)." }),
    connectorId: t.globalID({
      for: ConnectorRef,
      description: "Only this connector's CHECK and DISCOVER jobs (pipeline jobs that use the connector are not matched).",
    }),
    kinds: t.field({ type: [JobKindEnum], description: 'Only jobs of one of these kinds; empty or omitted: all kinds.' }),
    statuses: t.field({ type: [JobStatusEnum], description: 'Only jobs in one of these statuses; empty or omitted: all statuses.' }),
    createdAfter: t.field({ type: 'DateTime', description: 'Only jobs created at or after this time.' }),
    createdBefore: t.field({ type: 'DateTime', description: 'Only jobs created at or before this time.' }),
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
    description: 'One job by id; null when it does not exist or belongs to another workspace.',
    args: { id: t.arg.globalID({ required: true, for: JobRef, description: 'Global id of the job.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.job.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  jobs: t.prismaConnection({
    type: 'Job',
    cursor: 'id',
    ...PAGE,
    description: 'Jobs, newest first.',
    args: { filter: t.arg({ type: JobFilter, description: 'Which jobs to list; omitted: all jobs of the workspace.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.job.findMany({ ...query, where: jobWhere(args.filter), orderBy: { id: 'desc' } }),
    totalCount: (_p, args, ctx) => ctx.db.job.count({ where: jobWhere(args.filter) }),
  }),
}));

const JobIdInput = builder.inputType('JobIdInput', {
  description: 'Names one job.',
  fields: (t) => ({ id: t.globalID({ required: true, for: JobRef, description: 'Global id of the job.' }) }),
});

builder.mutationFields((t) => ({
  cancelJob: t.prismaField({
    type: 'Job',
    description:
      'A waiting job ends at once; a running job stops at its next batch boundary (watch jobProgress for the final status). ' +
      'NOT_FOUND when the job does not exist; VALIDATION_FAILED when it already ended (SUCCEEDED, FAILED or CANCELLED).',
    args: { input: t.arg({ type: JobIdInput, required: true, description: 'The job to cancel.' }) },
    errors: {
      types: [NotFoundError, ValidationError],
      dataField: {
        name: 'job',
        description: 'The job: CANCELLED when it was waiting; still RUNNING when it was running (it ends at its next batch boundary).',
      },
    },
    resolve: (_q, _r, { input }, ctx) => ctx.services.jobs.cancel(input.id.id),
  }),
}));

const JobProgressRef = builder.objectRef<JobProgressMessage>('JobProgress').implement({
  description: 'Counters of a running job; `final` marks the last message of a run.',
  fields: (t) => ({
    jobId: t.id({ description: 'Global id of the job.', resolve: (m) => encodeGlobalID('Job', m.jobId) }),
    job: t.prismaField({ type: 'Job', nullable: true, description: 'The job as stored now; null if it has been deleted.', resolve: (q, m, _a, ctx) => ctx.db.job.findUnique({ ...q, where: { id: m.jobId } }) }),
    status: t.field({
      type: JobStatusEnum,
      description: 'RUNNING on updates; on a final message the status the run ended in (QUEUED when it will be retried or resumed).',
      resolve: (m) => m.status as never,
    }),
    recordsRead: t.field({ type: 'SafeInt', description: 'Records read so far over all attempts, dead-lettered ones included (as Job.recordsRead).', resolve: (m) => m.recordsRead }),
    recordsWritten: t.field({ type: 'SafeInt', description: 'Records written so far over all attempts (as Job.recordsWritten).', resolve: (m) => m.recordsWritten }),
    recordsFailed: t.field({ type: 'SafeInt', description: 'Records dead-lettered so far over all attempts (as Job.recordsFailed).', resolve: (m) => m.recordsFailed }),
    bytesRead: t.field({ type: 'SafeInt', description: 'Bytes read so far, as the JSON of the record batches (as Job.bytesRead).', resolve: (m) => m.bytesRead }),
    bytesWritten: t.field({ type: 'SafeInt', description: 'Bytes written so far, as reported by the destination (as Job.bytesWritten).', resolve: (m) => m.bytesWritten }),
    final: t.exposeBoolean('final', {
      description: 'True on the last message of a run (an attempt ended); the subscription completes after one whose status is terminal.',
    }),
    at: t.field({ type: 'DateTime', description: 'When this message was produced.', resolve: (m) => m.at }),
  }),
});

builder.subscriptionFields((t) => ({
  jobProgress: t.field({
    type: JobProgressRef,
    description:
      'Progress of one job: first its current counters, then updates a few times a second while it runs ' +
      '(at most one per SLUICE_PROGRESS_INTERVAL_MS, default 250 ms), then a final message. ' +
      'Completes after a terminal status (SUCCEEDED, FAILED, CANCELLED); a paused job keeps the subscription open.',
    args: { jobId: t.arg.globalID({ required: true, for: JobRef, description: 'Global id of the job; NOT_FOUND when no visible job has it.' }) },
    subscribe: async (_r, args, ctx) => {
      // Refused at subscribe time when the job is not visible (another workspace's, or none).
      await ctx.services.jobs.get(args.jobId.id);
      return ctx.services.jobs.progressStream(args.jobId.id);
    },
    resolve: (m) => m,
  }),
}));

builder.subscriptionFields((t) => ({
  jobLogs: t.field({
    type: JobLogLineRef,
    description:
      "A job's log lines as they are stored (within about 250 ms of being written), oldest first. " +
      'With `after` (a JobLogLine cursor, e.g. the endCursor of Job.logs), first every stored line after it, then live ones, with no gap and no duplicate. ' +
      "Completes after the runner's finish line of a job that ended (SUCCEEDED, FAILED, CANCELLED), or at once (after the replay) when it already had.",
    args: {
      jobId: t.arg.globalID({ required: true, for: JobRef, description: 'Global id of the job; NOT_FOUND when no visible job has it.' }),
      level: t.arg({ type: JobLogLevelEnum, description: 'Only lines of this level and more severe ones; omitted: every level (DEBUG included).' }),
      after: t.arg.string({ description: 'Resume after this log cursor (JobLogLine.cursor).' }),
    },
    subscribe: async (_r, args, ctx) => {
      const after = args.after != null ? parseLogCursor(args.after) : null;
      if (args.after != null && after === null) {
        throw new ValidationError('invalid cursor', [{ path: 'after', message: 'expected a job log cursor (JobLogLine.cursor)' }]);
      }
      // Refused at subscribe time when the job is not visible (another workspace's, or none).
      const jobId = args.jobId.id;
      await ctx.services.jobs.get(jobId);
      const ended = async () => TERMINAL_STATUSES.has((await ctx.services.jobs.get(jobId)).status);
      return ctx.services.jobLogs.stream(jobId, levelsFrom(args.level), after, ended);
    },
    resolve: (m) => m,
  }),
}));
