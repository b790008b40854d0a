import { afterEach, describe, expect, it, afterAll } from 'vitest';
import { csvSource, type CsvSourceConfig } from '../../src/engine/drivers/file/csv.source.js';
import type { DataRecord, SourceMessage, StreamStates } from '../../src/engine/drivers/types.js';
import { startServer, type LocalServer } from './support/local-server.js';
import { testFiles } from '../helpers/files.js';

// These drivers open no local file; the context is what every driver call gets.
const { ctx, cleanup: cleanupFiles } = testFiles();
afterAll(cleanupFiles);

const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const PEOPLE = 'id,name,age\n1,Ann,31\n2,"Bob ""B""",\n3,Cid,45\n';

async function csvServer(): Promise<LocalServer> {
  const big = `id,v\n${Array.from({ length: 30_000 }, (_, i) => `${i},${'x'.repeat(50)}`).join('\n')}\n`;
  const s = await startServer((req, res) => {
    if (req.path.startsWith('/exports/people.csv')) {
      res.writeHead(200, { 'content-type': 'text/csv' });
      return res.end(PEOPLE);
    }
    if (req.path === '/big.csv') {
      res.writeHead(200, { 'content-type': 'text/csv' });
      // Several writes so the body arrives in chunks.
      for (let i = 0; i < big.length; i += 100_000) res.write(big.slice(i, i + 100_000));
      return res.end();
    }
    if (req.path === '/flaky.csv' && s.requests.length === 1) {
      res.writeHead(503, { 'retry-after': '0' });
      return res.end();
    }
    if (req.path === '/flaky.csv') {
      res.writeHead(200);
      return res.end(PEOPLE);
    }
    res.writeHead(404).end('not here');
  });
  servers.push(s);
  return s;
}

async function collect(config: CsvSourceConfig, state: StreamStates = {}, batchSize = 1000): Promise<SourceMessage[]> {
  const name = (await csvSource.discover(config, ctx)).streams[0]!.name;
  const out: SourceMessage[] = [];
  for await (const m of csvSource.read(config, [{ name, syncMode: 'FULL_REFRESH' }], state, { batchSize, ctx })) out.push(m);
  return out;
}

const recs = (ms: SourceMessage[]): DataRecord[] => ms.flatMap((m) => (m.type === 'records' ? m.records : []));

describe('csv source: http(s) URLs', () => {
  it('reads a CSV over HTTP, names the stream after the URL path', async () => {
    const s = await csvServer();
    const cfg: CsvSourceConfig = { path: `${s.url}exports/people.csv?token=abc`, columnTypes: { id: 'integer', age: 'integer' } };
    const cat = await csvSource.discover(cfg, ctx);
    expect(cat.streams[0]!.name).toBe('people');
    expect(cat.streams[0]!.fields.map((f) => f.name)).toEqual(['id', 'name', 'age']);
    expect(recs(await collect(cfg))).toEqual([
      { id: 1, name: 'Ann', age: 31 },
      { id: 2, name: 'Bob "B"', age: null },
      { id: 3, name: 'Cid', age: 45 },
    ]);
  });

  it('streams a large body in chunks and resumes from a row state', async () => {
    const s = await csvServer();
    const cfg: CsvSourceConfig = { path: `${s.url}big.csv` };
    const all = await collect(cfg, {}, 10_000);
    expect(recs(all)).toHaveLength(30_000);
    const rest = await collect(cfg, { big: { row: 29_990 } }, 10_000);
    expect(recs(rest).map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => 29_990 + i));
    expect(rest.filter((m) => m.type === 'state').map((m) => (m as { state: unknown }).state)).toEqual([{ row: 30_000 }]);
  });

  it('aborts while sampling the first rows for the column types', async () => {
    // The body starts and never ends: reading stops only when the signal is aborted.
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.write('id,v\n1,a\n');
    });
    servers.push(s);
    const ac = new AbortController();
    const run = (async () => {
      for await (const _ of csvSource.read({ path: `${s.url}slow.csv` }, [{ name: 'slow', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 10, signal: ac.signal, ctx })) {
        // nothing arrives before the abort
      }
    })();
    setTimeout(() => ac.abort(), 100);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('retries a 503 and reports HTTP failures in check', async () => {
    const s = await csvServer();
    expect(recs(await collect({ path: `${s.url}flaky.csv` }))).toHaveLength(3);
    const ok = await csvSource.check({ path: `${s.url}exports/people.csv` }, ctx);
    expect(ok).toEqual({ ok: true, message: `${s.url}exports/people.csv is reachable; 3 column(s): id, name, age.` });
    const missing = await csvSource.check({ path: `${s.url}missing.csv` }, ctx);
    expect(missing.ok).toBe(false);
    expect(missing.message).toContain('Cannot fetch');
    expect(missing.message).toContain('404');
    await expect(csvSource.discover({ path: `${s.url}missing.csv` }, ctx)).rejects.toThrow(/404/);
  });
});
