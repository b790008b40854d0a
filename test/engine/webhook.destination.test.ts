import crypto from 'node:crypto';
import type http from 'node:http';
import { afterEach, describe, expect, it, afterAll } from 'vitest';
import { webhookDestination, type WebhookDestinationConfig } from '../../src/engine/drivers/http/webhook.destination.js';
import { DriverError, type ConfiguredStream, type DataRecord } from '../../src/engine/drivers/types.js';
import { closedPort, json, startServer, type LocalServer, type RecordedRequest } from './support/local-server.js';
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

const stream: ConfiguredStream = { name: 'orders', syncMode: 'FULL_REFRESH', destinationName: 'orders_out' };
const retry = { baseDelayMs: 5, maxDelayMs: 20 };
const RECS: DataRecord[] = Array.from({ length: 5 }, (_, i) => ({ id: i + 1, s: `r${i + 1}` }));

async function open(config: WebhookDestinationConfig) {
  return webhookDestination.openWriter(config, { writeMode: 'APPEND', stream, ctx });
}

describe('webhook destination: delivery', () => {
  it('POSTs exact { stream, records } payloads, sub-batched, with auth and an idempotency key', async () => {
    const s = await server((_req, res) => json(res, 200, { ok: true }));
    const w = await open({ url: `${s.url}hook`, batchSize: 2, auth: { type: 'bearer', token: 'tk' }, headers: { 'x-source': 'sluice' } });
    const r = await w.writeBatch(RECS);
    await w.commit();
    expect(s.requests.map((q) => JSON.parse(q.body))).toEqual([
      { stream: 'orders_out', records: RECS.slice(0, 2) },
      { stream: 'orders_out', records: RECS.slice(2, 4) },
      { stream: 'orders_out', records: RECS.slice(4) },
    ]);
    for (const q of s.requests) {
      expect(q.method).toBe('POST');
      expect(q.path).toBe('/hook');
      expect(q.headers['content-type']).toBe('application/json');
      expect(q.headers.authorization).toBe('Bearer tk');
      expect(q.headers['x-source']).toBe('sluice');
      expect(q.headers['idempotency-key']).toBe(crypto.createHash('sha256').update(q.body).digest('base64url'));
    }
    expect(r).toEqual({ written: 5, bytes: s.requests.reduce((n, q) => n + Buffer.byteLength(q.body), 0), rejected: [] });
  });

  it('retries 500 and 429 (Retry-After) with the same body and key, then succeeds', async () => {
    const s = await server((_req, res, n) => {
      if (n === 1) return json(res, 500, {});
      if (n === 2) return json(res, 429, {}, { 'retry-after': '0' });
      json(res, 202, {});
    });
    const w = await open({ url: s.url, retry });
    expect(await w.writeBatch(RECS.slice(0, 2))).toMatchObject({ written: 2, rejected: [] });
    expect(s.requests).toHaveLength(3);
    expect(new Set(s.requests.map((q) => q.body)).size).toBe(1);
    expect(new Set(s.requests.map((q) => q.headers['idempotency-key'])).size).toBe(1);
  });

  it('fails with a retryable error once retries run out', async () => {
    const s = await server((_req, res) => json(res, 503, {}));
    const w = await open({ url: s.url, retry: { ...retry, maxAttempts: 2 } });
    const e = await w.writeBatch(RECS).catch((x: unknown) => x as DriverError);
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).retryable).toBe(true);
    expect(s.requests).toHaveLength(2);
  });
});

