import type http from 'node:http';
import { afterEach, describe, expect, it, afterAll } from 'vitest';
import { compareCursor, httpSource, type HttpSourceConfig } from '../../src/engine/drivers/http/http.source.js';
import { DriverError, type ConfiguredStream, type DataRecord, type SourceMessage, type StreamStates } from '../../src/engine/drivers/types.js';
import { json, startServer, type LocalServer, type RecordedRequest } from './support/local-server.js';
import { testFiles } from '../helpers/files.js';

// These drivers open no local file; the context is what every driver call gets.
const { ctx, cleanup: cleanupFiles } = testFiles();
afterAll(cleanupFiles);

const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(handler: (req: RecordedRequest, res: http.ServerResponse, n: number) => unknown): Promise<LocalServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

const ITEMS = Array.from({ length: 5 }, (_, i) => ({ id: i + 1, name: `item ${i + 1}`, updated_at: `2024-01-0${i + 1}T00:00:00Z` }));
const fastRetry = { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

async function collect(
  config: HttpSourceConfig,
  opts: { state?: StreamStates; syncMode?: ConfiguredStream['syncMode']; batchSize?: number; name?: string } = {},
): Promise<SourceMessage[]> {
  const name = opts.name ?? 'items';
  const out: SourceMessage[] = [];
  const streams: ConfiguredStream[] = [{ name, syncMode: opts.syncMode ?? 'FULL_REFRESH' }];
  for await (const m of httpSource.read(config, streams, opts.state ?? {}, { batchSize: opts.batchSize ?? 100, ctx })) out.push(m);
  return out;
}

const records = (ms: SourceMessage[]): DataRecord[] => ms.flatMap((m) => (m.type === 'records' ? m.records : []));
const states = (ms: SourceMessage[]): unknown[] => ms.filter((m) => m.type === 'state').map((m) => (m as { state: unknown }).state);
const logs = (ms: SourceMessage[]): string[] => ms.filter((m) => m.type === 'log').map((m) => (m as { message: string }).message);

/** An API over ITEMS that paginates every way. */
async function api(): Promise<LocalServer> {
  return server((req, res) => {
    const q = req.query;
    const p = req.path.split('?')[0];
    if (p === '/items' || p === '/none') return json(res, 200, ITEMS);
    if (p === '/page/items') {
      const page = Number(q.get('page'));
      const size = Number(q.get('per_page') ?? 2);
      return json(res, 200, { data: ITEMS.slice((page - 1) * size, page * size) });
    }
    if (p === '/offset/items') {
      const off = Number(q.get('skip'));
      const lim = Math.min(2, Number(q.get('take'))); // the server caps the limit at 2
      return json(res, 200, { results: ITEMS.slice(off, off + lim) });
    }
    if (p === '/cursor/items') {
      const start = q.get('after') ? Number(q.get('after')) : 0;
      const slice = ITEMS.slice(start, start + 2);
      const next = start + 2 < ITEMS.length ? String(start + 2) : null;
      return json(res, 200, { data: slice, meta: { next_cursor: next } });
    }
    if (p === '/link/items') {
      const page = Number(q.get('p') ?? 1);
      const slice = ITEMS.slice((page - 1) * 2, page * 2);
      const headers: Record<string, string> = {};
      if (page * 2 < ITEMS.length) headers.link = `</link/items?p=${page + 1}>; rel="next", </link/items?p=3>; rel="last"`;
      return json(res, 200, slice, headers);
    }
    res.writeHead(404).end();
  });
}

describe('http source: pagination', () => {
  it('none: one request, records at the root, state { done: true }', async () => {
    const s = await api();
    const msgs = await collect({ url: `${s.url}items` });
    expect(records(msgs)).toEqual(ITEMS);
    expect(states(msgs)).toEqual([{ done: true }]);
    expect(s.requests).toHaveLength(1);
  });

  it('page: page/per_page until an empty page, state = next page', async () => {
    const s = await api();
    const cfg: HttpSourceConfig = {
      url: `${s.url}page/items`,
      recordsPath: 'data',
      pagination: { type: 'page', pageParam: 'page', sizeParam: 'per_page', pageSize: 2 },
    };
    const msgs = await collect(cfg);
    expect(records(msgs)).toEqual(ITEMS);
    expect(s.requests.map((r) => r.path)).toEqual([
      '/page/items?page=1&per_page=2',
      '/page/items?page=2&per_page=2',
      '/page/items?page=3&per_page=2',
      '/page/items?page=4&per_page=2',
    ]);
    expect(states(msgs)).toEqual([{ page: 2 }, { page: 3 }, { page: 4 }, { done: true }]);
    // A page is one batch followed by its state.
    expect(msgs.map((m) => m.type)).toEqual(['records', 'state', 'records', 'state', 'records', 'state', 'state']);
    // Resuming an interrupted run continues at the saved page.
    const again = await collect(cfg, { state: { items: { page: 3 } } });
    expect(records(again)).toEqual(ITEMS.slice(4));
  });

  it('offset: advances by the records received (server caps the limit)', async () => {
    const s = await api();
    const msgs = await collect({
      url: `${s.url}offset/items`,
      recordsPath: 'results',
      pagination: { type: 'offset', offsetParam: 'skip', limitParam: 'take', limit: 10 },
    });
    expect(records(msgs)).toEqual(ITEMS);
    expect(s.requests.map((r) => r.query.get('skip'))).toEqual(['0', '2', '4', '5']);
    expect(states(msgs)).toEqual([{ offset: 2 }, { offset: 4 }, { offset: 5 }, { done: true }]);
  });

  it('cursor: token from the body sent back until it is missing', async () => {
    const s = await api();
    const msgs = await collect({
      url: `${s.url}cursor/items?fixed=1`,
      recordsPath: 'data',
      pagination: { type: 'cursor', cursorPath: 'meta.next_cursor', cursorParam: 'after' },
    });
    expect(records(msgs)).toEqual(ITEMS);
    expect(s.requests.map((r) => r.path)).toEqual(['/cursor/items?fixed=1', '/cursor/items?fixed=1&after=2', '/cursor/items?fixed=1&after=4']);
    expect(states(msgs)).toEqual([{ next: '2' }, { next: '4' }, { done: true }]);
  });

  it('link: follows Link rel="next" until absent', async () => {
    const s = await api();
    const msgs = await collect({ url: `${s.url}link/items`, pagination: { type: 'link' } });
    expect(records(msgs)).toEqual(ITEMS);
    expect(s.requests.map((r) => r.path)).toEqual(['/link/items', '/link/items?p=2', '/link/items?p=3']);
    expect(states(msgs)).toEqual([{ next: `${s.url}link/items?p=2` }, { next: `${s.url}link/items?p=3` }, { done: true }]);
  });

  it('link: refuses a next link to another origin', async () => {
    const s = await server((_req, res) => json(res, 200, [{ a: 1 }], { link: '<http://example.invalid/steal>; rel="next"' }));
    const msgs = await collect({ url: s.url, pagination: { type: 'link' }, auth: { type: 'bearer', token: 't' } }, { name: '127_0_0_1' });
    expect(records(msgs)).toEqual([{ a: 1 }]);
    expect(logs(msgs).join('\n')).toContain('another origin');
    expect(s.requests).toHaveLength(1);
  });

  it('stops at maxPages with a warning', async () => {
    const s = await server((_req, res) => json(res, 200, [{ a: 1 }]));
    const msgs = await collect({ url: `${s.url}items`, pagination: { type: 'page' }, maxPages: 3 });
    expect(records(msgs)).toHaveLength(3);
    expect(logs(msgs).join('\n')).toContain('maxPages (3)');
    expect(s.requests).toHaveLength(3);
  });

  it('stops when the cursor repeats', async () => {
    const s = await server((_req, res) => json(res, 200, { data: [{ a: 1 }], next: 'same' }));
    const msgs = await collect({ url: `${s.url}items`, recordsPath: 'data', pagination: { type: 'cursor', cursorPath: 'next' } });
    expect(s.requests).toHaveLength(2);
    expect(records(msgs)).toHaveLength(2);
    expect(logs(msgs).join('\n')).toContain('same cursor');
  });

  it('splits a large page into preferred-size batches with one state after the page', async () => {
    const big = Array.from({ length: 250 }, (_, i) => ({ i }));
    const s = await server((_req, res) => json(res, 200, big));
    const msgs = await collect({ url: `${s.url}items` }, { batchSize: 100 });
    expect(msgs.map((m) => (m.type === 'records' ? m.records.length : m.type))).toEqual([100, 100, 50, 'state']);
  });
});

describe('http source: incremental', () => {
  async function incApi(): Promise<LocalServer> {
    return server((req, res) => {
      const since = req.query.get('updated_since');
      const rows = since ? ITEMS.filter((r) => r.updated_at > since) : ITEMS;
      const page = Number(req.query.get('page') ?? 1);
      return json(res, 200, { data: rows.slice((page - 1) * 2, page * 2) });
    });
  }
  const cfg = (base: string): HttpSourceConfig => ({
    url: `${base}items`,
    recordsPath: 'data',
    pagination: { type: 'page' },
    incremental: { cursorField: 'updated_at', param: 'updated_since' },
  });

  it('sends the max cursor of the last run on the next run', async () => {
    const s = await incApi();
    const first = await collect(cfg(s.url), { syncMode: 'INCREMENTAL' });
    expect(records(first)).toEqual(ITEMS);
    expect(s.requests[0]!.query.has('updated_since')).toBe(false);
    const st = states(first);
    expect(st[0]).toEqual({ cursor: '2024-01-02T00:00:00Z', resume: { from: null, page: 2 } });
    expect(st[st.length - 1]).toEqual({ cursor: '2024-01-05T00:00:00Z' });
    s.requests.length = 0;
    const second = await collect(cfg(s.url), { syncMode: 'INCREMENTAL', state: { items: st[st.length - 1] as StreamStates[string] } });
    expect(records(second)).toEqual([]);
    expect(s.requests.map((r) => r.query.get('updated_since'))).toEqual(['2024-01-05T00:00:00Z']);
    expect(states(second)).toEqual([{ cursor: '2024-01-05T00:00:00Z' }]);
  });

  it('continues an interrupted run with the same bound and position', async () => {
    const s = await incApi();
    const msgs = await collect(cfg(s.url), {
      syncMode: 'INCREMENTAL',
      state: { items: { cursor: '2024-01-02T00:00:00Z', resume: { from: '2024-01-01T00:00:00Z', page: 2 } } },
    });
    // Bound 2024-01-01 → rows 2..5; page 2 = rows 4, 5.
    expect(records(msgs).map((r) => r.id)).toEqual([4, 5]);
    expect(s.requests[0]!.query.get('updated_since')).toBe('2024-01-01T00:00:00Z');
    expect(states(msgs).at(-1)).toEqual({ cursor: '2024-01-05T00:00:00Z' });
  });

  it('sends the initial value on the first run and rejects INCREMENTAL without a cursor field', async () => {
    const s = await incApi();
    const msgs = await collect({ ...cfg(s.url), incremental: { cursorField: 'updated_at', param: 'updated_since', initialValue: '2024-01-03T00:00:00Z' } }, { syncMode: 'INCREMENTAL' });
    expect(records(msgs).map((r) => r.id)).toEqual([4, 5]);
    await expect(collect({ url: s.url, recordsPath: 'data' }, { syncMode: 'INCREMENTAL', name: '127_0_0_1' })).rejects.toThrow(/no incremental.cursorField/);
  });

  it('compares cursors numerically, as instants, or as strings', () => {
    expect(compareCursor(9, 10)).toBeLessThan(0);
    expect(compareCursor('2024-01-01T10:00:00+02:00', '2024-01-01T09:00:00Z')).toBeLessThan(0);
    expect(compareCursor('b', 'a')).toBeGreaterThan(0);
  });
});

describe('http source: errors, retries and auth', () => {
  it('waits for Retry-After on 429, then succeeds', async () => {
    const s = await server((_req, res, n) => (n === 1 ? json(res, 429, { error: 'slow down' }, { 'retry-after': '1' }) : json(res, 200, ITEMS)));
    const t0 = Date.now();
    const msgs = await collect({ url: `${s.url}items` });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(records(msgs)).toEqual(ITEMS);
    expect(s.requests).toHaveLength(2);
    expect(logs(msgs).join('\n')).toMatch(/attempt 1\/5 .* failed \(HTTP 429\); retrying in 1000 ms/);
  });

  it('retries 500s, then succeeds', async () => {
    const s = await server((_req, res, n) => (n <= 2 ? json(res, 500, {}) : json(res, 200, ITEMS)));
    const msgs = await collect({ url: `${s.url}items`, retry: fastRetry });
    expect(records(msgs)).toEqual(ITEMS);
    expect(s.requests).toHaveLength(3);
  });

  it('fails at once on 401 without retrying, with a non-retryable error', async () => {
    const s = await server((_req, res) => json(res, 401, { error: 'invalid token' }));
    const err = await collect({ url: `${s.url}items`, auth: { type: 'bearer', token: 'tok-123' }, retry: fastRetry }).catch((e: unknown) => e as DriverError);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).retryable).toBe(false);
    expect((err as DriverError).message).toContain('401');
    expect((err as DriverError).message).not.toContain('tok-123');
    expect(s.requests).toHaveLength(1);
    const chk = await httpSource.check({ url: `${s.url}items` }, ctx);
    expect(chk.ok).toBe(false);
    expect(chk.message).toContain('authentication refused');
  });

  it('sends basic, bearer and apiKey credentials; query keys are redacted in messages', async () => {
    const s = await server((req, res) => (req.path.includes('fail') ? json(res, 400, {}) : json(res, 200, [])));
    await collect({ url: `${s.url}a`, auth: { type: 'basic', username: 'u', password: 'p' } }, { name: 'a' });
    await collect({ url: `${s.url}b`, auth: { type: 'bearer', token: 'tkn' } }, { name: 'b' });
    await collect({ url: `${s.url}c`, auth: { type: 'apiKey', name: 'X-Api-Key', value: 'k1' } }, { name: 'c' });
    await collect({ url: `${s.url}d`, auth: { type: 'apiKey', name: 'api_key', value: 'k2', in: 'query' } }, { name: 'd' });
    expect(s.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(s.requests[1]!.headers.authorization).toBe('Bearer tkn');
    expect(s.requests[2]!.headers['x-api-key']).toBe('k1');
    expect(s.requests[3]!.query.get('api_key')).toBe('k2');
    const err = await collect({ url: `${s.url}fail`, auth: { type: 'apiKey', name: 'api_key', value: 'k2', in: 'query' } }, { name: 'fail' }).catch((e: Error) => e);
    expect((err as Error).message).toContain('api_key=***');
    expect((err as Error).message).not.toContain('k2');
  });

  it('POST with a JSON body and pagination parameters in the body', async () => {
    const s = await server((req, res) => {
      const body = JSON.parse(req.body) as { filter: string; page: number };
      json(res, 200, { hits: body.page <= 2 ? [{ page: body.page, filter: body.filter }] : [] });
    });
    const msgs = await collect({
      url: `${s.url}search`,
      method: 'POST',
      body: { filter: 'x' },
      paramsIn: 'body',
      recordsPath: 'hits',
      pagination: { type: 'page' },
      query: { v: 2 },
    }, { name: 'search' });
    expect(records(msgs)).toEqual([
      { page: 1, filter: 'x' },
      { page: 2, filter: 'x' },
    ]);
    expect(s.requests.map((r) => [r.method, r.path, r.headers['content-type'], r.body])).toEqual([
      ['POST', '/search?v=2', 'application/json', '{"filter":"x","page":1}'],
      ['POST', '/search?v=2', 'application/json', '{"filter":"x","page":2}'],
      ['POST', '/search?v=2', 'application/json', '{"filter":"x","page":3}'],
    ]);
  });

  it('dead-letters non-object items and explains a wrong recordsPath', async () => {
    const s = await server((req, res) => json(res, 200, req.path.startsWith('/mixed') ? [{ a: 1 }, 5, null] : { rows: [], meta: {} }));
    const msgs = await collect({ url: `${s.url}mixed` }, { name: 'mixed' });
    const b = msgs.find((m) => m.type === 'records') as Extract<SourceMessage, { type: 'records' }>;
    expect(b.records).toEqual([{ a: 1 }, { _raw: '5' }, { _raw: 'null' }]);
    expect(b.errors?.map((e) => e.index)).toEqual([1, 2]);
    await expect(collect({ url: `${s.url}obj` }, { name: 'obj' })).rejects.toThrow(/set recordsPath \(arrays at: rows\)/);
    await expect(collect({ url: `${s.url}obj`, recordsPath: 'data' }, { name: 'obj' })).rejects.toThrow(/recordsPath "data" not found/);
  });
});

describe('http source: check and discover', () => {
  it('discovers fields from the first page and reports incremental support', async () => {
    const s = await api();
    const cat = await httpSource.discover({ url: `${s.url}items`, uniqueIdColumn: 'id', incremental: { cursorField: 'updated_at' } }, ctx);
    expect(cat.streams).toEqual([
      {
        name: 'items',
        fields: [
          { name: 'id', type: 'integer', nullable: false },
          { name: 'name', type: 'string', nullable: false },
          { name: 'updated_at', type: 'datetime', nullable: false },
        ],
        supportedSyncModes: ['FULL_REFRESH', 'INCREMENTAL'],
        defaultCursorField: ['updated_at'],
        sourceDefinedPrimaryKey: ['id'],
      },
    ]);
    expect(s.requests).toHaveLength(1);
    const chk = await httpSource.check({ url: `${s.url}items` }, ctx);
    expect(chk).toEqual({ ok: true, message: `${s.url}items answered with 5 record(s) on the first page; fields: id, name, updated_at` });
    expect((await httpSource.check({ url: `${s.url}items`, uniqueIdColumn: 'sku' }, ctx)).ok).toBe(false);
  });
});
