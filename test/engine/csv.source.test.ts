import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { csvSource, type CsvSourceConfig } from '../../src/engine/drivers/file/csv.source.js';
import type { ConfiguredStream, DataRecord, SourceMessage, StreamStates } from '../../src/engine/drivers/types.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let dir: string;
let files: TestFiles;
let ctx: TestFiles['ctx'];

beforeAll(() => {
  files = testFiles('sluice-csv-');
  ctx = files.ctx;
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  dir = path.join(files.dir, 'work');
  fs.mkdirSync(dir);
});

afterAll(() => {
  files.cleanup();
});

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function collect(
  config: CsvSourceConfig,
  opts: { streams?: ConfiguredStream[]; state?: StreamStates; batchSize?: number; signal?: AbortSignal } = {},
): Promise<SourceMessage[]> {
  const catalog = await csvSource.discover(config, ctx);
  const name = catalog.streams[0]!.name;
  const streams = opts.streams ?? [{ name, syncMode: 'FULL_REFRESH' }];
  const out: SourceMessage[] = [];
  for await (const m of csvSource.read(config, streams, opts.state ?? {}, { batchSize: opts.batchSize ?? 1000, signal: opts.signal, ctx })) {
    out.push(m);
  }
  return out;
}

function records(messages: SourceMessage[]): DataRecord[] {
  return messages.flatMap((m) => (m.type === 'records' ? m.records : []));
}

const PEOPLE = 'id,name,age,score,active,born\n1,Ann,31,1.5,true,1990-01-02\n2,Bob,,2,false,1985-12-31T10:00:00Z\n3,Cid,45,3.25,TRUE,2001-07-04\n';

describe('csv source: check', () => {
  it('accepts a readable file with a header', async () => {
    const p = file('people.csv', PEOPLE);
    const res = await csvSource.check({ path: p }, ctx);
    expect(res.ok).toBe(true);
    expect(res.message).toContain('6 column(s)');
  });

  it('reports a missing file', async () => {
    const res = await csvSource.check({ path: path.join(dir, 'nope.csv') }, ctx);
    expect(res).toEqual({ ok: false, message: `File not found: ${path.join(dir, 'nope.csv')}` });
  });

  it('reports a directory', async () => {
    const res = await csvSource.check({ path: dir }, ctx);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('is a directory');
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable file', async () => {
    const p = file('secret.csv', PEOPLE);
    fs.chmodSync(p, 0o000);
    const res = await csvSource.check({ path: p }, ctx);
    fs.chmodSync(p, 0o644);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('not readable');
  });

  it('reports an empty file when a header is expected, accepts it otherwise', async () => {
    const p = file('empty.csv', '');
    const withHeader = await csvSource.check({ path: p }, ctx);
    expect(withHeader.ok).toBe(false);
    expect(withHeader.message).toContain('header row was expected');
    expect((await csvSource.check({ path: p, header: false }, ctx)).ok).toBe(true);
  });

  it('reports a first line that never ends (unterminated quote)', async () => {
    const p = file('badquote.csv', `"a,b\n${'x'.repeat(2 * 1024 * 1024)}\n`);
    const res = await csvSource.check({ path: p }, ctx);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('Cannot parse the first line');
  });

  it('reports columnTypes and uniqueIdColumn naming unknown columns', async () => {
    const p = file('people2.csv', PEOPLE);
    const a = await csvSource.check({ path: p, columnTypes: { salary: 'number' } }, ctx);
    expect(a.ok).toBe(false);
    expect(a.message).toContain('salary');
    const b = await csvSource.check({ path: p, uniqueIdColumn: 'uuid' }, ctx);
    expect(b.ok).toBe(false);
    expect(b.message).toContain('uuid');
  });

  it('reports an invalid delimiter/quote combination without throwing', async () => {
    const p = file('people3.csv', PEOPLE);
    const res = await csvSource.check({ path: p, delimiter: '"' }, ctx);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('delimiter');
  });

  it('hints at the delimiter when only one column is found', async () => {
    const p = file('semi.csv', 'a;b;c\n1;2;3\n');
    const res = await csvSource.check({ path: p }, ctx);
    expect(res.ok).toBe(true);
    expect(res.message).toContain('";"');
  });
});

