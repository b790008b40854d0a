/**
 * The outbound-request guard through the real server: with nothing allowed (SLUICE_OUTBOUND_ALLOW
 * empty), an http source, a webhook destination and a webhook endpoint pointing at 127.0.0.1 are
 * refused with the guard's message and the local server never sees a request; with 127.0.0.1
 * allowed they work. The guard is process-wide, so the two servers run one after the other.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { createConnectorId } from '../helpers/graphql.js';

interface Local {
  url: string;
  paths: string[];
  close(): Promise<void>;
}

async function local(): Promise<Local> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: [{ id: 1, name: 'a' }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ENV = { SLUICE_WEBHOOK_TIMEOUT_MS: '2000', SLUICE_WEBHOOK_RETRY_BASE_MS: '60000', SLUICE_WEBHOOK_POLL_MS: '50' };

const CHECK = `mutation($id: ID!) { checkConnector(input: {id: $id}) { __typename ... on CheckConnectorPayload { result { ok message } } ... on Error { code message } } }`;
const CHECK_CONFIG = `mutation($i: CheckConnectorConfigInput!) { checkConnectorConfig(input: $i) {
  __typename ... on CheckConnectorConfigPayload { result { ok message } } ... on Error { code message } } }`;
const CREATE_ENDPOINT = `mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
  __typename ... on CreateWebhookEndpointPayload { webhookEndpoint { id } } ... on Error { code message } } }`;
const PING = `mutation($i: WebhookEndpointIdInput!) { pingWebhook(input: $i) { __typename ... on PingWebhookPayload { ok statusCode error } ... on Error { code message } } }`;
const DELIVERIES = `query($id: ID!) { webhookEndpoint(id: $id) { deliveries(first: 10) { nodes { status attempts lastStatusCode lastError } } } }`;

const connector = (s: TestServer, name: string, driver: string, config: Record<string, unknown>) => createConnectorId(s.q, name, driver, config);

async function endpoint(s: TestServer, url: string): Promise<string> {
  const r = (await s.q(CREATE_ENDPOINT, { i: { url, eventTypes: ['CONNECTOR_CREATED'] } })).createWebhookEndpoint;
  expect(r.__typename, JSON.stringify(r)).toBe('CreateWebhookEndpointPayload');
  return r.webhookEndpoint.id;
}

const refused = (host: string) => `${host} is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW`;

describe('SLUICE_OUTBOUND_ALLOW empty: local addresses are refused', () => {
  let s: TestServer;
  let api: Local;
  beforeAll(async () => {
    api = await local();
    s = await startTestServer({ env: { ...ENV, SLUICE_OUTBOUND_ALLOW: '' } });
  });
  afterAll(async () => {
    await s?.stop();
    await api?.close();
  });

  it('has no allow-list', () => {
    expect(s.config.outboundAllow).toEqual([]);
  });

  it('an http source at 127.0.0.1 fails its check with the guard message, without a request', async () => {
    const id = await connector(s, 'local api', 'http', {
      url: `http://u:pw-s3cr3t@127.0.0.1:${new URL(api.url).port}/things`,
      recordsPath: 'data',
      auth: { type: 'apiKey', in: 'query', name: 'api_key', value: 'k3y-s3cr3t' },
    });
    const r = (await s.q(CHECK, { id })).checkConnector;
    expect(r.__typename).toBe('CheckConnectorPayload');
    expect(r.result.ok).toBe(false);
    expect(r.result.message).toContain('refused: ');
    expect(r.result.message).toContain(refused('127.0.0.1'));
    expect(r.result.message).toContain(`${api.url}things?api_key=***`);
    expect(r.result.message).not.toContain('s3cr3t');
    // Other spellings of the loopback address and the metadata address are refused too.
    for (const url of [`http://2130706433:${new URL(api.url).port}/`, `http://[::ffff:127.0.0.1]:${new URL(api.url).port}/`, 'http://169.254.169.254/latest/meta-data/']) {
      const c = (await s.q(CHECK_CONFIG, { i: { driver: 'http', config: { url } } })).checkConnectorConfig;
      expect(c.result.ok, url).toBe(false);
      expect(c.result.message, url).toMatch(/refused: .* is a (loopback address|cloud metadata address)/);
    }
    expect(api.paths).toEqual([]);
  });

  it('a webhook destination and a json source reading a URL are refused the same way', async () => {
    const wh = (await s.q(CHECK_CONFIG, { i: { driver: 'webhook', config: { url: `${api.url}hook` } } })).checkConnectorConfig;
    expect(wh.result.ok).toBe(false);
    expect(wh.result.message).toContain(refused('127.0.0.1'));
    const js = (await s.q(CHECK_CONFIG, { i: { driver: 'json', config: { url: `${api.url}data.json` } } })).checkConnectorConfig;
    expect(js.result.ok).toBe(false);
    expect(js.result.message).toContain(refused('127.0.0.1'));
    expect(api.paths).toEqual([]);
  });

  it('a webhook endpoint at 127.0.0.1: the ping and the delivery fail with the guard error', async () => {
    const id = await endpoint(s, `${api.url}hook`);
    const ping = (await s.q(PING, { i: { id } })).pingWebhook;
    expect(ping).toMatchObject({ __typename: 'PingWebhookPayload', ok: false, statusCode: null });
    expect(ping.error).toBe(`webhook: request to ${api.url}hook refused: ${refused('127.0.0.1')}`);
    await connector(s, 'triggers a delivery', 'http', { url: 'https://api.example.com/x' });
    const d = await eventually(async () => {
      const nodes = (await s.q(DELIVERIES, { id })).webhookEndpoint.deliveries.nodes;
      return nodes.find((n: any) => n.attempts > 0);
    });
    expect(d).toMatchObject({ status: 'PENDING', attempts: 1, lastStatusCode: null });
    expect(d.lastError).toContain(refused('127.0.0.1'));
    expect(api.paths).toEqual([]);
  });
});

describe('SLUICE_OUTBOUND_ALLOW=127.0.0.1 (the test default): local addresses work', () => {
  let s: TestServer;
  let api: Local;
  beforeAll(async () => {
    api = await local();
    s = await startTestServer({ env: ENV });
  });
  afterAll(async () => {
    await s?.stop();
    await api?.close();
  });

  it('has the allow-list', () => {
    expect(s.config.outboundAllow).toEqual(['127.0.0.1']);
  });

  it('the http source checks ok; other private addresses stay refused', async () => {
    const id = await connector(s, 'local api', 'http', { url: `${api.url}things`, recordsPath: 'data' });
    const r = (await s.q(CHECK, { id })).checkConnector;
    expect(r.result, JSON.stringify(r)).toMatchObject({ ok: true });
    expect(api.paths).toContain('GET /things');
    const v6 = (await s.q(CHECK_CONFIG, { i: { driver: 'http', config: { url: `http://[::1]:${new URL(api.url).port}/things` } } })).checkConnectorConfig;
    expect(v6.result.message).toContain(refused('::1'));
    const priv = (await s.q(CHECK_CONFIG, { i: { driver: 'http', config: { url: 'http://10.0.0.5/things' } } })).checkConnectorConfig;
    expect(priv.result.message).toContain('10.0.0.5 is a private address; allow it with SLUICE_OUTBOUND_ALLOW');
  });

  it('the webhook ping and deliveries reach the endpoint', async () => {
    const id = await endpoint(s, `${api.url}hook`);
    const ping = (await s.q(PING, { i: { id } })).pingWebhook;
    expect(ping).toMatchObject({ ok: true, statusCode: 200, error: null });
    await connector(s, 'triggers a delivery', 'http', { url: 'https://api.example.com/x' });
    await eventually(async () => (await s.q(DELIVERIES, { id })).webhookEndpoint.deliveries.nodes.some((n: any) => n.status === 'DELIVERED'));
    expect(api.paths.filter((p) => p === 'POST /hook').length).toBeGreaterThanOrEqual(2);
  });
});
