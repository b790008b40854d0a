import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileDestination, type FileDestinationConfig } from '../../src/engine/drivers/file/file.destination.js';
import { DriverError, type ConfiguredStream, type DataRecord } from '../../src/engine/drivers/types.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let root: string;
let files: TestFiles;
let ctx: TestFiles['ctx'];
let seq = 0;
beforeAll(() => {
  files = testFiles('sluice-file-');
  ctx = files.ctx;
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  root = path.join(files.dir, 'work');
  fs.mkdirSync(root);
});
afterAll(() => {
  files.cleanup();
});

function freshDir(): string {
  const d = path.join(root, `d${++seq}`);
  fs.mkdirSync(d);
  return d;
}

const stream = (name = 'orders', extra: Partial<ConfiguredStream> = {}): ConfiguredStream => ({ name, syncMode: 'FULL_REFRESH', ...extra });

async function write(config: FileDestinationConfig, batches: DataRecord[][], opts: { mode?: 'APPEND' | 'OVERWRITE'; stream?: ConfiguredStream } = {}) {
  const w = await fileDestination.openWriter(config, { writeMode: opts.mode ?? 'APPEND', stream: opts.stream ?? stream(), ctx });
  const results = [];
  for (const b of batches) results.push(await w.writeBatch(b));
  await w.commit();
  return results;
}

