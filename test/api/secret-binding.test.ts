/**
 * Ciphertexts bound to their rows, through the real server: a sealed secret copied in the
 * database into another connector, another field of the same connector, a connector from an
 * authentication, or another webhook endpoint does not decrypt there — checks, jobs and
 * deliveries fail with a clear error and nothing is sent with the other row's secret (the
 * local API and receivers on 127.0.0.1 see every request). Sending the secret again repairs the
 * row; a placeholder over an unreadable value is VALIDATION_FAILED. Secrets stored as v1 (before
 * binding) keep working, are re-sealed bound at the next start (a v1 value that does not decrypt
 * is left and named in a warning), and a further start changes nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealV1 } from '../helpers/keyring.js';
import { eventually, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { rawId } from '../helpers/graphql.js';

const TOKEN = { a: 'tok-A-2f8e1c', b: 'tok-B-9d3a7b', x: 'tok-X-5c6d1e', d: 'tok-D-0a1b2c', e: 'tok-E-3d4e5f', key: 'key-H-7g8h9i' };
const VALID = new Set(Object.values(TOKEN));

interface Seen {
  path: string;
  authorization: string;
  apiKey: string;
  body: string;
  headers: http.IncomingHttpHeaders;
}

let api: http.Server;
let base = '';
const seen: Seen[] = [];

function startApi(): Promise<void> {
  api = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ path: url.pathname, authorization: req.headers.authorization ?? '', apiKey: String(req.headers['x-api-key'] ?? ''), body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      if (url.pathname.startsWith('/hook')) {
        res.writeHead(204);
        return res.end();
      }
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '') || String(req.headers['x-api-key'] ?? '');
      res.writeHead(VALID.has(token) ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(VALID.has(token) ? [{ id: 1 }] : { error: 'unauthorized' }));
    });
  });
  return new Promise((resolve) =>
    api.listen(0, '127.0.0.1', () => {
      base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
      resolve();
    }),
  );
}

const ENV = { SLUICE_WEBHOOK_POLL_MS: '50', SLUICE_WEBHOOK_RETRY_BASE_MS: '60000' };
const ERR = `__typename ... on Error { code message ... on ValidationError { fieldErrors { path message } } }`;

let s: TestServer;
let dataDir: string;

beforeAll(async () => {
  await startApi();
  dataDir = tempDir('sluice-binding-');
  s = await startTestServer({ dataDir, env: ENV });
});
afterAll(async () => {
  await s?.stop().catch(() => undefined);
  api.closeAllConnections();
  await new Promise((r) => api.close(r));
});

/** The database id inside a Relay global id. */
const prisma = () => s.app.services.database.prisma;

