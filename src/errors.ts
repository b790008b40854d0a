/**
 * Domain errors. Services throw these; the GraphQL layer turns each class into a typed
 * member of a mutation's result union with a stable `code`. Anything else that escapes a
 * resolver is unexpected: masked for the client and logged with the request id.
 */

export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'INVALID_TRANSITION'
  | 'CONFLICT'
  | 'IN_USE'
  | 'CONNECTOR_FAILED'
  | 'CURSOR_EXPIRED'
  | 'FORBIDDEN'
  | 'RESOURCE_LIMIT';

export abstract class AppError extends Error {
  abstract readonly code: ErrorCode;
}

export interface FieldError {
  /** Where the problem is, e.g. `config.delimiter` or `input.streams[0].name`. */
  path: string;
  message: string;
}

export class ValidationError extends AppError {
  readonly code = 'VALIDATION_FAILED' as const;
  constructor(
    message: string,
    readonly fieldErrors: FieldError[] = [],
  ) {
    super(fieldErrors.length ? `${message}: ${fieldErrors.map((e) => `${e.path}: ${e.message}`).join('; ')}` : message);
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND' as const;
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
    this.name = 'NotFoundError';
  }
}

export class InvalidTransitionError extends AppError {
  readonly code = 'INVALID_TRANSITION' as const;
  constructor(
    readonly action: string,
    readonly state: string,
    readonly allowedActions: string[],
  ) {
    super(`cannot ${action} a pipeline in state ${state}; allowed now: ${allowedActions.join(', ') || 'none'}`);
    this.name = 'InvalidTransitionError';
  }
}

/** Optimistic-concurrency or concurrent-action conflict: re-read and retry. */
export class ConflictError extends AppError {
  readonly code = 'CONFLICT' as const;
  constructor(
    message: string,
    readonly currentVersion?: number,
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** The object is referenced by others and cannot be removed. */
export class InUseError extends AppError {
  readonly code = 'IN_USE' as const;
  constructor(
    message: string,
    readonly usedBy: string[],
  ) {
    super(message);
    this.name = 'InUseError';
  }
}

/** A connector's external system failed an API-initiated operation (discover, preview). */
export class ConnectorFailedError extends AppError {
  readonly code = 'CONNECTOR_FAILED' as const;
  constructor(
    message: string,
    readonly connectorId: string,
  ) {
    super(message);
    this.name = 'ConnectorFailedError';
  }
}

/** A resumable stream or query was given an event cursor older than the retained log. */
export class CursorExpiredError extends AppError {
  readonly code = 'CURSOR_EXPIRED' as const;
  constructor(
    readonly cursor: string,
    /** The oldest cursor still usable (events after it are all retained). */
    readonly oldestAvailable: string,
  ) {
    super(`cursor expired: oldest available is ${oldestAvailable} (events up to it were pruned by the retention policy)`);
    this.name = 'CursorExpiredError';
  }
}

/** The caller's API key does not allow this (scope too low, or beyond what the key may grant). */
export class ForbiddenError extends AppError {
  readonly code = 'FORBIDDEN' as const;
  constructor(
    message: string,
    /** The scope the operation needs. */
    readonly requiredScope: string,
  ) {
    super(message);
    this.name = 'ForbiddenError';
  }
}

/** What a bounded driver call (preview, discover, check) ran out of. */
export type ResourceLimit = 'TIME' | 'MEMORY' | 'OUTPUT';

/**
 * A driver call run off the API thread (preview, discover) was stopped at one of its limits
 * (SLUICE_PREVIEW_TIMEOUT_MS, SLUICE_PREVIEW_MEMORY_MB, or the size of its answer).
 */
export class ResourceLimitError extends AppError {
  readonly code = 'RESOURCE_LIMIT' as const;
  constructor(
    message: string,
    readonly limit: ResourceLimit,
  ) {
    super(message);
    this.name = 'ResourceLimitError';
  }
}
