/**
 * Webhooks through the real server, with real receivers on 127.0.0.1 that verify every
 * message with the reference `standardwebhooks` package: signing, filters, no self-loops,
 * ping, the delivery log, retries (500, 429 + Retry-After, hang, redirect), 410 and prolonged
 * failure disabling the endpoint, redelivery, replay, secret rotation with an overlap, and
 * nothing lost across a restart with undelivered events.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
  at: number;
}

type Answer = { status: number; headers?: Record<string, string> } | 'hang';

interface Receiver {
  url: string;
  port: number;
  received: Received[];
  answer: (r: Received, n: number) => Answer;
  close(): Promise<void>;
}

const open = new Set<http.Server>();

async function receiver(answer: Receiver['answer'] = () => ({ status: 200 }), port = 0): Promise<Receiver> {
  const received: Received[] = [];
  const hanging: http.ServerResponse[] = [];
  const r: Receiver = { url: '', port: 0, received, answer, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const rec: Received = {
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        headers: req.headers,
        body,
        json: JSON.parse(body),
        at: Date.now(),
      };
      received.push(rec);
      const a = r.answer(rec, received.length);
      if (a === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(a.status, a.headers ?? {});
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  open.add(server);
  r.port = (server.address() as AddressInfo).port;
  r.url = `http://127.0.0.1:${r.port}/hook`;
  r.close = () =>
    new Promise<void>((resolve) => {
      open.delete(server);
      for (const h of hanging) h.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

/** Verifies a received message with the reference implementation (throws when invalid). */
function verifyWith(secret: string, m: Received): any {
  return new Webhook(secret).verify(m.body, { 'webhook-id': m.id, 'webhook-timestamp': m.timestamp, 'webhook-signature': m.signature });
}

const ENV = {
  SLUICE_WEBHOOK_TIMEOUT_MS: '500',
  SLUICE_WEBHOOK_RETRY_BASE_MS: '20',
  SLUICE_WEBHOOK_MAX_AGE_MS: '60000',
  SLUICE_WEBHOOK_DISABLE_AFTER_MS: '2500',
  SLUICE_WEBHOOK_POLL_MS: '50',
};

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let csv: string;

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-wh-'));
  csv = path.join(dir, 'people.csv');
  writeCsv(csv, 3);
  s = await startTestServer({ dataDir: filesData, env: ENV });
});
afterAll(async () => {
  await s?.stop();
  await Promise.all([...open].map((srv) => new Promise((r) => { srv.closeAllConnections(); srv.close(r); })));
});

const CREATE = `mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
  __typename ... on CreateWebhookEndpointPayload { secret webhookEndpoint { id url enabled eventTypes } } ... on Error { code message } } }`;
const ENDPOINT = `query($id: ID!) { webhookEndpoint(id: $id) { id enabled disabledReason failingSince lastSuccessAt previousSecretExpiresAt
  deliveries(first: 100) { totalCount nodes { id webhookId eventType eventCursor status attempts lastStatusCode lastError payload
    attemptHistory { number at statusCode latencyMs error } } } } }`;

async function createEndpoint(srv: TestServer, input: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const r = await srv.q(CREATE, { i: input });
  expect(r.createWebhookEndpoint.__typename).toBe('CreateWebhookEndpointPayload');
  return { id: r.createWebhookEndpoint.webhookEndpoint.id, secret: r.createWebhookEndpoint.secret };
}