async function createConnector(name: string, config: Record<string, unknown>, authenticationId?: string): Promise<string> {
  const r = await s.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ${ERR} ... on CreateConnectorPayload { connector { id } } } }`, {
    i: { name, driver: 'http', config, ...(authenticationId ? { authenticationId } : {}) },
  });
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

async function createBearerAuth(name: string, token: string): Promise<string> {
  const r = await s.q(`mutation($i: CreateAuthenticationInput!) { createAuthentication(input: $i) { ${ERR} ... on CreateAuthenticationPayload { authentication { id } } } }`, {
    i: { name, bearer: { token } },
  });
  expect(r.createAuthentication.__typename, JSON.stringify(r)).toBe('CreateAuthenticationPayload');
  return r.createAuthentication.authentication.id;
}

async function createEndpoint(url: string): Promise<{ id: string; secret: string }> {
  const r = await s.q(`mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { ${ERR} ... on CreateWebhookEndpointPayload { secret webhookEndpoint { id } } } }`, {
    i: { url, eventTypes: ['CONNECTOR_CHECKED'] },
  });
  expect(r.createWebhookEndpoint.__typename, JSON.stringify(r)).toBe('CreateWebhookEndpointPayload');
  return { id: r.createWebhookEndpoint.webhookEndpoint.id, secret: r.createWebhookEndpoint.secret };
}

async function check(id: string): Promise<{ ok: boolean; message: string }> {
  const r = await s.q(`mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { ${ERR} ... on CheckConnectorPayload { result { ok message } } } }`, { i: { id } });
  expect(r.checkConnector.__typename, JSON.stringify(r)).toBe('CheckConnectorPayload');
  return r.checkConnector.result;
}

async function connectorConfig(id: string): Promise<Record<string, any>> {
  const rows = await prisma().$queryRawUnsafe<{ config: Record<string, any> }[]>(`SELECT config FROM "Connector" WHERE id = $1::uuid`, rawId(id));
  return rows[0]!.config;
}

async function setConnectorConfig(id: string, config: unknown): Promise<void> {
  await prisma().$executeRawUnsafe(`UPDATE "Connector" SET config = $1::jsonb WHERE id = $2::uuid`, JSON.stringify(config), rawId(id));
}

/** Requests the local API received with a given credential since `from`. */
const usedSince = (from: number, credential: string) => seen.slice(from).filter((r) => r.authorization.includes(credential) || r.apiKey === credential);

const signedBy = (secret: string, r: Seen) =>
  new Webhook(secret).verify(r.body, { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) });

describe('a ciphertext copied into another row or field', () => {
  const ids = {} as Record<'a' | 'b' | 'h' | 'x' | 'viaX' | 'pipeline', string>;

  it('setup: every connector works with its own secret', async () => {
    ids.a = await createConnector('a', { url: `${base}/items?who=a`, auth: { type: 'bearer', token: TOKEN.a } });
    ids.b = await createConnector('b', { url: `${base}/items?who=b`, auth: { type: 'bearer', token: TOKEN.b } });
    ids.h = await createConnector('h', { url: `${base}/items?who=h`, auth: { type: 'apiKey', name: 'x-api-key', value: TOKEN.key } });
    ids.x = await createBearerAuth('x', TOKEN.x);
    ids.viaX = await createConnector('via x', { url: `${base}/items?who=viaX` }, ids.x);
    for (const id of [ids.a, ids.b, ids.h, ids.viaX]) expect(await check(id)).toMatchObject({ ok: true });
    const a = await connectorConfig(ids.a);
    expect(a.auth.token).toMatch(/^enc:v2:/);
  });

  it('into another connector: the check fails clearly and the other row’s secret is never sent', async () => {
    const a = await connectorConfig(ids.a);
    const b = await connectorConfig(ids.b);
    await setConnectorConfig(ids.b, { ...b, auth: { ...b.auth, token: a.auth.token } });
    const from = seen.length;
    const r = await check(ids.b);
    expect(r.ok).toBe(false);
    expect(r.message).toContain('cannot decrypt the secrets of connector "b"');
    expect(r.message).toContain(`the encrypted secret of connector:${rawId(ids.b)}:config.auth.token failed authentication`);
    expect(r.message).toContain('sealed for another row or field');
    expect(r.message).not.toContain(TOKEN.a);
    expect(seen.length).toBe(from); // nothing was sent at all

    // A job reading from it fails the same way, without a request.
    const p = await s.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`, {
      i: { name: 'b to null', sourceId: ids.b, destinationId: await nullDestination(), writeMode: 'APPEND', streams: [{ name: 'items' }], maxAttempts: 1 },
    });
    expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
    ids.pipeline = p.createPipeline.pipeline.id;
    const job = await runPipeline(ids.pipeline);
    expect(job.status).toBe('FAILED');
    expect(job.error).toMatch(/cannot prepare the connectors' credentials: .*connector:[0-9a-f-]+:config\.auth\.token failed authentication/);
    expect(job.error).not.toContain(TOKEN.a);
    expect(usedSince(from, TOKEN.a)).toEqual([]);
    expect(seen.slice(from).filter((x) => x.path === '/items')).toEqual([]);
    // The connector it was copied from is unaffected.
    expect(await check(ids.a)).toMatchObject({ ok: true });
  });

  it('keeping the unreadable value through the placeholder is VALIDATION_FAILED; sending the secret repairs it', async () => {
    const keep = await s.q(`mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { ${ERR} } }`, {
      i: { id: ids.b, config: { url: `${base}/items?who=b`, auth: { type: 'bearer', token: '**********' } } },
    });
    expect(keep.updateConnector).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(keep.updateConnector.fieldErrors).toEqual([{ path: 'config.auth.token', message: expect.stringContaining('the stored secret cannot be decrypted') }]);
    // A rename alone leaves the unreadable value as it is (and does not fail).
    const rename = await s.q(`mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { ${ERR} } }`, { i: { id: ids.b, name: 'b renamed' } });
    expect(rename.updateConnector.__typename).toBe('UpdateConnectorPayload');
    expect((await check(ids.b)).ok).toBe(false);

    const fix = await s.q(`mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { ${ERR} } }`, {
      i: { id: ids.b, config: { url: `${base}/items?who=b`, auth: { type: 'bearer', token: TOKEN.b } } },
    });
    expect(fix.updateConnector.__typename, JSON.stringify(fix)).toBe('UpdateConnectorPayload');
    const from = seen.length;
    expect(await check(ids.b)).toMatchObject({ ok: true });
    expect(usedSince(from, TOKEN.b)).toHaveLength(1);
    expect((await runPipeline(ids.pipeline)).status).toBe('SUCCEEDED');
  });

  it('into another field of the same connector, or from an authentication: refused the same way', async () => {
    // h's apiKey value moved to a bearer token of the same row.
    const h = await connectorConfig(ids.h);
    await setConnectorConfig(ids.h, { ...h, auth: { type: 'bearer', token: h.auth.value } });
    const from = seen.length;
    const r = await check(ids.h);
    expect(r.ok).toBe(false);
    expect(r.message).toContain(`connector:${rawId(ids.h)}:config.auth.token failed authentication`);

    // The authentication x's token pasted into connector a.
    const rows = await prisma().$queryRawUnsafe<{ config: Record<string, string> }[]>(`SELECT config FROM "Authentication" WHERE id = $1::uuid`, rawId(ids.x));
    const a = await connectorConfig(ids.a);
    await setConnectorConfig(ids.a, { ...a, auth: { type: 'bearer', token: rows[0]!.config.token } });
    const ra = await check(ids.a);
    expect(ra.ok).toBe(false);
    expect(ra.message).toContain(`connector:${rawId(ids.a)}:config.auth.token failed authentication`);
    expect(usedSince(from, TOKEN.key)).toEqual([]);
    expect(usedSince(from, TOKEN.x)).toEqual([]);
    expect(seen.length).toBe(from);
    // And the authentication itself still works where it belongs.
    expect(await check(ids.viaX)).toMatchObject({ ok: true });
  });

  it('into another webhook endpoint: its deliveries fail clearly, nothing is signed with the other secret', async () => {
    const w1 = await createEndpoint(`${base}/hook1`);
    const w2 = await createEndpoint(`${base}/hook2`);
    await prisma().$executeRawUnsafe(
      `UPDATE "WebhookEndpoint" SET secret = (SELECT secret FROM "WebhookEndpoint" WHERE id = $1::uuid) WHERE id = $2::uuid`,
      rawId(w1.id),
      rawId(w2.id),
    );
    s.app.services.webhooks.invalidate();
    const from = seen.length;
    await check(ids.viaX); // a CONNECTOR_CHECKED event for both endpoints
    const got = await eventually(async () => seen.slice(from).find((r) => r.path === '/hook1'));
    expect(() => signedBy(w1.secret, got)).not.toThrow();
    const attempt = await eventually(async () => {
      const r = await s.q(`query($id: ID!) { webhookEndpoint(id: $id) { deliveries(first: 5) { nodes { status attempts attemptHistory { statusCode error } } } } }`, { id: w2.id });
      return r.webhookEndpoint.deliveries.nodes.find((d: any) => d.attempts > 0);
    });
    expect(attempt.attemptHistory[0].statusCode).toBeNull();
    expect(attempt.attemptHistory[0].error).toContain(`the encrypted secret of webhook:${rawId(w2.id)}:secret failed authentication`);
    expect(seen.slice(from).filter((r) => r.path === '/hook2')).toEqual([]);
  });
});

