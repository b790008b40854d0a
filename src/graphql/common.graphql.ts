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
    code: t.field({ type: ErrorCodeEnum, resolve: (e) => e.code }),
    message: t.exposeString('message'),
  }),
});

const FieldErrorRef = builder.objectRef<FieldError>('FieldError').implement({
  description: 'One problem with one input field.',
  fields: (t) => ({
    path: t.exposeString('path', { description: 'Dot path of the offending input, e.g. `config.delimiter`.' }),
    message: t.exposeString('message'),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ValidationError,
  fields: (t) => ({
    fieldErrors: t.field({ type: [FieldErrorRef], resolve: (e) => e.fieldErrors }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof NotFoundError,
  fields: (t) => ({
    entity: t.exposeString('entity'),
    id: t.exposeString('id'),
  }),
});

builder.objectType(InvalidTransitionError, {
  name: 'InvalidTransitionError',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof InvalidTransitionError,
  fields: (t) => ({
    action: t.exposeString('action'),
    state: t.exposeString('state'),
    allowedActions: t.exposeStringList('allowedActions'),
  }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ConflictError,
  fields: (t) => ({
    currentVersion: t.exposeInt('currentVersion', { nullable: true }),
  }),
});

builder.objectType(InUseError, {
  name: 'InUseError',
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
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ConnectorFailedError,
  fields: (t) => ({
    connectorId: t.id({ resolve: (e) => encodeGlobalID('Connector', e.connectorId) }),
  }),
});

builder.objectType(CursorExpiredError, {
  name: 'CursorExpiredError',
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof CursorExpiredError,
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    oldestAvailable: t.exposeString('oldestAvailable', { description: 'The oldest cursor still usable: every event after it is retained.' }),
  }),
});

builder.objectType(ForbiddenError, {
  name: 'ForbiddenError',
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
    limit: t.field({ type: ResourceLimitEnum, resolve: (e) => e.limit }),
  }),
});
