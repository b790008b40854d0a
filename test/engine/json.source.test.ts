import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JsonArrayScanner, JsonStructureError, LineSplitter } from '../../src/engine/drivers/file/json-stream.js';
import { jsonSource, type JsonSourceConfig } from '../../src/engine/drivers/file/json.source.js';
import { DriverError, type DataRecord, type SourceMessage, type StreamStates } from '../../src/engine/drivers/types.js';
import { json, startServer, type LocalServer } from './support/local-server.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let dir: string;
let files: TestFiles;
let ctx: TestFiles['ctx'];
const servers: LocalServer[] = [];

beforeAll(() => {
  files = testFiles('sluice-json-');
  ctx = files.ctx;
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  dir = path.join(files.dir, 'work');
  fs.mkdirSync(dir);
});
afterAll(() => {
  files.cleanup();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function collect(config: JsonSourceConfig, opts: { state?: StreamStates; batchSize?: number; signal?: AbortSignal } = {}): Promise<SourceMessage[]> {
  const catalog = await jsonSource.discover(config, ctx);
  const name = catalog.streams[0]!.name;
  const out: SourceMessage[] = [];
  for await (const m of jsonSource.read(config, [{ name, syncMode: 'FULL_REFRESH' }], opts.state ?? {}, { batchSize: opts.batchSize ?? 1000, signal: opts.signal, ctx })) {
    out.push(m);
  }
  return out;
}

function records(messages: SourceMessage[]): DataRecord[] {
  return messages.flatMap((m) => (m.type === 'records' ? m.records : []));
}

function states(messages: SourceMessage[]): unknown[] {
  return messages.filter((m) => m.type === 'state').map((m) => (m as { state: unknown }).state);
}

/** Deterministic PRNG for chunk boundaries. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function scanAll(text: string, segs: string[], chunkSizes: () => number, skip = 0): unknown[] {
  const out: unknown[] = [];
  const scanner = new JsonArrayScanner(segs, { skip, onElement: (t) => out.push(t === null ? null : JSON.parse(t)) });
  for (let i = 0; i < text.length && !scanner.done; ) {
    const n = Math.max(1, chunkSizes());
    scanner.push(text.slice(i, i + n));
    i += n;
  }
  scanner.end();
  return out;
}

describe('JsonArrayScanner', () => {
  const tricky = [
    { id: 1, s: 'plain' },
    { id: 2, s: 'quote " and backslash \\ and \\" both', nested: { a: [1, [2, [3]]], b: '}]{[' } },
    { id: 3, s: 'unicode é ✓ 😀 \u2028', esc: '\\\\', arr: [] },
    { id: 4, deep: [[[[{ x: '"' }]]]], empty: {}, n: -1.5e-3, t: true, f: false, z: null },
    'a string element',
    42,
    [1, 2],
    null,
  ];
  const doc = {
    meta: { count: 8, note: 'has "items": [1,2] inside a string', arrays: [[{ data: 1 }]] },
    'we\\"ird': [{ skip: true }],
    data: { other: [{ no: 1 }], items: tricky, after: { items: ['not these'] } },
    trailer: 'x',
  };

  it('finds the array at a nested path whatever the chunk boundaries', () => {
    const text = JSON.stringify(doc, null, 2);
    for (let seed = 1; seed <= 60; seed++) {
      const r = rng(seed);
      const max = seed <= 20 ? 2 : seed <= 40 ? 17 : 300;
      expect(scanAll(text, ['data', 'items'], () => Math.floor(r() * max) + 1)).toEqual(tricky);
    }
    expect(scanAll(JSON.stringify(doc), ['data', 'items'], () => 1)).toEqual(tricky);
  });

  it('reads a root array, skips on resume, and supports index segments', () => {
    const text = JSON.stringify(tricky);
    expect(scanAll(text, [], () => 7)).toEqual(tricky);
    expect(scanAll(text, [], () => 3, 5)).toEqual([null, null, null, null, null, 42, [1, 2], null]);
    expect(scanAll(JSON.stringify([{ items: [{ a: 1 }] }, { items: [{ a: 2 }] }]), ['1', 'items'], () => 4)).toEqual([{ a: 2 }]);
  });

  it('stops as soon as the array closes', () => {
    const out: string[] = [];
    const scanner = new JsonArrayScanner(['a'], { onElement: (t) => out.push(t!) });
    scanner.push('{"a":[1,2],"b":');
    expect(scanner.done).toBe(true);
    scanner.push('garbage that is never scanned');
    scanner.end();
    expect(out).toEqual(['1', '2']);
  });

  it('reports structural problems', () => {
    const run = (text: string, segs: string[] = []) => () => scanAll(text, segs, () => 5);
    expect(run('[{"a":1},{"a":2}')).toThrow(/end of the document inside the records array/);
    expect(run('{"data":{"x":[1]}}', ['data', 'items'])).toThrow(/recordsPath "data.items" was not found.*arrays found at: data\.x/);
    expect(run('{"data":{"items":{"a":1}}}', ['data', 'items'])).toThrow(/is an object, not an array/);
    expect(run('{"a":1}')).toThrow(/document is an object, not an array of records/);
    expect(run('')).toThrow(/empty/);
    expect(run('[1,]')).toThrow(JsonStructureError);
    expect(run('[1 2]')).toThrow(/expected , or \]/);
  });

  it('bounds the size of one element', () => {
    const scanner = new JsonArrayScanner([], { onElement: () => undefined, maxElementChars: 100 });
    scanner.push('[{"a":"');
    expect(() => {
      for (let i = 0; i < 10; i++) scanner.push('x'.repeat(50));
    }).toThrow(/longer than 100 characters/);
  });

  it('LineSplitter handles CRLF, lines across chunks and a last line without newline', () => {
    const lines: string[] = [];
    const sp = new LineSplitter((l) => lines.push(l));
    for (const c of ['{"a"', ':1}\r', '\n\n{"b":2}\n{"c"', ':3}']) sp.push(c);
    sp.end();
    expect(lines).toEqual(['{"a":1}', '', '{"b":2}', '{"c":3}']);
  });
});

describe('json source: reading files', () => {
  it('reads JSON Lines with blank lines and CRLF, one state per batch', async () => {
    const p = file('events.jsonl', '{"id":1,"name":"a"}\r\n\n{"id":2,"name":"b"}\n  \n{"id":3,"name":"c"}');
    const msgs = await collect({ url: p }, { batchSize: 2 });
    expect(records(msgs)).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
      { id: 3, name: 'c' },
    ]);
    expect(msgs.map((m) => m.type)).toEqual(['records', 'state', 'records', 'state']);
    expect(states(msgs)).toEqual([{ row: 2 }, { row: 3 }]);
    const first = msgs[0] as Extract<SourceMessage, { type: 'records' }>;
    expect(first.stream).toBe('events');
    expect(first.bytes).toBe(Buffer.byteLength('{"id":1,"name":"a"}{"id":2,"name":"b"}') + 2);
  });

  it('reads a root JSON array and a nested recordsPath', async () => {
    const items = Array.from({ length: 2500 }, (_, i) => ({ id: i, tags: ['x', `y${i}`], o: { s: `v"${i}` } }));
    const root = file('root.json', JSON.stringify(items));
    expect(records(await collect({ url: root }))).toEqual(items);
    const nested = file('nested.json', JSON.stringify({ meta: { pages: [1, 2] }, data: { items }, extra: [{ not: 'a record' }] }, null, 1));
    const msgs = await collect({ url: nested, recordsPath: 'data.items' }, { batchSize: 1000 });
    expect(records(msgs)).toEqual(items);
    expect(states(msgs)).toEqual([{ row: 1000 }, { row: 2000 }, { row: 2500 }]);
  });

  it('reads gzip files (.jsonl.gz and .json.gz)', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ i }));
    const a = file('big.jsonl.gz', zlib.gzipSync(lines.join('\n')));
    const got = records(await collect({ url: a }));
    expect(got).toHaveLength(3000);
    expect(got[2999]).toEqual({ i: 2999 });
    const b = file('doc.json.gz', zlib.gzipSync(JSON.stringify({ results: [{ a: 1 }, { a: 2 }] })));
    expect(records(await collect({ url: b, recordsPath: 'results' }))).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('reports bad lines and non-objects in the batch errors instead of throwing', async () => {
    const p = file('bad.jsonl', '{"id":1}\n{"id": oops}\n[1,2]\n"str"\n{"id":5}\n');
    const msgs = await collect({ url: p }, { batchSize: 10 });
    const batch = msgs.find((m) => m.type === 'records') as Extract<SourceMessage, { type: 'records' }>;
    expect(batch.records).toEqual([{ id: 1 }, { _raw: '{"id": oops}' }, { _raw: '[1,2]' }, { _raw: '"str"' }, { id: 5 }]);
    expect(batch.errors?.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(batch.errors?.[0]?.error).toMatch(/^line 2: invalid JSON/);
    expect(batch.errors?.[1]?.error).toBe('line 3: expected a JSON object, got an array');
    expect(states(msgs)).toEqual([{ row: 5 }]);
    const arr = file('bad.json', '[{"a":1}, 7, {"b":2}]');
    const m2 = await collect({ url: arr });
    const b2 = m2.find((m) => m.type === 'records') as Extract<SourceMessage, { type: 'records' }>;
    expect(b2.errors).toEqual([{ index: 1, error: 'record 2: expected a JSON object, got a number' }]);
  });

  it('fails on a broken document structure with a DriverError', async () => {
    const p = file('trunc.json', '[{"a":1},{"a":2},{"a"');
    await expect(collect({ url: p, format: 'json' })).rejects.toThrow(DriverError);
    const q = file('nopath.json', '{"data":{"rows":[{"a":1}]}}');
    await expect(jsonSource.discover({ url: q, recordsPath: 'data.items' }, ctx)).rejects.toThrow(/arrays found at: data\.rows/);
  });

  it('resumes from { row: N } without re-reading, for JSON Lines and arrays', async () => {
    const items = Array.from({ length: 25 }, (_, i) => ({ id: i + 1 }));
    const jl = file('resume.jsonl', items.map((r) => JSON.stringify(r)).join('\n\n'));
    const ja = file('resume.json', JSON.stringify({ d: items }));
    for (const cfg of [{ url: jl }, { url: ja, recordsPath: 'd' }]) {
      const first = await collect(cfg, { batchSize: 10 });
      const cut = states(first)[0] as { row: number };
      expect(cut).toEqual({ row: 10 });
      const rest = await collect(cfg, { batchSize: 10, state: { resume: cut } });
      expect(records(rest)).toEqual(items.slice(10));
      expect(states(rest)).toEqual([{ row: 20 }, { row: 25 }]);
      const none = await collect(cfg, { state: { resume: { row: 25 } } });
      expect(records(none)).toEqual([]);
      expect(states(none)).toEqual([{ row: 25 }]);
    }
  });

  it('warns when the state points past the end', async () => {
    const p = file('short.jsonl', '{"a":1}\n');
    const msgs = await collect({ url: p }, { state: { short: { row: 9 } } });
    expect(msgs.some((m) => m.type === 'log' && m.message.includes('truncated or replaced'))).toBe(true);
    expect(states(msgs)).toEqual([{ row: 9 }]);
  });

  it('detects the format from the content when the extension says nothing', async () => {
    const jl = file('data.txt', '{"a":1}\n{"a":2}\n');
    const ja = file('data2.txt', '  [{"a":1},{"a":2}]');
    expect(records(await collect({ url: jl }))).toEqual([{ a: 1 }, { a: 2 }]);
    expect(records(await collect({ url: ja }))).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('keeps only the selected fields', async () => {
    const p = file('sel.jsonl', '{"a":1,"b":2,"c":3}\n{"a":4}\n');
    const out: DataRecord[] = [];
    for await (const m of jsonSource.read({ url: p }, [{ name: 'sel', syncMode: 'FULL_REFRESH', fields: ['a', 'c'] }], {}, { batchSize: 10, ctx })) {
      if (m.type === 'records') out.push(...m.records);
    }
    expect(out).toEqual([{ a: 1, c: 3 }, { a: 4 }]);
  });

  it('stops promptly when aborted', async () => {
    const p = file('abort.jsonl', Array.from({ length: 50_000 }, (_, i) => `{"i":${i}}`).join('\n'));
    const ac = new AbortController();
    const it = jsonSource.read({ url: p }, [{ name: 'abort', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 100, signal: ac.signal, ctx });
    const first = await it[Symbol.asyncIterator]().next();
    expect(first.done).toBe(false);
    ac.abort();
    await expect(
      (async () => {
        for await (const _ of it) {
          /* drain */
        }
      })(),
    ).rejects.toThrow(/abort/i);
  });
});

