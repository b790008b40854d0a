/**
 * Messages between the runner (API process) and a job worker thread.
 * The worker owns all record work; the runner owns the database. A `checkpoint` is sent
 * only after the destination committed every record it covers, so persisting its state is
 * always safe (at-least-once); counters in it are deltas since the previous checkpoint.
 */
import type { ConfiguredStream, StreamStates, WriteMode } from '../drivers/types.js';
import type { MappingSpec } from '../mapping/mapping.js';
import type { FileScope } from '../../security/file-roots.js';
import type { DriverLogLevel } from '../drivers/context.js';

/** How severe a job log line is. */
export type LogLevel = DriverLogLevel;
/** Which part of a job wrote a log line (drivers never choose RUNNER: it is the runner's own). */
export type LogStage = 'SOURCE' | 'MAPPING' | 'DESTINATION' | 'RUNNER';

/** What a log line carries besides its level and message. */
export interface LogExtra {
  stage?: LogStage;
  /** Plain JSON details (an HTTP request's fields, an error's stack). */
  data?: Record<string, unknown>;
  /** When it was written (ms since the epoch); default: when the runner received it. */
  at?: number;
}

export interface JobPlan {
  jobId: string;
  pipelineId: string;
  source: { driver: string; config: unknown };
  destination: { driver: string; config: unknown };
  streams: ConfiguredStream[];
  /**
   * The files the pipeline's workspace may touch (plain data; the worker builds its FileAccess
   * from it). Null only together with `configError`.
   */
  files: FileScope | null;
  /** Confirmed per-stream state to resume from. */
  state: StreamStates;
  mapping: MappingSpec | null;
  writeMode: WriteMode;
  batchSize: number;
  /** The job is stopped (and fails) after this long; null: no limit. */
  executionTimeoutMs?: number | null;
  /** Percent (0–100) of failed records above which the job fails. */
  failureThreshold: number;
  /** Counters already accumulated by earlier attempts of this job. */
  totals: Counters;
  streamTotals: Record<string, Counters>;
  /**
   * Secret values in the connector configs (decrypted for this job only); the worker removes
   * them from every message it sends back.
   */
  secrets?: string[];
  /** Set when the connectors' credentials could not be prepared: the job fails with it, not retried. */
  configError?: string;
  /** When set, the job re-runs these dead-lettered source records instead of reading the source. */
  replay?: { stream: string; record: unknown }[];
  /**
   * Driver log lines this attempt may still send (the job's log cap minus what it holds); the
   * worker only counts the ones beyond (`logsDropped`). Unset: no limit.
   */
  logBudget?: number;
}

export interface Counters {
  recordsRead: number;
  recordsWritten: number;
  recordsFailed: number;
  bytesRead: number;
  bytesWritten: number;
}

export const zeroCounters = (): Counters => ({ recordsRead: 0, recordsWritten: 0, recordsFailed: 0, bytesRead: 0, bytesWritten: 0 });

export function addCounters(a: Counters, b: Counters): Counters {
  return {
    recordsRead: a.recordsRead + b.recordsRead,
    recordsWritten: a.recordsWritten + b.recordsWritten,
    recordsFailed: a.recordsFailed + b.recordsFailed,
    bytesRead: a.bytesRead + b.bytesRead,
    bytesWritten: a.bytesWritten + b.bytesWritten,
  };
}

/** What `a` added since `b` (each counter at least 0). */
export function subCounters(a: Counters, b: Counters): Counters {
  return {
    recordsRead: Math.max(0, a.recordsRead - b.recordsRead),
    recordsWritten: Math.max(0, a.recordsWritten - b.recordsWritten),
    recordsFailed: Math.max(0, a.recordsFailed - b.recordsFailed),
    bytesRead: Math.max(0, a.bytesRead - b.bytesRead),
    bytesWritten: Math.max(0, a.bytesWritten - b.bytesWritten),
  };
}

export type DeadLetterStage = 'READ' | 'MAPPING' | 'WRITE';

export interface DeadLetterRecord {
  stream: string;
  stage: DeadLetterStage;
  error: string;
  record: unknown;
}

export type WorkerMessage =
  | {
      type: 'checkpoint';
      stream: string | null;
      state: StreamStates | null;
      delta: Counters;
      /** The same delta split by stream. */
      streams: Record<string, Counters>;
      deadLetters: DeadLetterRecord[];
    }
  | ({ type: 'log'; level: LogLevel; message: string; stage: LogStage } & Omit<LogExtra, 'stage'>)
  /** Driver log lines not sent since the last one of these (beyond `logBudget`). */
  | { type: 'logsDropped'; count: number }
  | { type: 'done'; stopped: boolean }
  /** `stack`: only for an unexpected error (not a driver's own, a refusal or a cancellation). */
  | { type: 'failed'; error: string; retryable: boolean; stack?: string };

/** Index of the stop flag in the shared control array; non-zero asks the worker to stop at the next batch boundary. */
export const STOP_FLAG = 0;