describe('csv source: discover', () => {
  it('infers types and nullability from the header and sample', async () => {
    const p = file('people4.csv', PEOPLE);
    const catalog = await csvSource.discover({ path: p, uniqueIdColumn: 'id' }, ctx);
    expect(catalog.streams).toHaveLength(1);
    const s = catalog.streams[0]!;
    expect(s.name).toBe('people4');
    expect(s.supportedSyncModes).toEqual(['FULL_REFRESH', 'INCREMENTAL']);
    expect(s.sourceDefinedPrimaryKey).toEqual(['id']);
    expect(s.fields).toEqual([
      { name: 'id', type: 'integer', nullable: false },
      { name: 'name', type: 'string', nullable: false },
      { name: 'age', type: 'integer', nullable: true },
      { name: 'score', type: 'number', nullable: false },
      { name: 'active', type: 'boolean', nullable: false },
      { name: 'born', type: 'datetime', nullable: false },
    ]);
  });

  it('does not infer integer for zero-padded codes', async () => {
    const p = file('zips.csv', 'zip\n01234\n90210\n');
    const s = (await csvSource.discover({ path: p }, ctx)).streams[0]!;
    expect(s.fields).toEqual([{ name: 'zip', type: 'string', nullable: false }]);
  });

  it('uses configured columnTypes over inference', async () => {
    const p = file('people5.csv', PEOPLE);
    const s = (await csvSource.discover({ path: p, columnTypes: { id: 'string', score: 'json' } }, ctx)).streams[0]!;
    expect(s.fields.find((f) => f.name === 'id')!.type).toBe('string');
    expect(s.fields.find((f) => f.name === 'score')!.type).toBe('json');
    expect(s.fields.find((f) => f.name === 'age')!.type).toBe('integer');
  });

  it('names columns column_N without a header', async () => {
    const p = file('nohead.csv', '1,a\n2,b,extra\n');
    const s = (await csvSource.discover({ path: p, header: false }, ctx)).streams[0]!;
    expect(s.fields).toEqual([
      { name: 'column_1', type: 'integer', nullable: false },
      { name: 'column_2', type: 'string', nullable: false },
      { name: 'column_3', type: 'string', nullable: true },
    ]);
  });

  it('sanitizes the stream name and honours streamName', async () => {
    const p = file('my-file.v2.csv', 'a\n1\n');
    expect((await csvSource.discover({ path: p }, ctx)).streams[0]!.name).toBe('my_file_v2');
    expect((await csvSource.discover({ path: p, streamName: 'sales 2024' }, ctx)).streams[0]!.name).toBe('sales_2024');
  });

  it('renames duplicate and blank header names', async () => {
    const p = file('dups.csv', 'a,a,,b\n1,2,3,4\n');
    const s = (await csvSource.discover({ path: p }, ctx)).streams[0]!;
    expect(s.fields.map((f) => f.name)).toEqual(['a', 'a_1', 'column_3', 'b']);
  });
});