async function createConnector(srv: TestServer, name: string): Promise<string> {
  const r = await srv.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } } }`,
    // Relative to the files folder of whichever server `srv` is (the main one holds the file).
    { i: { name, driver: 'csv', config: { path: path.basename(csv) } } },
  );
  expect(r.createConnector.__typename).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

async function endpoint(srv: TestServer, id: string) {
  return (await srv.q(ENDPOINT, { id })).webhookEndpoint;
}

async function setEnabled(srv: TestServer, id: string, enabled: boolean) {
  const r = await srv.q(`mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) { __typename } }`, { i: { id, enabled } });
  expect(r.updateWebhookEndpoint.__typename).toBe('UpdateWebhookEndpointPayload');
}

describe('delivery and signatures', () => {
  it('delivers signed events that the reference library verifies, with a delivery log; tampering is rejected', async () => {
    const rx = await receiver();
    const { id, secret } = await createEndpoint(s, { url: rx.url, eventTypes: ['CONNECTOR_CREATED'], description: 'connectors' });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const bytes = Buffer.from(secret.slice('whsec_'.length), 'base64').length;
    expect(bytes).toBeGreaterThanOrEqual(24);
    expect(bytes).toBeLessThanOrEqual(64);

    const connectorId = await createConnector(s, 'signed');
    await s.q(`mutation { createMapping(input: { name: "not delivered", spec: { mapping: { a: "a" } } }) { __typename } }`);
    const [m] = await eventually(async () => (rx.received.length ? rx.received : null));
    const payload = verifyWith(secret, m!) as any;
    expect(payload).toMatchObject({ type: 'CONNECTOR_CREATED', data: { type: 'CONNECTOR_CREATED', connectorId } });
    expect(m!.id).toMatch(/^msg_/);
    expect(m!.headers['content-type']).toMatch(/application\/json/);
    expect(Math.abs(Number(m!.timestamp) - Date.now() / 1000)).toBeLessThan(30);

    // The receiver's checks: a tampered body, a forged stale timestamp and a wrong secret fail.
    expect(() => new Webhook(secret).verify(m!.body.replace('CONNECTOR_CREATED', 'CONNECTOR_DELETED'), { 'webhook-id': m!.id, 'webhook-timestamp': m!.timestamp, 'webhook-signature': m!.signature })).toThrow();
    const stale = String(Number(m!.timestamp) - 600);
    expect(() => new Webhook(secret).verify(m!.body, { 'webhook-id': m!.id, 'webhook-timestamp': stale, 'webhook-signature': m!.signature })).toThrow();
    const w = new Webhook(secret);
    const old = new Date(Date.now() - 600_000);
    expect(() => w.verify(m!.body, { 'webhook-id': m!.id, 'webhook-timestamp': String(Math.floor(old.getTime() / 1000)), 'webhook-signature': w.sign(m!.id, old, m!.body) })).toThrow(/too old/i);

    const ep = await eventually(async () => {
      const e = await endpoint(s, id);
      return e.deliveries.nodes[0]?.status === 'DELIVERED' ? e : null;
    });
    expect(ep.deliveries.totalCount).toBe(1); // the mapping event did not match the filter
    const d = ep.deliveries.nodes[0];
    expect(d).toMatchObject({ webhookId: m!.id, eventType: 'CONNECTOR_CREATED', attempts: 1, lastStatusCode: 200, lastError: null });
    expect(d.attemptHistory).toEqual([expect.objectContaining({ number: 1, statusCode: 200, error: null })]);
    expect(d.attemptHistory[0].latencyMs).toBeGreaterThanOrEqual(0);
    expect(ep.lastSuccessAt).not.toBeNull();
    // The secret is never readable again.
    const sdl = await s.q(`{ __type(name: "WebhookEndpoint") { fields { name } } }`);
    expect(sdl.__type.fields.map((f: any) => f.name)).not.toContain('secret');
    await setEnabled(s, id, false);
    await rx.close();
  });

  it('never sends an endpoint the events about itself; other endpoints get them', async () => {
    const rxA = await receiver();
    const rxB = await receiver();
    const a = await createEndpoint(s, { url: rxA.url, eventTypes: ['WEBHOOK_UPDATED', 'WEBHOOK_CREATED', 'CONNECTOR_CREATED'] });
    const b = await createEndpoint(s, { url: rxB.url, eventTypes: ['WEBHOOK_UPDATED', 'WEBHOOK_CREATED'] });
    await s.q(`mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) { __typename } }`, { i: { id: a.id, description: 'a2' } });
    await s.q(`mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) { __typename } }`, { i: { id: b.id, description: 'b2' } });
    await createConnector(s, 'marker');
    // A receives B's created + updated, then the connector event (in order); B receives A's update only.
    await eventually(async () => rxA.received.some((m) => m.json.type === 'CONNECTOR_CREATED') && rxB.received.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    const aboutA = (m: Received) => m.json.data.data?.endpointId;
    const idsA = rxA.received.map((m) => m.json.type);
    expect(idsA).toEqual(['WEBHOOK_CREATED', 'WEBHOOK_UPDATED', 'CONNECTOR_CREATED']);
    for (const m of rxA.received) verifyWith(a.secret, m);
    for (const m of rxB.received) verifyWith(b.secret, m);
    expect(rxB.received.map((m) => m.json.type)).toEqual(['WEBHOOK_UPDATED']);
    expect(new Set(rxA.received.map(aboutA).filter(Boolean)).size).toBe(1);
    // Neither ever got an event about itself.
    const decoded = (gid: string) => Buffer.from(gid, 'base64').toString('utf8').split(':')[1];
    expect(rxA.received.filter((m) => aboutA(m) === decoded(a.id))).toHaveLength(0);
    expect(rxB.received.filter((m) => aboutA(m) === decoded(b.id))).toHaveLength(0);
    await setEnabled(s, a.id, false);
    await setEnabled(s, b.id, false);
    await rxA.close();
    await rxB.close();
  });

  it('pingWebhook sends a signed test message and reports the answer', async () => {
    const rx = await receiver((_m, n) => (n === 1 ? { status: 204 } : { status: 503 }));
    const { id, secret } = await createEndpoint(s, { url: rx.url, eventTypes: ['JOB_FAILED'] });
    const PING = `mutation($i: WebhookEndpointIdInput!) { pingWebhook(input: $i) { __typename ... on PingWebhookPayload { ok statusCode latencyMs error webhookId } ... on Error { code } } }`;
    const ok = (await s.q(PING, { i: { id } })).pingWebhook;
    expect(ok).toMatchObject({ __typename: 'PingWebhookPayload', ok: true, statusCode: 204, error: null });
    expect(verifyWith(secret, rx.received[0]!)).toMatchObject({ type: 'WEBHOOK_PING' });
    expect(rx.received[0]!.id).toBe(ok.webhookId);
    const bad = (await s.q(PING, { i: { id } })).pingWebhook;
    expect(bad).toMatchObject({ ok: false, statusCode: 503, error: expect.stringMatching(/503/) });
    const missing = (await s.q(PING, { i: { id: Buffer.from('WebhookEndpoint:00000000-0000-7000-8000-000000000000').toString('base64') } })).pingWebhook;
    expect(missing).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    const invalid = await s.q(CREATE, { i: { url: 'ftp://example.com/x' } });
    expect(invalid.createWebhookEndpoint).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    const unknownPipeline = await s.q(CREATE, { i: { url: rx.url, pipelineIds: [Buffer.from('Pipeline:00000000-0000-7000-8000-000000000000').toString('base64')] } });
    expect(unknownPipeline.createWebhookEndpoint).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    await rx.close();
  });
});

describe('retries', () => {
  it('retries 500, honours 429 Retry-After, times out a hang, then delivers (same webhook-id)', async () => {
    const script: Answer[] = [{ status: 500 }, { status: 429, headers: { 'retry-after': '1' } }, 'hang', { status: 200 }];
    const rx = await receiver((_m, n) => script[n - 1] ?? { status: 200 });
    const { id, secret } = await createEndpoint(s, { url: rx.url, eventTypes: ['CONNECTOR_UPDATED'] });
    const c = await createConnector(s, 'flaky');
    await s.q(`mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { __typename } }`, { i: { id: c, name: 'flaky 2' } });
    const ep = await eventually(async () => {
      const e = await endpoint(s, id);
      return e.deliveries.nodes[0]?.status === 'DELIVERED' ? e : null;
    }, 20_000);
    expect(rx.received).toHaveLength(4);
    expect(new Set(rx.received.map((m) => m.id)).size).toBe(1);
    for (const m of rx.received) verifyWith(secret, m);
    // Retry-After: 1 second between the 429 and the next attempt.
    expect(rx.received[2]!.at - rx.received[1]!.at).toBeGreaterThanOrEqual(950);
    const d = ep.deliveries.nodes[0];
    expect(d.attempts).toBe(4);
    expect(d.attemptHistory.map((a: any) => a.statusCode)).toEqual([500, 429, null, 200]);
    expect(d.attemptHistory[2].error).toMatch(/timed out after 500 ms/);
    expect(d.attemptHistory[2].latencyMs).toBeGreaterThanOrEqual(450);
    expect(ep.enabled).toBe(true);
    expect(ep.failingSince).toBeNull();
    await setEnabled(s, id, false);
    await rx.close();
  });

  it('410 Gone disables the endpoint with an event', async () => {
    const rx = await receiver(() => ({ status: 410 }));
    const { id } = await createEndpoint(s, { url: rx.url, eventTypes: ['CONNECTOR_CREATED'] });
    await createConnector(s, 'gone');
    const ep = await eventually(async () => {
      const e = await endpoint(s, id);
      return e.enabled ? null : e;
    });
    expect(ep.disabledReason).toMatch(/410/);
    expect(ep.deliveries.nodes[0]).toMatchObject({ status: 'FAILED', lastStatusCode: 410, attempts: 1 });
    const ev = await s.q(`{ events(last: 5, filter: { types: [WEBHOOK_DISABLED] }) { nodes { message data } } }`);
    expect(ev.events.nodes.some((n: any) => n.message.includes('410') && id.length > 0)).toBe(true);
    await createConnector(s, 'gone 2');
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.received).toHaveLength(1);
    await rx.close();
  });

  it('a dead endpoint (redirecting) is disabled after prolonged failure and never blocks a healthy one', async () => {
    const target = await receiver();
    const dead = await receiver(() => ({ status: 302, headers: { location: target.url } }));
    const healthy = await receiver();
    const d = await createEndpoint(s, { url: dead.url, eventTypes: ['CONNECTOR_CREATED'] });
    const h = await createEndpoint(s, { url: healthy.url, eventTypes: ['CONNECTOR_CREATED'] });
    for (let i = 0; i < 5; i++) {
      await createConnector(s, `busy ${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await eventually(async () => healthy.received.length === 5);
    const ep = await eventually(async () => {
      const e = await endpoint(s, d.id);
      return e.enabled ? null : e;
    }, 15_000);
    expect(ep.disabledReason).toMatch(/failed for/);
    const errors = ep.deliveries.nodes.flatMap((n: any) => n.attemptHistory.map((a: any) => a.error));
    expect(errors.every((e: string) => /redirect not followed/.test(e))).toBe(true);
    expect(target.received).toHaveLength(0); // the redirect was never followed
    const ev = await s.q(`{ events(last: 3, filter: { types: [WEBHOOK_DISABLED] }) { nodes { message } } }`);
    expect(ev.events.nodes.some((n: any) => /failed for/.test(n.message))).toBe(true);
    for (const x of [target, dead, healthy]) await x.close();
    await setEnabled(s, h.id, false);
  });
});

