import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { CursorExpiredError, NotFoundError, ValidationError } from '../../errors.js';
import { EventRef, EventTypeEnum } from '../event/event.graphql.js';
import { parseSequence, toMessage } from '../event/event.service.js';
import type { EventType } from '../event/event.types.js';
import { PipelineRef } from '../pipeline/pipeline.graphql.js';
import type { AttemptResult } from './delivery.service.js';
import type { EndpointRow } from './webhook.service.js';

export const WebhookDeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  values: {
    PENDING: { description: 'Queued or being retried.' },
    DELIVERED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Given up: retried past the max age, or the endpoint answered 410 Gone.' },
  } as const,
});

export const WebhookEndpointRef = builder.prismaNode('WebhookEndpoint', {
  id: { field: 'id' },
  nullable: true,
  description:
    'A callback URL that receives events, signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`). ' +
    'Its secret is shown once, by createWebhookEndpoint and rotateWebhookSecret.',
  fields: (t) => ({
    url: t.exposeString('url'),
    description: t.exposeString('description', { nullable: true }),
    eventTypes: t.field({ type: [EventTypeEnum], description: 'Event types delivered; empty: all.', resolve: (e) => e.eventTypes as EventType[] }),
    pipelineIds: t.idList({ description: 'Only events of these pipelines; empty: all events.', resolve: (e) => e.pipelineIds.map((id) => encodeGlobalID('Pipeline', id)) }),
    enabled: t.exposeBoolean('enabled'),
    disabledReason: t.exposeString('disabledReason', { nullable: true, description: 'Why the endpoint was disabled (410 Gone, prolonged failure, a user).' }),
    secretRotatedAt: t.expose('secretRotatedAt', { type: 'DateTime', nullable: true }),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'While in the future, deliveries are also signed with the previous secret.',
      resolve: (e) => (e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > new Date() ? e.previousSecretExpiresAt : null),
    }),
    failingSince: t.expose('failingSince', { type: 'DateTime', nullable: true, description: 'Start of the current run of failed attempts.' }),
    lastSuccessAt: t.expose('lastSuccessAt', { type: 'DateTime', nullable: true }),
    version: t.exposeInt('version'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    deliveries: t.relatedConnection('deliveries', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description: 'The delivery log, newest first.',
      args: { status: t.arg({ type: WebhookDeliveryStatusEnum }) },
      query: (args) => ({ where: args.status ? { status: args.status } : {}, orderBy: { id: 'desc' } }),
    }),
  }),
});

export const WebhookDeliveryRef = builder.prismaNode('WebhookDelivery', {
  id: { field: 'id' },
  nullable: true,
  description: 'One event (or replay of it) queued for one endpoint, with its attempts.',
  fields: (t) => ({
    endpoint: t.relation('endpoint'),
    webhookId: t.exposeString('messageId', { description: 'The `webhook-id` header: the idempotency key, the same on every retry and redelivery.' }),
    eventType: t.field({ type: EventTypeEnum, resolve: (d) => d.eventType as EventType }),
    eventCursor: t.string({ resolve: (d) => d.eventSequence.toString() }),
    event: t.field({
      type: EventRef,
      nullable: true,
      description: 'Null once the event was pruned by the retention policy.',
      resolve: async (d, _a, ctx) => {
        const row = await ctx.db.event.findUnique({ where: { id: d.eventId } });
        return row ? toMessage(row) : null;
      },
    }),
    payload: t.field({ type: 'JSON', description: 'The body sent.', resolve: (d) => JSON.parse(d.body) as unknown }),
    status: t.field({ type: WebhookDeliveryStatusEnum, resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts'),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => (d.status === 'PENDING' ? d.nextAttemptAt : null) }),
    lastAttemptAt: t.expose('lastAttemptAt', { type: 'DateTime', nullable: true }),
    lastStatusCode: t.exposeInt('lastStatusCode', { nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    attemptHistory: t.relation('attemptsList', { query: { orderBy: { number: 'asc' } } }),
  }),
});

builder.prismaObject('WebhookAttempt', {
  description: 'One HTTP attempt of a delivery.',
  fields: (t) => ({
    number: t.exposeInt('number'),
    at: t.expose('at', { type: 'DateTime' }),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: 'Null when no answer came (network error, timeout).' }),
    latencyMs: t.exposeInt('latencyMs'),
    error: t.exposeString('error', { nullable: true }),
    response: t.exposeString('response', { nullable: true, description: 'The first bytes of the answer.' }),
  }),
});

builder.queryFields((t) => ({
  webhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: WebhookEndpointRef }) },
    resolve: (query, _r, args, ctx) => ctx.db.webhookEndpoint.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  webhookEndpoints: t.prismaConnection({
    type: 'WebhookEndpoint',
    cursor: 'id',
    ...PAGE,
    args: { enabled: t.arg.boolean() },
    resolve: (query, _r, args, ctx) =>
      ctx.db.webhookEndpoint.findMany({ ...query, where: args.enabled != null ? { enabled: args.enabled } : {}, orderBy: { id: 'asc' } }),
    totalCount: (_p, args, ctx) => ctx.db.webhookEndpoint.count({ where: args.enabled != null ? { enabled: args.enabled } : {} }),
  }),
}));

