import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteDestination } from '../../src/engine/drivers/sqlite/sqlite.destination.js';
import { DriverError, type ConfiguredStream, type FieldSchema, type WriteMode } from '../../src/engine/drivers/types.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let dir: string;
let files: TestFiles;
let ctx: TestFiles['ctx'];
let seq = 0;

beforeAll(() => {
  files = testFiles('sluice-sqlite-');
  ctx = files.ctx;
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  dir = path.join(files.dir, 'work');
  fs.mkdirSync(dir);
});

afterAll(() => {
  files.cleanup();
});

function dbPath(): string {
  return path.join(dir, `db${++seq}.sqlite`);
}

function query(file: string, sql: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

const schema: FieldSchema[] = [
  { name: 'id', type: 'integer', nullable: false },
  { name: 'name', type: 'string', nullable: false },
  { name: 'price', type: 'number', nullable: true },
  { name: 'active', type: 'boolean', nullable: true },
  { name: 'at', type: 'datetime', nullable: true },
  { name: 'meta', type: 'json', nullable: true },
];

function stream(extra: Partial<ConfiguredStream> = {}): ConfiguredStream {
  return { name: 'items', syncMode: 'FULL_REFRESH', schema, primaryKey: ['id'], ...extra };
}

async function writeAll(file: string, writeMode: WriteMode, s: ConfiguredStream, batches: Record<string, unknown>[][]) {
  const w = await sqliteDestination.openWriter({ path: file }, { writeMode, stream: s, ctx });
  const results = [];
  for (const b of batches) results.push(await w.writeBatch(b));
  await w.commit();
  return results;
}

describe('sqlite destination: check', () => {
  it('accepts a new file in a writable directory', async () => {
    const res = await sqliteDestination.check({ path: dbPath() }, ctx);
    expect(res.ok).toBe(true);
    expect(res.message).toContain('will be created');
  });

  it('accepts an existing database', async () => {
    const file = dbPath();
    new Database(file).exec('CREATE TABLE t (a)').close();
    const res = await sqliteDestination.check({ path: file }, ctx);
    expect(res).toEqual({ ok: true, message: `${file} is a writable SQLite database with 1 table(s)` });
  });

  it('reports a missing directory', async () => {
    const res = await sqliteDestination.check({ path: path.join(dir, 'missing', 'x.db') }, ctx);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('Directory does not exist');
  });

  it('reports a file that is not a SQLite database', async () => {
    const file = path.join(dir, 'notadb.sqlite');
    fs.writeFileSync(file, 'this is definitely not sqlite '.repeat(200));
    const res = await sqliteDestination.check({ path: file }, ctx);
    expect(res).toEqual({ ok: false, message: `${file} is not a SQLite database` });
  });

  it('reports a path that is a directory', async () => {
    const sub = path.join(dir, 'adir');
    fs.mkdirSync(sub);
    const res = await sqliteDestination.check({ path: sub }, ctx);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('not a regular file');
  });

  it('reports a database locked by another writer', async () => {
    const file = dbPath();
    const other = new Database(file);
    other.exec('CREATE TABLE t (a)');
    other.exec('BEGIN IMMEDIATE');
    try {
      const res = await sqliteDestination.check({ path: file }, ctx);
      expect(res.ok).toBe(false);
      expect(res.message).toContain('locked');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });
});

describe('sqlite destination: discover', () => {
  it('returns an empty catalog for a missing file', async () => {
    expect(await sqliteDestination.discover({ path: dbPath() }, ctx)).toEqual({ streams: [] });
  });

  it('lists tables with mapped column types and primary keys', async () => {
    const file = dbPath();
    const db = new Database(file);
    db.exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, code VARCHAR(10) NOT NULL, total DECIMAL(10,2), paid BOOLEAN, created DATETIME, doc JSON, raw BLOB);
             CREATE TABLE lines (order_id INTEGER, n INTEGER, qty REAL, PRIMARY KEY (order_id, n));
             CREATE TABLE orders__sluice_tmp (x);`);
    db.close();
    const catalog = await sqliteDestination.discover({ path: file }, ctx);
    expect(catalog.streams.map((s) => s.name)).toEqual(['lines', 'orders']);
    const orders = catalog.streams[1]!;
    expect(orders.sourceDefinedPrimaryKey).toEqual(['id']);
    expect(orders.supportedSyncModes).toEqual(['FULL_REFRESH']);
    expect(orders.fields).toEqual([
      { name: 'id', type: 'integer', nullable: false },
      { name: 'code', type: 'string', nullable: false },
      { name: 'total', type: 'number', nullable: true },
      { name: 'paid', type: 'boolean', nullable: true },
      { name: 'created', type: 'datetime', nullable: true },
      { name: 'doc', type: 'json', nullable: true },
      { name: 'raw', type: 'string', nullable: true },
    ]);
    expect(catalog.streams[0]!.sourceDefinedPrimaryKey).toEqual(['order_id', 'n']);
  });
});

describe('sqlite destination: write modes', () => {
  it('APPEND creates a STRICT table from the schema and converts values', async () => {
    const file = dbPath();
    const [res] = await writeAll(file, 'APPEND', stream({ primaryKey: null }), [
      [
        { id: 1, name: 'a', price: 1.5, active: true, at: new Date('2024-01-02T03:04:05Z'), meta: { tags: ['x'] } },
        { id: 2, name: 'b', price: null, active: false, at: '2024-05-06', meta: 'plain' },
        { id: '3', name: 'c', price: '2.25', active: 'yes' },
      ],
    ]);
    expect(res).toMatchObject({ written: 3, rejected: [] });
    expect(res!.bytes).toBeGreaterThan(0);
    expect(query(file, 'SELECT * FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'a', price: 1.5, active: 1, at: '2024-01-02T03:04:05.000Z', meta: '{"tags":["x"]}' },
      { id: 2, name: 'b', price: null, active: 0, at: '2024-05-06', meta: '"plain"' },
      { id: 3, name: 'c', price: 2.25, active: 1, at: null, meta: null },
    ]);
    const ddl = query(file, "SELECT sql FROM sqlite_master WHERE name = 'items'") as { sql: string }[];
    expect(ddl[0]!.sql).toMatch(/STRICT$/);
    expect(ddl[0]!.sql).toContain('"name" TEXT NOT NULL');
  });

  it('APPEND keeps appending across writers', async () => {
    const file = dbPath();
    await writeAll(file, 'APPEND', stream({ primaryKey: null }), [[{ id: 1, name: 'a' }]]);
    await writeAll(file, 'APPEND', stream({ primaryKey: null }), [[{ id: 1, name: 'a' }], [{ id: 2, name: 'b' }]]);
    expect(query(file, 'SELECT id, name FROM items ORDER BY rowid')).toEqual([
      { id: 1, name: 'a' },
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
    ]);
  });

  it('creates the table from the first batch without a schema and adds columns for new keys', async () => {
    const file = dbPath();
    await writeAll(file, 'APPEND', { name: 'events', syncMode: 'FULL_REFRESH' }, [
      [
        { id: 1, kind: 'click', score: 1.5, ok: true, data: { a: 1 } },
        { id: 2, kind: 'view', score: 2 },
      ],
      [{ id: 3, kind: 'buy', extra: 'new column', Kind: 'ignored-case-dup' }],
    ]);
    const cols = query(file, "SELECT name, type FROM pragma_table_info('events')");
    expect(cols).toEqual([
      { name: 'id', type: 'INTEGER' },
      { name: 'kind', type: 'TEXT' },
      { name: 'score', type: 'REAL' },
      { name: 'ok', type: 'INTEGER' },
      { name: 'data', type: 'TEXT' },
      { name: 'extra', type: 'TEXT' },
    ]);
    expect(query(file, 'SELECT id, kind, score, ok, data, extra FROM events ORDER BY id')).toEqual([
      { id: 1, kind: 'click', score: 1.5, ok: 1, data: '{"a":1}', extra: null },
      { id: 2, kind: 'view', score: 2, ok: null, data: null, extra: null },
      { id: 3, kind: 'ignored-case-dup', score: null, ok: null, data: null, extra: 'new column' },
    ]);
  });

  it('uses config.table, else destinationName, sanitized', async () => {
    const file = dbPath();
    await writeAll(file, 'APPEND', stream({ destinationName: 'my-items.v2', primaryKey: null }), [[{ id: 1, name: 'a' }]]);
    const w = await sqliteDestination.openWriter({ path: file, table: '2024 sales' }, { writeMode: 'APPEND', stream: stream({ primaryKey: null }), ctx });
    await w.writeBatch([{ id: 1, name: 'x' }]);
    await w.commit();
    const names = query(file, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    expect(names).toEqual([{ name: '_2024_sales' }, { name: 'my_items_v2' }]);
  });

  it('UPSERT inserts new keys and replaces whole rows for existing keys', async () => {
    const file = dbPath();
    await writeAll(file, 'UPSERT', stream(), [
      [
        { id: 1, name: 'a', price: 1, active: true },
        { id: 2, name: 'b', price: 2, active: false },
      ],
      [
        { id: 2, name: 'B', price: 20 },
        { id: 3, name: 'c', price: 3 },
        { id: 3, name: 'c2', price: 33 },
      ],
    ]);
    expect(query(file, 'SELECT id, name, price, active FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'a', price: 1, active: 1 },
      { id: 2, name: 'B', price: 20, active: null },
      { id: 3, name: 'c2', price: 33, active: null },
    ]);
  });

  it('UPSERT and MERGE need a primary key', async () => {
    for (const writeMode of ['UPSERT', 'MERGE'] as const) {
      const p = sqliteDestination.openWriter({ path: dbPath() }, { writeMode, stream: stream({ primaryKey: null }), ctx });
      await expect(p).rejects.toBeInstanceOf(DriverError);
      await expect(p).rejects.toThrow(/needs a primary key/);
    }
  });

  it('UPSERT adds a unique index on an existing table without one', async () => {
    const file = dbPath();
    new Database(file).exec("CREATE TABLE items (id INTEGER, name TEXT); INSERT INTO items VALUES (1, 'old')").close();
    await writeAll(file, 'UPSERT', stream({ schema: null }), [[{ id: 1, name: 'new' }, { id: 2, name: 'two' }]]);
    expect(query(file, 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'new' },
      { id: 2, name: 'two' },
    ]);
  });

  it('MERGE updates only the columns present in each record', async () => {
    const file = dbPath();
    const results = await writeAll(file, 'MERGE', stream(), [
      [
        { id: 1, name: 'a', price: 1, active: true, meta: { v: 1 } },
        { id: 2, name: 'b', price: 2, active: false },
      ],
      [
        { id: 1, price: 10 },
        { id: 2, name: 'B', active: null },
        { id: 3, name: 'c' },
        { id: 1, meta: { v: 2 }, price: undefined },
        { id: 4, price: 4 },
        { id: 2 },
      ],
    ]);
    expect(results.map((r) => r.rejected)).toEqual([[], [{ index: 4, error: expect.stringContaining('NOT NULL') }]]);
    expect(query(file, 'SELECT id, name, price, active, meta FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'a', price: 10, active: 1, meta: '{"v":2}' },
      { id: 2, name: 'B', price: 2, active: null, meta: null },
      { id: 3, name: 'c', price: null, active: null, meta: null },
    ]);
  });

  it('OVERWRITE is invisible to other connections until commit, then replaces the table atomically', async () => {
    const file = dbPath();
    await writeAll(file, 'APPEND', stream(), [[{ id: 1, name: 'old1' }, { id: 2, name: 'old2' }]]);
    const reader = new Database(file, { readonly: true });
    try {
      const read = () => reader.prepare('SELECT id, name FROM items ORDER BY id').all();
      const w = await sqliteDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream: stream(), ctx });
      await w.writeBatch([{ id: 10, name: 'new10' }]);
      await w.writeBatch([{ id: 11, name: 'new11' }]);
      expect(read()).toEqual([
        { id: 1, name: 'old1' },
        { id: 2, name: 'old2' },
      ]);
      // A reader holding a snapshot keeps seeing the old table even across the swap.
      reader.exec('BEGIN');
      expect(read()).toHaveLength(2);
      await w.commit();
      expect(read()).toEqual([
        { id: 1, name: 'old1' },
        { id: 2, name: 'old2' },
      ]);
      reader.exec('COMMIT');
      expect(read()).toEqual([
        { id: 10, name: 'new10' },
        { id: 11, name: 'new11' },
      ]);
    } finally {
      reader.close();
    }
    const tables = query(file, "SELECT name FROM sqlite_master WHERE type = 'table'");
    expect(tables).toEqual([{ name: 'items' }]);
  });

  it('OVERWRITE abort leaves the old table and drops the temp table', async () => {
    const file = dbPath();
    await writeAll(file, 'APPEND', stream(), [[{ id: 1, name: 'old' }]]);
    const w = await sqliteDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream: stream(), ctx });
    await w.writeBatch([{ id: 5, name: 'new' }]);
    expect(query(file, "SELECT name FROM sqlite_master WHERE name = 'items__sluice_tmp'")).toHaveLength(1);
    await w.abort();
    expect(query(file, 'SELECT id, name FROM items')).toEqual([{ id: 1, name: 'old' }]);
    expect(query(file, "SELECT name FROM sqlite_master WHERE name = 'items__sluice_tmp'")).toHaveLength(0);
  });

  it('OVERWRITE with no records empties the table', async () => {
    const file = dbPath();
    await writeAll(file, 'APPEND', { name: 'things', syncMode: 'FULL_REFRESH' }, [[{ a: 1 }]]);
    await writeAll(file, 'OVERWRITE', { name: 'things', syncMode: 'FULL_REFRESH' }, []);
    expect(query(file, 'SELECT * FROM things')).toEqual([]);
  });

  it('refuses writes after commit', async () => {
    const w = await sqliteDestination.openWriter({ path: dbPath() }, { writeMode: 'APPEND', stream: stream(), ctx });
    await w.commit();
    await expect(w.writeBatch([{ id: 1, name: 'a' }])).rejects.toThrow(/after commit/);
  });
});

describe('sqlite destination: rejected records', () => {
  it('rejects constraint and type violations one by one and commits the rest', async () => {
    const file = dbPath();
    const w = await sqliteDestination.openWriter({ path: file }, { writeMode: 'APPEND', stream: stream(), ctx });
    const res = await w.writeBatch([
      { id: 1, name: 'ok1' },
      { id: 2, name: null },
      { id: 'three', name: 'bad id' },
      { id: 4, name: 'ok4', price: 'cheap' },
      { id: 1, name: 'duplicate key' },
      { id: 5, name: 'ok5', meta: { big: 10n } },
      { id: 6, name: 'ok6' },
    ]);
    await w.commit();
    expect(res.written).toBe(2);
    expect(res.rejected.map((r) => r.index)).toEqual([1, 2, 3, 4, 5]);
    expect(res.rejected[0]!.error).toContain('NOT NULL');
    expect(res.rejected[1]!.error).toMatch(/datatype|mismatch/i);
    expect(res.rejected[3]!.error).toMatch(/UNIQUE|PRIMARY/);
    expect(res.rejected[4]!.error).toMatch(/BigInt/i);
    expect(query(file, 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'ok1' },
      { id: 6, name: 'ok6' },
    ]);
  });

  it('rejects records without a primary key value under UPSERT', async () => {
    const file = dbPath();
    const w = await sqliteDestination.openWriter({ path: file }, { writeMode: 'UPSERT', stream: stream(), ctx });
    const res = await w.writeBatch([{ id: 1, name: 'a' }, { name: 'no id' }]);
    await w.commit();
    expect(res).toMatchObject({ written: 1, rejected: [{ index: 1, error: 'missing value for primary key column "id"' }] });
  });

  it('keeps a new column added by a batch with rejected records', async () => {
    const file = dbPath();
    const w = await sqliteDestination.openWriter({ path: file }, { writeMode: 'APPEND', stream: stream(), ctx });
    const res = await w.writeBatch([{ id: 1, name: 'a', note: 'n1' }, { id: 2, name: null, note: 'n2' }]);
    const res2 = await w.writeBatch(Array.from({ length: 200 }, (_, i) => ({ id: 100 + i, name: `r${i}`, note: `x${i}` })));
    await w.commit();
    expect(res.rejected.map((r) => r.index)).toEqual([1]);
    expect(res2).toMatchObject({ written: 200, rejected: [] });
    expect(query(file, 'SELECT count(*) AS n, count(note) AS notes FROM items')).toEqual([{ n: 201, notes: 201 }]);
  });
});
