import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresDestination, tmpTableName, type PostgresDestinationConfig } from '../../src/engine/drivers/postgres/postgres.destination.js';
import { compileLine } from '../../src/engine/drivers/postgres/encoding.js';
import type { ConfiguredStream, DataRecord, FieldSchema, WriteMode, WriteResult } from '../../src/engine/drivers/types.js';
import { PG_URL, connectTo, createTestDatabase, skipNote, type TestDatabase } from './pg-test-db.js';
import { testFiles } from '../helpers/files.js';

// These drivers open no local file; the context is what every driver call gets.
const { ctx, cleanup: cleanupFiles } = testFiles();
afterAll(cleanupFiles);

skipNote('postgres destination');

describe('tmpTableName', () => {
  it('keeps names within 63 bytes', () => {
    expect(tmpTableName('orders')).toBe('orders__sluice_tmp');
    const long = tmpTableName('x'.repeat(60));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(long.endsWith('__sluice_tmp')).toBe(true);
    expect(tmpTableName('x'.repeat(60))).not.toBe(tmpTableName(`${'x'.repeat(59)}y`));
  });
});

describe('CSV encoding for COPY', () => {
  const line = compileLine([
    { name: 'i', sqlType: 'bigint', kind: 1 },
    { name: 's', sqlType: 'text', kind: 0 },
    { name: 'b', sqlType: 'boolean', kind: 3 },
    { name: 'j', sqlType: 'jsonb', kind: 5 },
    { name: 'constructor', sqlType: 'text', kind: 0 },
  ]);

  it('writes NULL as an empty cell and the empty string quoted', () => {
    expect(line({ i: null, s: '', b: undefined })).toBe(',"",,,');
  });

  it('quotes delimiters, quotes, line breaks and a leading backslash', () => {
    expect(line({ i: 1, s: 'a,b' })).toBe('1,"a,b",,,');
    expect(line({ s: 'say "hi"' })).toBe(',"say ""hi""",,,');
    expect(line({ s: 'l1\nl2\r\n' })).toBe(',"l1\nl2\r\n",,,');
    expect(line({ s: '\\.' })).toBe(',"\\.",,,');
    expect(line({ s: 'a\\b' })).toBe(',a\\b,,,');
    expect(line({ s: 'plain ünïcødé' })).toBe(',plain ünïcødé,,,');
  });

  it('encodes booleans, non-finite numbers, JSON and inherited property names safely', () => {
    expect(line({ i: Number.NaN, b: true, j: { a: 'x"y', n: [1, null] } })).toBe('NaN,,t,"{""a"":""x\\""y"",""n"":[1,null]}",');
    expect(line({ i: true, b: false, j: 'text' })).toBe('1,,f,"""text""",');
    expect(line({ j: 42 })).toBe(',,,42,');
    expect(line({ s: 'x' })).toBe(',x,,,'); // the inherited `constructor` function does not leak into the row
    expect(() => line({ s: Symbol('x') })).toThrow(/cannot store/);
  });
});

