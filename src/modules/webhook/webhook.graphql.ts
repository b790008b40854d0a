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
  description: 'Where a webhook delivery stands.',
  values: {
    PENDING: { description: 'Queued or being retried.' },
    DELIVERED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Given up: retried past the max age, or the endpoint answered 410 Gone.' },
  } as const,
});

export const WebhookEndpointRef = builder.prismaNode('WebhookEndpoint', {
  id: { field: 'id', description: 'Global id (Relay).' },
  nullable: true,
  description:
    'A callback URL that receives events, signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`). ' +
    'Its secret is shown once, by createWebhookEndpoint and rotateWebhookSecret.',
  fields: (t) => ({
    url: t.exposeString('url', { description: 'The http(s) URL each delivery is POSTed to (JSON body, Standard Webhooks headers).' }),
    description: t.exposeString('description', { nullable: true, description: 'Free text for your own reference; null when none was given.' }),
    eventTypes: t.field({ type: [EventTypeEnum], description: 'Event types delivered; empty: all.', resolve: (e) => e.eventTypes as EventType[] }),
    pipelineIds: t.idList({ description: 'Only events of these pipelines; empty: all events.', resolve: (e) => e.pipelineIds.map((id) => encodeGlobalID('Pipeline', id)) }),
    enabled: t.exposeBoolean('enabled', {
      description: 'Whether events are queued and sent to it. A disabled endpoint gets no new deliveries; see `disabledReason`.',
    }),
    disabledReason: t.exposeString('disabledReason', { nullable: true, description: 'Why the endpoint was disabled (410 Gone, prolonged failure, a user).' }),
    secretRotatedAt: t.expose('secretRotatedAt', { type: 'DateTime', nullable: true, description: 'When rotateWebhookSecret last ran; null when the secret is the original one.' }),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'While in the future, deliveries are also signed with the previous secret.',
      resolve: (e) => (e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > new Date() ? e.previousSecretExpiresAt : null),
    }),
    failingSince: t.expose('failingSince', { type: 'DateTime', nullable: true, description: 'Start of the current run of failed attempts.' }),
    lastSuccessAt: t.expose('lastSuccessAt', { type: 'DateTime', nullable: true, description: 'When a delivery last got a 2xx answer; null until one did.' }),
    version: t.exposeInt('version', { description: 'Incremented by every update, secret rotation and automatic disabling.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the endpoint was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the endpoint row last changed (including delivery bookkeeping such as `lastSuccessAt`).' }),
    deliveries: t.relatedConnection('deliveries', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description: 'The delivery log, newest first.',
      args: { status: t.arg({ type: WebhookDeliveryStatusEnum, description: 'Only deliveries in this status; absent: all.' }) },
      query: (args) => ({ where: args.status ? { status: args.status } : {}, orderBy: { id: 'desc' } }),
    }),
  }),
});

export const WebhookDeliveryRef = builder.prismaNode('WebhookDelivery', {
  id: { field: 'id', description: 'Global id (Relay); what redeliverWebhook takes.' },
  nullable: true,
  description: 'One event (or replay of it) queued for one endpoint, with its attempts.',
  fields: (t) => ({
    endpoint: t.relation('endpoint', { description: 'The endpoint it is sent to.' }),
    webhookId: t.exposeString('messageId', { description: 'The `webhook-id` header: the idempotency key, the same on every retry and redelivery.' }),
    eventType: t.field({ type: EventTypeEnum, description: 'The type of the event delivered (also the `type` of the body).', resolve: (d) => d.eventType as EventType }),
    eventCursor: t.string({ description: "The event's cursor (its sequence number in the event log), usable with replayWebhookEvents.", resolve: (d) => d.eventSequence.toString() }),
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
    status: t.field({ type: WebhookDeliveryStatusEnum, description: 'Pending, delivered or failed for good.', resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts', { description: 'HTTP attempts made so far; a redelivery does not reset it.' }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the next attempt is due (retries back off exponentially with jitter, or follow Retry-After); null unless PENDING.',
      resolve: (d) => (d.status === 'PENDING' ? d.nextAttemptAt : null) }),
    lastAttemptAt: t.expose('lastAttemptAt', { type: 'DateTime', nullable: true, description: 'When the last attempt was made; null before the first.' }),
    lastStatusCode: t.exposeInt('lastStatusCode', { nullable: true, description: 'HTTP status of the last attempt; null before the first or when no answer came.' }),
    lastError: t.exposeString('lastError', { nullable: true, description: 'Why the last attempt failed (HTTP status, redirect not followed, network error, timeout); null when it succeeded or none was made.' }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true, description: 'When the endpoint answered 2xx; null unless DELIVERED.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the delivery was queued first (a redelivery keeps it).' }),
    attemptHistory: t.relation('attemptsList', { description: 'Every attempt, oldest first.', query: { orderBy: { number: 'asc' } } }),
  }),
});

