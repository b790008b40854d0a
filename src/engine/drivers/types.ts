/**
 * The driver contract: what every source and destination implements.
 *
 * Modelled on Airbyte's CDK (spec / check / discover / read / write) and Conduit's
 * connector SDK. Drivers are plain modules with no GraphQL, Prisma or pub/sub imports:
 * they run inside the job worker thread as well as in the API process (check, discover,
 * preview), so they must be self-contained and safe to load anywhere.
 */

import type { FileAccess } from '../../security/file-roots.js';

/** JSON Schema (draft 2020-12 subset that Ajv understands). */
export type JsonSchema = Record<string, unknown>;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A record is a plain JSON object. Field order is preserved as read. */
export type DataRecord = Record<string, unknown>;

export type ConnectorRole = 'SOURCE' | 'DESTINATION';

/** Logical field types a source reports in its catalog and a destination maps to columns. */
export type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'datetime' | 'json';

export type SyncMode = 'FULL_REFRESH' | 'INCREMENTAL';

export type WriteMode = 'APPEND' | 'OVERWRITE' | 'UPSERT' | 'MERGE';

export interface FieldSchema {
  name: string;
  type: FieldType;
  nullable: boolean;
}

/** One stream (table, file, endpoint) as discovered. */
export interface StreamDescriptor {
  name: string;
  fields: FieldSchema[];
  supportedSyncModes: SyncMode[];
  /** Field(s) usable as an incremental cursor chosen by the source itself, if any. */
  defaultCursorField?: string[] | null;
  /** Primary key as a list of field names, if the source knows one. */
  sourceDefinedPrimaryKey?: string[] | null;
}

export interface Catalog {
  streams: StreamDescriptor[];
}

/** A stream as configured in a pipeline (Airbyte's ConfiguredAirbyteStream). */
export interface ConfiguredStream {
  name: string;
  /** Selected fields; null/undefined means all fields. */
  fields?: string[] | null;
  syncMode: SyncMode;
  cursorField?: string[] | null;
  primaryKey?: string[] | null;
  /** Destination table / object name; defaults to the stream name. */
  destinationName?: string | null;
  /** Overrides the pipeline's write mode for this stream (Airbyte's destination sync mode). */
  writeMode?: WriteMode | null;
  /** Field schema after mapping, when known (used by destinations to create tables). */
  schema?: FieldSchema[] | null;
  /**
   * The source's own fields as its `discover` reported them in this attempt (the runner
   * discovers before it reads): a source that types values by discovery reads these instead of
   * sampling again. Absent when nobody discovered.
   */
  sourceFields?: FieldSchema[] | null;
}

/** Opaque per-stream state produced by a source and handed back to it on the next read. */
export type StreamState = JsonValue;

export type StreamStates = Record<string, StreamState>;

export interface CheckResult {
  ok: boolean;
  message: string;
}

/**
 * A record a source emitted despite a problem with it (e.g. a value that failed its
 * configured type conversion and was kept as the raw string). `index` is the record's
 * position within its `records` batch. The record is still covered by the following
 * state; the runner decides whether to dead-letter it. (Additive: sources that never
 * see such problems omit `errors`.)
 */
export interface RecordError {
  index: number;
  error: string;
}

/**
 * What a source yields. Records come in batches to keep per-record overhead low.
 * A `state` message promises: every record of that stream yielded before it is covered
 * by the state, so resuming from it never skips a record.
 */
export type SourceMessage =
  | { type: 'records'; stream: string; records: DataRecord[]; bytes: number; errors?: RecordError[] }
  | { type: 'state'; stream: string; state: StreamState }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string };

export interface ReadOptions {
  /** Preferred number of records per `records` message. */
  batchSize: number;
  /** Aborted when the job is cancelled; sources stop promptly and release resources. */
  signal?: AbortSignal;
  /** The caller's files (and, later, other resources): every local path goes through it. */
  ctx: DriverContext;
}

/** A record the destination refused; the rest of the batch is committed. */
export interface RejectedRecord {
  index: number;
  error: string;
}

export interface WriteResult {
  written: number;
  bytes: number;
  rejected: RejectedRecord[];
}

/**
 * A destination writer for one stream of one job.
 * Contract: when `writeBatch` resolves, the batch is durably committed (except under
 * OVERWRITE, where visibility is deferred to `commit` so readers never see a half-written
 * table). `commit` makes everything visible; `abort` discards what is not yet committed.
 */
export interface StreamWriter {
  writeBatch(records: DataRecord[]): Promise<WriteResult>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface WriterOptions {
  writeMode: WriteMode;
  stream: ConfiguredStream;
  /** The caller's files: every local path goes through it. */
  ctx: DriverContext;
}

/**
 * What a driver call may touch besides its config: the caller's files. Every driver that opens
 * a local path goes through `files` (src/security/file-roots.ts) and never through `fs` on a
 * user path directly. The API process and job workers build it from the same plain scope.
 */
export interface DriverContext {
  files: FileAccess;
}

/** A problem with one config property (`path` is dotted, relative to the config). */
export interface ConfigError {
  path: string;
  message: string;
}

interface DriverBase<C> {
  /** Unique driver name, e.g. `csv`. */
  name: string;
  role: ConnectorRole;
  title: string;
  description: string;
  /** Markdown documentation shown in the API. */
  docs: string;
  /**
   * JSON Schema of the config. Secret fields carry `"secret": true`; the fields deciding where
   * requests or connections go (URL, host, port, database) carry `"origin": true`.
   */
  configSchema: JsonSchema;
  check(config: C, ctx: DriverContext): Promise<CheckResult>;
  discover(config: C, ctx: DriverContext): Promise<Catalog>;
  /**
   * Checks made when a connector is created or updated, without connecting anywhere: local
   * paths inside the caller's files roots, statements allowed. Each problem becomes a
   * VALIDATION_FAILED entry at `config.<path>`. The same rules are enforced again at open.
   */
  validate?(config: C, ctx: DriverContext): ConfigError[];
}

export interface SourceDriver<C = any> extends DriverBase<C> {
  role: 'SOURCE';
  read(config: C, streams: ConfiguredStream[], state: StreamStates, options: ReadOptions): AsyncIterable<SourceMessage>;
}

export interface DestinationDriver<C = any> extends DriverBase<C> {
  role: 'DESTINATION';
  supportedWriteModes: WriteMode[];
  openWriter(config: C, options: WriterOptions): Promise<StreamWriter>;
}

export type Driver = SourceDriver | DestinationDriver;

/** A failure the driver knows to be permanent (bad config, auth refused): no retry helps. */
export class DriverError extends Error {
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'DriverError';
  }
}
