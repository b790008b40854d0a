/**
 * Types shared by every module: scalars, the Error interface and the typed errors that
 * mutation results carry. Each error has a stable machine-readable `code`.
 */
import { GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONResolver, SafeIntResolver } from 'graphql-scalars';
import {
  AppError,
  ConflictError,
  ConnectorFailedError,
  CursorExpiredError,
  ForbiddenError,
  InUseError,
  InvalidTransitionError,
  NotFoundError,
  ResourceLimitError,
  ValidationError,
  type FieldError,
} from '../errors.js';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from './builder.js';

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
// Counters are BigInt in the database; SafeInt keeps them plain JSON numbers (exact to 2^53).
builder.addScalarType('SafeInt', new GraphQLScalarType({
  ...SafeIntResolver.toConfig(),
  serialize: (value) => SafeIntResolver.serialize(typeof value === 'bigint' ? Number(value) : value),
}) as never);

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'Stable, machine-readable error codes.',
  values: {
    VALIDATION_FAILED: { description: 'The input is invalid; see fieldErrors. Nothing was changed.' },
    NOT_FOUND: { description: 'The object does not exist (or is not visible to you).' },
    INVALID_TRANSITION: { description: 'The lifecycle action is not allowed in the current state.' },
    CONFLICT: { description: 'The object changed concurrently (version mismatch) or is busy; re-read and retry.' },
    IN_USE: { description: 'The object is referenced by others and cannot be removed.' },
    CONNECTOR_FAILED: { description: "The connector's external system failed the operation (unreachable, refused, bad data)." },
    CURSOR_EXPIRED: { description: 'The event cursor is older than the retained event log; resume from the oldest available cursor.' },
    FORBIDDEN: { description: "Your API key's scope does not allow this (or the key would grant more than it has). Nothing was changed." },
    RESOURCE_LIMIT: { description: 'A preview or discovery was stopped at its time or memory limit, or its answer was too large. Nothing was changed.' },
  } as const,
});

export const ErrorInterface = builder.interfaceRef<AppError>('Error').implement({
  description: 'Implemented by every typed error returned in a mutation result.',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, description: 'Stable machine-readable code; branch on this, not on the message.', resolve: (e) => e.code }),
    message: t.exposeString('message', { description: 'Human-readable explanation in English; its wording may change between versions.' }),
  }),
});

const FieldErrorRef = builder.objectRef<FieldError>('FieldError').implement({
  description: 'One problem with one input field.',
  fields: (t) => ({
    path: t.exposeString('path', { description: 'Dot path of the offending input, e.g. `config.delimiter`.' }),
    message: t.exposeString('message', { description: 'What is wrong with the value at `path`.' }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'The input was rejected (VALIDATION_FAILED); nothing was changed. `fieldErrors` names each offending input.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ValidationError,
  fields: (t) => ({
    fieldErrors: t.field({ type: [FieldErrorRef], description: 'One entry per problem; may be empty when the problem is not tied to one field.', resolve: (e) => e.fieldErrors }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description: 'The object named in the input does not exist or belongs to another workspace (NOT_FOUND).',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof NotFoundError,
  fields: (t) => ({
    entity: t.exposeString('entity', { description: 'The kind of object looked for, e.g. `Connector` or `WebhookDelivery`.' }),
    id: t.exposeString('id', { description: 'The key that was looked up: an internal id (not the Relay global id), a driver name, a file path or `id@version`, depending on `entity`.' }),
  }),
});

builder.objectType(InvalidTransitionError, {
  name: 'InvalidTransitionError',
  description: 'A lifecycle action is not allowed in the current state of the object (INVALID_TRANSITION); nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof InvalidTransitionError,
  fields: (t) => ({
    action: t.exposeString('action', { description: 'The action that was refused, e.g. `start`.' }),
    state: t.exposeString('state', { description: 'The state the object is in now.' }),
    allowedActions: t.exposeStringList('allowedActions', { description: 'The actions allowed in that state (may be empty).' }),
  }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description: 'The object changed concurrently or is busy (CONFLICT); nothing was changed. Re-read it and retry.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ConflictError,
  fields: (t) => ({
    currentVersion: t.exposeInt('currentVersion', {
      nullable: true,
      description: 'The version the object is at now, when the conflict was an `expectedVersion` mismatch; null for other conflicts.',
    }),
  }),
});

builder.objectType(InUseError, {
  name: 'InUseError',
  description: 'The object cannot be deleted because other objects reference it (IN_USE); nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof InUseError,
  fields: (t) => ({
    usedBy: t.exposeStringList('usedBy', { description: 'Global ids of the objects that use this one.' }),
  }),
});

/** Page-size bounds for every connection. */
export const PAGE = { defaultSize: 20, maxSize: 100 } as const;

builder.objectType(ConnectorFailedError, {
  name: 'ConnectorFailedError',
  description: "The connector's external system failed the operation (CONNECTOR_FAILED): unreachable, refused, or returned bad data. The message says why, with secrets removed.",
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ConnectorFailedError,
  fields: (t) => ({
    connectorId: t.id({ description: 'Global id of the connector that failed.', resolve: (e) => encodeGlobalID('Connector', e.connectorId) }),
  }),
});

builder.objectType(CursorExpiredError, {
  name: 'CursorExpiredError',
  description: 'The event cursor given is older than the retained event log (CURSOR_EXPIRED): events after it may have been pruned.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof CursorExpiredError,
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'The cursor that was given.' }),
    oldestAvailable: t.exposeString('oldestAvailable', { description: 'The oldest cursor still usable: every event after it is retained.' }),
  }),
});

builder.objectType(ForbiddenError, {
  name: 'ForbiddenError',
  description: "The caller's API key may not do this (FORBIDDEN): its scope is too low, or the operation would grant more than the key has. Nothing was changed.",
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ForbiddenError,
  fields: (t) => ({
    requiredScope: t.exposeString('requiredScope', { description: 'The scope (READ, WRITE or ADMIN) the operation needs.' }),
  }),
});

const ResourceLimitEnum = builder.enumType('ResourceLimit', {
  description: 'The limit a bounded driver call (preview, discovery) reached.',
  values: {
    TIME: { description: 'It ran longer than SLUICE_PREVIEW_TIMEOUT_MS.' },
    MEMORY: { description: 'It needed more memory than SLUICE_PREVIEW_MEMORY_MB.' },
    OUTPUT: { description: 'Its answer was larger than the API returns (ask for fewer records or a narrower stream).' },
  } as const,
});

builder.objectType(ResourceLimitError, {
  name: 'ResourceLimitError',
  description: 'The operation ran in a worker with time and memory limits and was stopped at one of them.',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ResourceLimitError,
  fields: (t) => ({
    limit: t.field({ type: ResourceLimitEnum, description: 'Which limit stopped it.', resolve: (e) => e.limit }),
  }),
});
