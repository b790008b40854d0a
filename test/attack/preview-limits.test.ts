/**
 * Attack suite: previews, discovery and checks are bounded. Each runs in a worker thread
 * with a time limit (SLUICE_PREVIEW_TIMEOUT_MS, tiny here) and a memory limit
 * (SLUICE_PREVIEW_MEMORY_MB); one that goes past a limit is killed and answers the typed
 * ResourceLimitError (RESOURCE_LIMIT, with TIME or MEMORY) — never a masked 500 — while
 * /health keeps answering and the next preview works. Real server, a WRITE key, no local access.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { bearer, callAs, createConnectorId } from '../helpers/graphql.js';

const ADMIN = 'sk_' + Buffer.alloc(32, 44).toString('base64url');
const TIMEOUT_MS = 1_500;

let s: TestServer;
let key: string;
/** A local HTTP API that accepts requests and never answers them. */
let silent: http.Server;
let silentUrl: string;
const held: http.ServerResponse[] = [];

const as = <T = any>(query: string, variables?: Record<string, unknown>) => callAs<T>(s, key, query, variables);

const connector = (name: string, driver: string, config: Record<string, unknown>) => createConnectorId(as, name, driver, config);

const PREVIEW_MAPPING = `mutation($i: PreviewMappingInput!) { previewMapping(input: $i) {
  __typename ... on PreviewMappingPayload { records { output } } ... on Error { code message } ... on ResourceLimitError { limit } } }`;
const PREVIEW_PIPELINE = `mutation($i: PreviewPipelineInput!) { previewPipeline(input: $i) {
  __typename ... on PreviewPipelinePayload { records { output } } ... on Error { code message } ... on ResourceLimitError { limit } } }`;
const DISCOVER = `mutation($i: ConnectorIdInput!) { discoverConnector(input: $i) {
  __typename ... on DiscoverConnectorPayload { catalog { streams { name } } } ... on Error { code message } ... on ResourceLimitError { limit } } }`;
const CHECK = `mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { __typename ... on CheckConnectorPayload { result { ok message } } } }`;

async function healthOk(): Promise<boolean> {
  const res = await fetch(s.url.replace(/\/graphql$/, '/health'), { signal: AbortSignal.timeout(5_000) });
  return res.status === 200;
}

/** Runs `op` while polling /health every 50 ms; every poll must answer. */
async function withHealth<T>(op: () => Promise<T>): Promise<T> {
  let running = true;
  let answered = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        if (await healthOk()) answered++;
        else failures.push('not 200');
      } catch (err) {
        failures.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await op();
  } finally {
    running = false;
    await loop;
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(0);
  }
}

beforeAll(async () => {
  silent = http.createServer((_req, res) => void held.push(res));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/items`;
  s = await startTestServer({
    env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: ADMIN, SLUICE_PREVIEW_TIMEOUT_MS: String(TIMEOUT_MS), SLUICE_PREVIEW_MEMORY_MB: '64' },
  });
  const r = await s.gql(`mutation { createApiKey(input: { name: "writer", scope: WRITE }) { ... on CreateApiKeyPayload { key } } }`, {}, bearer(ADMIN));
  key = r.data!.createApiKey.key;
});

afterAll(async () => {
  await s?.stop();
  for (const res of held) res.destroy();
  silent?.closeAllConnections();
  await new Promise((r) => silent?.close(r));
});

describe('time limit', () => {
  it('a preview of a slow source is stopped at the limit with RESOURCE_LIMIT / TIME; the server stays responsive', async () => {
    // One record per second: 20 records would take 20 s.
    const slow = await connector('slow feed', 'generator', { count: 0, rate: 1 });
    const t0 = Date.now();
    const r = await withHealth(() => as(PREVIEW_MAPPING, { i: { connectorId: slow, spec: { mapping: { id: 'id' } }, limit: 20 } }));
    expect(r.previewMapping).toMatchObject({ __typename: 'ResourceLimitError', code: 'RESOURCE_LIMIT', limit: 'TIME' });
    expect(r.previewMapping.message).toContain(`time limit of ${TIMEOUT_MS} ms`);
    expect(Date.now() - t0).toBeLessThan(15_000);

    // The next preview runs normally.
    const fast = await connector('fast feed', 'generator', { count: 3 });
    const ok = await as(PREVIEW_MAPPING, { i: { connectorId: fast, spec: { mapping: { id: 'id' }, passThrough: false }, limit: 3 } });
    expect(ok.previewMapping.__typename).toBe('PreviewMappingPayload');
    expect(ok.previewMapping.records.map((x: any) => x.output)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
  });

  it('previewPipeline is bounded the same way', async () => {
    const slow = await connector('slow pipeline source', 'generator', { count: 0, rate: 1 });
    const sink = await connector('sink', 'null', {});
    const p = await as(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`, {
      i: { name: 'slow', sourceId: slow, destinationId: sink },
    });
    expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
    const r = await withHealth(() => as(PREVIEW_PIPELINE, { i: { id: p.createPipeline.pipeline.id, limit: 20 } }));
    expect(r.previewPipeline).toMatchObject({ __typename: 'ResourceLimitError', code: 'RESOURCE_LIMIT', limit: 'TIME' });
  });

  it('discovery and check of an API that never answers: RESOURCE_LIMIT / TIME, a FAILED DISCOVER job, a failed check', async () => {
    const api = await connector('silent api', 'http', { url: silentUrl, recordsPath: 'items' });
    const d = await withHealth(() => as(DISCOVER, { i: { id: api } }));
    expect(d.discoverConnector).toMatchObject({ __typename: 'ResourceLimitError', code: 'RESOURCE_LIMIT', limit: 'TIME' });
    // The request reached the API from inside the worker: the guard there honours the allow-list.
    expect(held.length).toBeGreaterThan(0);
    const jobs = await as(`query($id: ID!) { jobs(last: 1, filter: { connectorId: $id, kinds: [DISCOVER] }) { nodes { status error } } }`, { id: api });
    expect(jobs.jobs.nodes).toEqual([{ status: 'FAILED', error: expect.stringContaining('time limit') }]);
    const c = await withHealth(() => as(CHECK, { i: { id: api } }));
    expect(c.checkConnector.result.ok).toBe(false);
    expect(c.checkConnector.result.message).toContain('time limit');
  });
});

describe('memory limit', () => {
  it('a preview needing more than SLUICE_PREVIEW_MEMORY_MB is killed: RESOURCE_LIMIT / MEMORY; the server stays responsive', async () => {
    // 500 fields of 64 KiB strings per record: far beyond a 64 MB heap once answered.
    const huge = await connector('huge records', 'generator', { count: 10, shape: { fields: 500, stringLength: 65536 } });
    const r = await withHealth(() => as(PREVIEW_MAPPING, { i: { connectorId: huge, spec: { mapping: { id: 'id' } }, limit: 5 } }));
    expect(r.previewMapping).toMatchObject({ __typename: 'ResourceLimitError', code: 'RESOURCE_LIMIT', limit: 'MEMORY' });
    expect(r.previewMapping.message).toContain('memory limit of 64 MB');
    expect(await healthOk()).toBe(true);
    const d = await as(DISCOVER, { i: { id: huge } });
    expect(d.discoverConnector.__typename).toBe('DiscoverConnectorPayload');
  });
});
