/**
 * What a source that exposes exactly one stream (csv, json, http) does before it reads: pick its
 * stream out of the configured catalog, warn about the others, and size its batches.
 *
 * Contract: `streams` naming other streams yields one `warn` log each and is otherwise ignored;
 * a catalog without the source's stream reads nothing (`configured` is null); `batchSize` is a
 * positive integer (1000 when the runner gives none); `selected` is null for "all fields".
 */
import { DriverError } from '../types.js';
import type { ConfiguredStream, ReadOptions, SourceMessage, StreamState } from '../types.js';

export interface SingleStreamRead {
  /** The source's stream as the pipeline configured it; null: not selected, read nothing. */
  configured: ConfiguredStream | null;
  /** Log messages to yield before the first record. */
  warnings: SourceMessage[];
  batchSize: number;
  /** The selected fields, or null for all. */
  selected: string[] | null;
}

/**
 * @param label the driver's name in messages ("CSV source")
 * @param what what the one stream belongs to in messages ("file", "endpoint", "document")
 */
export function singleStreamRead(label: string, what: string, streamName: string, streams: ConfiguredStream[], options: ReadOptions): SingleStreamRead {
  const warnings: SourceMessage[] = [];
  for (const s of streams) {
    if (s.name !== streamName) {
      warnings.push({ type: 'log', level: 'warn', message: `${label}: unknown stream "${s.name}" ignored (this ${what}'s stream is "${streamName}")` });
    }
  }
  const configured = streams.find((s) => s.name === streamName) ?? null;
  return {
    configured,
    warnings,
    batchSize: Math.max(1, Math.floor(options.batchSize) || 1000),
    selected: configured?.fields && configured.fields.length > 0 ? configured.fields : null,
  };
}

/**
 * The row to resume from in a row-numbered stream's state (`{ "row": n }`: n records were
 * delivered and committed). No state, or a state without `row`, starts at 0; anything else is a
 * DriverError naming the stream, never a silent restart from the top.
 */
export function startRowFromState(label: string, state: StreamState | undefined, stream: string): number {
  if (state === undefined || state === null) return 0;
  if (typeof state === 'object' && !Array.isArray(state)) {
    const row = (state as Record<string, unknown>).row;
    if (row === undefined) return 0;
    if (typeof row === 'number' && Number.isSafeInteger(row) && row >= 0) return row;
  }
  throw new DriverError(`${label}: invalid state for stream "${stream}": expected { "row": <non-negative integer> }, got ${JSON.stringify(state)}`);
}
