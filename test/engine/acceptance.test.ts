/**
 * The driver acceptance suite: one contract that every registered driver passes, through its
 * public interface only (Conduit's connector acceptance tests, Airbyte's source acceptance tests).
 *
 * Every driver in `drivers` (src/engine/drivers/index.ts) must have a fixture below; a driver
 * without one fails the suite, so a new driver cannot land untested against the contract.
 *
 * Sources promise:
 * - a config schema Ajv compiles, that accepts the fixture's good config and refuses the bad one
 *   (by validation, the driver's own `validate`, or `check` answering ok:false; never by throwing);
 * - `check` answers ok:true with a message for the good config;
 * - `discover` lists the fixture's stream with its fields;
 * - `read` yields every record once and ends with a state for the stream;
 * - resuming from any state it yielded continues exactly after the records that state covers:
 *   the records before it plus the records of the resumed read are every record, none twice.
 *
 * Destinations promise, for every write mode they declare:
 * - `writeBatch` reports each record written; after `commit` the records are what a reader sees
 *   (APPEND adds, OVERWRITE replaces, UPSERT replaces by key, MERGE updates the present fields);
 * - `abort` leaves the data committed before it as it was (OVERWRITE: the new rows never appear);
 * - a mode they do not declare is refused when the writer opens.
 *
 * PostgreSQL fixtures need SLUICE_TEST_DATABASE_URL and are skipped (and say so) without it.
 */
import fs from 'node:fs';
import path from 'node:path';
import AjvModule from 'ajv';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drivers, validateConfig } from '../../src/engine/drivers/index.js';
import type {
  ConfiguredStream,
  DataRecord,
  DestinationDriver,
  Driver,
  DriverContext,
  FieldSchema,
  SourceDriver,
  SourceMessage,
  StreamState,
  WriteMode,
} from '../../src/engine/drivers/types.js';
import { testFiles } from '../helpers/files.js';
import { createTestDatabase, PG_URL, skipNote, type TestDatabase } from './pg-test-db.js';
import { json, startServer, type LocalServer } from './support/local-server.js';

const Ajv = AjvModule.default;

// ---------------------------------------------------------------------------------------------
// Shared data: seven rows, read back by id and name.

const ROWS = Array.from({ length: 7 }, (_, i) => ({
  id: i + 1,
  name: `row ${i + 1} ✓`,
  amount: (i + 1) * 1.5,
  active: i % 2 === 0,
}));
const FIELDS: FieldSchema[] = [
  { name: 'id', type: 'integer', nullable: false },
  { name: 'name', type: 'string', nullable: true },
  { name: 'amount', type: 'number', nullable: true },
  { name: 'active', type: 'boolean', nullable: true },
];

/** What the suite compares: the key, and the name when a source carries one. */
function project(r: DataRecord): { id: number; name?: string } {
  return r.name === undefined ? { id: Number(r.id) } : { id: Number(r.id), name: String(r.name) };
}
const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;

// ---------------------------------------------------------------------------------------------
// Fixtures.

interface SourceSetup {
  config: Record<string, unknown>;
  /** A config the driver must refuse (validation, validate or check). */
  bad: Record<string, unknown>;
  /** The stream read, as discover names it. */
  stream: string;
  /** The records the stream holds, projected. */
  expected: { id: number; name?: string }[];
}

interface DestinationSetup {
  config: Record<string, unknown>;
  bad: Record<string, unknown>;
  /** What a reader of the destination sees for the stream now; null when it keeps nothing. */
  readBack(stream: string): Promise<DataRecord[] | null>;
}

interface Fixture<S> {
  /** Why the fixture cannot run here (skipped with this note), or null. */
  unavailable: () => string | null;
  setup(ctx: DriverContext, dir: string, run: string): Promise<S>;
}

const needsPg = (): string | null => (PG_URL ? null : 'set SLUICE_TEST_DATABASE_URL');

let db: TestDatabase | null = null;
async function pgDatabase(): Promise<TestDatabase> {
  db ??= await createTestDatabase();
  return db;
}

const servers: LocalServer[] = [];
async function server(handler: Parameters<typeof startServer>[0]): Promise<LocalServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