describe('redelivery, replay and rotation', () => {
  it('redeliver re-sends one delivery; replayEvents re-sends a range; both with the original webhook-ids', async () => {
    const rx = await receiver();
    const { id, secret } = await createEndpoint(s, { url: rx.url, eventTypes: ['CONNECTOR_CREATED'] });
    for (let i = 0; i < 3; i++) await createConnector(s, `replay ${i}`);
    await eventually(async () => rx.received.length === 3);
    const first = rx.received.map((m) => m.id);
    const ep = await endpoint(s, id);
    const oldest = ep.deliveries.nodes.at(-1);
    const r = await s.q(`mutation($i: RedeliverWebhookInput!) { redeliverWebhook(input: $i) { __typename ... on RedeliverWebhookPayload { delivery { status } } } }`, {
      i: { deliveryId: oldest.id },
    });
    expect(r.redeliverWebhook.delivery.status).toBe('PENDING');
    await eventually(async () => rx.received.length === 4);
    expect(rx.received[3]!.id).toBe(oldest.webhookId);

    const REPLAY = `mutation($i: ReplayWebhookEventsInput!) { replayWebhookEvents(input: $i) { __typename ... on ReplayWebhookEventsPayload { queued } ... on Error { code message } } }`;
    const after = String(BigInt(oldest.eventCursor)); // the two later events
    const rep = await s.q(REPLAY, { i: { endpointId: id, afterCursor: after } });
    expect(rep.replayWebhookEvents).toEqual({ __typename: 'ReplayWebhookEventsPayload', queued: 2 });
    await eventually(async () => rx.received.length === 6);
    expect(rx.received.slice(4).map((m) => m.id)).toEqual(first.slice(1));
    for (const m of rx.received) verifyWith(secret, m);
    const bad = await s.q(REPLAY, { i: { endpointId: id, afterCursor: 'x' } });
    expect(bad.replayWebhookEvents.code).toBe('VALIDATION_FAILED');
    await setEnabled(s, id, false);
    await rx.close();
  });

  it('rotation: both signatures during the overlap, only the new one after', async () => {
    const rx = await receiver();
    const { id, secret: oldSecret } = await createEndpoint(s, { url: rx.url, eventTypes: ['CONNECTOR_CREATED'] });
    const ROTATE = `mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) { __typename ... on RotateWebhookSecretPayload { secret webhookEndpoint { previousSecretExpiresAt } } ... on Error { code } } }`;
    const rot = (await s.q(ROTATE, { i: { id, overlapSeconds: 2 } })).rotateWebhookSecret;
    const newSecret = rot.secret as string;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(oldSecret);
    expect(rot.webhookEndpoint.previousSecretExpiresAt).not.toBeNull();
    await createConnector(s, 'during overlap');
    await eventually(async () => rx.received.length === 1);
    const during = rx.received[0]!;
    expect(during.signature.split(' ')).toHaveLength(2);
    verifyWith(oldSecret, during);
    verifyWith(newSecret, during);

    await new Promise((r) => setTimeout(r, 2100));
    await createConnector(s, 'after overlap');
    await eventually(async () => rx.received.length === 2);
    const after = rx.received[1]!;
    expect(after.signature.split(' ')).toHaveLength(1);
    verifyWith(newSecret, after);
    expect(() => verifyWith(oldSecret, after)).toThrow();
    const bad = (await s.q(ROTATE, { i: { id, overlapSeconds: -1 } })).rotateWebhookSecret;
    expect(bad.code).toBe('VALIDATION_FAILED');
    const ev = await s.q(`{ events(last: 1, filter: { types: [WEBHOOK_SECRET_ROTATED] }) { nodes { message } } }`);
    expect(ev.events.nodes).toHaveLength(1);
    expect(JSON.stringify(ev.events.nodes)).not.toContain(newSecret.slice(6));
    await setEnabled(s, id, false);
    await rx.close();
  });
});

