/**
 * Server logs (pino JSON lines) through the real server: job start, finish and failure with
 * their ids and counters, schedule fires, webhook endpoint disablement, and refused API keys
 * — logged by their display prefix and reason, the key itself never.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { bearer, createConnectorId, mintKey, rawId, waitForJob } from '../helpers/graphql.js';

let s: TestServer;
let n = 0;
const servers = new Set<http.Server>();
/** Every key minted or presented here: none may appear in a log line. */
const secrets: string[] = [];

beforeAll(async () => {
  s = await startTestServer({ captureLogs: true, env: { SLUICE_LOG_LEVEL: 'info', SLUICE_WEBHOOK_POLL_MS: '50' } });
});
afterAll(async () => {
  await s?.stop();
  for (const srv of servers) srv.closeAllConnections();
  await Promise.all([...servers].map((srv) => new Promise((r) => srv.close(r))));
});

type Line = Record<string, any> & { level: number; msg: string };
const lines = (): Line[] => s.logs.map((l) => JSON.parse(l) as Line);
const find = (msg: string, pred: (l: Line) => boolean = () => true) => lines().filter((l) => l.msg === msg && pred(l));
const waitLine = (msg: string, pred: (l: Line) => boolean = () => true) => eventually(async () => find(msg, pred)[0], 30_000);

/** A local HTTP server answering every request with `status`. */
async function receiver(status: number): Promise<string> {
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status).end('x'));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  servers.add(srv);
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;
}

const CREATE_PIPELINE = `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`;

async function startPipeline(input: Record<string, unknown>): Promise<{ pipelineId: string; jobId: string }> {
  const p = await s.q(CREATE_PIPELINE, { i: { name: `logs ${++n}`, batchSize: 100, ...input } });
  expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
  const pipelineId = p.createPipeline.pipeline.id;
  const r = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, { i: { id: pipelineId } });
  return { pipelineId, jobId: r.startPipeline.pipeline.currentJob.id };
}

const job = (id: string) =>
  waitForJob(async () => (await s.q(`query($id: ID!) { job(id: $id) { status error recordsRead recordsWritten } }`, { id })).job, undefined, 60_000);

