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
import type { DataRecord, StreamWriter, ConfiguredStream, StreamStates } from '../drivers/types.js';
import { compileMapping, mapFieldSchema } from '../mapping/mapping.js';
import { STOP_FLAG, zeroCounters, type Counters, type DeadLetterRecord, type JobPlan, type WorkerMessage } from './protocol.js';

const MAX_DEAD_LETTER_BYTES = 64 * 1024;

function post(msg: WorkerMessage) {
  parentPort!.postMessage(msg);
}

function clip(record: unknown): unknown {
  const json = JSON.stringify(record);
  return json.length > MAX_DEAD_LETTER_BYTES ? { truncated: json.slice(0, MAX_DEAD_LETTER_BYTES) } : record;
}

export async function runJob(plan: JobPlan, control: Int32Array): Promise<void> {
  const source = getSourceDriver(plan.source.driver);
  const destination = getDestinationDriver(plan.destination.driver);
  if (!source) throw Object.assign(new Error(`unknown source driver ${plan.source.driver}`), { retryable: false });
  if (!destination) throw Object.assign(new Error(`unknown destination driver ${plan.destination.driver}`), { retryable: false });

  const mapper = plan.mapping ? compileMapping(plan.mapping) : null;
  const overwrite = plan.writeMode === 'OVERWRITE';
  const abort = new AbortController();

  // Output schema per stream, so the destination can create its table with proper types.
  const catalog = await source.discover(plan.source.config).catch(() => null);
  const streams: ConfiguredStream[] = plan.streams.map((s) => {
    const discovered = catalog?.streams.find((d) => d.name === s.name);
    let fields = discovered?.fields ?? null;
    if (fields && s.fields?.length) fields = fields.filter((f) => s.fields!.includes(f.name));
    const schema = fields ? (plan.mapping ? mapFieldSchema(plan.mapping, fields) : fields) : null;
    return { ...s, schema, primaryKey: s.primaryKey ?? discovered?.sourceDefinedPrimaryKey ?? null };
  });

  const writers = new Map<string, StreamWriter>();
  const heldStates: StreamStates = {};
  let delta: Counters = zeroCounters();
  let deadLetters: DeadLetterRecord[] = [];
  const totals = { ...plan.totals };
  let stopped = false;

  const flush = (stream: string | null, state: StreamStates | null) => {
    post({ type: 'checkpoint', stream, state, delta, deadLetters });
    delta = zeroCounters();
    deadLetters = [];
  };

  const checkThreshold = () => {
    if (totals.recordsRead < 100 && totals.recordsFailed < 100) return;
    const share = (100 * totals.recordsFailed) / Math.max(1, totals.recordsRead);
    if (share > plan.failureThreshold) {
      throw Object.assign(
        new Error(`${totals.recordsFailed} of ${totals.recordsRead} records failed (${share.toFixed(1)}%), above the failure threshold of ${plan.failureThreshold}%`),
        { retryable: false },
      );
    }
  };

  try {
    for await (const msg of source.read(plan.source.config, streams, plan.state, { batchSize: plan.batchSize, signal: abort.signal })) {
      if (msg.type === 'log') {
        post({ type: 'log', level: msg.level, message: msg.message });
        continue;
      }
      if (msg.type === 'state') {
        if (overwrite) heldStates[msg.stream] = msg.state;
        else flush(msg.stream, { [msg.stream]: msg.state });
        checkThreshold();
        if (Atomics.load(control, STOP_FLAG) !== 0) {
          stopped = true;
          break;
        }
        continue;
      }
      // records
      const configured = streams.find((s) => s.name === msg.stream);
      if (!configured) continue;
      const n = msg.records.length;
      delta.recordsRead += n;
      delta.bytesRead += msg.bytes;
      totals.recordsRead += n;
      const deadBefore = deadLetters.length;
      const readErrors = new Map<number, string>();
      for (const e of (msg as { errors?: { index: number; error: string }[] }).errors ?? []) readErrors.set(e.index, e.error);
      const out: DataRecord[] = [];
      for (let i = 0; i < n; i++) {
        const rec = msg.records[i]!;
        const readError = readErrors.get(i);
        if (readError !== undefined) {
          deadLetters.push({ stream: msg.stream, stage: 'READ', error: readError, record: clip(rec) });
          continue;
        }
        if (mapper) {
          try {
            out.push(mapper(rec));
          } catch (err) {
            deadLetters.push({ stream: msg.stream, stage: 'MAPPING', error: (err as Error).message, record: clip(rec) });
            continue;
          }
        } else out.push(rec);
      }
      if (out.length) {
        let writer: StreamWriter | undefined = writers.get(msg.stream);
        if (writer === undefined) {
          const opened: StreamWriter = await destination.openWriter(plan.destination.config, { writeMode: plan.writeMode, stream: configured });
          writers.set(msg.stream, opened);
          writer = opened;
        }
        const res = await writer.writeBatch(out);
        delta.recordsWritten += res.written;
        delta.bytesWritten += res.bytes;
        totals.recordsWritten += res.written;
        for (const r of res.rejected) {
          deadLetters.push({ stream: msg.stream, stage: 'WRITE', error: r.error, record: clip(out[r.index]) });
        }
      }
      const failed = deadLetters.length - deadBefore;
      delta.recordsFailed += failed;
      totals.recordsFailed += failed;
    }
  } catch (err) {
    abort.abort();
    await Promise.all([...writers.values()].map((w) => w.abort().catch(() => undefined)));
    throw err;
  }

  if (stopped) {
    abort.abort();
    if (overwrite) {
      // An unfinished OVERWRITE is discarded; it restarts from scratch on resume.
      await Promise.all([...writers.values()].map((w) => w.abort().catch(() => undefined)));
      flush(null, null);
    } else {
      await Promise.all([...writers.values()].map((w) => w.commit()));
      flush(null, null);
    }
    post({ type: 'done', stopped: true });
    return;
  }
  await Promise.all([...writers.values()].map((w) => w.commit()));
  flush(null, overwrite ? heldStates : null);
  post({ type: 'done', stopped: false });
}

if (parentPort && workerData?.plan) {
  const { plan, control } = workerData as { plan: JobPlan; control: SharedArrayBuffer };
  runJob(plan, new Int32Array(control)).catch((err: unknown) => {
    const e = err as Error & { retryable?: boolean };
    post({ type: 'failed', error: e.message ?? String(err), retryable: e.retryable ?? false });
  });
}
