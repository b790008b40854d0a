/**
 * Job worker thread: source → mapping → destination, in batches, off the API's event loop.
 *
 * Promises (see protocol.ts): a checkpoint carries a stream state only after the destination
 * committed every record read before that state; the stop flag is honoured at batch
 * boundaries; under OVERWRITE no state is confirmed before the final commit (the new table
 * only becomes visible then). Bad records are dead-lettered, never silently dropped.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getDestinationDriver, getSourceDriver } from '../drivers/index.js';
import { driverContext, withDriverLog, type DriverLogLine } from '../drivers/context.js';
import { DriverError, type DataRecord, type StreamWriter, type ConfiguredStream, type SourceMessage, type StreamStates } from '../drivers/types.js';
import { compileMapping, mapFieldSchema } from '../mapping/mapping.js';
import { installOutboundGuard } from '../drivers/kit/outbound.js';
import { mapStrings, scrubberFor } from '../../security/secrets-redact.js';
import type { OutboundGuardSettings } from '../drivers/kit/outbound.js';
import { STOP_FLAG, zeroCounters, type Counters, type DeadLetterRecord, type JobPlan, type LogStage, type WorkerMessage } from './protocol.js';

const MAX_DEAD_LETTER_BYTES = 64 * 1024;

/** Removes the job's secret values from outgoing messages (set from the plan). */
let scrub = (text: string) => text;

/** Driver log lines this attempt may still send (plan.logBudget). */
let logBudget = Infinity;
/** Whether the first line beyond the budget was reported (at once: the job log notes the cap). */
let dropNoted = false;
/** Lines dropped beyond the budget and not yet reported (sent before the next other message). */
let logsDropped = 0;

/** Sends one line of the job's log, or counts it once the budget is spent. */
function logLine(stage: LogStage, line: DriverLogLine) {
  if (stage !== 'RUNNER') {
    if (logBudget <= 0) {
      if (dropNoted) logsDropped++;
      else {
        dropNoted = true;
        parentPort?.postMessage({ type: 'logsDropped', count: 1 } satisfies WorkerMessage);
      }
      return;
    }
    logBudget--;
  }
  post({ type: 'log', level: line.level, stage, message: String(line.message), ...(line.data ? { data: line.data } : {}), at: Date.now() });
}

function post(msg: WorkerMessage) {
  if (msg.type !== 'log' && msg.type !== 'logsDropped' && logsDropped > 0) {
    parentPort!.postMessage({ type: 'logsDropped', count: logsDropped } satisfies WorkerMessage);
    logsDropped = 0;
  }
  if (msg.type === 'log') msg = { ...msg, message: scrub(msg.message), ...(msg.data ? { data: mapStrings(msg.data, scrub) as Record<string, unknown> } : {}) };
  else if (msg.type === 'failed') msg = { ...msg, error: scrub(msg.error), ...(msg.stack ? { stack: scrub(msg.stack) } : {}) };
  else if (msg.type === 'checkpoint' && msg.deadLetters.length) msg = { ...msg, deadLetters: msg.deadLetters.map((d) => ({ ...d, error: scrub(d.error) })) };
  parentPort!.postMessage(msg);
}

function clip(record: unknown): unknown {
  const json = JSON.stringify(record);
  return json.length > MAX_DEAD_LETTER_BYTES ? { truncated: json.slice(0, MAX_DEAD_LETTER_BYTES) } : record;
}

/** Dead-lettered source records, re-read as batches per stream (replayFailedRecords). */
async function* replayMessages(records: { stream: string; record: unknown }[], batchSize: number): AsyncGenerator<SourceMessage> {
  const byStream = new Map<string, DataRecord[]>();
  for (const r of records) {
    if (!r.record || typeof r.record !== 'object' || Array.isArray(r.record)) continue;
    let list = byStream.get(r.stream);
    if (!list) byStream.set(r.stream, (list = []));
    list.push(r.record as DataRecord);
  }
  for (const [stream, list] of byStream) {
    for (let i = 0; i < list.length; i += batchSize) {
      const batch = list.slice(i, i + batchSize);
      yield { type: 'records', stream, records: batch, bytes: Buffer.byteLength(JSON.stringify(batch)) };
    }
  }
}

/**
 * Transient unless known otherwise: drivers mark permanent failures (bad config, auth
 * refused) with `retryable: false`; missing or forbidden files are permanent too.
 */
function isRetryable(e: Error & { retryable?: boolean; code?: string }): boolean {
  if (typeof e.retryable === 'boolean') return e.retryable;
  if (e.name === 'AbortError') return false;
  return !['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM'].includes(e.code ?? '');
}