builder.prismaObject('WebhookAttempt', {
  description: 'One HTTP attempt of a delivery.',
  fields: (t) => ({
    number: t.exposeInt('number', { description: 'The attempt number within its delivery, from 1.' }),
    at: t.expose('at', { type: 'DateTime', description: 'When the attempt finished and was recorded.' }),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: 'Null when no answer came (network error, timeout).' }),
    latencyMs: t.exposeInt('latencyMs', { description: 'Milliseconds from sending the request to reading the answer (or failing).' }),
    error: t.exposeString('error', { nullable: true, description: 'Why the attempt failed (non-2xx status, redirect not followed, network error, timeout); null on success.' }),
    response: t.exposeString('response', { nullable: true, description: 'The first bytes of the answer.' }),
  }),
});

builder.queryFields((t) => ({
  webhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    nullable: true,
    description: 'One webhook endpoint of your workspace; null when it does not exist (or belongs to another workspace).',
    args: { id: t.arg.globalID({ required: true, for: WebhookEndpointRef, description: 'Global id of the endpoint.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.webhookEndpoint.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  webhookEndpoints: t.prismaConnection({
    type: 'WebhookEndpoint',
    cursor: 'id',
    ...PAGE,
    description: `The webhook endpoints of your workspace, oldest first; ${PAGE.defaultSize} per page unless \`first\`/\`last\` say otherwise (at most ${PAGE.maxSize}).`,
    args: { enabled: t.arg.boolean({ description: 'Only enabled (true) or only disabled (false) endpoints; absent: all.' }) },
    resolve: (query, _r, args, ctx) =>
      ctx.db.webhookEndpoint.findMany({ ...query, where: args.enabled != null ? { enabled: args.enabled } : {}, orderBy: { id: 'asc' } }),
    totalCount: (_p, args, ctx) => ctx.db.webhookEndpoint.count({ where: args.enabled != null ? { enabled: args.enabled } : {} }),
  }),
}));

const CreateWebhookEndpointInput = builder.inputType('CreateWebhookEndpointInput', {
  description: 'A new webhook endpoint and which events it receives.',
  fields: (t) => ({
    url: t.string({ required: true, description: 'An http(s) URL; redirects are not followed.' }),
    description: t.string({ description: 'Free text for your own reference.' }),
    eventTypes: t.field({ type: [EventTypeEnum], description: 'Event types to deliver; empty or absent: all.' }),
    pipelineIds: t.globalIDList({ for: PipelineRef, description: 'Only events of these pipelines; empty or absent: all events.' }),
    enabled: t.boolean({ defaultValue: true, description: 'Create it disabled (false) to receive nothing until it is enabled.' }),
  }),
});

const UpdateWebhookEndpointInput = builder.inputType('UpdateWebhookEndpointInput', {
  description: 'Changes to a webhook endpoint; absent fields keep their value.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: WebhookEndpointRef, description: 'Global id of the endpoint to change.' }),
    url: t.string({ description: 'New http(s) URL; null or absent: unchanged.' }),
    description: t.string({ description: 'New free-text description; null clears it, absent keeps it.' }),
    eventTypes: t.field({ type: [EventTypeEnum], description: 'Replaces the filter ([] = all).' }),
    pipelineIds: t.globalIDList({ for: PipelineRef, description: 'Replaces the filter ([] = all).' }),
    enabled: t.boolean({ description: 'Re-enabling clears the disabled reason and the failure streak; pending deliveries resume.' }),
  }),
});

const WebhookEndpointIdInput = builder.inputType('WebhookEndpointIdInput', {
  description: 'Names one webhook endpoint.',
  fields: (t) => ({ id: t.globalID({ required: true, for: WebhookEndpointRef, description: 'Global id of the endpoint.' }) }),
});

const RotateWebhookSecretInput = builder.inputType('RotateWebhookSecretInput', {
  description: 'The endpoint whose signing secret to replace, and the overlap.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: WebhookEndpointRef, description: 'Global id of the endpoint.' }),
    overlapSeconds: t.int({
      description: 'How long deliveries are also signed with the previous secret (default 86400; 0: not at all). At most 2592000 (30 days).',
    }),
  }),
});

const RedeliverWebhookInput = builder.inputType('RedeliverWebhookInput', {
  description: 'Names one delivery to send again.',
  fields: (t) => ({ deliveryId: t.globalID({ required: true, for: WebhookDeliveryRef, description: 'Global id of the WebhookDelivery.' }) }),
});