async function nullDestination(): Promise<string> {
  const r = await s.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ${ERR} ... on CreateConnectorPayload { connector { id } } } }`, {
    i: { name: `null ${seen.length}-${Math.random()}`, driver: 'null', config: {} },
  });
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

/** Starts the pipeline (stopped) or runs it again, and waits for the job. */
async function runPipeline(id: string): Promise<{ status: string; error: string | null }> {
  const p = await s.q(`query($id: ID!) { pipeline(id: $id) { state currentJob { id status } } }`, { id });
  let jobId: string;
  if (p.pipeline.state === 'STOP') {
    const r = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ${ERR} ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, { i: { id } });
    expect(r.startPipeline.__typename, JSON.stringify(r)).toBe('StartPipelinePayload');
    jobId = r.startPipeline.pipeline.currentJob.id;
  } else {
    const r = await s.q(`mutation($i: PipelineIdInput!) { runPipeline(input: $i) { ${ERR} ... on RunPipelinePayload { job { id } } } }`, { i: { id } });
    expect(r.runPipeline.__typename, JSON.stringify(r)).toBe('RunPipelinePayload');
    jobId = r.runPipeline.job.id;
  }
  return eventually(async () => {
    const j = await s.q(`query($id: ID!) { job(id: $id) { status error } }`, { id: jobId });
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.job.status) ? j.job : null;
  }, 60_000);
}

describe('v1 secrets from before binding', () => {
  const ids = {} as Record<'d' | 'e' | 'viaE' | 'g' | 'w', string>;
  let wSecret = '';

  /** Every stored secret value of the rows under test, by name. */
  async function stored(): Promise<Record<'d' | 'e' | 'g' | 'w', string>> {
    const [d, g] = [await connectorConfig(ids.d), await connectorConfig(ids.g)];
    const e = await prisma().$queryRawUnsafe<{ config: Record<string, string> }[]>(`SELECT config FROM "Authentication" WHERE id = $1::uuid`, rawId(ids.e));
    const w = await prisma().$queryRawUnsafe<{ secret: string }[]>(`SELECT secret FROM "WebhookEndpoint" WHERE id = $1::uuid`, rawId(ids.w));
    return { d: d.auth.token, e: e[0]!.config.token!, g: g.auth.token, w: w[0]!.secret };
  }

  it('keep working, are bound at the next start, and a further start changes nothing', async () => {
    ids.d = await createConnector('d', { url: `${base}/items?who=d`, auth: { type: 'bearer', token: 'placeholder-d' } });
    ids.e = await createBearerAuth('e', 'placeholder-e');
    ids.viaE = await createConnector('via e', { url: `${base}/items?who=viaE` }, ids.e);
    ids.g = await createConnector('g', { url: `${base}/items?who=g`, auth: { type: 'bearer', token: 'placeholder-g' } });
    const w = await createEndpoint(`${base}/hook3`);
    ids.w = w.id;
    wSecret = w.secret;

    // Rewrite them as an older Sluice stored them: v1 under the key file's key, bound to nothing.
    const key = (JSON.parse(fs.readFileSync(path.join(dataDir, 'secret-keys.json'), 'utf8')) as { keys: { id: string; key: string }[] }).keys[0]!;
    const d = await connectorConfig(ids.d);
    await setConnectorConfig(ids.d, { ...d, auth: { type: 'bearer', token: sealV1(key.id, key.key, TOKEN.d) } });
    await prisma().$executeRawUnsafe(`UPDATE "Authentication" SET config = jsonb_set(config, '{token}', to_jsonb($1::text)) WHERE id = $2::uuid`, sealV1(key.id, key.key, TOKEN.e), rawId(ids.e));
    await prisma().$executeRawUnsafe(`UPDATE "WebhookEndpoint" SET secret = $1 WHERE id = $2::uuid`, sealV1(key.id, key.key, wSecret), rawId(ids.w));
    // g: a v1 value that does not decrypt (another key under the same id).
    const g = await connectorConfig(ids.g);
    await setConnectorConfig(ids.g, { ...g, auth: { type: 'bearer', token: sealV1(key.id, Buffer.alloc(32, 7).toString('base64'), 'whatever') } });
    s.app.services.webhooks.invalidate();

    const before = await stored();
    for (const v of Object.values(before)) expect(v).toMatch(/^enc:v1:/);
    // v1 still opens at run time.
    let from = seen.length;
    expect(await check(ids.d)).toMatchObject({ ok: true });
    expect(usedSince(from, TOKEN.d)).toHaveLength(1);

    // Restart: the start-up migration binds them.
    await s.stop();
    s = await startTestServer({ dataDir, env: { ...ENV, SLUICE_LOG_LEVEL: 'warn' }, captureLogs: true });
    const after = await stored();
    expect(after.d).toMatch(/^enc:v2:/);
    expect(after.e).toMatch(/^enc:v2:/);
    expect(after.w).toMatch(/^enc:v2:/);
    expect(after.g).toBe(before.g); // left as it was…
    const warning = s.logs.map((l) => JSON.parse(l) as { msg: string; binding?: string }).find((l) => l.binding === `connector:${rawId(ids.g)}:config.auth.token`);
    expect(warning?.msg).toMatch(/does not decrypt and was left as it is/); // …and named

    from = seen.length;
    expect(await check(ids.d)).toMatchObject({ ok: true });
    expect(await check(ids.viaE)).toMatchObject({ ok: true });
    expect(usedSince(from, TOKEN.d)).toHaveLength(1);
    expect(usedSince(from, TOKEN.e)).toHaveLength(1);
    const delivered = await eventually(async () => seen.slice(from).find((r) => r.path === '/hook3'));
    expect(() => signedBy(wSecret, delivered)).not.toThrow();
    const g2 = await check(ids.g);
    expect(g2.ok).toBe(false);
    expect(g2.message).toMatch(/cannot decrypt the secrets of connector "g": .*failed authentication/);

    // Now bound: the migrated value of d does not open in e's row.
    const eRow = await prisma().$queryRawUnsafe<{ config: Record<string, string> }[]>(`SELECT config FROM "Authentication" WHERE id = $1::uuid`, rawId(ids.e));
    await prisma().$executeRawUnsafe(`UPDATE "Authentication" SET config = jsonb_set(config, '{token}', to_jsonb($1::text)) WHERE id = $2::uuid`, after.d, rawId(ids.e));
    expect((await check(ids.viaE)).ok).toBe(false);
    await prisma().$executeRawUnsafe(`UPDATE "Authentication" SET config = $1::jsonb WHERE id = $2::uuid`, JSON.stringify(eRow[0]!.config), rawId(ids.e));

    // Idempotent: another start rewrites nothing.
    await s.stop();
    s = await startTestServer({ dataDir, env: ENV });
    expect(await stored()).toEqual(after);
    expect(await check(ids.viaE)).toMatchObject({ ok: true });
  });
});