const CreateWebhookEndpointInput = builder.inputType('CreateWebhookEndpointInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: 'An http(s) URL; redirects are not followed.' }),
    description: t.string(),
    eventTypes: t.field({ type: [EventTypeEnum], description: 'Event types to deliver; empty or absent: all.' }),
    pipelineIds: t.globalIDList({ for: PipelineRef, description: 'Only events of these pipelines; empty or absent: all events.' }),
    enabled: t.boolean({ defaultValue: true }),
  }),
});

const UpdateWebhookEndpointInput = builder.inputType('UpdateWebhookEndpointInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: WebhookEndpointRef }),
    url: t.string(),
    description: t.string(),
    eventTypes: t.field({ type: [EventTypeEnum], description: 'Replaces the filter ([] = all).' }),
    pipelineIds: t.globalIDList({ for: PipelineRef, description: 'Replaces the filter ([] = all).' }),
    enabled: t.boolean({ description: 'Re-enabling clears the disabled reason and the failure streak; pending deliveries resume.' }),
  }),
});

const WebhookEndpointIdInput = builder.inputType('WebhookEndpointIdInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: WebhookEndpointRef }) }),
});

const RotateWebhookSecretInput = builder.inputType('RotateWebhookSecretInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: WebhookEndpointRef }),
    overlapSeconds: t.int({ description: 'How long deliveries are also signed with the previous secret (default 86400; 0: not at all).' }),
  }),
});

const RedeliverWebhookInput = builder.inputType('RedeliverWebhookInput', {
  fields: (t) => ({ deliveryId: t.globalID({ required: true, for: WebhookDeliveryRef }) }),
});

const ReplayWebhookEventsInput = builder.inputType('ReplayWebhookEventsInput', {
  fields: (t) => ({
    endpointId: t.globalID({ required: true, for: WebhookEndpointRef }),
    afterCursor: t.string({ required: true, description: 'Re-send the matching events after this event cursor ("0": from the oldest retained).' }),
    beforeCursor: t.string({ description: 'Up to (not including) this cursor; absent: up to the newest.' }),
  }),
});

interface SecretPayload {
  endpoint: EndpointRow;
  secret: string;
}
const secretPayload = (name: string) =>
  builder.objectRef<SecretPayload>(name).implement({
    fields: (t) => ({
      webhookEndpoint: t.prismaField({
        type: 'WebhookEndpoint',
        resolve: (q, p, _a, ctx) => ctx.db.webhookEndpoint.findUniqueOrThrow({ ...q, where: { id: p.endpoint.id } }),
      }),
      secret: t.exposeString('secret', {
        description: 'The signing secret (`whsec_` + base64). Shown only now: store it where your receiver verifies signatures.',
      }),
    }),
  });
const CreateWebhookEndpointPayload = secretPayload('CreateWebhookEndpointPayload');
const RotateWebhookSecretPayload = secretPayload('RotateWebhookSecretPayload');