describe('csv source: read', () => {
  const ten = 'n,v\n' + Array.from({ length: 10 }, (_, i) => `${i + 1},v${i + 1}`).join('\n') + '\n';

  it('yields batches of batchSize followed by states counting rows', async () => {
    const p = file('ten.csv', ten);
    const msgs = await collect({ path: p }, { batchSize: 3 });
    expect(msgs.map((m) => (m.type === 'records' ? `r${m.records.length}` : m.type === 'state' ? `s${(m.state as { row: number }).row}` : m.type))).toEqual([
      'r3', 's3', 'r3', 's6', 'r3', 's9', 'r1', 's10',
    ]);
    expect(records(msgs)[0]).toEqual({ n: 1, v: 'v1' });
    expect(msgs.every((m) => m.type !== 'state' || m.stream === 'ten')).toBe(true);
    const bytes = msgs.reduce((sum, m) => sum + (m.type === 'records' ? m.bytes : 0), 0);
    expect(bytes).toBe(Buffer.byteLength(ten) - 'n,v\n'.length);
  });

  it('resumes from a state, skipping exactly N rows', async () => {
    const p = file('ten2.csv', ten);
    const msgs = await collect({ path: p }, { batchSize: 2, state: { ten2: { row: 7 } } });
    expect(records(msgs).map((r) => r.n)).toEqual([8, 9, 10]);
    const states = msgs.filter((m) => m.type === 'state').map((m) => (m as { state: unknown }).state);
    expect(states).toEqual([{ row: 9 }, { row: 10 }]);
  });

  it('reads only rows appended since the last state (incremental)', async () => {
    const p = file('log.csv', 'id\n1\n2\n');
    const first = await collect({ path: p }, { streams: [{ name: 'log', syncMode: 'INCREMENTAL' }] });
    const last = first.filter((m) => m.type === 'state').at(-1) as unknown as { state: { row: number } };
    expect(last.state).toEqual({ row: 2 });
    fs.appendFileSync(p, '3\n4\n');
    const second = await collect({ path: p }, { streams: [{ name: 'log', syncMode: 'INCREMENTAL' }], state: { log: last.state } });
    expect(records(second)).toEqual([{ id: 3 }, { id: 4 }]);
    const third = await collect({ path: p }, { state: { log: { row: 4 } } });
    expect(records(third)).toEqual([]);
    expect(third.at(-1)).toEqual({ type: 'state', stream: 'log', state: { row: 4 } });
  });

  it('rejects a malformed state', async () => {
    const p = file('ten3.csv', ten);
    await expect(collect({ path: p }, { state: { ten3: { row: -1 } } })).rejects.toThrow(/invalid state/);
  });

  it('emits only the selected fields, null for empty cells', async () => {
    const p = file('people6.csv', PEOPLE);
    const msgs = await collect({ path: p }, { streams: [{ name: 'people6', syncMode: 'FULL_REFRESH', fields: ['age', 'id'] }] });
    expect(records(msgs)).toEqual([
      { age: 31, id: 1 },
      { age: null, id: 2 },
      { age: 45, id: 3 },
    ]);
  });

  it('converts columnTypes and reports failures in errors without dropping records', async () => {
    const p = file('typed.csv', 'id,price,ok,at,meta\n1,9.5,yes,2024-01-01,"{""a"":1}"\nx,abc,maybe,2024-13-45,{bad\n3,,0,2024-02-03T04:05:06Z,[1]\n');
    const msgs = await collect(
      { path: p, columnTypes: { id: 'integer', price: 'number', ok: 'boolean', at: 'datetime', meta: 'json' } },
      { batchSize: 10 },
    );
    const batch = msgs.find((m) => m.type === 'records')!;
    if (batch.type !== 'records') throw new Error('unreachable');
    expect(batch.records).toEqual([
      { id: 1, price: 9.5, ok: true, at: '2024-01-01', meta: { a: 1 } },
      { id: 'x', price: 'abc', ok: 'maybe', at: '2024-13-45', meta: '{bad' },
      { id: 3, price: null, ok: false, at: '2024-02-03T04:05:06Z', meta: [1] },
    ]);
    expect(batch.errors).toHaveLength(1);
    expect(batch.errors![0]!.index).toBe(1);
    for (const col of ['id', 'price', 'ok', 'at', 'meta']) expect(batch.errors![0]!.error).toContain(`column "${col}"`);
  });

  it('omits errors when every value converts', async () => {
    const p = file('typed2.csv', 'id\n1\n2\n');
    const msgs = await collect({ path: p, columnTypes: { id: 'integer' } });
    const batch = msgs.find((m) => m.type === 'records')!;
    expect('errors' in batch).toBe(false);
  });

  it('reads a column discovered as integer as integers', async () => {
    const p = file('ints.csv', 'id,name,price\n1,Ann,1.5\n2,Bob,2\n');
    const fields = (await csvSource.discover({ path: p }, ctx)).streams[0]!.fields;
    expect(fields.map((f) => f.type)).toEqual(['integer', 'string', 'number']);
    const msgs = await collect({ path: p });
    expect(records(msgs)).toEqual([
      { id: 1, name: 'Ann', price: 1.5 },
      { id: 2, name: 'Bob', price: 2 },
    ]);
    expect(msgs.some((m) => m.type === 'records' && m.errors)).toBe(false);
  });

  // 1200 rows of integer ids; data row 1100 (after the 1000 sampled rows) is not an integer.
  const late = 'id,v\n' + Array.from({ length: 1200 }, (_, i) => `${i === 1099 ? 'x1100' : i + 1},${i}`).join('\n') + '\n';
  const lateError = 'column "id": "x1100" is not a valid integer (type inferred from the first 1000 rows; set columnTypes to read it otherwise)';

  it('reports a later value that does not fit the inferred type as a record error, keeping the raw string', async () => {
    const p = file('late.csv', late);
    expect((await csvSource.discover({ path: p }, ctx)).streams[0]!.fields.map((f) => f.type)).toEqual(['integer', 'integer']);
    const msgs = await collect({ path: p }, { batchSize: 2000 });
    const batches = msgs.filter((m) => m.type === 'records');
    expect(batches).toHaveLength(1);
    const batch = batches[0]!;
    if (batch.type !== 'records') throw new Error('unreachable');
    expect(batch.records).toHaveLength(1200);
    expect(batch.records[1099]).toEqual({ id: 'x1100', v: 1099 });
    expect(batch.records[1098]).toEqual({ id: 1099, v: 1098 });
    expect(batch.records[1100]).toEqual({ id: 1101, v: 1100 });
    expect(batch.errors).toEqual([{ index: 1099, error: lateError }]);
  });

  it('keeps strings for a column set to string in columnTypes', async () => {
    const p = file('ids.csv', 'id,age\n1,31\n2,\n');
    const msgs = await collect({ path: p, columnTypes: { id: 'string' } });
    expect(records(msgs)).toEqual([
      { id: '1', age: 31 },
      { id: '2', age: null },
    ]);
    expect(msgs.some((m) => m.type === 'records' && m.errors)).toBe(false);
  });

  it('infers from the first rows when resuming from a state, with the same types', async () => {
    const p = file('late2.csv', late);
    const all = records(await collect({ path: p }, { batchSize: 2000 }));
    const msgs = await collect({ path: p }, { batchSize: 2000, state: { late2: { row: 1050 } } });
    expect(records(msgs)).toEqual(all.slice(1050));
    expect(records(msgs)[0]).toEqual({ id: 1051, v: 1050 });
    const batch = msgs.find((m) => m.type === 'records')!;
    if (batch.type !== 'records') throw new Error('unreachable');
    expect(batch.errors).toEqual([{ index: 1099 - 1050, error: lateError }]);
  });

  it('keeps integers too long for a number as text, so no two ids collapse into one', async () => {
    const p = file('bigids.csv', 'id,n\n12345678901234567890,1\n12345678901234567891,2\n');
    expect((await csvSource.discover({ path: p }, ctx)).streams[0]!.fields.map((f) => f.type)).toEqual(['string', 'integer']);
    expect(records(await collect({ path: p }))).toEqual([
      { id: '12345678901234567890', n: 1 },
      { id: '12345678901234567891', n: 2 },
    ]);
  });

  it('reads a later value of an inferred column only as inference would class it: 007 and yes are errors, not 7 and true', async () => {
    const rows = Array.from({ length: 1100 }, (_, i) => (i === 1050 ? '007,yes' : `${i + 1},${i % 2 ? 'true' : 'false'}`));
    const p = file('strict.csv', `id,ok\n${rows.join('\n')}\n`);
    const msgs = await collect({ path: p }, { batchSize: 2000 });
    const batch = msgs.find((m) => m.type === 'records')!;
    if (batch.type !== 'records') throw new Error('unreachable');
    expect(batch.records[1050]).toEqual({ id: '007', ok: 'yes' });
    expect(batch.records[1051]).toEqual({ id: 1052, ok: true });
    expect(batch.errors).toEqual([
      {
        index: 1050,
        error:
          'column "id": "007" is not a valid integer (type inferred from the first 1000 rows; set columnTypes to read it otherwise); ' +
          'column "ok": "yes" is not a valid boolean (type inferred from the first 1000 rows; set columnTypes to read it otherwise)',
      },
    ]);
    // Declared in columnTypes, the same cells read as the type's text forms allow.
    const declared = await collect({ path: p, columnTypes: { id: 'integer', ok: 'boolean' } }, { batchSize: 2000 });
    expect(records(declared)[1050]).toEqual({ id: 7, ok: true });
  });

  it('types columns whose names are Object.prototype keys', async () => {
    const p = file('proto.csv', 'constructor,toString\n1,a\n2,b\n');
    const fields = (await csvSource.discover({ path: p }, ctx)).streams[0]!.fields;
    expect(fields.map((f) => f.type)).toEqual(['integer', 'string']);
    expect(records(await collect({ path: p }))).toEqual([
      { constructor: 1, toString: 'a' },
      { constructor: 2, toString: 'b' },
    ]);
  });

  it('handles quoted fields with embedded delimiters, quotes and newlines, CRLF and a BOM', async () => {
    const content = '\uFEFFid,text\r\n1,"a, b"\r\n2,"line1\r\nline2"\r\n3,"say ""hi"""\r\n';
    const p = file('quoted.csv', content);
    const msgs = await collect({ path: p });
    expect(records(msgs)).toEqual([
      { id: 1, text: 'a, b' },
      { id: 2, text: 'line1\r\nline2' },
      { id: 3, text: 'say "hi"' },
    ]);
  });

  it('reads tab- and semicolon-delimited files and a custom quote character', async () => {
    const tsv = file('data.tsv', 'a\tb\n1\t"x\ty"\n');
    expect(records(await collect({ path: tsv, delimiter: '\t' }))).toEqual([{ a: 1, b: 'x\ty' }]);
    expect(records(await collect({ path: tsv, delimiter: '\\t' }))).toEqual([{ a: 1, b: 'x\ty' }]);
    const semi = file('semi2.csv', "a;b\n'1;2';3\n");
    expect(records(await collect({ path: semi, delimiter: ';', quoteChar: "'" }))).toEqual([{ a: '1;2', b: 3 }]);
  });

  it('reads without a header, skipping blank lines and padding short rows', async () => {
    const p = file('nohead2.csv', '1,a\n\n2\n3,c\n');
    expect(records(await collect({ path: p, header: false }))).toEqual([
      { column_1: 1, column_2: 'a' },
      { column_1: 2, column_2: null },
      { column_1: 3, column_2: 'c' },
    ]);
  });

  it('selects positional columns beyond the first row without a header', async () => {
    const p = file('ragged.csv', '1,2\n1,2,3,4,5\n');
    const msgs = await collect({ path: p, header: false }, { streams: [{ name: 'ragged', syncMode: 'FULL_REFRESH', fields: ['column_5', 'column_1'] }] });
    expect(records(msgs)).toEqual([
      { column_5: null, column_1: 1 },
      { column_5: 5, column_1: 1 },
    ]);
  });

  it('pauses the file while the consumer holds a batch, and closes it when the consumer stops', async () => {
    const p = file('large.csv', 'a,b,c\n' + 'aaaaaaaaaa,bbbbbbbbbb,cccccccccc\n'.repeat(600_000));
    const size = fs.statSync(p).size;
    const spy = vi.spyOn(fs, 'createReadStream');
    try {
      const iter = csvSource.read({ path: p }, [{ name: 'large', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 100, ctx })[Symbol.asyncIterator]();
      const first = await iter.next();
      expect(first.value).toMatchObject({ type: 'records' });
      // The last stream opened is the read's (the first one samples the first rows for the types).
      const stream = spy.mock.results.at(-1)!.value as fs.ReadStream;
      await new Promise((r) => setTimeout(r, 200));
      // Only a few read chunks are buffered ahead while the consumer is idle.
      expect(stream.bytesRead).toBeLessThan(8 * 1024 * 1024);
      expect(stream.bytesRead).toBeLessThan(size / 2);
      await iter.return?.(undefined);
      expect(stream.destroyed).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('parses rows split across read chunks (multi-MB file with multiline quoted fields)', async () => {
    const rows: string[] = ['id,body,n'];
    const n = 30_000;
    for (let i = 0; i < n; i++) rows.push(`${i},"text ${i}, with ""quotes""\nand a newline ${'z'.repeat(i % 97)}",${i * 2}`);
    const p = file('big.csv', rows.join('\n') + '\n');
    expect(fs.statSync(p).size).toBeGreaterThan(2.5 * 1024 * 1024);
    const msgs = await collect({ path: p, columnTypes: { id: 'integer', n: 'integer' } }, { batchSize: 4096 });
    const recs = records(msgs);
    expect(recs).toHaveLength(n);
    for (const i of [0, 1, 4095, 4096, 12_345, n - 1]) {
      expect(recs[i]).toEqual({ id: i, body: `text ${i}, with "quotes"\nand a newline ${'z'.repeat(i % 97)}`, n: i * 2 });
    }
    expect(msgs.some((m) => m.type === 'records' && m.errors)).toBe(false);
    // Resume in the middle gives exactly the remaining rows (typed as inferred from the first rows).
    const resumed = records(await collect({ path: p }, { batchSize: 10_000, state: { big: { row: 29_990 } } }));
    expect(resumed.map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => 29_990 + i));
  });

  it('stops and throws when the signal is aborted', async () => {
    const p = file('many.csv', 'a,b\n' + '1,2\n'.repeat(200_000));
    const ac = new AbortController();
    let seen = 0;
    const iter = csvSource.read({ path: p }, [{ name: 'many', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 100, signal: ac.signal, ctx });
    await expect(
      (async () => {
        for await (const m of iter) {
          if (m.type === 'records') {
            seen += m.records.length;
            if (seen >= 300) ac.abort();
          }
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBe(300);

    const pre = new AbortController();
    pre.abort();
    const it2 = csvSource.read({ path: p }, [{ name: 'many', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 100, signal: pre.signal, ctx });
    await expect(it2[Symbol.asyncIterator]().next()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('ignores streams it does not know, with a warning', async () => {
    const p = file('ten4.csv', ten);
    const msgs = await collect({ path: p }, { streams: [{ name: 'other', syncMode: 'FULL_REFRESH' }] });
    expect(msgs).toEqual([{ type: 'log', level: 'warn', message: expect.stringContaining('"other"') }]);
  });
});