const ReplayWebhookEventsInput = builder.inputType('ReplayWebhookEventsInput', {
  description: 'An endpoint and a range of event cursors to send to it again.',
  fields: (t) => ({
    endpointId: t.globalID({ required: true, for: WebhookEndpointRef, description: 'Global id of the endpoint to replay to.' }),
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
        description: 'The endpoint the secret belongs to.',
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
    statusCode: t.exposeInt('statusCode', { nullable: true, description: 'HTTP status of the answer; null when no answer came (network error, timeout).' }),
    latencyMs: t.exposeInt('latencyMs', { description: 'Milliseconds from sending the request to reading the answer (or failing).' }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed (non-2xx status, redirect not followed, network error, timeout); null on success.' }),
    response: t.exposeString('response', { nullable: true, description: 'The first bytes (up to 1 KiB) of the answer; null when empty or none came.' }),
    webhookId: t.exposeString('webhookId', { description: 'The `webhook-id` header of the test message (`msg_ping_…`, new for every ping).' }),
  }),
});

const ReplayWebhookEventsPayload = builder.objectRef<{ endpointId: string; queued: number }>('ReplayWebhookEventsPayload').implement({
  fields: (t) => ({
    webhookEndpoint: t.prismaField({
      type: 'WebhookEndpoint',
      description: 'The endpoint the events were queued for.',
      resolve: (q, p, _a, ctx) => ctx.db.webhookEndpoint.findUniqueOrThrow({ ...q, where: { id: p.endpointId } }),
    }),
    queued: t.exposeInt('queued', { description: 'Deliveries queued.' }),
  }),
});

builder.mutationFields((t) => ({
  createWebhookEndpoint: t.field({
    type: CreateWebhookEndpointPayload,
    description: 'Subscribes a URL to events. The answer carries the signing secret, shown only once.',
    args: { input: t.arg({ type: CreateWebhookEndpointInput, required: true, description: 'The new endpoint.' }) },
    errors: { types: [ValidationError], directResult: true, union: { name: 'CreateWebhookEndpointResult' } },
    resolve: (_r, { input }, ctx) =>
      ctx.services.webhooks.create({ ...input, pipelineIds: input.pipelineIds?.map((p) => p.id) ?? null }),
  }),
  updateWebhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    description: 'Changes an endpoint\'s URL, description, filters or enabled state. VALIDATION_FAILED for a non-http(s) URL or an unknown pipeline; NOT_FOUND.',
    args: { input: t.arg({ type: UpdateWebhookEndpointInput, required: true, description: 'The endpoint and its changes.' }) },
    errors: { types: [ValidationError, NotFoundError], dataField: { name: 'webhookEndpoint', description: 'The endpoint after the change.' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.webhooks.update({ ...input, id: input.id.id, pipelineIds: input.pipelineIds?.map((p) => p.id) ?? null }),
  }),
  deleteWebhookEndpoint: t.prismaField({
    type: 'WebhookEndpoint',
    description: 'Removes the endpoint and its delivery log; nothing more is sent to it.',
    args: { input: t.arg({ type: WebhookEndpointIdInput, required: true, description: 'The endpoint to delete.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'webhookEndpoint', description: 'The endpoint as it was before deletion.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.webhooks.delete(input.id.id),
  }),
  rotateWebhookSecret: t.field({
    type: RotateWebhookSecretPayload,
    description: 'A new secret (shown only now); deliveries are signed with both secrets during the overlap.',
    args: { input: t.arg({ type: RotateWebhookSecretInput, required: true, description: 'The endpoint and the overlap.' }) },
    errors: { types: [ValidationError, NotFoundError], directResult: true, union: { name: 'RotateWebhookSecretResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.webhooks.rotateSecret(input.id.id, input.overlapSeconds),
  }),
  pingWebhook: t.field({
    type: PingWebhookPayload,
    description: 'Sends a signed test message now (once, not queued) and reports the answer.',
    args: { input: t.arg({ type: WebhookEndpointIdInput, required: true, description: 'The endpoint to ping.' }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'PingWebhookResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.deliveries.ping(input.id.id),
  }),
  redeliverWebhook: t.prismaField({
    type: 'WebhookDelivery',
    description: 'Queues one delivery again now (same webhook-id), whatever its status.',
    args: { input: t.arg({ type: RedeliverWebhookInput, required: true, description: 'The delivery to send again.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'delivery', description: 'The delivery, PENDING again and due now.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.webhooks.redeliver(input.deliveryId.id),
  }),
  replayWebhookEvents: t.field({
    type: ReplayWebhookEventsPayload,
    description: "Re-sends every retained event after a cursor that matches the endpoint's filters (each with its original webhook-id).",
    args: { input: t.arg({ type: ReplayWebhookEventsInput, required: true, description: 'The endpoint and the cursor range.' }) },
    errors: { types: [ValidationError, NotFoundError, CursorExpiredError], directResult: true, union: { name: 'ReplayWebhookEventsResult' } },
    resolve: async (_r, { input }, ctx) => {
      const after = parseSequence(input.afterCursor, 'afterCursor');
      const before = input.beforeCursor != null ? parseSequence(input.beforeCursor, 'beforeCursor') : null;
      const queued = await ctx.services.webhooks.replay(input.endpointId.id, after, before);
      return { endpointId: input.endpointId.id, queued };
    },
  }),
}));