const jsonl = (file: string): unknown[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

const csv = (file: string): string[][] => Papa.parse<string[]>(fs.readFileSync(file, 'utf8').replace(/\r\n$/, ''), { newline: '\r\n' }).data;

describe('file destination: jsonl', () => {
  it('appends batches durably and continues across writers; terminates a torn line', async () => {
    const d = freshDir();
    const file = path.join(d, 'out.jsonl');
    const [r] = await write({ path: file }, [[{ a: 1 }, { a: 2, s: 'x\ny' }]]);
    expect(r).toEqual({ written: 2, bytes: fs.statSync(file).size, rejected: [] });
    fs.appendFileSync(file, '{"torn":');
    await write({ path: file, fsync: false }, [[{ a: 3 }]]);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a":1}\n{"a":2,"s":"x\\ny"}\n{"torn":\n{"a":3}\n');
  });

  it('rejects records that cannot be serialized, keeps the rest', async () => {
    const d = freshDir();
    const file = path.join(d, 'x.jsonl');
    const [r] = await write({ path: file }, [[{ a: 1 }, { b: 2n } as unknown as DataRecord, { c: 3 }]]);
    expect(r!.written).toBe(2);
    expect(r!.rejected).toHaveLength(1);
    expect(r!.rejected[0]!.index).toBe(1);
    expect(jsonl(file)).toEqual([{ a: 1 }, { c: 3 }]);
  });
});

describe('file destination: csv', () => {
  it('writes RFC 4180 CSV with the schema header, quoting and JSON-encoded nested values', async () => {
    const d = freshDir();
    const file = path.join(d, 'orders.csv');
    const schema = [
      { name: 'id', type: 'integer' as const, nullable: false },
      { name: 'note', type: 'string' as const, nullable: true },
      { name: 'meta', type: 'json' as const, nullable: true },
      { name: 'ok', type: 'boolean' as const, nullable: true },
      { name: 'at', type: 'datetime' as const, nullable: true },
    ];
    await write({ path: file }, [
      [
        { id: 1, note: 'plain', meta: { a: [1, 2] }, ok: true, at: new Date('2024-05-06T07:08:09Z') },
        { id: 2, note: 'comma, "quote"\nnewline', meta: null, ok: false },
        { id: 3, note: '', meta: ['x,y'] },
      ],
    ], { stream: stream('orders', { schema }) });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toBe(
      'id,note,meta,ok,at\r\n' +
        '1,plain,"{""a"":[1,2]}",true,2024-05-06T07:08:09.000Z\r\n' +
        '2,"comma, ""quote""\nnewline",,false,\r\n' +
        '3,"","[""x,y""]",,\r\n',
    );
    expect(csv(file)).toEqual([
      ['id', 'note', 'meta', 'ok', 'at'],
      ['1', 'plain', '{"a":[1,2]}', 'true', '2024-05-06T07:08:09.000Z'],
      ['2', 'comma, "quote"\nnewline', '', 'false', ''],
      ['3', '', '["x,y"]', '', ''],
    ]);
  });

  it('without a schema takes the first batch keys; rejects unknown fields; appends under the existing header', async () => {
    const d = freshDir();
    const file = path.join(d, 'people.csv');
    const [r1] = await write({ path: file }, [[{ b: 1, a: 2 }, { a: 3, c: 4 }]]);
    expect(r1!.rejected).toEqual([]);
    const [r2] = await write({ path: file }, [[{ c: 5, b: 6 }, { zzz: 1 }]]);
    expect(r2!.written).toBe(1);
    expect(r2!.rejected[0]!.error).toContain('field "zzz" is not a column');
    expect(csv(file)).toEqual([
      ['b', 'a', 'c'],
      ['1', '2', ''],
      ['', '3', '4'],
      ['6', '', '5'],
    ]);
  });
});

describe('file destination: patterns and rotation', () => {
  it('rotates numbered files below rotateBytes; APPEND continues the last file', async () => {
    const d = freshDir();
    const cfg: FileDestinationConfig = { path: d, filePattern: '{stream}-{n}.jsonl', rotateBytes: 100 };
    const recs = Array.from({ length: 20 }, (_, i) => ({ i, pad: 'xxxxxxxxxx' }));
    await write(cfg, [recs.slice(0, 7), recs.slice(7, 15)]);
    await write(cfg, [recs.slice(15)]);
    const files = fs.readdirSync(d).sort((a, b) => Number(/-(\d+)/.exec(a)![1]) - Number(/-(\d+)/.exec(b)![1]));
    expect(files.length).toBeGreaterThan(3);
    expect(files.every((f) => /^orders-\d+\.jsonl$/.test(f))).toBe(true);
    for (const f of files) expect(fs.statSync(path.join(d, f)).size).toBeLessThanOrEqual(100);
    expect(files.flatMap((f) => jsonl(path.join(d, f)))).toEqual(recs);
  });

  it('rotates CSV files with a header in each; without a pattern names files <name>-<n>.csv', async () => {
    const d = freshDir();
    const recs = Array.from({ length: 10 }, (_, i) => ({ id: i, v: 'vvvvvvvvvvvvvvvvvvvv' }));
    await write({ path: path.join(d, 'data.csv'), rotateBytes: 80 }, [recs]);
    const files = fs.readdirSync(d).sort();
    expect(files[0]).toBe('data-1.csv');
    const rows = files
      .sort((a, b) => Number(/-(\d+)/.exec(a)![1]) - Number(/-(\d+)/.exec(b)![1]))
      .flatMap((f) => {
        const [header, ...body] = csv(path.join(d, f));
        expect(header).toEqual(['id', 'v']);
        return body;
      });
    expect(rows.map((r) => Number(r[0]))).toEqual(recs.map((r) => r.id));
  });

  it('keeps streams apart with {stream}; refuses two streams writing the same file', async () => {
    const d = freshDir();
    const cfg: FileDestinationConfig = { path: d, filePattern: '{stream}.jsonl' };
    const a = await fileDestination.openWriter(cfg, { writeMode: 'APPEND', stream: stream('a'), ctx });
    const b = await fileDestination.openWriter(cfg, { writeMode: 'APPEND', stream: stream('b', { destinationName: 'bee' }), ctx });
    await a.writeBatch([{ s: 'a' }]);
    await b.writeBatch([{ s: 'b' }]);
    await a.commit();
    await b.commit();
    expect(fs.readdirSync(d).sort()).toEqual(['a.jsonl', 'bee.jsonl']);
    const shared = { path: path.join(d, 'all.jsonl') };
    const w1 = await fileDestination.openWriter(shared, { writeMode: 'APPEND', stream: stream('x'), ctx });
    await expect(fileDestination.openWriter(shared, { writeMode: 'APPEND', stream: stream('y'), ctx })).rejects.toThrow(/add \{stream\} to filePattern/);
    await w1.abort();
    const w2 = await fileDestination.openWriter(shared, { writeMode: 'APPEND', stream: stream('y'), ctx });
    await w2.commit();
  });

  it('validates its config', async () => {
    await expect(fileDestination.openWriter({ path: freshDir(), filePattern: '{stream}.jsonl', rotateBytes: 10 }, { writeMode: 'APPEND', stream: stream(), ctx })).rejects.toThrow(/needs \{n\}/);
    await expect(fileDestination.openWriter({ path: '/tmp/x.jsonl' }, { writeMode: 'UPSERT', stream: stream(), ctx })).rejects.toThrow(DriverError);
    const d = freshDir();
    expect(await fileDestination.check({ path: d, filePattern: '{stream}-{n}.csv', rotateBytes: 1000 }, ctx)).toEqual({
      ok: true,
      message: `${d} is writable; csv files like orders-1.csv, rotated after 1000 bytes`,
    });
    expect((await fileDestination.check({ path: path.join(d, 'missing', 'x.jsonl') }, ctx)).message).toContain('Directory does not exist');
  });
});

describe('file destination: overwrite', () => {
  it('is invisible until commit, then replaces the files and removes stale numbered ones', async () => {
    const d = freshDir();
    const cfg: FileDestinationConfig = { path: d, filePattern: '{stream}-{n}.jsonl', rotateBytes: 60 };
    await write(cfg, [Array.from({ length: 12 }, (_, i) => ({ old: i }))]);
    const before = fs.readdirSync(d).length;
    expect(before).toBe(3);
    fs.writeFileSync(path.join(d, 'other-1.jsonl'), '{"keep":true}\n');
    const w = await fileDestination.openWriter(cfg, { writeMode: 'OVERWRITE', stream: stream(), ctx });
    await w.writeBatch([{ n: 1 }, { n: 2 }]);
    expect(jsonl(path.join(d, 'orders-1.jsonl'))[0]).toEqual({ old: 0 });
    expect(fs.existsSync(path.join(d, 'orders-1.jsonl.sluice-tmp'))).toBe(true);
    await w.commit();
    expect(fs.readdirSync(d).sort()).toEqual(['orders-1.jsonl', 'other-1.jsonl']);
    expect(jsonl(path.join(d, 'orders-1.jsonl'))).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('abort leaves the old files and removes the temporary ones', async () => {
    const d = freshDir();
    const file = path.join(d, 'out.csv');
    fs.writeFileSync(file, 'a\r\n1\r\n');
    const w = await fileDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream: stream(), ctx });
    await w.writeBatch([{ a: 2 }]);
    await w.abort();
    expect(fs.readFileSync(file, 'utf8')).toBe('a\r\n1\r\n');
    expect(fs.readdirSync(d)).toEqual(['out.csv']);
  });

  it('an empty OVERWRITE still writes the CSV header when the schema is known', async () => {
    const d = freshDir();
    const file = path.join(d, 'empty.csv');
    fs.writeFileSync(file, 'old\r\n1\r\n');
    const w = await fileDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream: stream('s', { schema: [{ name: 'x', type: 'string', nullable: true }] }), ctx });
    await w.commit();
    expect(fs.readFileSync(file, 'utf8')).toBe('x\r\n');
  });
});