describe.skipIf(!PG_URL)('postgres destination', () => {
  let db: TestDatabase;
  let cfg: PostgresDestinationConfig;
  let seq = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    cfg = { connectionString: db.url, schema: 'dw' };
  });

  afterAll(async () => {
    await db?.drop();
  });

  const schema: FieldSchema[] = [
    { name: 'id', type: 'integer', nullable: false },
    { name: 'name', type: 'string', nullable: true },
    { name: 'price', type: 'number', nullable: true },
    { name: 'active', type: 'boolean', nullable: true },
    { name: 'at', type: 'datetime', nullable: true },
    { name: 'meta', type: 'json', nullable: true },
  ];

  function table(): string {
    return `t${++seq}`;
  }

  function stream(name: string, extra: Partial<ConfiguredStream> = {}): ConfiguredStream {
    return { name, syncMode: 'FULL_REFRESH', schema, primaryKey: ['id'], ...extra };
  }

  async function writeAll(writeMode: WriteMode, s: ConfiguredStream, batches: DataRecord[][], config = cfg): Promise<WriteResult[]> {
    const w = await postgresDestination.openWriter(config, { writeMode, stream: s, ctx });
    const results: WriteResult[] = [];
    for (const b of batches) results.push(await w.writeBatch(b));
    await w.commit();
    return results;
  }

  /** Rows with values as text (exactly what is stored), ordered by id. */
  async function rows(t: string, client: pg.Client = db.client, schemaName = 'dw'): Promise<Record<string, unknown>[]> {
    const cols = await client.query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [`"${schemaName}"."${t}"`],
    );
    const list = cols.rows.map((c) => `"${c.name}"::text AS "${c.name}"`).join(', ');
    return (await client.query(`SELECT ${list} FROM "${schemaName}"."${t}" ORDER BY 1`)).rows;
  }

  async function columnTypes(t: string): Promise<Record<string, string>> {
    const res = await db.client.query<{ name: string; type: string; notnull: boolean }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS notnull FROM pg_attribute
        WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [`dw."${t}"`],
    );
    return Object.fromEntries(res.rows.map((r) => [r.name, `${r.type}${r.notnull ? ' not null' : ''}`]));
  }

  describe('check / discover', () => {
    it('reports a schema to be created, then an existing writable one', async () => {
      const res = await postgresDestination.check({ connectionString: db.url, schema: 'fresh' }, ctx);
      expect(res.ok).toBe(true);
      expect(res.message).toContain('does not exist yet and will be created');
      const pub = await postgresDestination.check({ connectionString: db.url }, ctx);
      expect(pub).toMatchObject({ ok: true });
      expect(pub.message).toContain('schema "public" is writable');
    });

    it('reports bad credentials and createTable=false without a table', async () => {
      const u = new URL(db.url);
      const bad = await postgresDestination.check({ host: u.hostname, port: Number(u.port || 5432), database: db.name, user: 'sluice_no_such_role' }, ctx);
      expect(bad.ok).toBe(false);
      expect(bad.message).toMatch(/Authentication failed|sluice_no_such_role/);
      const res = await postgresDestination.check({ connectionString: db.url, table: 'missing', createTable: false }, ctx);
      expect(res).toEqual({ ok: false, message: 'Table public.missing does not exist and createTable is false' });
    });

    it('discovers written tables with types and primary keys', async () => {
      const t = table();
      await writeAll('APPEND', stream(t), [[{ id: 1, name: 'a' }]]);
      const catalog = await postgresDestination.discover(cfg, ctx);
      const s = catalog.streams.find((x) => x.name === t)!;
      expect(s.sourceDefinedPrimaryKey).toEqual(['id']);
      expect(s.fields).toEqual(schema.map((f) => ({ ...f, nullable: f.name !== 'id' })));
    });
  });

  describe('APPEND', () => {
    it('creates the table from the schema and copies tricky values exactly', async () => {
      const t = table();
      const records: DataRecord[] = [
        { id: 1, name: 'comma, "quotes" and\nnew line\r\nCRLF', price: 1.25, active: true, at: '2024-01-02T03:04:05.123456Z', meta: { a: [1, 'x"y', null], b: { c: true } } },
        { id: 2, name: '', price: -0.5, active: false, at: '2024-01-02T03:04:05+02:00', meta: 'plain string' },
        { id: 3, name: null, price: null, active: null, at: null, meta: null },
        { id: 4, name: 'ünïcødé 🚀 日本語', price: 1e21, active: 'true', meta: [1, 2, 3] },
        { id: 5, name: '\\.', price: 'NaN', meta: 42 },
        { id: 6, name: '\\N', at: new Date('2024-03-04T05:06:07.890Z'), meta: 'with "quotes", commas\nand lines' },
        { id: 7, name: ' leading and trailing spaces ', active: 1, price: Number.POSITIVE_INFINITY },
      ];
      const [res] = await writeAll('APPEND', stream(t), [records]);
      expect(res).toMatchObject({ written: 7, rejected: [] });
      expect(res!.bytes).toBeGreaterThan(100);
      expect(await columnTypes(t)).toEqual({
        id: 'bigint not null',
        name: 'text',
        price: 'double precision',
        active: 'boolean',
        at: 'timestamp with time zone',
        meta: 'jsonb',
      });
      expect(await rows(t)).toEqual([
        { id: '1', name: 'comma, "quotes" and\nnew line\r\nCRLF', price: '1.25', active: 'true', at: '2024-01-02 03:04:05.123456+00', meta: '{"a": [1, "x\\"y", null], "b": {"c": true}}' },
        { id: '2', name: '', price: '-0.5', active: 'false', at: '2024-01-02 01:04:05+00', meta: '"plain string"' },
        { id: '3', name: null, price: null, active: null, at: null, meta: null },
        { id: '4', name: 'ünïcødé 🚀 日本語', price: '1e+21', active: 'true', at: null, meta: '[1, 2, 3]' },
        { id: '5', name: '\\.', price: 'NaN', active: null, at: null, meta: '42' },
        { id: '6', name: '\\N', price: null, active: null, at: '2024-03-04 05:06:07.89+00', meta: '"with \\"quotes\\", commas\\nand lines"' },
        { id: '7', name: ' leading and trailing spaces ', price: 'Infinity', active: 'true', at: null, meta: null },
      ]);
    });

    it('is visible to another connection as soon as writeBatch resolves', async () => {
      const t = table();
      const w = await postgresDestination.openWriter(cfg, { writeMode: 'APPEND', stream: stream(t), ctx });
      await w.writeBatch([{ id: 1, name: 'a' }]);
      const other = await connectTo(db.url);
      try {
        expect((await other.query(`SELECT count(*)::int AS n FROM dw.${t}`)).rows[0].n).toBe(1);
      } finally {
        await other.end();
      }
      await w.commit();
    });

    it('writes a large batch through COPY chunks', async () => {
      const t = table();
      const batch = Array.from({ length: 30_000 }, (_, i) => ({ id: i + 1, name: `name ${i + 1}, "q"\n`, price: i / 4, active: i % 2 === 0, meta: { i } }));
      const [res] = await writeAll('APPEND', stream(t), [batch]);
      expect(res!.written).toBe(30_000);
      const check = await db.client.query(`SELECT count(*)::int AS n, sum(id)::bigint AS s, max(name) FILTER (WHERE id = 29999) AS name, sum((meta->>'i')::int)::bigint AS m FROM dw.${t}`);
      expect(check.rows[0]).toEqual({ n: 30_000, s: String((30_000 * 30_001) / 2), name: 'name 29999, "q"\n', m: String((29_999 * 30_000) / 2) });
    });

    it('rejects bad records (type, NOT NULL, duplicate key, NUL byte) and commits the rest', async () => {
      const t = table();
      const batch: DataRecord[] = [
        { id: 1, name: 'ok1' },
        { id: 2, name: 'bad price', price: 'abc' },
        { id: 3, name: 'ok3' },
        { id: null, name: 'no id' },
        { id: 1, name: 'duplicate id' },
        { id: 6, name: 'nul\u0000byte' },
        { id: 7, name: 'bad date', at: 'not a date' },
        { id: 8, name: 'ok8', meta: { deep: ['ok'] } },
      ];
      const [res] = await writeAll('APPEND', stream(t), [batch]);
      expect(res!.written).toBe(3);
      expect(res!.rejected.map((r) => r.index)).toEqual([1, 3, 4, 5, 6]);
      expect(res!.rejected[0]!.error).toMatch(/^22P02: invalid input syntax for type double precision: "abc" \(column price\)/);
      expect(res!.rejected[1]!.error).toMatch(/23502: null value in column "id"/);
      expect(res!.rejected[2]!.error).toMatch(/23505: duplicate key value/);
      expect(res!.rejected[3]!.error).toMatch(/22021/);
      expect((await rows(t)).map((r) => r.name)).toEqual(['ok1', 'ok3', 'ok8']);
    });

    it('adds columns for new fields, and builds a table from the first batch without a schema', async () => {
      const t = table();
      const s: ConfiguredStream = { name: t, syncMode: 'FULL_REFRESH' };
      const res = await writeAll('APPEND', s, [
        [{ id: 1, label: 'a', n: 1.5, flag: true, obj: { x: 1 } }],
        [{ id: 2, label: 'b', extra: 'new', count: 3 }],
        [{ id: 3, label: 'c', extra: 'again', count: 4, more: [1, 2] }],
      ]);
      expect(res.map((r) => r.written)).toEqual([1, 1, 1]);
      expect(await columnTypes(t)).toEqual({
        id: 'bigint',
        label: 'text',
        n: 'double precision',
        flag: 'boolean',
        obj: 'jsonb',
        extra: 'text',
        count: 'bigint',
        more: 'jsonb',
      });
      expect(await rows(t)).toEqual([
        { id: '1', label: 'a', n: '1.5', flag: 'true', obj: '{"x": 1}', extra: null, count: null, more: null },
        { id: '2', label: 'b', n: null, flag: null, obj: null, extra: 'new', count: '3', more: null },
        { id: '3', label: 'c', n: null, flag: null, obj: null, extra: 'again', count: '4', more: '[1, 2]' },
      ]);
    });

    it('writes into an existing table, leaving its other columns to their defaults', async () => {
      await db.client.query(`CREATE TABLE dw.existing (id bigint PRIMARY KEY, name text, created timestamptz NOT NULL DEFAULT '2000-01-01', tags text[])`);
      const res = await writeAll('APPEND', { name: 'ignored', destinationName: 'existing', syncMode: 'FULL_REFRESH' }, [[{ id: 1, name: 'x', tags: ['a', 'b "c"', null] }]]);
      expect(res[0]).toMatchObject({ written: 1, rejected: [] });
      expect(await rows('existing')).toEqual([{ id: '1', name: 'x', created: '2000-01-01 00:00:00+00', tags: '{a,"b \\"c\\"",NULL}' }]);
    });

    it('refuses to create a table when createTable is false', async () => {
      await expect(postgresDestination.openWriter({ ...cfg, createTable: false }, { writeMode: 'APPEND', stream: stream('never_created'), ctx })).rejects.toThrow(
        /does not exist and createTable is false/,
      );
    });
  });

  describe('UPSERT', () => {
    it('replaces whole rows by primary key; the last record of a key in a batch wins', async () => {
      const t = table();
      await writeAll('UPSERT', stream(t), [
        [
          { id: 1, name: 'a', price: 1, active: true, meta: { v: 1 } },
          { id: 2, name: 'b', price: 2 },
        ],
        [
          { id: 1, name: 'a2' },
          { id: 3, name: 'c', price: 3 },
          { id: 3, name: 'c2', price: 33 },
        ],
      ]);
      expect(await rows(t)).toEqual([
        { id: '1', name: 'a2', price: null, active: null, at: null, meta: null },
        { id: '2', name: 'b', price: '2', active: null, at: null, meta: null },
        { id: '3', name: 'c2', price: '33', active: null, at: null, meta: null },
      ]);
    });

    it('rejects bad records, replaying the good records of a key in order', async () => {
      const t = table();
      const [res] = await writeAll('UPSERT', stream(t), [
        [
          { id: 1, name: 'first' },
          { id: 2, name: 'x', price: 'bad' },
          { id: 1, name: 'second' },
          { id: 1, name: 'third', price: 'bad' },
          { id: null, name: 'no key' },
          { id: 4, name: 'ok' },
        ],
      ]);
      expect(res!.written).toBe(3);
      expect(res!.rejected.map((r) => r.index)).toEqual([1, 3, 4]);
      expect(res!.rejected[2]!.error).toBe('missing value for primary key column "id"');
      expect((await rows(t)).map((r) => [r.id, r.name])).toEqual([
        ['1', 'second'],
        ['4', 'ok'],
      ]);
    });

    it('needs a primary key and creates a unique index on an existing table lacking one', async () => {
      await expect(postgresDestination.openWriter(cfg, { writeMode: 'UPSERT', stream: stream('nokey', { primaryKey: null }), ctx })).rejects.toThrow(/needs a primary key/);
      await db.client.query(`CREATE TABLE dw.loose (id bigint, name text)`);
      await writeAll('UPSERT', stream('loose', { schema: null }), [[{ id: 1, name: 'a' }], [{ id: 1, name: 'b' }]]);
      expect(await rows('loose')).toEqual([{ id: '1', name: 'b' }]);
    });
  });

  describe('MERGE', () => {
    it('updates only the fields present; absent fields keep their values; new keys are inserted', async () => {
      const t = table();
      await writeAll('MERGE', stream(t), [
        [
          { id: 1, name: 'a', price: 1, active: true, meta: { v: 1 } },
          { id: 2, name: 'b', price: 2, active: false },
        ],
        [
          { id: 1, price: 10 },
          { id: 2, name: 'b2', meta: null },
          { id: 3, name: 'new' },
          { id: 1, active: false },
          { id: 2 },
        ],
      ]);
      expect(await rows(t)).toEqual([
        { id: '1', name: 'a', price: '10', active: 'false', at: null, meta: '{"v": 1}' },
        { id: '2', name: 'b2', price: '2', active: 'false', at: null, meta: null },
        { id: '3', name: 'new', price: null, active: null, at: null, meta: null },
      ]);
    });

    it('updates rows whose NOT NULL columns are absent from the record', async () => {
      await db.client.query(`CREATE TABLE dw.strict (id bigint PRIMARY KEY, name text NOT NULL, n int)`);
      await db.client.query(`INSERT INTO dw.strict VALUES (1, 'keep', 1)`);
      const [res] = await writeAll('MERGE', { name: 'strict', syncMode: 'FULL_REFRESH', primaryKey: ['id'] }, [[{ id: 1, n: 2 }, { id: 2, n: 5 }]]);
      expect(res!.written).toBe(1);
      expect(res!.rejected).toEqual([{ index: 1, error: expect.stringMatching(/23502: null value in column "name"/) }]);
      expect(await rows('strict')).toEqual([{ id: '1', name: 'keep', n: '2' }]);
    });
  });

  describe('OVERWRITE', () => {
    it('is invisible to other connections until commit, then atomically replaces the table', async () => {
      const t = table();
      await writeAll('APPEND', stream(t), [[{ id: 1, name: 'old1' }, { id: 2, name: 'old2' }]]);
      const reader = await connectTo(db.url);
      try {
        const w = await postgresDestination.openWriter(cfg, { writeMode: 'OVERWRITE', stream: stream(t), ctx });
        await w.writeBatch([{ id: 10, name: 'new10' }]);
        await w.writeBatch([{ id: 11, name: 'new11' }, { id: 12, name: 'new12' }]);
        expect((await rows(t, reader)).map((r) => r.name)).toEqual(['old1', 'old2']);
        // A reader polling during the swap sees either the whole old table or the whole new one.
        const counts = new Set<number>();
        let polling = true;
        const poll = (async () => {
          while (polling) counts.add((await reader.query(`SELECT count(*)::int AS n FROM dw.${t}`)).rows[0].n);
        })();
        await new Promise((r) => setTimeout(r, 30));
        await w.commit();
        await new Promise((r) => setTimeout(r, 30));
        polling = false;
        await poll;
        expect([...counts].every((n) => n === 2 || n === 3)).toBe(true);
        expect(counts.has(3)).toBe(true);
        expect((await rows(t, reader)).map((r) => r.name)).toEqual(['new10', 'new11', 'new12']);
        const tmp = await reader.query(`SELECT to_regclass($1) AS r`, [`dw.${tmpTableName(t)}`]);
        expect(tmp.rows[0].r).toBeNull();
        // The primary key constraint got its usual name back, and a second overwrite works.
        const con = await reader.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`, [`dw.${t}`]);
        expect(con.rows[0].conname).toBe(`${t}_pkey`);
        await writeAll('OVERWRITE', stream(t), [[{ id: 20, name: 'newer' }]]);
        expect((await rows(t, reader)).map((r) => r.name)).toEqual(['newer']);
      } finally {
        await reader.end();
      }
    });

    it('abort leaves the old table untouched and drops the temp table', async () => {
      const t = table();
      await writeAll('APPEND', stream(t), [[{ id: 1, name: 'old' }]]);
      const w = await postgresDestination.openWriter(cfg, { writeMode: 'OVERWRITE', stream: stream(t), ctx });
      await w.writeBatch([{ id: 2, name: 'new' }]);
      await w.abort();
      expect((await rows(t)).map((r) => r.name)).toEqual(['old']);
      expect((await db.client.query(`SELECT to_regclass($1) AS r`, [`dw.${tmpTableName(t)}`])).rows[0].r).toBeNull();
      await expect(w.writeBatch([{ id: 3 }])).rejects.toThrow(/after commit\/abort/);
    });

    it('keeps the existing definition with createTable=false', async () => {
      await db.client.query(`CREATE TABLE dw.handmade (id int PRIMARY KEY, name varchar(5) NOT NULL DEFAULT 'dflt', CHECK (id > 0))`);
      await db.client.query(`INSERT INTO dw.handmade VALUES (1, 'old')`);
      const [res] = await writeAll('OVERWRITE', { name: 'handmade', syncMode: 'FULL_REFRESH' }, [[{ id: 2, name: 'ok' }, { id: -1, name: 'neg' }, { id: 3, name: 'too long' }]], {
        ...cfg,
        createTable: false,
      });
      expect(res!.rejected.map((r) => r.index)).toEqual([1, 2]);
      expect(await rows('handmade')).toEqual([{ id: '2', name: 'ok' }]);
      expect((await db.client.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'dw.handmade'::regclass AND attname = 'name'`)).rows[0].t).toBe(
        'character varying(5)',
      );
    });
  });
});
