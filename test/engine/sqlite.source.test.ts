import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteSource, type SqliteSourceConfig } from '../../src/engine/drivers/sqlite/sqlite.source.js';
import { DriverError, type ConfiguredStream, type DataRecord, type SourceMessage, type StreamState, type StreamStates } from '../../src/engine/drivers/types.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let dir: string;
let files: TestFiles;
let ctx: TestFiles['ctx'];
let file: string;
let cfg: SqliteSourceConfig;

beforeAll(() => {
  files = testFiles('sluice-sqlite-src-');
  ctx = files.ctx;
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  dir = path.join(files.dir, 'work');
  fs.mkdirSync(dir);
  file = path.join(dir, 'app.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INT, big INTEGER, ok BOOLEAN, at DATETIME, meta JSON, raw BLOB, note VARCHAR(20));
    CREATE TABLE events (id INTEGER NOT NULL, region TEXT NOT NULL, updated INTEGER, note TEXT, PRIMARY KEY (region, id)) WITHOUT ROWID;
    CREATE INDEX events_cursor ON events (updated, region, id);
    CREATE TABLE log (msg TEXT, level INT);
    CREATE VIEW v_items AS SELECT id, name FROM items WHERE id <= 3;
    CREATE TABLE items__sluice_tmp (x);
  `);
  const ins = db.prepare(`INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  ins.run(1, 'one', 1.5, 3, 9007199254740993n, 1, '2024-01-02T03:04:05.123Z', '{"a":[1,"x"]}', Buffer.from([1, 2, 255]), 'n1');
  ins.run(2, 'two', null, null, 42, 0, null, 'not json', null, null);
  for (let i = 3; i <= 10; i++) ins.run(i, `n${i}`, i / 4, i, i * 10, null, null, null, null, null);
  const ev = db.prepare(`INSERT INTO events VALUES (?, ?, ?, ?)`);
  for (let g = 1; g <= 25; g++) ev.run(g, `r${g % 2}`, Math.floor(g / 5), `e${g}`);
  ev.run(100, 'r0', null, 'no cursor');
  const lg = db.prepare(`INSERT INTO log VALUES (?, ?)`);
  for (let i = 1; i <= 50; i++) lg.run(`m${i}`, i % 3);
  db.close();
  cfg = { path: file };
});

afterAll(() => {
  files.cleanup();
});

async function collect(config: SqliteSourceConfig, streams: ConfiguredStream[], state: StreamStates = {}, batchSize = 1000, signal?: AbortSignal): Promise<SourceMessage[]> {
  const out: SourceMessage[] = [];
  for await (const m of sqliteSource.read(config, streams, state, { batchSize, signal, ctx })) out.push(m);
  return out;
}
const records = (msgs: SourceMessage[]): DataRecord[] => msgs.flatMap((m) => (m.type === 'records' ? m.records : []));
const states = (msgs: SourceMessage[]): StreamState[] => msgs.filter((m) => m.type === 'state').map((m) => (m as { state: StreamState }).state);
const shape = (msgs: SourceMessage[]) => msgs.map((m) => (m.type === 'records' ? `r${m.records.length}` : m.type === 'state' ? 's' : m.type));

describe('sqlite source: check', () => {
  it('accepts a database and counts its tables', async () => {
    expect(await sqliteSource.check(cfg, ctx)).toEqual({ ok: true, message: `${file} is a readable SQLite database; 3 table(s)` });
  });

  it('reports a missing file, a non-database file, missing tables and bad queries', async () => {
    expect(await sqliteSource.check({ path: path.join(dir, 'nope.db') }, ctx)).toEqual({ ok: false, message: `file not found: ${path.join(dir, 'nope.db')}` });
    const junk = path.join(dir, 'junk.db');
    fs.writeFileSync(junk, 'not a database at all '.repeat(100));
    expect((await sqliteSource.check({ path: junk }, ctx)).message).toContain('is not a SQLite database');
    const missing = await sqliteSource.check({ ...cfg, tables: ['items', 'nope'] }, ctx);
    expect(missing.ok).toBe(false);
    expect(missing.message).toContain('Table(s) not found');
    expect(missing.message).toContain('nope');
    expect(missing.message).toContain('available: events, items, log');
    const bad = await sqliteSource.check({ ...cfg, queries: [{ name: 'q', sql: 'SELECT nope FROM items' }] }, ctx);
    expect(bad.ok).toBe(false);
    expect(bad.message).toContain('query "q" is not a valid SELECT');
  });
});

describe('sqlite source: discover', () => {
  it('reports declared types, nullability and primary keys', async () => {
    const catalog = await sqliteSource.discover(cfg, ctx);
    expect(catalog.streams.map((s) => s.name)).toEqual(['events', 'items', 'log']);
    const items = catalog.streams.find((s) => s.name === 'items')!;
    expect(items.fields).toEqual([
      { name: 'id', type: 'integer', nullable: false },
      { name: 'name', type: 'string', nullable: false },
      { name: 'price', type: 'number', nullable: true },
      { name: 'qty', type: 'integer', nullable: true },
      { name: 'big', type: 'integer', nullable: true },
      { name: 'ok', type: 'boolean', nullable: true },
      { name: 'at', type: 'datetime', nullable: true },
      { name: 'meta', type: 'json', nullable: true },
      { name: 'raw', type: 'string', nullable: true },
      { name: 'note', type: 'string', nullable: true },
    ]);
    expect(items.sourceDefinedPrimaryKey).toEqual(['id']);
    expect(items.supportedSyncModes).toEqual(['FULL_REFRESH', 'INCREMENTAL']);
    const events = catalog.streams.find((s) => s.name === 'events')!;
    expect(events.sourceDefinedPrimaryKey).toEqual(['region', 'id']);
    expect(events.fields.map((f) => f.nullable)).toEqual([false, false, true, true]);
    expect(catalog.streams.find((s) => s.name === 'log')!.sourceDefinedPrimaryKey).toBeNull();
  });

  it('accepts listed views and custom queries', async () => {
    const catalog = await sqliteSource.discover({
      ...cfg,
      tables: ['v_items'],
      queries: [
        { name: 'totals', sql: 'SELECT level, count(*) AS n, avg(level) AS a FROM log GROUP BY level;' },
        { name: 'inc', sql: 'SELECT id, updated FROM events', cursorField: 'updated', primaryKey: ['id'] },
      ],
    }, ctx);
    expect(catalog.streams.map((s) => [s.name, s.supportedSyncModes, s.defaultCursorField, s.sourceDefinedPrimaryKey])).toEqual([
      ['v_items', ['FULL_REFRESH', 'INCREMENTAL'], null, null],
      ['totals', ['FULL_REFRESH'], null, null],
      ['inc', ['FULL_REFRESH', 'INCREMENTAL'], ['updated'], ['id']],
    ]);
    expect(catalog.streams[1]!.fields).toEqual([
      { name: 'level', type: 'integer', nullable: true },
      { name: 'n', type: 'integer', nullable: true },
      { name: 'a', type: 'integer', nullable: true },
    ]);
  });
});

describe('sqlite source: read', () => {
  it('converts values by declared type', async () => {
    const [one, two] = records(await collect(cfg, [{ name: 'items', syncMode: 'FULL_REFRESH' }]));
    expect(one).toEqual({
      id: 1,
      name: 'one',
      price: 1.5,
      qty: 3,
      big: '9007199254740993',
      ok: true,
      at: '2024-01-02T03:04:05.123Z',
      meta: { a: [1, 'x'] },
      raw: '\\x0102ff',
      note: 'n1',
    });
    expect(two).toMatchObject({ id: 2, big: 42, ok: false, meta: 'not json', raw: null });
  });

  it('streams a full refresh in keyset batches with states, and resumes', async () => {
    const msgs = await collect(cfg, [{ name: 'items', syncMode: 'FULL_REFRESH', fields: ['id', 'name'] }], {}, 4);
    expect(shape(msgs)).toEqual(['r4', 's', 'r4', 's', 'r2', 's']);
    expect(records(msgs)[3]).toEqual({ id: 4, name: 'n4' });
    expect(states(msgs)).toEqual([{ pk: [4] }, { pk: [8] }, { pk: [10] }]);
    const bytes = msgs.reduce((n, m) => n + (m.type === 'records' ? m.bytes : 0), 0);
    expect(bytes).toBeGreaterThan(0);
    const rest = await collect(cfg, [{ name: 'items', syncMode: 'FULL_REFRESH', fields: ['id'] }], { items: { pk: [8] } }, 4);
    expect(records(rest)).toEqual([{ id: 9 }, { id: 10 }]);
  });

  it('pages a table without a primary key by rowid', async () => {
    const msgs = await collect(cfg, [{ name: 'log', syncMode: 'FULL_REFRESH' }], {}, 20);
    expect(shape(msgs)).toEqual(['r20', 's', 'r20', 's', 'r10', 's']);
    expect(states(msgs)).toEqual([{ pk: [20] }, { pk: [40] }, { pk: [50] }]);
    expect(records(msgs)[0]).toEqual({ msg: 'm1', level: 1 });
    const rest = await collect(cfg, [{ name: 'log', syncMode: 'FULL_REFRESH' }], { log: { pk: [45] } }, 20);
    expect(records(rest).map((r) => r.msg)).toEqual(['m46', 'm47', 'm48', 'm49', 'm50']);
  });

  it('reads incrementally by (cursor, pk): no skip and no repeat across equal cursor values', async () => {
    const stream: ConfiguredStream = { name: 'events', syncMode: 'INCREMENTAL', cursorField: ['updated'], fields: ['id'] };
    const msgs = await collect(cfg, [stream], {}, 3);
    const got = records(msgs);
    expect(got).toHaveLength(25); // the NULL-cursor row is not read
    expect(got.every((r) => Object.keys(r).join() === 'id')).toBe(true);
    expect(states(msgs)[0]).toEqual({ cursor: 0, pk: ['r1', 1] }); // (0,r0,2) (0,r0,4) (0,r1,1)
    let seen = 0;
    for (const m of msgs) {
      if (m.type === 'records') seen += m.records.length;
      if (m.type !== 'state') continue;
      const rest = records(await collect(cfg, [stream], { events: m.state }, 4));
      expect(rest.map((r) => r.id)).toEqual(got.slice(seen).map((r) => r.id));
    }
  });

  it('picks up rows added with an equal or bigger cursor on the next run', async () => {
    const f = path.join(dir, 'inc.db');
    const db = new Database(f);
    db.exec(`CREATE TABLE inc (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, ok BOOLEAN)`);
    db.exec(`INSERT INTO inc VALUES (1, 1, 1), (2, 1, 0), (3, 1, 1)`);
    const stream: ConfiguredStream = { name: 'inc', syncMode: 'INCREMENTAL', cursorField: ['v'] };
    const first = await collect({ path: f }, [stream], {}, 2);
    expect(records(first).map((r) => r.id)).toEqual([1, 2, 3]);
    const last = states(first).at(-1)!;
    expect(last).toEqual({ cursor: 1, pk: [3] });
    db.exec(`INSERT INTO inc VALUES (4, 1, 0), (5, 2, 1); UPDATE inc SET v = 3 WHERE id = 1`);
    const second = await collect({ path: f }, [stream], { inc: last }, 2);
    expect(records(second)).toEqual([
      { id: 4, v: 1, ok: false },
      { id: 5, v: 2, ok: true },
      { id: 1, v: 3, ok: true },
    ]);
    // A boolean cursor: state keeps the stored 0/1 so it binds and compares exactly.
    const byBool = await collect({ path: f }, [{ name: 'inc', syncMode: 'INCREMENTAL', cursorField: ['ok'] }], {}, 2);
    expect(states(byBool)[0]).toEqual({ cursor: 0, pk: [4] });
    const boolRest = await collect({ path: f }, [{ name: 'inc', syncMode: 'INCREMENTAL', cursorField: ['ok'] }], { inc: states(byBool)[0]! }, 10);
    expect(records(boolRest).map((r) => r.id)).toEqual([1, 3, 5]);
    db.close();
  });

  it('reads custom queries: keyless full refresh by row count, keyed and cursor-only incremental', async () => {
    const c: SqliteSourceConfig = {
      ...cfg,
      queries: [
        { name: 'plain', sql: 'SELECT id, name FROM items ORDER BY id' },
        { name: 'keyed', sql: "SELECT id, updated AS u FROM events WHERE region = 'r0'", cursorField: 'u', primaryKey: ['id'] },
        { name: 'groups', sql: 'SELECT id, updated FROM events', cursorField: 'updated' },
      ],
    };
    const plain = await collect(c, [{ name: 'plain', syncMode: 'FULL_REFRESH' }], {}, 4);
    expect(shape(plain)).toEqual(['r4', 's', 'r4', 's', 'r2', 's']);
    expect(states(plain)).toEqual([{ rows: 4 }, { rows: 8 }, { rows: 10 }]);
    expect(records(await collect(c, [{ name: 'plain', syncMode: 'FULL_REFRESH' }], { plain: { rows: 8 } }, 4))).toEqual([
      { id: 9, name: 'n9' },
      { id: 10, name: 'n10' },
    ]);
    const keyed = await collect(c, [{ name: 'keyed', syncMode: 'INCREMENTAL' }], {}, 5);
    expect(records(keyed).map((r) => r.id)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
    expect(states(keyed)[0]).toEqual({ cursor: 2, pk: [10] });
    const keyedRest = await collect(c, [{ name: 'keyed', syncMode: 'INCREMENTAL' }], { keyed: { cursor: 1, pk: [6] } }, 5);
    expect(records(keyedRest).map((r) => r.id)).toEqual([8, 10, 12, 14, 16, 18, 20, 22, 24]);
    const groups = await collect(c, [{ name: 'groups', syncMode: 'INCREMENTAL' }], {}, 3);
    for (const m of groups) if (m.type === 'records') expect(new Set(m.records.map((r) => r.updated)).size).toBe(1);
    expect(records(groups)).toHaveLength(25);
    const groupRest = await collect(c, [{ name: 'groups', syncMode: 'INCREMENTAL' }], { groups: { cursor: 3, pk: [] } }, 3);
    expect(records(groupRest).map((r) => r.updated)).toEqual([4, 4, 4, 4, 4, 5]);
  });

  it('rejects INCREMENTAL without a cursor and invalid states; warns about unknown streams', async () => {
    await expect(collect(cfg, [{ name: 'items', syncMode: 'INCREMENTAL' }])).rejects.toThrow(/has no cursorField/);
    await expect(collect(cfg, [{ name: 'items', syncMode: 'FULL_REFRESH' }], { items: { pk: [1, 2] } })).rejects.toThrow(DriverError);
    expect(await collect(cfg, [{ name: 'nope', syncMode: 'FULL_REFRESH' }])).toEqual([expect.objectContaining({ type: 'log', level: 'warn' })]);
  });

  it('stops when the signal is aborted', async () => {
    const ac = new AbortController();
    let seen = 0;
    const run = async () => {
      for await (const m of sqliteSource.read(cfg, [{ name: 'log', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 5, signal: ac.signal, ctx })) {
        if (m.type === 'records') {
          seen += m.records.length;
          if (seen >= 10) ac.abort();
        }
      }
    };
    await expect(run()).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBe(10);
    const pre = new AbortController();
    pre.abort();
    await expect(collect(cfg, [{ name: 'log', syncMode: 'FULL_REFRESH' }], {}, 5, pre.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('sqlite source: nullable declared keys', () => {
  it('pages by rowid when the declared primary key may hold NULLs', async () => {
    const f = path.join(dir, 'nullpk.db');
    const db = new Database(f);
    db.exec(`CREATE TABLE t (code TEXT PRIMARY KEY, v INT)`);
    db.exec(`INSERT INTO t VALUES (NULL, 1), ('b', 2), (NULL, 3), ('a', 4)`);
    db.close();
    const catalog = await sqliteSource.discover({ path: f }, ctx);
    expect(catalog.streams[0]!.sourceDefinedPrimaryKey).toEqual(['code']);
    const msgs = await collect({ path: f }, [{ name: 't', syncMode: 'FULL_REFRESH' }], {}, 1);
    expect(records(msgs).map((r) => r.v)).toEqual([1, 2, 3, 4]);
    expect(states(msgs)).toEqual([{ pk: [1] }, { pk: [2] }, { pk: [3] }, { pk: [4] }]);
  });
});

describe('sqlite source: read-only by construction', () => {
  it('refuses a statement that is not one read-only SELECT at run, even when it got past validation', async () => {
    for (const sql of [`ATTACH '${file}' AS other`, 'PRAGMA user_version = 3', 'DELETE FROM items', 'SELECT 1; DELETE FROM items', 'SELECT * FROM items) AS a; DELETE FROM log; SELECT * FROM (SELECT 1']) {
      const config = { ...cfg, queries: [{ name: 'q', sql }] };
      await expect(collect(config, [{ name: 'q', syncMode: 'FULL_REFRESH' }]), sql).rejects.toThrow(/single read-only SELECT/);
      const c = await sqliteSource.check(config, ctx);
      expect(c.ok, sql).toBe(false);
    }
    // Nothing was written.
    const db = new Database(file, { readonly: true });
    expect((db.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n).toBe(10);
    expect((db.prepare('SELECT count(*) AS n FROM log').get() as { n: number }).n).toBe(50);
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    db.close();
  });

  it('keeps extension loading off: load_extension() is not authorised', async () => {
    const config = { ...cfg, queries: [{ name: 'ext', sql: "SELECT load_extension('/nonexistent/libevil') AS x" }] };
    await expect(collect(config, [{ name: 'ext', syncMode: 'FULL_REFRESH' }])).rejects.toThrow(/not authorized/);
  });

  it('validate (create/update) names the offending query and the path', () => {
    expect(sqliteSource.validate!({ path: 'app.db', queries: [{ name: 'a', sql: 'SELECT 1' }, { name: 'b', sql: 'SELECT * FROM t; DROP TABLE t' }] }, ctx)).toEqual([
      { path: 'queries.1.sql', message: expect.stringContaining('single read-only SELECT') },
    ]);
    expect(sqliteSource.validate!({ path: '/etc/hosts' }, ctx)).toEqual([{ path: 'path', message: 'path "/etc/hosts" is outside the files root of this workspace' }]);
  });
});
