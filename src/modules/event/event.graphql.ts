import { encodeGlobalID, resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import type { EventMessage } from '../../pubsub/pubsub.js';
import { ConnectorRef } from '../connector/connector.graphql.js';
import { JobRef } from '../job/job.graphql.js';
import { PipelineRef } from '../pipeline/pipeline.graphql.js';
import { parseSequence, toMessage, whereOf, type EventFilter } from './event.service.js';
import { EVENT_TYPES } from './event.types.js';

export const EventTypeEnum = builder.enumType('EventType', { values: EVENT_TYPES });

export const EventRef = builder.objectRef<EventMessage>('Event');
builder.node(EventRef, {
  description: 'One entry of the ordered event log.',
  id: { resolve: (e) => e.id },
  isTypeOf: (v) => typeof v === 'object' && v !== null && 'sequence' in v && 'type' in v,
  loadOne: async (id, ctx) => {
    const row = await ctx.db.event.findUnique({ where: { id } }).catch(() => null);
    return row ? toMessage(row) : null;
  },
  fields: (t) => ({
    cursor: t.exposeString('sequence', {
      description: 'Position in the log (strictly increasing). Pass as `after` to resume `events` queries and subscriptions.',
    }),
    type: t.field({ type: EventTypeEnum, resolve: (e) => e.type as never }),
    message: t.exposeString('message'),
    data: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.data }),
    pipelineId: t.id({ nullable: true, resolve: (e) => (e.pipelineId ? encodeGlobalID('Pipeline', e.pipelineId) : null) }),
    jobId: t.id({ nullable: true, resolve: (e) => (e.jobId ? encodeGlobalID('Job', e.jobId) : null) }),
    connectorId: t.id({ nullable: true, resolve: (e) => (e.connectorId ? encodeGlobalID('Connector', e.connectorId) : null) }),
    pipeline: t.prismaField({
      type: 'Pipeline',
      nullable: true,
      resolve: (q, e, _a, ctx) => (e.pipelineId ? ctx.db.pipeline.findUnique({ ...q, where: { id: e.pipelineId } }) : null),
    }),
    job: t.prismaField({
      type: 'Job',
      nullable: true,
      resolve: (q, e, _a, ctx) => (e.jobId ? ctx.db.job.findUnique({ ...q, where: { id: e.jobId } }) : null),
    }),
    connector: t.prismaField({
      type: 'Connector',
      nullable: true,
      resolve: (q, e, _a, ctx) => (e.connectorId ? ctx.db.connector.findUnique({ ...q, where: { id: e.connectorId } }) : null),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.createdAt }),
  }),
});

const EventFilterInput = builder.inputType('EventFilter', {
  fields: (t) => ({
    pipelineId: t.globalID({ for: PipelineRef }),
    jobId: t.globalID({ for: JobRef }),
    connectorId: t.globalID({ for: ConnectorRef }),
    types: t.field({ type: [EventTypeEnum], description: 'Only these types. Without it: every type except AUDIT_MUTATION (the audit trail is delivered only when asked for by type).' }),
    since: t.field({ type: 'DateTime' }),
    until: t.field({ type: 'DateTime' }),
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
      args: { filter: t.arg({ type: EventFilterInput }) },
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
      filter: t.arg({ type: EventFilterInput }),
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