function csvText(rows: typeof ROWS): string {
  return ['id,name,amount,active', ...rows.map((r) => `${r.id},"${r.name}",${r.amount},${r.active}`)].join('\n') + '\n';
}

const SOURCES: Record<string, Fixture<SourceSetup>> = {
  csv: {
    unavailable: () => null,
    async setup(_ctx, dir, run) {
      fs.writeFileSync(path.join(dir, `${run}.csv`), csvText(ROWS));
      return { config: { path: `${run}.csv` }, bad: { path: `${run}-missing.csv` }, stream: run, expected: ROWS.map(project) };
    },
  },
  json: {
    unavailable: () => null,
    async setup(_ctx, dir, run) {
      fs.writeFileSync(path.join(dir, `${run}.jsonl`), ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n');
      return {
        config: { url: `${run}.jsonl`, format: 'jsonl', streamName: run },
        bad: { url: `${run}-missing.jsonl`, format: 'jsonl' },
        stream: run,
        expected: ROWS.map(project),
      };
    },
  },
  http: {
    unavailable: () => null,
    async setup() {
      const s = await server((req, res) => {
        const u = new URL(req.path, 'http://x');
        if (u.pathname !== '/rows') return json(res, 404, { error: 'not found' });
        const page = Number(u.searchParams.get('page') ?? 1);
        json(res, 200, { data: ROWS.slice((page - 1) * 2, page * 2) });
      });
      return {
        config: { url: `${s.origin}/rows`, recordsPath: 'data', pagination: { type: 'page', pageSize: 2, sizeParam: 'size' }, streamName: 'rows' },
        bad: { url: `${s.origin}/missing`, streamName: 'rows' },
        stream: 'rows',
        expected: ROWS.map(project),
      };
    },
  },
  generator: {
    unavailable: () => null,
    async setup() {
      return {
        config: { count: 7, streams: ['gen'] },
        bad: { count: 7, startTime: 'not a time' },
        stream: 'gen',
        expected: ROWS.map((r) => ({ id: r.id })),
      };
    },
  },
  'sqlite-source': {
    unavailable: () => null,
    async setup(_ctx, dir, run) {
      const file = path.join(dir, `${run}-src.db`);
      const d = new Database(file);
      d.exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT, amount REAL, active INTEGER)`);
      const ins = d.prepare(`INSERT INTO rows VALUES (?, ?, ?, ?)`);
      for (const r of ROWS) ins.run(r.id, r.name, r.amount, r.active ? 1 : 0);
      d.close();
      return { config: { path: `${run}-src.db` }, bad: { path: `${run}-missing.db` }, stream: 'rows', expected: ROWS.map(project) };
    },
  },
  'postgres-source': {
    unavailable: needsPg,
    async setup(_ctx, _dir, run) {
      const t = await pgDatabase();
      const schema = `src_${run}`;
      await t.client.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.rows (id bigint PRIMARY KEY, name text, amount double precision, active boolean)`);
      for (const r of ROWS) await t.client.query(`INSERT INTO ${schema}.rows VALUES ($1, $2, $3, $4)`, [r.id, r.name, r.amount, r.active]);
      return {
        config: { connectionString: t.url, schema },
        bad: { connectionString: t.url.replace(/\/[^/]*$/, '/sluice_no_such_db') },
        stream: 'rows',
        expected: ROWS.map(project),
      };
    },
  },
};

async function readLines(file: string): Promise<DataRecord[]> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as DataRecord);
}

