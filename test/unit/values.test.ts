/**
 * One reading of text as typed values (src/engine/drivers/kit/values.ts), and the three places
 * that read text — the csv source's column types, the mapping's casts, the SQLite destination's
 * typed columns — agreeing with it on every row of one table.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { csvSource } from '../../src/engine/drivers/file/csv.source.js';
import { TypeInference } from '../../src/engine/drivers/kit/inference.js';
import { isIsoDatetime, parseBooleanText, parseIntegerText, parseIsoMs, parseNumberText } from '../../src/engine/drivers/kit/values.js';
import { sqliteDestination } from '../../src/engine/drivers/sqlite/sqlite.destination.js';
import type { FieldType } from '../../src/engine/drivers/types.js';
import { compileMapping, validateMappingSpec, type CastType } from '../../src/engine/mapping/mapping.js';
import { testFiles } from '../helpers/files.js';

const U = undefined;
// text → [boolean, integer, number, is a date-time]
const TABLE: [string, boolean | undefined, number | undefined, number | undefined, boolean][] = [
  ['true', true, U, U, false],
  [' TRUE ', true, U, U, false],
  ['t', true, U, U, false],
  ['Yes', true, U, U, false],
  ['y', true, U, U, false],
  ['on', true, U, U, false],
  ['1', true, 1, 1, false],
  ['false', false, U, U, false],
  ['F', false, U, U, false],
  ['no', false, U, U, false],
  ['n', false, U, U, false],
  ['OFF', false, U, U, false],
  ['0', false, 0, 0, false],
  ['-0', U, 0, 0, false],
  ['42', U, 42, 42, false],
  [' +42 ', U, 42, 42, false],
  ['4.0', U, 4, 4, false],
  ['4.5', U, U, 4.5, false],
  ['.5', U, U, 0.5, false],
  ['1e3', U, U, 1000, false],
  ['9007199254740993', U, U, 9007199254740992, false],
  ['1e999', U, U, U, false],
  ['0x10', U, U, U, false],
  ['Infinity', U, U, U, false],
  ['1,000', U, U, U, false],
  ['', U, U, U, false],
  ['maybe', U, U, U, false],
  ['2024-02-29', U, U, U, true],
  ['2023-02-29', U, U, U, false],
  ['2024-02-30', U, U, U, false],
  ['2024-01-02T03:04:05Z', U, U, U, true],
  ['2024-01-02 03:04:05,123+05:30', U, U, U, true],
  ['2024-01-02T24:00:00Z', U, U, U, false],
  ['2024-01-02T03:04', U, U, U, true],
  ['02/01/2024', U, U, U, false],
];

describe('kit/values: the one reading of text', () => {
  it.each(TABLE)('%j', (text, bool, int, num, date) => {
    expect(parseBooleanText(text)).toBe(bool);
    expect(parseIntegerText(text)).toBe(int);
    expect(parseNumberText(text)).toBe(num);
    expect(isIsoDatetime(text)).toBe(date);
  });

  it('reads an offset and no offset (UTC) to the same instant as Date does for valid text', () => {
    expect(parseIsoMs('2024-01-02T03:04:05.678+02:00')).toBe(Date.parse('2024-01-02T01:04:05.678Z'));
    expect(parseIsoMs('0001-01-01')).toBe(Date.UTC(2001, 0, 1) - Date.UTC(2001, 0, 1) + new Date('0001-01-01T00:00:00Z').getTime());
  });
});

describe('every reader of text agrees with kit/values', () => {
  // A blank line is no row to a csv file.
  const CELLS = TABLE.filter(([t]) => t !== '');
  const files = testFiles('sluice-values-');
  afterAll(() => files.cleanup());

  async function csvCells(type: FieldType): Promise<unknown[]> {
    const p = path.join(files.dir, `values-${type}.csv`);
    fs.writeFileSync(p, `v\n${CELLS.map(([t]) => JSON.stringify(t)).join('\n')}\n`);
    const config = { path: p, columnTypes: { v: type } };
    const out: unknown[] = [];
    const name = (await csvSource.discover(config, files.ctx)).streams[0]!.name;
    for await (const m of csvSource.read(config, [{ name, syncMode: 'FULL_REFRESH' }], {}, { batchSize: 1000, ctx: files.ctx })) {
      if (m.type !== 'records') continue;
      const bad = new Set((m.errors ?? []).map((e) => e.index));
      m.records.forEach((r, i) => out.push(bad.has(i) ? 'BAD' : r.v));
    }
    return out;
  }

  function cast(type: CastType): unknown[] {
    const v = validateMappingSpec({ cast: { v: type }, passThrough: true });
    if (!v.ok) throw new Error(JSON.stringify(v.errors));
    const fn = compileMapping(v.spec);
    return TABLE.map(([t]) => {
      try {
        return fn({ v: t }).v;
      } catch {
        return 'BAD';
      }
    });
  }

  it('the csv source: booleans, integers, numbers, date-times', async () => {
    const expectCells = (got: unknown[], want: (row: (typeof TABLE)[number]) => unknown) => expect(got).toEqual(CELLS.map(want));
    expectCells(await csvCells('boolean'), (r) => r[1] ?? 'BAD');
    expectCells(await csvCells('integer'), (r) => r[2] ?? 'BAD');
    expectCells(await csvCells('number'), (r) => r[3] ?? 'BAD');
    expectCells(await csvCells('datetime'), (r) => (r[4] ? r[0].trim() : 'BAD'));
  });

  it("the mapping's casts", () => {
    expect(cast('bool')).toEqual(TABLE.map((r) => r[1] ?? 'BAD'));
    expect(cast('int')).toEqual(TABLE.map((r) => r[2] ?? 'BAD'));
    expect(cast('float')).toEqual(TABLE.map((r) => r[3] ?? 'BAD'));
    expect(cast('datetime').map((v) => v !== 'BAD')).toEqual(TABLE.map((r) => r[4]));
  });

  it("the SQLite destination's typed (STRICT) columns: stored as read, or the record rejected", async () => {
    const db = path.join(files.dir, 'values.db');
    const cases: [FieldType, (row: (typeof TABLE)[number]) => unknown][] = [
      ['boolean', (r) => (r[1] === undefined ? undefined : r[1] ? 1 : 0)],
      ['integer', (r) => r[2]],
      ['number', (r) => r[3]],
    ];
    for (const [type, want] of cases) {
      const w = await sqliteDestination.openWriter(
        { path: db, table: `vals_${type}` },
        { writeMode: 'APPEND', stream: { name: type, syncMode: 'FULL_REFRESH', schema: [{ name: 'v', type, nullable: true }] }, ctx: files.ctx },
      );
      const rows = TABLE.filter(([t]) => t !== '');
      const result = await w.writeBatch(rows.map(([t]) => ({ v: t })));
      await w.commit();
      const rejected = new Set(result.rejected.map((r) => r.index));
      const stored = new Database(db, { readonly: true }).prepare(`SELECT v FROM vals_${type} ORDER BY rowid`).all() as { v: unknown }[];
      expect([...rejected].sort((a, b) => a - b), type).toEqual(rows.flatMap((r, i) => (want(r) === undefined ? [i] : [])));
      expect(stored.map((r) => r.v), type).toEqual(rows.flatMap((r) => (want(r) === undefined ? [] : [want(r)])));
    }
  });
});

describe('kit/inference: one type inference', () => {
  const infer = (values: unknown[], dates = false) => {
    const t = new TypeInference({ datetimeText: dates });
    values.forEach((v) => t.add(v));
    return t.type();
  };
  const inferText = (cells: string[]) => {
    const t = new TypeInference();
    cells.forEach((c) => t.addText(c));
    return t.type();
  };
  it.each<[unknown[], FieldType]>([
    [[], 'string'],
    [[null, undefined], 'string'],
    [[1, 2], 'integer'],
    [[1, 2.5], 'number'],
    [[true, null], 'boolean'],
    [[{ a: 1 }, [1]], 'json'],
    [[{ a: 1 }, 'x'], 'json'],
    [[1, 'x'], 'string'],
    [[true, 1], 'string'],
    [['2024-01-02'], 'string'],
  ])('values %j are %s', (values, type) => expect(infer(values)).toBe(type));

  it('classes ISO text and Dates as datetime only when asked', () => {
    expect(infer(['2024-01-02', new Date()], true)).toBe('datetime');
    expect(infer(['2024-01-02', 'x'], true)).toBe('string');
  });

  it.each<[string[], FieldType]>([
    [['1', '2'], 'integer'],
    [['1', '2.5'], 'number'],
    [['007', '1'], 'string'],
    [['4.0'], 'number'],
    [['true', 'FALSE', ''], 'boolean'],
    [['y', 'n'], 'string'],
    [['2024-01-02', '2024-01-03T00:00:00Z'], 'datetime'],
    [['2024-02-30'], 'string'],
    [['', ''], 'string'],
  ])('csv cells %j are %s', (cells, type) => expect(inferText(cells)).toBe(type));
});
