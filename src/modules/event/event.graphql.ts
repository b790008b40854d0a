import { encodeGlobalID, resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import type { EventMessage } from '../../pubsub/pubsub.js';
import { ConnectorRef } from '../connector/connector.graphql.js';
import { JobRef } from '../job/job.graphql.js';
import { PipelineRef } from '../pipeline/pipeline.graphql.js';
import { parseSequence, toMessage, whereOf, type EventFilter } from './event.service.js';
import { EVENT_TYPES, type EventType } from './event.types.js';

/** What each event type records (the enum's value descriptions). */
const EVENT_TYPE_DESCRIPTIONS: Record<EventType, string> = {
  CONNECTOR_CREATED: 'A connector was created (createConnector).',
  CONNECTOR_UPDATED: "A connector's name or config was changed (updateConnector).",
  CONNECTOR_DELETED: 'A connector was deleted (deleteConnector).',
  CONNECTOR_CHECKED: 'A connector check ran (checkConnector); `data.ok` says whether it passed, `jobId` names its CHECK job.',
  CONNECTOR_DISCOVERED: "A connector's streams were discovered, or discovery failed (discoverConnector); `jobId` names its DISCOVER job.",
  CONNECTOR_PAUSED: "A connector was paused: its pipelines' jobs stop at their next checkpoint (JOB_PAUSED follows).",
  CONNECTOR_RESUMED: 'A connector was resumed: paused jobs of running pipelines whose connectors are all unpaused are queued again.',
  MAPPING_CREATED: 'A mapping was created at version 1; `data.mappingId` names it.',
  MAPPING_UPDATED: 'A mapping was changed; `data.version` is its version after the change (a new version only when the spec changed).',
  MAPPING_DELETED: 'A mapping was deleted; `data.mappingId` names it.',
  PIPELINE_CREATED: 'A pipeline was created (createPipeline).',
  PIPELINE_UPDATED: "A pipeline's settings were changed (updatePipeline).",
  PIPELINE_DELETED: 'A pipeline was deleted, with its jobs and dead letters.',
  PIPELINE_STATE_CHANGED: "A pipeline's lifecycle state changed; `data` holds `action`, `from`, `to` and `reason`.",
  PIPELINE_ENABLED: "A pipeline's trigger (schedule or push) was switched on.",
  PIPELINE_DISABLED: "A pipeline's trigger (schedule or push) was switched off.",
  PIPELINE_AUTO_STOPPED: "A pipeline was stopped after autoStopAfterFailures consecutive failed jobs; `data.failures` is the count.",
  SCHEDULE_FIRED: "A pipeline's schedule fired and queued a run; `data` holds `scheduledAt`, `lateMs` and `nextRunAt`.",
  SCHEDULE_SKIPPED: 'A scheduled fire did not run: the pipeline was disabled or not running, or the fire was missed while Sluice was down; `data.reason` says which.',
  RUN_SKIPPED: 'A run was not started because the pipeline already had an active job, parallel runs are off and its concurrency policy is SKIP; `jobId` names that active job.',
  PUSH_ACCEPTED: "Records pushed to a pipeline's endpoint were stored for its push job; `data` holds `count` and `stream`.",
  JOB_QUEUED: 'A job was queued: created, queued again after a pause or restart, or put back after an interruption.',
  JOB_STARTED: 'An attempt of a job started; `data.attempt` is its number (above 1: the job resumes from its checkpoint).',
  JOB_PROGRESS: "A running job's counters, at most one every 2 seconds per job; `data` holds the counters (jobProgress is finer-grained).",
  JOB_PAUSED: 'A job stopped at a checkpoint, or did not start, because its pipeline or one of its connectors was paused.',
  JOB_RETRYING: 'An attempt failed with a retryable error and the job is queued again after its backoff; `data` holds `attempt`, `nextAttemptAt` and `error`.',
  JOB_SUCCEEDED: 'A job succeeded; `data` holds its final counters.',
  JOB_FAILED: 'A job failed for good; `data` holds its final counters and `error`.',
  JOB_CANCELLED: 'A job was cancelled: by cancelJob, or because its pipeline was stopped or reset.',
  WEBHOOK_CREATED: 'A webhook endpoint was created; `data.endpointId` names it.',
  WEBHOOK_UPDATED: 'A webhook endpoint was changed; `data.enabled` is whether it is enabled now.',
  WEBHOOK_DELETED: 'A webhook endpoint was deleted; `data.endpointId` names it.',
  WEBHOOK_DISABLED: 'Sluice disabled a webhook endpoint (it answered 410 Gone, or every delivery failed for too long); `data.reason` says why.',
  WEBHOOK_SECRET_ROTATED: "A webhook endpoint's signing secret was rotated; `data.overlapSeconds` is how long the previous secret still signs.",
  AUTHENTICATION_CREATED: 'A stored authentication (credentials for connectors) was created.',
  AUTHENTICATION_UPDATED: 'A stored authentication was changed.',
  AUTHENTICATION_DELETED: 'A stored authentication was deleted.',
  WORKSPACE_CREATED: 'A workspace was created.',
  API_KEY_CREATED: 'An API key was created; `data` holds `apiKeyId` and `scope` (never the key).',
  API_KEY_REVOKED: 'An API key was revoked; `data.apiKeyId` names it.',
  FILE_UPLOADED: 'A file was uploaded to the workspace folder (`POST /files/<name>`); `data` holds `name`, `size` (bytes) and `overwritten`.',
  FILE_DELETED: 'A file was deleted from the workspace folder (deleteFile); `data` holds `name` and `size` (bytes).',
  AUDIT_MUTATION:
    'One per mutation, allowed or refused: `data` names the mutation, its outcome (OK or an error code) and the API key; inputs are never recorded. ' +
    'Delivered only when asked for by type.',
};

export const EventTypeEnum = builder.enumType('EventType', {
  description: 'What an event records. AUDIT_MUTATION is opt-in: filters and webhooks deliver it only when they name it.',
  values: Object.fromEntries(EVENT_TYPES.map((type) => [type, { value: type, description: EVENT_TYPE_DESCRIPTIONS[type] }])) as {
    [K in EventType]: { value: K; description: string };
  },
});

export const EventRef = builder.objectRef<EventMessage>('Event');
builder.node(EventRef, {
  description: 'One entry of the ordered event log.',
  id: { description: 'Global id of the event (not its position: see `cursor`).', resolve: (e) => e.id },
  isTypeOf: (v) => typeof v === 'object' && v !== null && 'sequence' in v && 'type' in v,
  loadOne: async (id, ctx) => {
    const row = await ctx.db.event.findUnique({ where: { id } }).catch(() => null);
    return row ? toMessage(row) : null;
  },
  fields: (t) => ({
    cursor: t.exposeString('sequence', {
      description: 'Position in the log (strictly increasing). Pass as `after` to resume `events` queries and subscriptions.',
    }),
    type: t.field({ type: EventTypeEnum, description: 'What happened.', resolve: (e) => e.type as never }),
    message: t.exposeString('message', { description: 'Human-readable summary in English; its wording may change between versions.' }),
    data: t.field({ type: 'JSON', nullable: true, description: 'Details that depend on the type (see EventType); null when the type has none.', resolve: (e) => e.data }),
    pipelineId: t.id({
      nullable: true,
      description: 'Global id of the pipeline the event concerns; null when none. Kept after the pipeline is deleted.',
      resolve: (e) => (e.pipelineId ? encodeGlobalID('Pipeline', e.pipelineId) : null) }),
    jobId: t.id({
      nullable: true,
      description: 'Global id of the job the event concerns; null when none. Kept after the job is deleted.',
      resolve: (e) => (e.jobId ? encodeGlobalID('Job', e.jobId) : null),
    }),
    connectorId: t.id({
      nullable: true,
      description: 'Global id of the connector the event concerns; null when none. Kept after the connector is deleted.',
      resolve: (e) => (e.connectorId ? encodeGlobalID('Connector', e.connectorId) : null),
    }),
    pipeline: t.prismaField({
      type: 'Pipeline',
      nullable: true,
      description: 'The pipeline named by pipelineId; null when none or deleted.',
      resolve: (q, e, _a, ctx) => (e.pipelineId ? ctx.db.pipeline.findUnique({ ...q, where: { id: e.pipelineId } }) : null),
    }),
    job: t.prismaField({
      type: 'Job',
      nullable: true,
      description: 'The job named by jobId; null when none or deleted.',
      resolve: (q, e, _a, ctx) => (e.jobId ? ctx.db.job.findUnique({ ...q, where: { id: e.jobId } }) : null),
    }),
    connector: t.prismaField({
      type: 'Connector',
      nullable: true,
      description: 'The connector named by connectorId; null when none or deleted.',
      resolve: (q, e, _a, ctx) => (e.connectorId ? ctx.db.connector.findUnique({ ...q, where: { id: e.connectorId } }) : null),
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When the event was written (in the transaction of the change it records).', resolve: (e) => e.createdAt }),
  }),
});

const EventFilterInput = builder.inputType('EventFilter', {
  description: 'Which events to return; every field given must match (omitted fields match all). Only events of your workspace ever match.',
  fields: (t) => ({
    pipelineId: t.globalID({ for: PipelineRef, description: 'Only events that name this pipeline.' }),
    jobId: t.globalID({ for: JobRef, description: 'Only events that name this job.' }),
    connectorId: t.globalID({ for: ConnectorRef, description: 'Only events that name this connector.' }),
    types: t.field({ type: [EventTypeEnum], description: 'Only these types. Without it: every type except AUDIT_MUTATION (the audit trail is delivered only when asked for by type).' }),
    since: t.field({ type: 'DateTime', description: 'Only events created at or after this time.' }),
    until: t.field({ type: 'DateTime', description: 'Only events created at or before this time.' }),
  }),
});

function toFilter(f: typeof EventFilterInput.$inferInput | null | undefined, workspaceId: string): EventFilter {
  return {
    workspaceId,
    pipelineId: f?.pipelineId?.id ?? null,
    jobId: f?.jobId?.id ?? null,
    connectorId: f?.connectorId?.id ?? null,
    types: f?.types ?? null,
    since: f?.since ?? null,
    until: f?.until ?? null,
  };
}

builder.queryFields((t) => ({
  events: t.connection(
    {
      type: EventRef,
      description: 'The event log in sequence order (oldest first; use `last` for the newest). Cursors are sequence numbers.',
      args: { filter: t.arg({ type: EventFilterInput, description: 'Which events; omitted: every event of the workspace except AUDIT_MUTATION.' }) },
      resolve: async (_r, args, ctx) => {
        const where = whereOf(toFilter(args.filter, ctx.auth.workspaceId));
        if (args.after) await ctx.services.events.assertCursor(parseSequence(args.after, 'after'));
        const conn = await resolveCursorConnection(
          { args, ...PAGE, toCursor: (e: EventMessage) => e.sequence },
          async ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) => {
            const seq = {
              ...(after ? { gt: parseSequence(after, 'after') } : {}),
              ...(before ? { lt: parseSequence(before, 'before') } : {}),
            };
            const rows = await ctx.db.event.findMany({
              where: { ...where, ...(after || before ? { sequence: seq } : {}) },
              orderBy: { sequence: inverted ? 'desc' : 'asc' },
              take: limit,
            });
            return rows.map(toMessage);
          },
        );
        return { ...conn, totalCount: () => ctx.db.event.count({ where }) };
      },
    },
    {
      name: 'EventConnection',
      fields: (c) => ({
        totalCount: c.int({
          resolve: (conn) => (conn as unknown as { totalCount: () => Promise<number> }).totalCount(),
        }),
      }),
    },
  ),
}));

builder.subscriptionFields((t) => ({
  events: t.field({
    type: EventRef,
    description:
      'Events matching the filter, live. With `after` (an event cursor), first replays every matching event after it, then goes live — ' +
      'with no gap and no duplicate. Without it, starts with events committed from now on. ' +
      'A cursor older than the retained log is a CURSOR_EXPIRED error.',
    args: {
      filter: t.arg({
        type: EventFilterInput,
        description: 'Which events; omitted: every event of the workspace except AUDIT_MUTATION. Naming a pipeline, job or connector you cannot see is refused.',
      }),
      after: t.arg.string({ description: 'Resume after this event cursor.' }),
    },
    subscribe: async (_r, args, ctx) => {
      const after = args.after != null ? parseSequence(args.after) : null;
      // Checked before subscribing so an expired cursor is a clear error, not a broken stream.
      await ctx.services.events.assertCursor(after);
      const filter = toFilter(args.filter, ctx.auth.workspaceId);
      // Naming an object the caller cannot see is refused now, not answered with silence.
      await ctx.services.workspaces.assertVisible({ pipelineId: filter.pipelineId, jobId: filter.jobId, connectorId: filter.connectorId });
      return ctx.services.events.stream(filter, after);
    },
    resolve: (e) => e,
  }),
}));