describe('json source: check and discover', () => {
  it('discovers fields, types, nullability and the primary key from a sample', async () => {
    const p = file('products.jsonl', [
      JSON.stringify({ sku: 'a', price: 1, qty: 2, ok: true, at: '2024-01-02T03:04:05Z', meta: { x: 1 } }),
      JSON.stringify({ sku: 'b', price: 2.5, qty: 3, ok: false, at: '2024-02-02', meta: [1], extra: null }),
    ].join('\n'));
    const cat = await jsonSource.discover({ url: p, uniqueIdColumn: 'sku' }, ctx);
    const s = cat.streams[0]!;
    expect(s.name).toBe('products');
    expect(s.sourceDefinedPrimaryKey).toEqual(['sku']);
    expect(s.supportedSyncModes).toEqual(['FULL_REFRESH', 'INCREMENTAL']);
    expect(s.fields).toEqual([
      { name: 'sku', type: 'string', nullable: false },
      { name: 'price', type: 'number', nullable: false },
      { name: 'qty', type: 'integer', nullable: false },
      { name: 'ok', type: 'boolean', nullable: false },
      { name: 'at', type: 'datetime', nullable: false },
      { name: 'meta', type: 'json', nullable: false },
      { name: 'extra', type: 'string', nullable: true },
    ]);
    await expect(jsonSource.discover({ url: p, uniqueIdColumn: 'id' }, ctx)).rejects.toThrow(/uniqueIdColumn "id"/);
  });

  it('checks files: missing, directory, good, unusable first record, missing id field', async () => {
    expect(await jsonSource.check({ url: path.join(dir, 'none.json') }, ctx)).toEqual({ ok: false, message: `File not found: ${path.join(dir, 'none.json')}` });
    expect((await jsonSource.check({ url: dir }, ctx)).message).toContain('is a directory');
    const good = file('good.json', '{"data":[{"id":1,"n":"x"}]}');
    const ok = await jsonSource.check({ url: good, recordsPath: 'data' }, ctx);
    expect(ok.ok).toBe(true);
    expect(ok.message).toContain('2 field(s): id, n');
    const pretty = file('pretty.jsonl', '{\n  "id": 1\n}\n');
    const bad = await jsonSource.check({ url: pretty }, ctx);
    expect(bad.ok).toBe(false);
    expect(bad.message).toContain('set format to json');
    expect((await jsonSource.check({ url: good, recordsPath: 'data', uniqueIdColumn: 'sku' }, ctx)).ok).toBe(false);
    expect((await jsonSource.check({ url: good }, ctx)).message).toContain('set recordsPath');
  });
});