const PingWebhookPayload = builder.objectRef<AttemptResult & { webhookId: string }>('PingWebhookPayload').implement({
  description: 'What the endpoint answered to a signed test message (`type: "WEBHOOK_PING"`).',
  fields: (t) => ({
    ok: t.exposeBoolean('ok', { description: 'True on a 2xx answer.' }),
    statusCode: t.exposeInt('statusCode', { nullable: true }),
    latencyMs: t.exposeInt('latencyMs'),
    error: t.exposeString('error', { nullable: true }),
    response: t.exposeString('response', { nullable: true }),
    webhookId: t.exposeString('webhookId'),
  }),
});

const ReplayWebhookEventsPayload = builder.objectRef<{ endpointId: string; queued: number }>('ReplayWebhookEventsPayload').implement({
  fields: (t) => ({
    webhookEndpoint: t.prismaField({
      type: 'WebhookEndpoint',
      resolve: (q, p, _a, ctx) => ctx.db.webhookEndpoint.findUniqueOrThrow({ ...q, where: { id: p.endpointId } }),
    }),
    queued: t.exposeInt('queued', { description: 'Deliveries queued.' }),
  }),
});

builder.mutationFields((t) => ({
  createWebhookEndpoint: t.field({
    type: CreateWebhookEndpointPayload,
    description: 'Subscribes a URL to events. The answer carries the signing secret, shown only once.',
    args: { input: t.arg({ type: CreateWebhookEndpointInput, required: true }) },
    errors: { types: [ValidationError], directResult: true, union: { name: 'CreateWebhookEndpointResult' } },
    resolve: (_r, { input }, ctx) =>
      ctx.services.webhooks.create({ ...input, pipelineIds: input.pipelineIds?.map((p) => p.id) ?? null }),
  }),
  updateWebhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    args: { input: t.arg({ type: UpdateWebhookEndpointInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError], dataField: { name: 'webhookEndpoint' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.webhooks.update({ ...input, id: input.id.id, pipelineIds: input.pipelineIds?.map((p) => p.id) ?? null }),
  }),
  deleteWebhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    description: 'Removes the endpoint and its delivery log; nothing more is sent to it.',
    args: { input: t.arg({ type: WebhookEndpointIdInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'webhookEndpoint' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.webhooks.delete(input.id.id),
  }),
  rotateWebhookSecret: t.field({
    type: RotateWebhookSecretPayload,
    description: 'A new secret (shown only now); deliveries are signed with both secrets during the overlap.',
    args: { input: t.arg({ type: RotateWebhookSecretInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError], directResult: true, union: { name: 'RotateWebhookSecretResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.webhooks.rotateSecret(input.id.id, input.overlapSeconds),
  }),
  pingWebhook: t.field({
    type: PingWebhookPayload,
    description: 'Sends a signed test message now (once, not queued) and reports the answer.',
    args: { input: t.arg({ type: WebhookEndpointIdInput, required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'PingWebhookResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.deliveries.ping(input.id.id),
  }),
  redeliverWebhook: t.prismaField({
    type: 'WebhookDelivery',
    description: 'Queues one delivery again now (same webhook-id), whatever its status.',
    args: { input: t.arg({ type: RedeliverWebhookInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'delivery' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.webhooks.redeliver(input.deliveryId.id),
  }),
  replayWebhookEvents: t.field({
    type: ReplayWebhookEventsPayload,
    description: "Re-sends every retained event after a cursor that matches the endpoint's filters (each with its original webhook-id).",
    args: { input: t.arg({ type: ReplayWebhookEventsInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, CursorExpiredError], directResult: true, union: { name: 'ReplayWebhookEventsResult' } },
    resolve: async (_r, { input }, ctx) => {
      const after = parseSequence(input.afterCursor, 'afterCursor');
      const before = input.beforeCursor != null ? parseSequence(input.beforeCursor, 'beforeCursor') : null;
      const queued = await ctx.services.webhooks.replay(input.endpointId.id, after, before);
      return { endpointId: input.endpointId.id, queued };
    },
  }),
}));
