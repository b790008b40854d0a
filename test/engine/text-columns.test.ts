/**
 * Numbers and booleans written into an existing TEXT column keep their JSON text form
 * (`12345`, `1.5`, `true`), in every write mode, on real SQLite files and a real PostgreSQL
 * (SLUICE_TEST_DATABASE_URL). The stream either declares the field as a number (the column's
 * type wins) or declares nothing (inference from the batch).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresDestination } from '../../src/engine/drivers/postgres/postgres.destination.js';
import { sqliteDestination } from '../../src/engine/drivers/sqlite/sqlite.destination.js';
import type { ConfiguredStream, DataRecord, FieldSchema, WriteMode } from '../../src/engine/drivers/types.js';
import { PG_URL, createTestDatabase, skipNote, type TestDatabase } from './pg-test-db.js';
import { testFiles } from '../helpers/files.js';

const tf = testFiles('sluice-textcol-');

skipNote('text columns');

const MODES: WriteMode[] = ['APPEND', 'UPSERT', 'MERGE', 'OVERWRITE'];
const RECORDS: DataRecord[] = [
  { id: 1, v: 12345 },
  { id: 2, v: 1.5 },
  { id: 3, v: true },
  { id: 4, v: false },
  { id: 5, v: -0.25 },
  { id: 6, v: 1e21 },
  { id: 7, v: 'text' },
];
const EXPECTED = ['12345', '1.5', 'true', 'false', '-0.25', '1e+21', 'text'];
const SCHEMAS: [string, FieldSchema[] | null][] = [
  ['no stream schema', null],
  ['v declared as a number', [{ name: 'id', type: 'integer', nullable: false }, { name: 'v', type: 'number', nullable: true }]],
];

function stream(name: string, schema: FieldSchema[] | null): ConfiguredStream {
  return { name, syncMode: 'FULL_REFRESH', schema, primaryKey: ['id'] };
}

describe('SQLite destination: existing TEXT column', () => {
  let dir: string;
  beforeAll(() => {
    dir = tf.dir;
  });
  afterAll(() => tf.cleanup());

  for (const mode of MODES) {
    for (const [label, schema] of SCHEMAS) {
      // OVERWRITE with a declared schema rebuilds the table from that schema: not an existing TEXT column.
      if (mode === 'OVERWRITE' && schema) continue;
      it(`${mode}, ${label}`, async () => {
        const file = path.join(dir, `${mode}-${schema ? 's' : 'n'}.db`);
        const db = new Database(file);
        db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
        db.close();
        const w = await sqliteDestination.openWriter({ path: file, table: 't' }, { writeMode: mode, stream: stream('t', schema), ctx: tf.ctx });
        const res = await w.writeBatch(RECORDS);
        await w.commit();
        expect(res.rejected).toEqual([]);
        const check = new Database(file, { readonly: true });
        const rows = check.prepare('SELECT v, typeof(v) AS t FROM t ORDER BY id').all() as { v: string; t: string }[];
        check.close();
        expect(rows.map((r) => r.v)).toEqual(EXPECTED);
        expect(new Set(rows.map((r) => r.t))).toEqual(new Set(['text']));
      });
    }
  }
});

describe.skipIf(!PG_URL)('PostgreSQL destination: existing text column', () => {
  let db: TestDatabase;
  let seq = 0;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  for (const mode of MODES) {
    for (const [label, schema] of SCHEMAS) {
      if (mode === 'OVERWRITE' && schema) continue;
      it(`${mode}, ${label}`, async () => {
        const table = `t${++seq}`;
        await db.client.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, v text)`);
        const w = await postgresDestination.openWriter({ connectionString: db.url, schema: 'public', table }, { writeMode: mode, stream: stream(table, schema), ctx: tf.ctx });
        // Twice for the keyed modes, so the update path (not only the insert) is covered.
        const res = await w.writeBatch(RECORDS);
        if (mode === 'UPSERT' || mode === 'MERGE') expect((await w.writeBatch(RECORDS)).rejected).toEqual([]);
        await w.commit();
        expect(res.rejected).toEqual([]);
        const rows = await db.client.query<{ v: string }>(`SELECT v FROM ${table} ORDER BY id`);
        expect(rows.rows.map((r) => r.v)).toEqual(EXPECTED);
      });
    }
  }
});