describe('durability', () => {
  it('delivers every event queued before a restart, none missing', async () => {
    const env = { ...ENV, SLUICE_WEBHOOK_DISABLE_AFTER_MS: '600000', SLUICE_WEBHOOK_RETRY_BASE_MS: '5' };
    let srv = await startTestServer({ env });
    try {
      let rx = await receiver();
      const port = rx.port;
      const { id, secret } = await createEndpoint(srv, { url: rx.url, eventTypes: ['CONNECTOR_CREATED'] });
      await rx.close(); // unreachable: deliveries fail and stay queued
      for (let i = 0; i < 10; i++) await createConnector(srv, `durable ${i}`);
      await eventually(async () => {
        const e = await endpoint(srv, id);
        return e.deliveries.totalCount === 10 && e.deliveries.nodes.some((n: any) => n.attempts > 0);
      });
      const before = await endpoint(srv, id);
      expect(before.deliveries.nodes.every((n: any) => n.status === 'PENDING')).toBe(true);
      const expected = new Set<string>(before.deliveries.nodes.map((n: any) => n.webhookId));
      await srv.stop();

      srv = await startTestServer({ dataDir: srv.dataDir, env });
      rx = await receiver(undefined, port);
      await eventually(async () => new Set(rx.received.map((m) => m.id)).size === 10, 30_000);
      const got = new Set(rx.received.map((m) => m.id));
      expect(got).toEqual(expected);
      for (const m of rx.received) verifyWith(secret, m);
      const after = await eventually(async () => {
        const e = await endpoint(srv, id);
        return e.deliveries.nodes.every((n: any) => n.status === 'DELIVERED') ? e : null;
      });
      expect(after.deliveries.totalCount).toBe(10);
      await rx.close();
    } finally {
      await srv.stop();
    }
  });
});