const DESTINATIONS: Record<string, Fixture<DestinationSetup>> = {
  sqlite: {
    unavailable: () => null,
    async setup(_ctx, dir, run) {
      const file = path.join(dir, `${run}.db`);
      return {
        config: { path: `${run}.db` },
        bad: { path: `no-such-folder/${run}.db` },
        async readBack(stream) {
          if (!fs.existsSync(file)) return [];
          const d = new Database(file, { readonly: true });
          try {
            const exists = d.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(stream);
            return exists ? (d.prepare(`SELECT * FROM "${stream}" ORDER BY id`).all() as DataRecord[]) : [];
          } finally {
            d.close();
          }
        },
      };
    },
  },
  'postgres-destination': {
    unavailable: needsPg,
    async setup(_ctx, _dir, run) {
      const t = await pgDatabase();
      const schema = `dst_${run}`;
      await t.client.query(`CREATE SCHEMA ${schema}`);
      return {
        config: { connectionString: t.url, schema },
        bad: { connectionString: t.url, schema: `dst_${run}_missing`, createTable: false },
        async readBack(stream) {
          const c = new pg.Client(t.url);
          await c.connect();
          try {
            const exists = await c.query(`SELECT to_regclass($1) AS r`, [`${schema}."${stream}"`]);
            if (exists.rows[0].r === null) return [];
            return (await c.query(`SELECT * FROM ${schema}."${stream}" ORDER BY id`)).rows as DataRecord[];
          } finally {
            await c.end();
          }
        },
      };
    },
  },
  jsonl: {
    unavailable: () => null,
    async setup(_ctx, dir, run) {
      return {
        config: { path: `${run}.jsonl` },
        bad: { path: `no-such-folder/${run}.jsonl` },
        readBack: async () => readLines(path.join(dir, `${run}.jsonl`)),
      };
    },
  },
  file: {
    unavailable: () => null,
    async setup(_ctx, dir, run) {
      fs.mkdirSync(path.join(dir, run));
      return {
        config: { path: run, filePattern: '{stream}.jsonl' },
        bad: { path: `${run}-missing`, filePattern: '{stream}.jsonl' },
        readBack: async (stream) => readLines(path.join(dir, run, `${stream}.jsonl`)),
      };
    },
  },
  webhook: {
    unavailable: () => null,
    async setup() {
      const received: DataRecord[] = [];
      const s = await server((req, res) => {
        if (req.path === '/down') return json(res, 503, { error: 'down' });
        if (req.method === 'OPTIONS') return res.writeHead(204).end();
        const body = JSON.parse(req.body) as { records: DataRecord[] };
        received.push(...body.records);
        json(res, 200, { ok: true });
      });
      return { config: { url: `${s.origin}/hook` }, bad: { url: `${s.origin}/down` }, readBack: async () => received.slice() };
    },
  },
  null: {
    unavailable: () => null,
    async setup() {
      return { config: {}, bad: { countBytes: 'yes' }, readBack: async () => null };
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Helpers.

const files = testFiles('sluice-acceptance-');
let runs = 0;
const nextRun = (): string => `acc${++runs}`;

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await db?.drop();
  files.cleanup();
});

beforeAll(() => skipNote('driver acceptance (postgres fixtures)'));

/** Refused somewhere before any data moves, with a message, and never by a throw. */
async function expectRefused(driver: Driver, config: Record<string, unknown>): Promise<void> {
  const v = validateConfig(driver, config);
  if (!v.ok) {
    expect(v.errors.length).toBeGreaterThan(0);
    return;
  }
  const problems = driver.validate?.(v.config, files.ctx) ?? [];
  if (problems.length > 0) return;
  const res = await driver.check(v.config, files.ctx);
  expect(res.ok, `check accepted the bad config ${JSON.stringify(config)}: ${res.message}`).toBe(false);
  expect(res.message.length).toBeGreaterThan(0);
}

function configured(config: Record<string, unknown>, driver: Driver): Record<string, unknown> {
  const v = validateConfig(driver, config);
  if (!v.ok) throw new Error(`fixture config of ${driver.name} is invalid: ${JSON.stringify(v.errors)}`);
  return v.config;
}

async function readAll(source: SourceDriver, config: Record<string, unknown>, stream: string, state: StreamState | undefined, batchSize: number): Promise<SourceMessage[]> {
  const out: SourceMessage[] = [];
  const streams: ConfiguredStream[] = [{ name: stream, syncMode: 'FULL_REFRESH' }];
  for await (const m of source.read(config, streams, state === undefined ? {} : { [stream]: state }, { batchSize, ctx: files.ctx })) out.push(m);
  return out;
}

const recordsOf = (ms: SourceMessage[]): DataRecord[] => ms.flatMap((m) => (m.type === 'records' ? m.records : []));

// ---------------------------------------------------------------------------------------------
// The suite.

describe('every registered driver has an acceptance fixture', () => {
  it('names a fixture for each driver, and no fixture for a driver that does not exist', () => {
    const missing = drivers.filter((d) => !(d.role === 'SOURCE' ? SOURCES : DESTINATIONS)[d.name]).map((d) => `${d.role} ${d.name}`);
    expect(missing, 'drivers without an acceptance fixture').toEqual([]);
    const names = (role: string): string[] => drivers.filter((d) => d.role === role).map((d) => d.name).sort();
    expect(Object.keys(SOURCES).sort()).toEqual(names('SOURCE'));
    expect(Object.keys(DESTINATIONS).sort()).toEqual(names('DESTINATION'));
  });
});

const sources = drivers.filter((d): d is SourceDriver => d.role === 'SOURCE' && d.name in SOURCES);
const destinations = drivers.filter((d): d is DestinationDriver => d.role === 'DESTINATION' && d.name in DESTINATIONS);

describe.each(sources.map((d) => [d.name, d] as const))('source %s', (name, source) => {
  const fixture = SOURCES[name]!;
  const skip = fixture.unavailable();
  if (skip) console.log(`[driver acceptance] source ${name} skipped: ${skip}`);
  let s: SourceSetup;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    if (skip) return;
    s = await fixture.setup(files.ctx, files.dir, nextRun());
    config = configured(s.config, source);
  });

  it.skipIf(skip)('has a config schema that compiles, accepts the good config and refuses the bad one', async () => {
    expect(() => new Ajv({ strict: false }).compile(source.configSchema)).not.toThrow();
    expect(source.validate?.(config, files.ctx) ?? []).toEqual([]);
    await expectRefused(source, s.bad);
  });

  it.skipIf(skip)('checks the good config', async () => {
    const res = await source.check(config, files.ctx);
    expect(res, res.message).toMatchObject({ ok: true });
    expect(res.message.length).toBeGreaterThan(0);
  });

  it.skipIf(skip)('discovers the stream with its fields', async () => {
    const cat = await source.discover(config, files.ctx);
    const stream = cat.streams.find((x) => x.name === s.stream);
    expect(stream, `streams: ${cat.streams.map((x) => x.name).join(', ')}`).toBeDefined();
    expect(stream!.fields.map((f) => f.name)).toContain('id');
    expect(stream!.supportedSyncModes).toContain('FULL_REFRESH');
  });

  it.skipIf(skip)('reads every record once and ends with a state', async () => {
    const ms = await readAll(source, config, s.stream, undefined, 3);
    expect(recordsOf(ms).map(project).sort(byId)).toEqual(s.expected);
    const last = ms.filter((m) => m.type !== 'log').at(-1);
    expect(last).toMatchObject({ type: 'state', stream: s.stream });
    for (const m of ms) if (m.type !== 'log') expect(m.stream).toBe(s.stream);
  });

  it.skipIf(skip)('resumes from every state it yields, with no record missing or repeated', async () => {
    const ms = await readAll(source, config, s.stream, undefined, 2);
    let before: DataRecord[] = [];
    let checked = 0;
    for (const m of ms) {
      if (m.type === 'records') before = before.concat(m.records);
      if (m.type !== 'state') continue;
      const after = recordsOf(await readAll(source, config, s.stream, m.state, 2));
      const all = before.concat(after).map(project).sort(byId);
      expect(all, `resumed from ${JSON.stringify(m.state)}`).toEqual(s.expected);
      checked++;
    }
    expect(checked).toBeGreaterThan(1);
  });
});

