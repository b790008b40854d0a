/**
 * Attack suite: the API thread stays responsive. `/health` keeps answering while 500
 * graphql-ws sockets connect at once (each authenticating with a key), while a flood of
 * pushes arrives, and while previews and discoveries chew on a 1.3 MB CSV with 100k columns
 * or run into their time limit — those answer with data or the typed RESOURCE_LIMIT error,
 * never a masked 500. Latencies are printed for information only (the bench measures them:
 * `BENCH_ONLY=health npm run bench`); the assertions are about answers, not timing.
 */
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { bearer, callAs, createConnectorId, mintKey } from '../helpers/graphql.js';

const ADMIN = 'sk_' + Buffer.alloc(32, 43).toString('base64url');
/** Per-answer bound for /health: it proves /health answers, not how fast (the bench measures that) on a shared 2-core machine. */
const HEALTH_ANSWER_MS = 10_000;

let s: TestServer;
let readKey: string;
let writeKey: string;

const as = <T = any>(key: string, query: string, variables?: Record<string, unknown>) => callAs<T>(s, key, query, variables);

const mint = async (scope: 'READ' | 'WRITE'): Promise<string> => (await mintKey((q, v) => as(ADMIN, q, v), `${scope} key`, scope)).key;

const connector = (name: string, driver: string, config: Record<string, unknown>) => createConnectorId((q, v) => as(writeKey, q, v), name, driver, config);

/**
 * Polls /health every 50 ms until stopped. Every poll must answer 200 within HEALTH_ANSWER_MS;
 * `stop()` resolves with the latencies (ms) and throws if any poll failed.
 */
function pollHealth() {
  const base = s.url.replace(/\/graphql$/, '');
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) });
        if (res.status !== 200) failures.push(`status ${res.status}`);
        await res.text();
        latencies.push(performance.now() - t0);
      } catch (err) {
        failures.push(`${(err as Error).name}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async (label: string) => {
      running = false;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(1) : '-');
      console.info(`[health under load] ${label}: ${sorted.length} polls, p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms`);
      expect(failures, `/health failed during ${label}`).toEqual([]);
      expect(latencies.length, 'polls answered').toBeGreaterThan(0);
      return latencies;
    },
  };
}

/** A graphql-ws socket as `key`, resolved when the server acknowledged the connection. */
function connectSocket(key: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(s.wsUrl, 'graphql-transport-ws');
    sock.on('open', () => sock.send(JSON.stringify({ type: 'connection_init', payload: bearer(key) })));
    sock.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type === 'connection_ack') resolve(sock);
    });
    sock.on('close', (code) => reject(new Error(`closed with ${code} before the ack`)));
    sock.on('error', reject);
  });
}

beforeAll(async () => {
  s = await startTestServer({ env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: ADMIN, SLUICE_RATE_LIMIT: '0', SLUICE_PREVIEW_TIMEOUT_MS: '60000' } });
  readKey = await mint('READ');
  writeKey = await mint('WRITE');
});

afterAll(async () => {
  await s?.stop();
});

describe('/health stays responsive', () => {
  it('while 500 graphql-ws sockets connect at once, each with a key', async () => {
    const health = pollHealth();
    const sockets = await Promise.all(Array.from({ length: 500 }, () => connectSocket(readKey)));
    await health.stop('500 sockets connecting');
    expect(sockets.filter((w) => w.readyState === WebSocket.OPEN)).toHaveLength(500);
    for (const w of sockets) w.close();
  });

  it('while pushes flood a SUBSCRIPTION pipeline', async () => {
    const sourceId = await connector('push source', 'generator', { count: 1 });
    const destinationId = await connector('push sink', 'null', {});
    const p = await as(writeKey, `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`, {
      i: { name: 'flood', sourceId, destinationId, trigger: 'SUBSCRIPTION' },
    });
    const id = p.createPipeline.pipeline.id as string;
    await as(writeKey, `mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id } });
    await eventually(async () => (await as(writeKey, `query($id: ID!) { pipeline(id: $id) { state } }`, { id })).pipeline.state === 'READY');
    const t = await as(writeKey, `mutation($i: PipelineIdInput!) { createPushToken(input: $i) { ... on CreatePushTokenPayload { pushToken { token path } } } }`, { i: { id } });
    const { token, path: pushPath } = t.createPushToken.pushToken;
    const url = new URL(pushPath, s.url).href;
    const body = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ id: i, name: `record ${i}`, payload: 'x'.repeat(100) })));

    const health = pollHealth();
    const statuses: number[] = [];
    const deadline = Date.now() + 6_000;
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        while (Date.now() < deadline) {
          const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
          await res.text();
          statuses.push(res.status);
        }
      }),
    );
    await health.stop(`push flood (${statuses.length} pushes of 200 records)`);
    expect(statuses.length).toBeGreaterThan(25);
    expect(statuses.every((st) => st === 202), JSON.stringify([...new Set(statuses)])).toBe(true);
  });
});

describe('previews and discovery run off the API thread', () => {
  let wideCsv: string;
  let wideId: string;

  beforeAll(async () => {
    // 1.3 MB: a header of 100k columns and one data row.
    wideCsv = path.join(s.filesDir, 'wide.csv');
    const names = Array.from({ length: 100_000 }, (_, i) => `column${i}`);
    const values = Array.from({ length: 100_000 }, (_, i) => String(i % 10));
    fs.writeFileSync(wideCsv, `${names.join(',')}\n${values.join(',')}\n`);
    expect(fs.statSync(wideCsv).size).toBeGreaterThan(1_200_000);
    wideId = await connector('wide csv', 'csv', { path: wideCsv });
  });

  it('a 100k-column CSV: previewMapping and discoverConnector answer (data or RESOURCE_LIMIT) while /health keeps answering', async () => {
    const health = pollHealth();
    const [preview, discover] = await Promise.all([
      s.gql(
        `mutation($i: PreviewMappingInput!) { previewMapping(input: $i) { __typename ... on PreviewMappingPayload { records { output } } ... on Error { code message } ... on ResourceLimitError { limit } } }`,
        { i: { connectorId: wideId, spec: { mapping: { first: 'column0', last: 'column99999' }, passThrough: false }, limit: 5 } },
        bearer(writeKey),
      ),
      s.gql(
        `mutation($i: ConnectorIdInput!) { discoverConnector(input: $i) { __typename ... on DiscoverConnectorPayload { catalog { streams { name fields { name } } } } ... on Error { code message } ... on ResourceLimitError { limit } } }`,
        { i: { id: wideId } },
        bearer(writeKey),
      ),
    ]);
    await health.stop('wide-CSV preview and discovery');
    expect(preview.errors, JSON.stringify(preview.errors)).toBeUndefined();
    expect(discover.errors, JSON.stringify(discover.errors)).toBeUndefined();
    const pm = preview.data!.previewMapping;
    expect(['PreviewMappingPayload', 'ResourceLimitError']).toContain(pm.__typename);
    if (pm.__typename === 'PreviewMappingPayload') expect(pm.records).toEqual([{ output: { first: 0, last: 9 } }]);
    else expect(pm.code).toBe('RESOURCE_LIMIT');
    const dc = discover.data!.discoverConnector;
    expect(['DiscoverConnectorPayload', 'ResourceLimitError']).toContain(dc.__typename);
    if (dc.__typename === 'DiscoverConnectorPayload') expect(dc.catalog.streams[0].fields).toHaveLength(100_000);
    else expect(dc.code).toBe('RESOURCE_LIMIT');
  });
});