describe('server logs', () => {
  it('a job logs its start and its finish with ids, counters and duration', async () => {
    const src = await createConnectorId(s.q, `gen ${++n}`, 'generator', { count: 300 });
    const dst = await createConnectorId(s.q, `null ${++n}`, 'null', {});
    const { pipelineId, jobId } = await startPipeline({ sourceId: src, destinationId: dst });
    expect((await job(jobId)).status).toBe('SUCCEEDED');
    const [pid, jid] = [rawId(pipelineId), rawId(jobId)];
    const started = await waitLine('job started', (l) => l.jobId === jid);
    expect(started).toMatchObject({ level: 30, jobId: jid, pipelineId: pid, kind: 'SYNC', attempt: 1, trigger: 'START' });
    expect(started.workspaceId).toMatch(/^[0-9a-f-]{36}$/);
    const finished = await waitLine('job finished', (l) => l.jobId === jid);
    expect(finished).toMatchObject({ level: 30, jobId: jid, pipelineId: pid, workspaceId: started.workspaceId, status: 'SUCCEEDED', recordsRead: 300, recordsWritten: 300, recordsFailed: 0 });
    expect(finished.durationMs).toBeGreaterThanOrEqual(0);
    expect(find('job failed', (l) => l.jobId === jid)).toEqual([]);
  });

  it('a failed job logs its finish at error level and its failure with the error', async () => {
    const src = await createConnectorId(s.q, `gen ${++n}`, 'generator', { count: 50 });
    // 401: the credentials are wrong, the job fails at once (not retried).
    const dst = await createConnectorId(s.q, `sink ${++n}`, 'webhook', { url: await receiver(401) });
    const { pipelineId, jobId } = await startPipeline({ sourceId: src, destinationId: dst });
    const j = await job(jobId);
    expect(j.status).toBe('FAILED');
    const jid = rawId(jobId);
    const finished = await waitLine('job finished', (l) => l.jobId === jid);
    expect(finished).toMatchObject({ level: 50, status: 'FAILED', pipelineId: rawId(pipelineId), error: j.error });
    const failed = await waitLine('job failed', (l) => l.jobId === jid);
    expect(failed).toMatchObject({ level: 50, pipelineId: rawId(pipelineId), workspaceId: finished.workspaceId, error: j.error });
    expect(failed.error).toMatch(/401/);
  });

  it('a schedule fire logs the pipeline, its workspace and the job it queued', async () => {
    const src = await createConnectorId(s.q, `gen ${++n}`, 'generator', { count: 5 });
    const dst = await createConnectorId(s.q, `null ${++n}`, 'null', {});
    const { pipelineId } = await startPipeline({ sourceId: src, destinationId: dst, trigger: 'SCHEDULE', schedule: { cron: '* * * * * *' }, streams: [{ name: 'stream_1', syncMode: 'FULL_REFRESH' }] });
    const pid = rawId(pipelineId);
    const fired = await waitLine('schedule fired', (l) => l.pipelineId === pid && !!l.jobId);
    expect(fired).toMatchObject({ level: 30, pipelineId: pid });
    expect(fired.workspaceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof fired.scheduledAt).toBe('string');
    expect(typeof fired.lateMs).toBe('number');
    await s.q(`mutation($i: PipelineActionInput!) { stopPipeline(input: $i) { __typename } }`, { i: { id: pipelineId } });
  });

  it('a webhook endpoint disabled (410 Gone) is logged once with its reason', async () => {
    const url = await receiver(410);
    const r = await s.q(`mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { __typename ... on CreateWebhookEndpointPayload { webhookEndpoint { id } } } }`, {
      i: { url, eventTypes: ['CONNECTOR_CREATED'] },
    });
    const id = rawId(r.createWebhookEndpoint.webhookEndpoint.id);
    await createConnectorId(s.q, `trigger ${++n}`, 'null', {});
    const line = await waitLine('webhook endpoint disabled', (l) => l.endpointId === id);
    expect(line).toMatchObject({ level: 40, endpointId: id });
    expect(line.workspaceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(line.reason).toMatch(/410/);
    await createConnectorId(s.q, `trigger ${++n}`, 'null', {});
    await new Promise((res) => setTimeout(res, 200));
    expect(find('webhook endpoint disabled', (l) => l.endpointId === id)).toHaveLength(1);
  });

  it('a refused API key is logged by its prefix and reason (HTTP and graphql-ws); no key ever is', async () => {
    const remote = { 'x-forwarded-for': '203.0.113.9' };
    const unknown = `sk_${'Q'.repeat(43)}`;
    secrets.push(unknown);
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'refused-key-1', ...remote, ...bearer(unknown) },
      body: JSON.stringify({ query: '{ viewer { scope } }' }),
    });
    expect(res.status).toBe(401);
    const http401 = await waitLine('API key refused', (l) => l.requestId === 'refused-key-1');
    expect(http401).toMatchObject({ level: 40, reason: 'invalid', keyPrefix: unknown.slice(0, 11) });

    // A revoked key, over graphql-ws: refused at connection (4403).
    const { key, id } = await mintKey(s.q, 'to revoke', 'READ');
    secrets.push(key);
    await s.q(`mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { __typename } }`, { i: { id } });
    const code = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(s.wsUrl, 'graphql-transport-ws');
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } })));
      ws.on('close', (c) => resolve(c));
      ws.on('error', reject);
    });
    expect(code).toBe(4403);
    const wsLine = await waitLine('API key refused', (l) => l.keyPrefix === key.slice(0, 11));
    expect(wsLine).toMatchObject({ level: 40, reason: 'invalid' });
    expect(typeof wsLine.requestId).toBe('string');

    // Malformed credentials: a reason, no prefix.
    const bad = await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwYXNz', 'x-request-id': 'refused-key-2' }, body: '{}' });
    expect(bad.status).toBe(401);
    const malformed = await waitLine('API key refused', (l) => l.requestId === 'refused-key-2');
    expect(malformed.reason).toBe('malformed');
    expect(malformed.keyPrefix).toBeUndefined();

    // A key in use is logged by its prefix only, too.
    const good = await mintKey(s.q, 'in use', 'READ');
    secrets.push(good.key);
    expect((await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', ...remote, ...bearer(good.key) }, body: JSON.stringify({ query: '{ viewer { scope } }' }) })).status).toBe(200);
  });

  it('no log line carries an API key', () => {
    expect(secrets.length).toBeGreaterThan(0);
    const all = s.logs.join('\n');
    for (const key of secrets) {
      expect(all).not.toContain(key);
      expect(all).not.toContain(key.slice(11));
    }
  });
});