describe.each(destinations.map((d) => [d.name, d] as const))('destination %s', (name, destination) => {
  const fixture = DESTINATIONS[name]!;
  const skip = fixture.unavailable();
  if (skip) console.log(`[driver acceptance] destination ${name} skipped: ${skip}`);
  let d: DestinationSetup;
  let config: Record<string, unknown>;
  let streams = 0;
  beforeAll(async () => {
    if (skip) return;
    d = await fixture.setup(files.ctx, files.dir, nextRun());
    config = configured(d.config, destination);
  });

  const streamOf = (mode: WriteMode): ConfiguredStream => ({
    name: `${mode.toLowerCase()}_${++streams}`,
    syncMode: 'FULL_REFRESH',
    primaryKey: ['id'],
    schema: FIELDS,
  });

  async function write(mode: WriteMode, stream: ConfiguredStream, batches: DataRecord[][], end: 'commit' | 'abort'): Promise<void> {
    const w = await destination.openWriter(config, { writeMode: mode, stream, ctx: files.ctx });
    for (const b of batches) {
      const res = await w.writeBatch(b);
      expect(res.rejected).toEqual([]);
      expect(res.written).toBe(b.length);
    }
    await (end === 'commit' ? w.commit() : w.abort());
  }

  async function seen(stream: ConfiguredStream): Promise<{ id: number; name?: string }[] | null> {
    const rows = await d.readBack(stream.name);
    return rows === null ? null : rows.map(project).sort(byId);
  }

  const first = ROWS.slice(0, 4);
  const second = ROWS.slice(4);
  const renamed = ROWS.slice(2, 5).map((r) => ({ ...r, name: `${r.name} (new)` }));

  it.skipIf(skip)('has a config schema that compiles, accepts the good config and refuses the bad one', async () => {
    expect(() => new Ajv({ strict: false }).compile(destination.configSchema)).not.toThrow();
    expect(destination.validate?.(config, files.ctx) ?? []).toEqual([]);
    expect(destination.supportedWriteModes.length).toBeGreaterThan(0);
    await expectRefused(destination, d.bad);
  });

  it.skipIf(skip)('checks the good config', async () => {
    const res = await destination.check(config, files.ctx);
    expect(res, res.message).toMatchObject({ ok: true });
  });

  it.skipIf(skip)('refuses a write mode it does not declare', async () => {
    const undeclared = (['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE'] as const).filter((m) => !destination.supportedWriteModes.includes(m));
    for (const mode of undeclared) {
      await expect(destination.openWriter(config, { writeMode: mode, stream: streamOf(mode), ctx: files.ctx })).rejects.toThrow(/mode/i);
    }
  });

  it.skipIf(skip || !destination.supportedWriteModes.includes('APPEND'))('APPEND: adds each committed run; an aborted run leaves what was committed', async () => {
    const st = streamOf('APPEND');
    await write('APPEND', st, [first], 'commit');
    const afterFirst = await seen(st);
    if (afterFirst !== null) expect(afterFirst).toEqual(first.map(project));
    await write('APPEND', st, [second.slice(0, 1), second.slice(1)], 'commit');
    await write('APPEND', st, [], 'abort');
    const all = await seen(st);
    if (all !== null) expect(all).toEqual(ROWS.map(project));
  });

  it.skipIf(skip || !destination.supportedWriteModes.includes('OVERWRITE'))('OVERWRITE: a committed run replaces everything; an aborted one changes nothing', async () => {
    const st = streamOf('OVERWRITE');
    await write('OVERWRITE', st, [first], 'commit');
    await write('OVERWRITE', st, [second], 'abort');
    const kept = await seen(st);
    if (kept !== null) expect(kept).toEqual(first.map(project));
    await write('OVERWRITE', st, [second.slice(0, 1), second.slice(1)], 'commit');
    const replaced = await seen(st);
    if (replaced !== null) expect(replaced).toEqual(second.map(project));
  });

  it.skipIf(skip || !destination.supportedWriteModes.includes('UPSERT'))('UPSERT: replaces rows by key and adds new keys', async () => {
    const st = streamOf('UPSERT');
    await write('UPSERT', st, [first], 'commit');
    await write('UPSERT', st, [renamed], 'commit');
    const rows = await seen(st);
    if (rows === null) return;
    const want = new Map(first.map((r) => [r.id, project(r)]));
    for (const r of renamed) want.set(r.id, project(r));
    expect(rows).toEqual([...want.values()].sort(byId));
  });

  it.skipIf(skip || !destination.supportedWriteModes.includes('MERGE'))('MERGE: updates the fields present and keeps the others', async () => {
    const st = streamOf('MERGE');
    await write('MERGE', st, [first], 'commit');
    await write('MERGE', st, [renamed.map(({ id, name }) => ({ id, name }))], 'commit');
    const rows = await d.readBack(st.name);
    if (rows === null) return;
    const byKey = new Map(rows.map((r) => [Number(r.id), r]));
    expect([...byKey.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(String(byKey.get(3)!.name)).toBe(renamed[0]!.name);
    expect(Number(byKey.get(3)!.amount)).toBe(ROWS[2]!.amount);
    expect(String(byKey.get(1)!.name)).toBe(ROWS[0]!.name);
  });
});
