/**
 * Prometheus metrics at GET /metrics through the real server: job, record and duration
 * metrics after a job ran, GraphQL operation timing by name, open subscriptions, the queue
 * gauge and Node's default metrics; who may read them (keyless local access, an ADMIN key of
 * the default workspace; nobody else); a retried job counts each record once.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, subscribe, type TestServer } from '../helpers/server.js';
import { bearer, createConnectorId, mintKey, waitForJob } from '../helpers/graphql.js';
import { Metrics } from '../../src/observability/metrics.js';

let s: TestServer;
let metricsUrl: string;
let n = 0;
const servers = new Set<http.Server>();

beforeAll(async () => {
  s = await startTestServer();
  metricsUrl = new URL('/metrics', s.url).href;
});
afterAll(async () => {
  await s?.stop();
  for (const srv of servers) srv.closeAllConnections();
  await Promise.all([...servers].map((srv) => new Promise((r) => srv.close(r))));
});

/** One sample's value: the series `name` whose labels include `labels`; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function scrape(headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(metricsUrl, { headers });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

const CREATE_PIPELINE = `mutation CreateMetricsPipeline($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`;
const START = `mutation StartMetricsPipeline($i: PipelineActionInput!) { startPipeline(input: $i) { __typename ... on StartPipelinePayload { pipeline { currentJob { id } } } ... on Error { code message } } }`;
const JOB = `query MetricsJob($id: ID!) { job(id: $id) { status attempts error recordsRead recordsWritten recordsFailed attemptHistory { number status recordsWritten } } }`;

async function runPipeline(sourceId: string, destinationId: string, extra: Record<string, unknown> = {}) {
  const p = await s.q(CREATE_PIPELINE, { i: { name: `metrics ${++n}`, sourceId, destinationId, batchSize: 100, ...extra } });
  expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
  const started = await s.q(START, { i: { id: p.createPipeline.pipeline.id } });
  expect(started.startPipeline.__typename, JSON.stringify(started)).toBe('StartPipelinePayload');
  return waitForJob(async () => (await s.q(JOB, { id: started.startPipeline.pipeline.currentJob.id })).job, undefined, 60_000);
}

const counters = (text: string) => ({
  read: sample(text, 'sluice_records_read_total') ?? 0,
  written: sample(text, 'sluice_records_written_total') ?? 0,
  failed: sample(text, 'sluice_records_failed_total') ?? 0,
  bytes: sample(text, 'sluice_bytes_written_total') ?? 0,
  succeeded: sample(text, 'sluice_jobs_total', { kind: 'SYNC', status: 'SUCCEEDED' }) ?? 0,
  retrying: sample(text, 'sluice_jobs_total', { kind: 'SYNC', status: 'RETRYING' }) ?? 0,
  durations: sample(text, 'sluice_job_duration_seconds_count', { kind: 'SYNC', status: 'SUCCEEDED' }) ?? 0,
});

describe('GET /metrics', () => {
  it('counts a job of N records, its status and duration; times GraphQL operations by name; serves the queue gauge and default metrics', async () => {
    const N = 750;
    const before = counters(await scrape());
    const src = await createConnectorId(s.q, `gen ${++n}`, 'generator', { count: N });
    const dst = await createConnectorId(s.q, `null ${++n}`, 'null', {});
    const job = await runPipeline(src, dst);
    expect(job).toMatchObject({ status: 'SUCCEEDED', recordsRead: N, recordsWritten: N });

    const text = await scrape();
    const after = counters(text);
    expect(after.written - before.written).toBeGreaterThanOrEqual(N);
    // One job ran in this process since the first scrape: exactly its records.
    expect(after.written - before.written).toBe(N);
    expect(after.read - before.read).toBe(N);
    expect(after.succeeded - before.succeeded).toBe(1);
    expect(after.durations - before.durations).toBe(1);
    expect(sample(text, 'sluice_job_duration_seconds_bucket', { kind: 'SYNC', status: 'SUCCEEDED', le: '21600' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'sluice_job_duration_seconds_sum', { kind: 'SYNC', status: 'SUCCEEDED' })).toBeGreaterThan(0);

    // GraphQL operations by type and name; the anonymous ones under "anonymous".
    expect(sample(text, 'sluice_graphql_request_duration_seconds_count', { operation_type: 'mutation', operation_name: 'StartMetricsPipeline' })).toBe(1);
    expect(sample(text, 'sluice_graphql_request_duration_seconds_count', { operation_type: 'query', operation_name: 'MetricsJob' })).toBeGreaterThanOrEqual(1);
    await s.q(`{ viewer { scope } }`);
    expect(sample(await scrape(), 'sluice_graphql_request_duration_seconds_count', { operation_type: 'query', operation_name: 'anonymous' })).toBeGreaterThanOrEqual(1);

    // The queue gauge reads the database at scrape time; nothing is waiting now.
    for (const state of ['queued', 'running', 'paused']) expect(sample(text, 'sluice_queue_jobs', { state }), state).toBe(0);
    expect(sample(text, 'sluice_webhook_deliveries_total', { outcome: 'delivered' })).toBe(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \S+$/m);
    expect(text).toMatch(/^# TYPE sluice_job_duration_seconds histogram$/m);
  });

  it('sluice_subscriptions_active follows open subscriptions (graphql-ws)', async () => {
    const active = async () => sample(await scrape(), 'sluice_subscriptions_active');
    expect(await active()).toBe(0);
    const client = s.ws();
    const sub = subscribe(client, `subscription MetricsEvents { events { cursor type } }`);
    await eventually(async () => (await active()) === 1);
    sub.stop();
    await eventually(async () => (await active()) === 0);
  });

  it('counts webhook delivery attempts by outcome', async () => {
    let answer = 200;
    const rx = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(answer).end('x'));
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    servers.add(rx);
    const url = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/hook`;
    const outcome = async (o: string) => sample(await scrape(), 'sluice_webhook_deliveries_total', { outcome: o }) ?? 0;
    const [delivered, disabled] = [await outcome('delivered'), await outcome('disabled')];
    const r = await s.q(`mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { __typename } }`, { i: { url, eventTypes: ['CONNECTOR_CREATED'] } });
    expect(r.createWebhookEndpoint.__typename).toBe('CreateWebhookEndpointPayload');
    await createConnectorId(s.q, `hooked ${++n}`, 'null', {});
    await eventually(async () => (await outcome('delivered')) === delivered + 1);
    answer = 410;
    await createConnectorId(s.q, `hooked ${++n}`, 'null', {});
    await eventually(async () => (await outcome('disabled')) === disabled + 1);
  });

  it('is served to local access and to an ADMIN key of the default workspace; a remote caller needs one (401), any other key is refused (403)', async () => {
    const remote = { 'x-forwarded-for': '203.0.113.9' };
    const refused = await fetch(metricsUrl, { headers: remote });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('Bearer');
    expect(await refused.text()).not.toContain('sluice_');
    expect((await fetch(metricsUrl, { headers: { ...remote, ...bearer(`sk_${'x'.repeat(43)}`) } })).status).toBe(401);

    const admin = await mintKey(s.q, 'metrics scraper', 'ADMIN');
    const text = await scrape({ ...remote, ...bearer(admin.key) });
    expect(text).toContain('sluice_jobs_total');

    const reader = await mintKey(s.q, 'metrics reader', 'READ');
    const forbidden = await fetch(metricsUrl, { headers: { ...remote, ...bearer(reader.key) } });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ errors: [{ extensions: { code: 'FORBIDDEN' } }] });

    // Another workspace's ADMIN key is not the instance's operator either.
    const ws = await s.q(`mutation { createWorkspace(input: { name: "metrics tenant" }) { __typename ... on CreateWorkspacePayload { key apiKey { scope } } ... on Error { code message } } }`);
    expect(ws.createWorkspace).toMatchObject({ __typename: 'CreateWorkspacePayload', apiKey: { scope: 'ADMIN' } });
    expect((await fetch(metricsUrl, { headers: { ...remote, ...bearer(ws.createWorkspace.key) } })).status).toBe(403);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(405);
  });

  it('a job retried from its checkpoint counts each record once', async () => {
    const N = 1000;
    // The sink refuses its third request once (503, retryable): the first attempt has written 200 records.
    let requests = 0;
    let accepted = 0;
    const sink = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests++;
        if (requests === 3) {
          res.writeHead(503).end('try later');
          return;
        }
        accepted += (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { records: unknown[] }).records.length;
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    servers.add(sink);
    const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/sink`;

    const before = counters(await scrape());
    const src = await createConnectorId(s.q, `gen ${++n}`, 'generator', { count: N });
    const dst = await createConnectorId(s.q, `sink ${++n}`, 'webhook', { url, batchSize: 100, retry: { maxAttempts: 1 } });
    const job = await runPipeline(src, dst, { maxAttempts: 3, retryBackoffMs: 200 });
    expect(job.status, JSON.stringify(job)).toBe('SUCCEEDED');
    expect(job.attempts).toBe(2);
    // The first attempt got records through before it failed (cumulative totals, as stored).
    expect(job.attemptHistory[0]).toMatchObject({ number: 1, status: 'FAILED', recordsWritten: 200 });
    expect(job.recordsWritten).toBe(N);
    expect(accepted).toBe(N);

    const after = counters(await scrape());
    // Attempt 1 wrote 200 and attempt 2 the other 800; counting cumulative totals per attempt would say 1200.
    expect(after.written - before.written).toBe(N);
    expect(after.read - before.read).toBe(job.recordsRead);
    expect(after.failed - before.failed).toBe(job.recordsFailed);
    expect(after.bytes - before.bytes).toBeGreaterThan(0);
    expect(after.retrying - before.retrying).toBe(1);
    expect(after.succeeded - before.succeeded).toBe(1);
  });
});

describe('Metrics', () => {
  it('keeps GraphQL operation names bounded: past the cap (or too long) they count as "other"; unnamed ones as "anonymous"', async () => {
    const m = new Metrics({ maxOperationNames: 2, defaultMetrics: false });
    for (const name of ['A', 'B', 'C', 'A', null, 'x'.repeat(500)]) m.graphqlOperation('query', name, 0.01);
    const text = await m.scrape();
    const count = (operation_name: string) => sample(text, 'sluice_graphql_request_duration_seconds_count', { operation_type: 'query', operation_name });
    expect([count('A'), count('B'), count('C'), count('anonymous'), count('other')]).toEqual([2, 1, undefined, 1, 2]);
    // Its own registry: nothing from the default one, nothing from the servers above.
    expect(text).not.toContain('process_resident_memory_bytes');
    expect(sample(text, 'sluice_records_written_total')).toBe(0);
  });
});