describe('json source: URLs', () => {
  it('streams JSON and JSON Lines over HTTP with headers, gzip content-encoding and gzip bodies', async () => {
    const items = Array.from({ length: 1200 }, (_, i) => ({ id: i }));
    const s = await startServer((req, res) => {
      if (req.path.startsWith('/plain')) return json(res, 200, { data: { items } });
      if (req.path.startsWith('/encoded')) {
        const gz = zlib.gzipSync(items.map((r) => JSON.stringify(r)).join('\n'));
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
        return res.end(gz);
      }
      if (req.path.startsWith('/file.json.gz')) {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        return res.end(zlib.gzipSync(JSON.stringify(items)));
      }
      res.writeHead(404).end('nope');
    });
    servers.push(s);
    const plain = await collect({ url: `${s.url}plain`, recordsPath: 'data.items', headers: { 'x-token': 't1' } });
    expect(records(plain)).toEqual(items);
    expect(s.requests.every((r) => r.headers['x-token'] === 't1')).toBe(true);
    expect(records(await collect({ url: `${s.url}encoded` }))).toEqual(items);
    expect(records(await collect({ url: `${s.url}file.json.gz` }))).toEqual(items);
    const cat = await jsonSource.discover({ url: `${s.url}file.json.gz` }, ctx);
    expect(cat.streams[0]!.name).toBe('file');
    const missing = await jsonSource.check({ url: `${s.url}missing.json` }, ctx);
    expect(missing.ok).toBe(false);
    expect(missing.message).toContain('404');
  });

  it('never loads the document whole: stops reading an endless stream', async () => {
    let written = 0;
    let closed = false;
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items":[');
      const pump = () => {
        while (!closed) {
          const ok = res.write(`${written++ === 0 ? '' : ','}{"n":${written},"pad":"${'x'.repeat(100)}"}`);
          if (!ok) return void res.once('drain', pump);
        }
      };
      res.on('close', () => {
        closed = true;
      });
      pump();
    });
    servers.push(s);
    const got: DataRecord[] = [];
    for await (const m of jsonSource.read({ url: s.url, recordsPath: 'items', format: 'json' }, [{ name: '127_0_0_1', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 500, ctx })) {
      if (m.type === 'records') got.push(...m.records);
      if (got.length >= 1500) break;
    }
    expect(got[0]).toMatchObject({ n: 1 });
    expect(got.length).toBeGreaterThanOrEqual(1500);
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(true);
    // The server could only write what the pipe and our small buffers absorbed.
    expect(written).toBeLessThan(200_000);
  });
});
