import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonlDestination } from '../../src/engine/drivers/file/jsonl.destination.js';
import { DriverError, type ConfiguredStream } from '../../src/engine/drivers/types.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let dir: string;
let files: TestFiles;
let ctx: TestFiles['ctx'];
let seq = 0;

beforeAll(() => {
  files = testFiles('sluice-jsonl-');
  ctx = files.ctx;
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  dir = path.join(files.dir, 'work');
  fs.mkdirSync(dir);
});

afterAll(() => {
  files.cleanup();
});

const stream: ConfiguredStream = { name: 'events', syncMode: 'FULL_REFRESH' };

function out(): string {
  return path.join(dir, `out${++seq}.jsonl`);
}

function lines(file: string): unknown[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
}

describe('jsonl destination: writing', () => {
  it('APPEND writes one JSON object per line and appends across writers', async () => {
    const file = out();
    const w1 = await jsonlDestination.openWriter({ path: file }, { writeMode: 'APPEND', stream, ctx });
    const r1 = await w1.writeBatch([{ a: 1, s: 'x\ny' }, { a: 2, d: new Date('2024-01-01T00:00:00Z') }]);
    expect(r1).toEqual({ written: 2, bytes: fs.statSync(file).size, rejected: [] });
    await w1.commit();
    const w2 = await jsonlDestination.openWriter({ path: file, fsync: false }, { writeMode: 'APPEND', stream, ctx });
    await w2.writeBatch([{ a: 3 }]);
    await w2.commit();
    expect(lines(file)).toEqual([{ a: 1, s: 'x\ny' }, { a: 2, d: '2024-01-01T00:00:00.000Z' }, { a: 3 }]);
  });

  it('APPEND terminates a torn last line before appending', async () => {
    const file = out();
    fs.writeFileSync(file, '{"a":1}\n{"a":2,"trunc');
    const w = await jsonlDestination.openWriter({ path: file }, { writeMode: 'APPEND', stream, ctx });
    await w.writeBatch([{ a: 3 }]);
    await w.commit();
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a":1}\n{"a":2,"trunc\n{"a":3}\n');
  });

  it('OVERWRITE is invisible until commit, then replaces the file', async () => {
    const file = out();
    fs.writeFileSync(file, '{"old":true}\n');
    const w = await jsonlDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream, ctx });
    await w.writeBatch([{ n: 1 }]);
    await w.writeBatch([{ n: 2 }]);
    expect(lines(file)).toEqual([{ old: true }]);
    expect(fs.existsSync(`${file}.sluice-tmp`)).toBe(true);
    await w.commit();
    expect(lines(file)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(fs.existsSync(`${file}.sluice-tmp`)).toBe(false);
  });

  it('OVERWRITE creates the file when absent, even with no records', async () => {
    const file = out();
    const w = await jsonlDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream, ctx });
    await w.commit();
    expect(fs.readFileSync(file, 'utf8')).toBe('');
  });

  it('abort leaves the old file and removes the temp file', async () => {
    const file = out();
    fs.writeFileSync(file, '{"old":true}\n');
    const w = await jsonlDestination.openWriter({ path: file }, { writeMode: 'OVERWRITE', stream, ctx });
    await w.writeBatch([{ n: 1 }]);
    await w.abort();
    expect(lines(file)).toEqual([{ old: true }]);
    expect(fs.existsSync(`${file}.sluice-tmp`)).toBe(false);
    await expect(w.writeBatch([{ n: 2 }])).rejects.toThrow(/after commit\/abort/);
  });

  it('rejects records that cannot be serialized and writes the rest', async () => {
    const file = out();
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const w = await jsonlDestination.openWriter({ path: file }, { writeMode: 'APPEND', stream, ctx });
    const res = await w.writeBatch([{ ok: 1 }, { big: 1n }, circular, { ok: 2 }]);
    await w.commit();
    expect(res.written).toBe(2);
    expect(res.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(res.rejected[0]!.error).toMatch(/BigInt/);
    expect(lines(file)).toEqual([{ ok: 1 }, { ok: 2 }]);
  });

  it('refuses UPSERT and MERGE', async () => {
    for (const writeMode of ['UPSERT', 'MERGE'] as const) {
      const p = jsonlDestination.openWriter({ path: out() }, { writeMode, stream, ctx });
      await expect(p).rejects.toBeInstanceOf(DriverError);
    }
    expect(jsonlDestination.supportedWriteModes).toEqual(['APPEND', 'OVERWRITE']);
  });

  it('fails to open when the directory is missing', async () => {
    const p = jsonlDestination.openWriter({ path: path.join(dir, 'nope', 'x.jsonl') }, { writeMode: 'APPEND', stream, ctx });
    await expect(p).rejects.toMatchObject({ name: 'DriverError', retryable: false });
  });
});

describe('jsonl destination: check and discover', () => {
  it('accepts a writable directory and an existing writable file', async () => {
    const file = out();
    expect((await jsonlDestination.check({ path: file }, ctx)).ok).toBe(true);
    fs.writeFileSync(file, '');
    const res = await jsonlDestination.check({ path: file }, ctx);
    expect(res.ok).toBe(true);
    expect(res.message).toContain('writable');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.sluice-probe'))).toEqual([]);
  });

  it('reports a missing directory', async () => {
    const res = await jsonlDestination.check({ path: path.join(dir, 'missing', 'x.jsonl') }, ctx);
    expect(res).toEqual({ ok: false, message: `Directory does not exist: ${path.join(dir, 'missing')}` });
  });

  it('reports a target that is not a regular file', async () => {
    const sub = path.join(dir, 'sub.jsonl');
    fs.mkdirSync(sub);
    const res = await jsonlDestination.check({ path: sub }, ctx);
    expect(res).toEqual({ ok: false, message: `${sub} exists and is not a regular file` });
  });

  it.skipIf(process.getuid?.() === 0)('reports a read-only target', async () => {
    const file = out();
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o444);
    const res = await jsonlDestination.check({ path: file }, ctx);
    expect(res.ok).toBe(false);
    expect(res.message).toContain('not writable');
  });

  it('discovers nothing for a missing file and infers a stream from an existing one', async () => {
    const file = path.join(dir, 'my-events.jsonl');
    expect(await jsonlDestination.discover({ path: file }, ctx)).toEqual({ streams: [] });
    fs.writeFileSync(
      file,
      [
        '{"id":1,"name":"a","score":1,"ok":true,"at":"2024-01-01T00:00:00Z","tags":["x"]}',
        '',
        'not json',
        '{"id":2,"name":null,"score":2.5,"ok":false,"at":"2024-01-02","tags":{"y":1},"extra":"e"}',
      ].join('\n'),
    );
    const catalog = await jsonlDestination.discover({ path: file }, ctx);
    expect(catalog.streams).toEqual([
      {
        name: 'my_events',
        supportedSyncModes: ['FULL_REFRESH'],
        fields: [
          { name: 'id', type: 'integer', nullable: false },
          { name: 'name', type: 'string', nullable: true },
          { name: 'score', type: 'number', nullable: false },
          { name: 'ok', type: 'boolean', nullable: false },
          { name: 'at', type: 'datetime', nullable: false },
          { name: 'tags', type: 'json', nullable: false },
          { name: 'extra', type: 'string', nullable: true },
        ],
      },
    ]);
  });
});