export async function runJob(plan: JobPlan, control: Int32Array): Promise<void> {
  scrub = scrubberFor(plan.secrets ?? []);
  logBudget = plan.logBudget ?? Infinity;
  if (plan.configError || !plan.files) throw Object.assign(new Error(plan.configError ?? 'the job has no files scope'), { retryable: false });
  const source = getSourceDriver(plan.source.driver);
  const destination = getDestinationDriver(plan.destination.driver);
  if (!source) throw Object.assign(new Error(`unknown source driver ${plan.source.driver}`), { retryable: false });
  if (!destination) throw Object.assign(new Error(`unknown destination driver ${plan.destination.driver}`), { retryable: false });

  const mapper = plan.mapping ? compileMapping(plan.mapping) : null;
  // A replay adds the missing records: it never replaces a table.
  const modeOf = (s: ConfiguredStream) => {
    const m = s.writeMode ?? plan.writeMode;
    return plan.replay && m === 'OVERWRITE' ? 'APPEND' : m;
  };
  const overwriteStreams = new Set(plan.streams.filter((s) => modeOf(s) === 'OVERWRITE').map((s) => s.name));
  const abort = new AbortController();
  const base = driverContext(plan.files);
  // Each side writes to the job log under its own stage.
  const ctx = withDriverLog(base, (line) => logLine('SOURCE', line));
  const destinationCtx = withDriverLog(base, (line) => logLine('DESTINATION', line));

  // Output schema per stream, so the destination can create its table with proper types.
  const catalog = await source.discover(plan.source.config, ctx).catch((err: unknown) => {
    logLine('SOURCE', { level: 'warn', message: `discover failed (${(err as Error).message ?? String(err)}); the destination gets no column types from it` });
    return null;
  });
  const streams: ConfiguredStream[] = plan.streams.map((s) => {
    const discovered = catalog?.streams.find((d) => d.name === s.name);
    let fields = discovered?.fields ?? null;
    if (fields && s.fields?.length) fields = fields.filter((f) => s.fields!.includes(f.name));
    const primaryKey = s.primaryKey ?? discovered?.sourceDefinedPrimaryKey ?? null;
    // Discovered nullability is a guess from a sample: only key columns are created NOT NULL,
    // so a later empty value is not rejected by the destination.
    const schema = fields
      ? (plan.mapping ? mapFieldSchema(plan.mapping, fields) : fields).map((f) => ({ ...f, nullable: primaryKey?.includes(f.name) ? f.nullable : true }))
      : null;
    return { ...s, schema, primaryKey, sourceFields: discovered?.fields ?? null };
  });

  // OVERWRITE rebuilds the whole table, so it always reads its stream from the start.
  const startState: StreamStates = { ...plan.state };
  for (const name of overwriteStreams) delete startState[name];

  const writers = new Map<string, StreamWriter>();
  const heldStates: StreamStates = {};
  let delta: Counters = zeroCounters();
  let streamDelta: Record<string, Counters> = {};
  const streamCounters = (name: string) => (streamDelta[name] ??= zeroCounters());
  let deadLetters: DeadLetterRecord[] = [];
  const totals = { ...plan.totals };
  let stopped = false;
  const mappingWarned = new Set<string>();

  const flush = (stream: string | null, state: StreamStates | null) => {
    post({ type: 'checkpoint', stream, state, delta, streams: streamDelta, deadLetters });
    delta = zeroCounters();
    streamDelta = {};
    deadLetters = [];
  };

  // The failed share counts from the first record: checked at every batch boundary and at the end.
  const checkThreshold = () => {
    if (totals.recordsFailed === 0) return;
    const share = (100 * totals.recordsFailed) / Math.max(1, totals.recordsRead);
    if (share > plan.failureThreshold) {
      throw Object.assign(
        new Error(`${totals.recordsFailed} of ${totals.recordsRead} records failed (${share.toFixed(1)}%), above the failure threshold of ${plan.failureThreshold}%`),
        { retryable: false },
      );
    }
  };

  // One write may run while the next batch is read and mapped. Every write and checkpoint
  // is chained on `inflight` in source order, so a state is flushed only after the writes
  // of the records before it committed.
  let inflight: Promise<void> = Promise.resolve();
  const chain = (step: () => Promise<void> | void) => {
    inflight = inflight.then(step);
    inflight.catch(() => undefined); // observed by the next `await inflight`
  };
  const stopRequested = () => Atomics.load(control, STOP_FLAG) !== 0;

  try {
    const messages = plan.replay
      ? replayMessages(plan.replay, plan.batchSize)
      : source.read(plan.source.config, streams, startState, { batchSize: plan.batchSize, signal: abort.signal, ctx });
    for await (const msg of messages) {
      if (msg.type === 'log') {
        logLine('SOURCE', { level: msg.level, message: msg.message });
        continue;
      }
      if (msg.type === 'state') {
        const { stream, state } = msg;
        chain(() => {
          if (overwriteStreams.has(stream)) heldStates[stream] = state;
          else flush(stream, { [stream]: state });
          checkThreshold();
        });
        if (stopRequested()) {
          await inflight;
          stopped = true;
          break;
        }
        continue;
      }
      // records: map now (overlapping the write in flight), account and write in order.
      const configured = streams.find((s) => s.name === msg.stream);
      if (!configured) continue;
      const stream = msg.stream;
      const records = msg.records;
      const n = records.length;
      const bytes = msg.bytes;
      const dead: DeadLetterRecord[] = [];
      const readErrors = new Map<number, string>();
      for (const e of msg.errors ?? []) readErrors.set(e.index, e.error);
      const out: DataRecord[] = [];
      const outIndex: number[] = [];
      for (let i = 0; i < n; i++) {
        const rec = records[i]!;
        const readError = readErrors.get(i);
        if (readError !== undefined) {
          dead.push({ stream, stage: 'READ', error: readError, record: clip(rec) });
          continue;
        }
        if (mapper) {
          try {
            out.push(mapper(rec));
          } catch (err) {
            dead.push({ stream, stage: 'MAPPING', error: (err as Error).message, record: clip(rec) });
            if (!mappingWarned.has(stream)) {
              mappingWarned.add(stream);
              logLine('MAPPING', { level: 'warn', message: `stream "${stream}": a record failed the mapping (${(err as Error).message}); it and later ones that fail are dead-lettered (reported once per stream)` });
            }
            continue;
          }
        } else out.push(rec);
        outIndex.push(i);
      }
      await inflight; // at most one write in flight
      chain(async () => {
        const sc = streamCounters(stream);
        delta.recordsRead += n;
        delta.bytesRead += bytes;
        sc.recordsRead += n;
        sc.bytesRead += bytes;
        totals.recordsRead += n;
        if (out.length) {
          let writer: StreamWriter | undefined = writers.get(stream);
          if (writer === undefined) {
            const opened: StreamWriter = await destination.openWriter(plan.destination.config, { writeMode: modeOf(configured), stream: configured, ctx: destinationCtx });
            writers.set(stream, opened);
            writer = opened;
          }
          const res = await writer.writeBatch(out);
          delta.recordsWritten += res.written;
          delta.bytesWritten += res.bytes;
          sc.recordsWritten += res.written;
          sc.bytesWritten += res.bytes;
          totals.recordsWritten += res.written;
          for (const r of res.rejected) {
            // Keep the source record (not the mapped one) so a replay can map it again.
            dead.push({ stream, stage: 'WRITE', error: r.error, record: clip(records[outIndex[r.index]!]) });
          }
        }
        for (const d of dead) deadLetters.push(d);
        delta.recordsFailed += dead.length;
        sc.recordsFailed += dead.length;
        totals.recordsFailed += dead.length;
        if (plan.replay) {
          // Replays confirm no source state; their batch boundary is here.
          flush(null, null);
          checkThreshold();
        }
      });
      if (plan.replay && stopRequested()) {
        await inflight;
        stopped = true;
        break;
      }
    }
    await inflight;
    if (!stopped) checkThreshold();
  } catch (err) {
    abort.abort();
    await inflight.catch(() => undefined); // let a write in flight settle before aborting its writer
    await Promise.all([...writers.values()].map((w) => w.abort().catch(() => undefined)));
    throw err;
  }

  if (stopped) {
    abort.abort();
    // An unfinished OVERWRITE is discarded (it restarts from scratch on resume); other writes are kept.
    await Promise.all(
      [...writers.entries()].map(([name, w]) => (overwriteStreams.has(name) ? w.abort().catch(() => undefined) : w.commit())),
    );
    flush(null, null);
    post({ type: 'done', stopped: true });
    return;
  }
  await Promise.all([...writers.values()].map((w) => w.commit()));
  flush(null, Object.keys(heldStates).length ? heldStates : null);
  post({ type: 'done', stopped: false });
}

if (parentPort && workerData?.plan) {
  const { plan, control, outbound } = workerData as { plan: JobPlan; control: SharedArrayBuffer; outbound: OutboundGuardSettings | null };
  // Module state is per isolate: without this, the job's drivers would connect unguarded.
  const guard = outbound ? installOutboundGuard(outbound) : null;
  runJob(plan, new Int32Array(control))
    .catch((err: unknown) => {
      const e = err as Error & { retryable?: boolean; code?: string };
      // A driver's own failure, a refusal or a cancellation says what it is; anything else is a bug worth its stack.
      const expected = !(e instanceof Error) || e instanceof DriverError || typeof e.retryable === 'boolean' || e.name === 'AbortError' || typeof e.code === 'string';
      post({ type: 'failed', error: e.message ?? String(err), retryable: isRetryable(e), ...(expected || !e.stack ? {} : { stack: e.stack }) });
    })
    .finally(() => guard?.uninstall());
}
