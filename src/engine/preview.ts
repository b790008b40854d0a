/**
 * Preview: pull up to N records from a live source, map them, and report per record the
 * input, the output or the error. Writes nothing and saves no state.
 */
import { getSourceDriver } from './drivers/index.js';
import type { ConfiguredStream, DriverContext } from './drivers/types.js';
import { compileMapping, MappingRecordError, type MappingSpec } from './mapping/mapping.js';

export interface PreviewRecord {
  stream: string;
  input: unknown;
  output: Record<string, unknown> | null;
  error: { stage: 'READ' | 'MAPPING'; path: string | null; code: string; message: string } | null;
}

export const MAX_PREVIEW = 1000;

export async function previewSource(options: {
  driver: string;
  config: unknown;
  streams: ConfiguredStream[];
  mapping: MappingSpec | null;
  limit: number;
  /** Stops reading after this long; absent: the caller bounds the preview (a worker's time limit). */
  timeoutMs?: number;
  /** The caller's workspace files (see drivers/context.ts). */
  ctx: DriverContext;
}): Promise<PreviewRecord[]> {
  const driver = getSourceDriver(options.driver);
  if (!driver) throw new Error(`unknown source driver "${options.driver}"`);
  const limit = Math.max(1, Math.min(MAX_PREVIEW, options.limit));
  const mapper = options.mapping ? compileMapping(options.mapping) : null;
  const abort = new AbortController();
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(new Error('preview timed out')), options.timeoutMs);
  const out: PreviewRecord[] = [];
  try {
    const streams = options.streams.map((s) => ({ ...s, syncMode: 'FULL_REFRESH' as const }));
    for await (const msg of driver.read(options.config, streams, {}, { batchSize: Math.min(limit, 500), signal: abort.signal, ctx: options.ctx })) {
      if (msg.type !== 'records') continue;
      const readErrors = new Map((msg.errors ?? []).map((e) => [e.index, e.error]));
      for (let i = 0; i < msg.records.length && out.length < limit; i++) {
        const input = msg.records[i]!;
        const readError = readErrors.get(i);
        if (readError !== undefined) {
          out.push({ stream: msg.stream, input, output: null, error: { stage: 'READ', path: null, code: 'READ_FAILED', message: readError } });
          continue;
        }
        try {
          out.push({ stream: msg.stream, input, output: mapper ? mapper(input) : input, error: null });
        } catch (err) {
          const e = err as Error;
          out.push({
            stream: msg.stream,
            input,
            output: null,
            error: {
              stage: 'MAPPING',
              path: err instanceof MappingRecordError ? err.path : null,
              code: err instanceof MappingRecordError ? err.code : 'MAPPING_FAILED',
              message: e.message,
            },
          });
        }
      }
      if (out.length >= limit) break;
    }
  } catch (err) {
    if (!(abort.signal.aborted && out.length >= limit)) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return out;
}
