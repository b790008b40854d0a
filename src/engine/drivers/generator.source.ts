import { sleep } from './http/client.js';
import { project } from './kit/records.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfiguredStream,
  type DataRecord,
  type FieldSchema,
  type FieldType,
  type JsonSchema,
  type ReadOptions,
  type SourceDriver,
  type SourceMessage,
  type StreamStates,
} from './types.js';

/**
 * Synthetic record generator for demos and benchmarks.
 *
 * Contract:
 * - Record n (1-based) of a stream is a pure function of (seed, stream index, n, shape,
 *   startTime, intervalMs): `{ id: n, seq, ts, field_1, ... }`, where `seq = (n - 1) * streams +
 *   streamIndex` is unique across streams and `ts = startTime + (n - 1) * intervalMs` (ISO).
 *   Extra fields cycle string / integer / number / boolean; strings are drawn from a pool of
 *   1024 seeded strings of `stringLength` characters. Same config ⇒ same records, whatever the
 *   batch size or where a run resumed.
 * - `count` records per stream (0 = unbounded until the job is stopped or cancelled). Streams
 *   are produced round-robin, one batch each, so unbounded multi-stream runs serve all streams.
 * - State `{ next: n }` (next id) after every batch; resuming regenerates from n. INCREMENTAL
 *   (cursor `id`) and FULL_REFRESH behave the same; a new full-refresh run starts from 1.
 * - `rate` caps records per second across all streams (0 = as fast as possible); batches are
 *   then sized to about a tenth of a second of records.
 */

export interface GeneratorSourceConfig {
  count?: number;
  streams?: number | string[];
  rate?: number;
  seed?: number;
  shape?: { fields?: number; stringLength?: number };
  startTime?: string;
  intervalMs?: number;
}

export const generatorConfigSchema: JsonSchema = {
  type: 'object',
  title: 'Generator',
  additionalProperties: false,
  properties: {
    count: {
      type: 'integer',
      minimum: 0,
      default: 1000,
      title: 'Records per stream',
      description: 'Records generated per stream; 0 = unbounded (runs until the job is stopped).',
    },
    streams: {
      title: 'Streams',
      description: 'Number of streams (named stream_1, stream_2, ...) or a list of stream names.',
      default: 1,
      oneOf: [
        { type: 'integer', minimum: 1, maximum: 1000 },
        { type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9_]+$' } },
      ],
    },
    rate: {
      type: 'number',
      minimum: 0,
      default: 0,
      title: 'Rate (records/s)',
      description: 'Maximum records per second across all streams; 0 = as fast as possible.',
    },
    seed: { type: 'integer', default: 1, title: 'Seed', description: 'Same seed, same records.' },
    shape: {
      type: 'object',
      title: 'Record shape',
      description: 'Extra fields per record (field_1..field_N, cycling string/integer/number/boolean) and the length of their strings.',
      additionalProperties: false,
      properties: {
        fields: { type: 'integer', minimum: 0, maximum: 500, default: 8, title: 'Extra fields', description: 'Number of extra fields.' },
        stringLength: { type: 'integer', minimum: 1, maximum: 65536, default: 16, title: 'String length', description: 'Characters per string value.' },
      },
    },
    startTime: {
      type: 'string',
      format: 'date-time',
      default: '2024-01-01T00:00:00.000Z',
      title: 'Start time',
      description: 'ts of record 1.',
    },
    intervalMs: {
      type: 'integer',
      minimum: 0,
      default: 1000,
      title: 'Time step (ms)',
      description: 'ts advance between consecutive records of a stream.',
    },
  },
};

export const docs = `# Generator (source)

Generates deterministic synthetic records, for demos and benchmarks (engine and destination throughput).

\`\`\`json
{ "count": 1000000, "streams": ["users", "orders"], "rate": 0, "seed": 7, "shape": { "fields": 8, "stringLength": 16 } }
\`\`\`

- **Records**: \`{ "id": n, "seq": ..., "ts": "2024-01-01T00:00:00.000Z", "field_1": "...", "field_2": 123, ... }\`
  with \`id\` = 1, 2, 3 ... per stream, \`seq\` unique across streams, \`ts\` = \`startTime\` + (n-1) × \`intervalMs\`.
  Extra fields cycle string, integer, number, boolean. The same config always yields the same records.
- **count**: per stream; \`0\` = unbounded (stop or cancel the job to end it).
- **streams**: a number (\`stream_1\`, \`stream_2\`, ...) or a list of names; produced round-robin.
- **rate**: records per second across all streams (\`0\` = unthrottled; several million records/s).
- **State / cursor**: \`{ "next": n }\`; INCREMENTAL (cursor \`id\`, primary key \`id\`) continues from n
  (with a fixed \`count\`, later runs find nothing new; use \`count: 0\` with a \`rate\` for a live feed).
- **Sync modes**: FULL_REFRESH, INCREMENTAL.
`;

const LABEL = 'Generator source';
const POOL_SIZE = 1024;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