describe('webhook destination: rejections', () => {
  it('rejects every record of a request answered 400, without retrying; other requests still go out', async () => {
    const s = await server((req, res) => {
      const body = JSON.parse(req.body) as { records: { id: number }[] };
      if (body.records.some((r) => r.id === 3)) return json(res, 400, { error: 'id 3 is invalid' });
      json(res, 200, {});
    });
    const w = await open({ url: s.url, batchSize: 2, retry });
    const r = await w.writeBatch(RECS);
    expect(r.written).toBe(3);
    expect(r.rejected.map((x) => x.index)).toEqual([2, 3]);
    expect(r.rejected[0]!.error).toContain('HTTP 400');
    expect(r.rejected[0]!.error).toContain('id 3 is invalid');
    expect(s.requests).toHaveLength(3);
  });

  it('splits a request answered 413 down to single records', async () => {
    const s = await server((req, res) => {
      const body = JSON.parse(req.body) as { records: unknown[] };
      json(res, body.records.length > 2 ? 413 : 200, {});
    });
    const w = await open({ url: s.url, retry });
    const r = await w.writeBatch(RECS);
    expect(r).toMatchObject({ written: 5, rejected: [] });
    const delivered = s.requests.filter((q) => (JSON.parse(q.body) as { records: unknown[] }).records.length <= 2);
    expect(delivered.flatMap((q) => (JSON.parse(q.body) as { records: unknown[] }).records)).toEqual(RECS);
  });

  it('stops the sync on 401 (credentials are wrong, not the records)', async () => {
    const s = await server((_req, res) => json(res, 401, {}));
    const w = await open({ url: s.url, auth: { type: 'apiKey', name: 'X-Key', value: 'secret-v' }, retry });
    const e = await w.writeBatch(RECS).catch((x: unknown) => x as DriverError);
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).retryable).toBe(false);
    expect((e as Error).message).not.toContain('secret-v');
    expect(s.requests).toHaveLength(1);
  });

  it('does not follow redirects', async () => {
    const target = await server((_req, res) => json(res, 200, {}));
    const s = await server((_req, res) => res.writeHead(307, { location: `${target.url}moved` }).end());
    const w = await open({ url: s.url, retry });
    const e = await w.writeBatch(RECS).catch((x: unknown) => x as DriverError);
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).retryable).toBe(false);
    expect((e as Error).message).toContain('redirects are not followed');
    expect(target.requests).toHaveLength(0);
  });

  it('rejects unserializable records individually and supports APPEND only', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    const w = await open({ url: s.url });
    const r = await w.writeBatch([{ a: 1 }, { b: 1n } as unknown as DataRecord]);
    expect(r.written).toBe(1);
    expect(r.rejected.map((x) => x.index)).toEqual([1]);
    expect(webhookDestination.supportedWriteModes).toEqual(['APPEND']);
    await expect(webhookDestination.openWriter({ url: s.url }, { writeMode: 'OVERWRITE', stream, ctx })).rejects.toThrow(/APPEND/);
  });
});

describe('webhook destination: check', () => {
  it('sends OPTIONS and accepts any non-5xx answer except redirects and 401/403', async () => {
    const s = await server((req, res) => {
      const p = req.path;
      if (p === '/ok') return res.writeHead(204).end();
      if (p === '/405') return res.writeHead(405).end();
      if (p === '/500') return res.writeHead(500).end();
      if (p === '/302') return res.writeHead(302, { location: '/ok' }).end();
      res.writeHead(403).end();
    });
    expect(await webhookDestination.check({ url: `${s.url}ok` }, ctx)).toEqual({ ok: true, message: `${s.url}ok is reachable (OPTIONS answered HTTP 204)` });
    expect((await webhookDestination.check({ url: `${s.url}405` }, ctx)).ok).toBe(true);
    expect((await webhookDestination.check({ url: `${s.url}500`, retry: { baseDelayMs: 1 } }, ctx)).ok).toBe(false);
    const redirect = await webhookDestination.check({ url: `${s.url}302` }, ctx);
    expect(redirect.ok).toBe(false);
    expect(redirect.message).toContain('do not follow redirects');
    expect((await webhookDestination.check({ url: `${s.url}forbidden` }, ctx)).message).toContain('refused the credentials');
    expect(s.requests.every((q) => q.method === 'OPTIONS')).toBe(true);
    const port = await closedPort();
    const down = await webhookDestination.check({ url: `http://127.0.0.1:${port}/`, retry: { baseDelayMs: 1 } }, ctx);
    expect(down.ok).toBe(false);
    expect(down.message).toContain('ECONNREFUSED');
  });
});