interface ResolvedConfig {
  count: number;
  names: string[];
  rate: number;
  seed: number;
  fields: number;
  stringLength: number;
  startMs: number;
  intervalMs: number;
}

function resolveConfig(raw: GeneratorSourceConfig | undefined): ResolvedConfig {
  const c = raw ?? {};
  if (typeof c !== 'object') throw new DriverError(`${LABEL}: config must be an object`);
  const int = (v: unknown, name: string, d: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new DriverError(`${LABEL}: "${name}" must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  let names: string[];
  if (Array.isArray(c.streams)) {
    names = c.streams.map(String);
    if (names.length === 0 || new Set(names).size !== names.length || names.some((n) => !/^[A-Za-z0-9_]+$/.test(n))) {
      throw new DriverError(`${LABEL}: "streams" must be distinct names of [A-Za-z0-9_]`);
    }
  } else {
    const n = int(c.streams, 'streams', 1, 1, 1000);
    names = Array.from({ length: n }, (_, i) => `stream_${i + 1}`);
  }
  const rate = c.rate ?? 0;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0) throw new DriverError(`${LABEL}: "rate" must be a number >= 0`);
  const startTime = c.startTime ?? '2024-01-01T00:00:00.000Z';
  const startMs = Date.parse(startTime);
  if (Number.isNaN(startMs) || startMs < 0 || startMs > Date.UTC(9000, 0, 1)) {
    throw new DriverError(`${LABEL}: "startTime" must be an ISO date-time between 1970 and 9000 (got ${JSON.stringify(startTime)})`);
  }
  return {
    count: int(c.count, 'count', 1000, 0),
    names,
    rate,
    seed: int(c.seed, 'seed', 1, Number.MIN_SAFE_INTEGER),
    fields: int(c.shape?.fields, 'shape.fields', 8, 0, 500),
    stringLength: int(c.shape?.stringLength, 'shape.stringLength', 16, 1, 65536),
    startMs,
    intervalMs: int(c.intervalMs, 'intervalMs', 1000, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Deterministic values.

/** murmur3's 32-bit finalizer: a good, cheap integer hash. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function streamSalt(seed: number, streamIndex: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return fmix(fmix(lo ^ Math.imul(hi, 0x27d4eb2d)) ^ Math.imul(streamIndex + 1, 0x9e3779b1));
}

function stringPool(seed: number, length: number): string[] {
  let x = fmix(streamSalt(seed, -2)) || 0x6d2b79f5;
  const pool: string[] = new Array<string>(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) {
    let s = '';
    for (let j = 0; j < length; j++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      s += ALPHABET[(x >>> 0) % ALPHABET.length];
    }
    pool[i] = s;
  }
  return pool;
}

const FIELD_KINDS: FieldType[] = ['string', 'integer', 'number', 'boolean'];

function fieldKind(i: number): FieldType {
  return FIELD_KINDS[i % 4]!;
}

type MakeRecord = (n: number, seq: number, ts: string) => DataRecord;

/**
 * Compiles the record factory for a shape: one object literal (a single hidden class) and a
 * xorshift chain seeded by a hash of (salt, n), so every record is independent of the others.
 */
function compileFactory(salt: number, fields: number, pool: string[]): MakeRecord {
  const lines: string[] = [];
  const props: string[] = ['id: n', 'seq: seq', 'ts: ts'];
  for (let i = 0; i < fields; i++) {
    lines.push('x ^= x << 13; x ^= x >>> 17; x ^= x << 5;');
    const v = `v${i}`;
    switch (fieldKind(i)) {
      case 'string':
        lines.push(`const ${v} = P[(x >>> 0) & ${POOL_SIZE - 1}];`);
        break;
      case 'integer':
        lines.push(`const ${v} = (x >>> 0) % 1000000;`);
        break;
      case 'number':
        lines.push(`const ${v} = ((x >>> 0) % 10000000) / 100;`);
        break;
      default:
        lines.push(`const ${v} = (x & 1) === 1;`);
    }
    props.push(`field_${i + 1}: ${v}`);
  }
  const code = `"use strict";
return function make(n, seq, ts) {
  let x = fmix((n >>> 0) ^ SALT ^ Math.imul(Math.floor(n / 4294967296) >>> 0, 0x27d4eb2d)) | 1;
  ${lines.join('\n  ')}
  return { ${props.join(', ')} };
};`;
  const factory = new Function('fmix', 'P', 'SALT', code) as (f: typeof fmix, p: string[], salt: number) => MakeRecord;
  return factory(fmix, pool, salt | 0);
}

const PAD2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/** ISO timestamps for consecutive instants, recomputing the date part once per minute. */
class Clock {
  private minute = Number.NaN;
  private prefix = '';

  iso(t: number): string {
    const minute = Math.floor(t / 60000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.prefix = new Date(minute * 60000).toISOString().slice(0, 17);
    }
    const rem = t - minute * 60000;
    return `${this.prefix}${PAD2[(rem / 1000) | 0]}.${PAD3[rem % 1000]}Z`;
  }
}

// ---------------------------------------------------------------------------------------------
// Driver.

function fieldsOf(cfg: ResolvedConfig): FieldSchema[] {
  const out: FieldSchema[] = [
    { name: 'id', type: 'integer', nullable: false },
    { name: 'seq', type: 'integer', nullable: false },
    { name: 'ts', type: 'datetime', nullable: false },
  ];
  for (let i = 0; i < cfg.fields; i++) out.push({ name: `field_${i + 1}`, type: fieldKind(i), nullable: false });
  return out;
}

async function check(config: GeneratorSourceConfig): Promise<CheckResult> {
  try {
    const cfg = resolveConfig(config);
    const count = cfg.count === 0 ? 'unbounded' : `${cfg.count} record(s)`;
    return { ok: true, message: `Generates ${count} per stream for ${cfg.names.length} stream(s) with ${3 + cfg.fields} field(s) each` };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}

async function discover(config: GeneratorSourceConfig): Promise<Catalog> {
  const cfg = resolveConfig(config);
  const fields = fieldsOf(cfg);
  return {
    streams: cfg.names.map((name) => ({
      name,
      fields: fields.map((f) => ({ ...f })),
      supportedSyncModes: ['FULL_REFRESH', 'INCREMENTAL'],
      defaultCursorField: ['id'],
      sourceDefinedPrimaryKey: ['id'],
    })),
  };
}

function nextFromState(state: unknown, stream: string): number {
  if (state === undefined || state === null) return 1;
  if (typeof state === 'object' && !Array.isArray(state)) {
    const next = (state as Record<string, unknown>).next;
    if (next === undefined) return 1;
    if (typeof next === 'number' && Number.isSafeInteger(next) && next >= 1) return next;
  }
  throw new DriverError(`${LABEL}: invalid state for stream "${stream}": expected { "next": <integer >= 1> }, got ${JSON.stringify(state)}`);
}

interface Lane {
  name: string;
  index: number;
  next: number;
  make: MakeRecord;
  clock: Clock;
  selected: string[] | null;
}

async function* read(config: GeneratorSourceConfig, streams: ConfiguredStream[], state: StreamStates, options: ReadOptions): AsyncGenerator<SourceMessage> {
  const cfg = resolveConfig(config);
  const signal = options.signal;
  signal?.throwIfAborted();
  const pool = stringPool(cfg.seed, cfg.stringLength);
  const lanes: Lane[] = [];
  for (const s of streams) {
    const index = cfg.names.indexOf(s.name);
    if (index === -1) {
      yield { type: 'log', level: 'warn', message: `${LABEL}: unknown stream "${s.name}" ignored (streams: ${cfg.names.slice(0, 10).join(', ')})` };
      continue;
    }
    lanes.push({
      name: s.name,
      index,
      next: nextFromState(state?.[s.name], s.name),
      make: compileFactory(streamSalt(cfg.seed, index), cfg.fields, pool),
      clock: new Clock(),
      selected: s.fields && s.fields.length > 0 ? s.fields : null,
    });
  }
  const S = cfg.names.length;
  const preferred = Math.max(1, Math.floor(options.batchSize) || 1000);
  const batchSize = cfg.rate > 0 ? Math.max(1, Math.min(preferred, Math.ceil(cfg.rate / 10))) : preferred;
  const started = Date.now();
  let produced = 0;
  const { count, startMs, intervalMs } = cfg;

  let active = lanes.filter((l) => count === 0 || l.next <= count);
  for (const l of lanes) if (!active.includes(l)) yield { type: 'state', stream: l.name, state: { next: l.next } };
  while (active.length > 0) {
    for (const lane of active) {
      const n0 = lane.next;
      const size = count === 0 ? batchSize : Math.min(batchSize, count - n0 + 1);
      if (cfg.rate > 0) {
        const due = started + ((produced + size) / cfg.rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait, signal);
      }
      const { make, clock, index } = lane;
      const records: DataRecord[] = new Array<DataRecord>(size);
      for (let i = 0; i < size; i++) {
        const n = n0 + i;
        records[i] = make(n, (n - 1) * S + index, clock.iso(startMs + (n - 1) * intervalMs));
      }
      const out = lane.selected ? records.map((r) => project(r, lane.selected!)) : records;
      lane.next = n0 + size;
      produced += size;
      const bytes = size * (JSON.stringify(out[0]).length + 1);
      yield { type: 'records', stream: lane.name, records: out, bytes };
      yield { type: 'state', stream: lane.name, state: { next: lane.next } };
      signal?.throwIfAborted();
    }
    if (count !== 0) active = active.filter((l) => l.next <= count);
  }
}

export const generatorSource: SourceDriver<GeneratorSourceConfig> = {
  name: 'generator',
  role: 'SOURCE',
  title: 'Generator',
  description: 'Generates deterministic synthetic records (bounded or unbounded, rate-limited or not) for demos and benchmarks.',
  docs,
  configSchema: generatorConfigSchema,
  check,
  discover,
  read,
};

export default generatorSource;
