/**
 * Secrets never in clear, end to end: connectors with secret config fields (inline HTTP
 * credentials, a PostgreSQL connection string), authentications (bearer, basic, OAuth2) and a
 * webhook endpoint are created and used (checks, discovery, preview, a job through an
 * authenticated API into an authenticated webhook sink, signed event deliveries); then no
 * secret value appears in a dump of every table, in the trace-level logs, in events, in error
 * messages or in any response. Legacy clear-text rows keep working; rotation re-encrypts every
 * secret under a new key (every ciphertext changes, the key file keeps only the new key) and
 * everything still works after it.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { rawId } from '../helpers/graphql.js';

const SECRET = {
  bearer: 'S3CRET-bearer-token-a1b2c3',
  inlineQuery: 'S3CRET-inline-query-d4e5f6',
  sink: 'S3CRET-sink-key-g7h8i9',
  echo: 'S3CRET-echo-key-j0k1l2',
  pg: 'S3CRET-pg-pass-m3n4o5',
  basic: 'S3CRET-basic-pw-p6q7r8',
  client: 'S3CRET-client-secret-s9t0u1',
};

// ---------------------------------------------------------------------------------------------
// A local API (bearer or OAuth2), a webhook sink (API key header), an event receiver.

interface Delivery {
  headers: Record<string, string>;
  body: string;
}

let base = '';
let server: http.Server;
const sinkBatches: unknown[][] = [];
const deliveries: Delivery[] = [];
const issued = new Set<string>();

function startLocal(): Promise<void> {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      const auth = req.headers.authorization ?? '';
      const items = [
        { id: 1, name: 'one' },
        { id: 2, name: 'two' },
      ];
      switch (url.pathname) {
        case '/items':
          return auth === `Bearer ${SECRET.bearer}` ? json(200, items) : json(401, { error: 'unauthorized' });
        case '/token': {
          const form = new URLSearchParams(body);
          const [id, secret] = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8').split(':');
          if (form.get('grant_type') !== 'client_credentials' || id !== 'cid' || decodeURIComponent(secret ?? '') !== SECRET.client) return json(401, { error: 'invalid_client' });
          const t = `tok-${issued.size + 1}`;
          issued.add(t);
          return json(200, { access_token: t, token_type: 'Bearer', expires_in: 3600 });
        }
        case '/oauth-items':
          return issued.has(auth.replace(/^Bearer /, '')) ? json(200, items) : json(401, { error: 'invalid_token' });
        case '/echo':
          // A careless API echoing the key it refused (in the body and a header-ish way).
          return json(401, { error: `invalid api key ${url.searchParams.get('key')}`, url: req.url });
        case '/hook':
          if (req.headers['x-sink-key'] !== SECRET.sink) return json(401, { error: 'bad sink key' });
          if (req.method === 'POST') sinkBatches.push((JSON.parse(body) as { records: unknown[] }).records);
          return json(200, { ok: true });
        case '/events':
          deliveries.push({ headers: req.headers as Record<string, string>, body });
          res.writeHead(204);
          return res.end();
        default:
          return json(404, { error: 'not found' });
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve();
    }),
  );
}

// ---------------------------------------------------------------------------------------------

let s: TestServer;
/** Every response body, with a label (responses that legitimately carry a webhook secret once are labelled). */
const responses: { label: string; text: string }[] = [];
const whsec: string[] = [];

async function call<T = any>(query: string, variables: Record<string, unknown> = {}, label = 'response'): Promise<T> {
  const res = await s.gql(query, variables);
  responses.push({ label, text: JSON.stringify(res) });
  if (res.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
  return res.data as T;
}

const ERR = `__typename ... on Error { code message }`;
const ROTATE = `__typename ... on RotateEncryptionKeyPayload { keyId retiredKeyIds connectors authentications webhooks }`;

async function createConnector(name: string, driver: string, config: Record<string, unknown>, authenticationId?: string): Promise<string> {
  const r = await call(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ${ERR} ... on CreateConnectorPayload { connector { id config } } } }`, {
    i: { name, driver, config, ...(authenticationId ? { authenticationId } : {}) },
  });
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

async function createAuth(input: Record<string, unknown>): Promise<string> {
  const r = await call(`mutation($i: CreateAuthenticationInput!) { createAuthentication(input: $i) { ${ERR} ... on CreateAuthenticationPayload { authentication { id } } } }`, { i: input });
  expect(r.createAuthentication.__typename, JSON.stringify(r)).toBe('CreateAuthenticationPayload');
  return r.createAuthentication.authentication.id;
}

async function check(id: string) {
  const r = await call(`mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { ... on CheckConnectorPayload { result { ok message } job { error } } } }`, { i: { id } });
  return r.checkConnector as { result: { ok: boolean; message: string }; job: { error: string | null } };
}

async function waitJob(id: string) {
  return eventually(async () => {
    const r = await call(`query($id: ID!) { job(id: $id) { status error recordsRead recordsWritten } }`, { id });
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(r.job.status) ? r.job : null;
  }, 60_000);
}

async function runPipeline(id: string) {
  const r = await call(`mutation($i: PipelineIdInput!) { runPipeline(input: $i) { ${ERR} ... on RunPipelinePayload { job { id } } } }`, { i: { id } });
  expect(r.runPipeline.__typename, JSON.stringify(r)).toBe('RunPipelinePayload');
  return waitJob(r.runPipeline.job.id);
}

/** Every row of every table, as text. */
async function dump(): Promise<string> {
  const db = s.app.services.database.prisma;
  const tables = await db.$queryRawUnsafe<{ tablename: string }[]>(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`);
  expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['Connector', 'Authentication', 'WebhookEndpoint', 'Event', 'Job', 'WebhookDelivery']));
  const parts: string[] = [];
  for (const { tablename } of tables) {
    const rows = await db.$queryRawUnsafe<{ t: string }[]>(`SELECT t::text AS t FROM "${tablename}" t`);
    parts.push(`== ${tablename}\n${rows.map((r) => r.t).join('\n')}`);
  }
  return parts.join('\n');
}

/** The forms a secret could take in text: raw, URL-encoded, base64; for whsec_ secrets, the key bytes too. */
function forms(secret: string): string[] {
  const out = [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')];
  if (secret.startsWith('whsec_')) out.push(secret.slice('whsec_'.length));
  return out;
}

function allSecrets(): string[] {
  return [...Object.values(SECRET), ...whsec];
}

function expectNoSecret(where: string, text: string, secrets = allSecrets()) {
  for (const sec of secrets) for (const f of forms(sec)) expect(text.includes(f), `${where} contains a secret (${sec.slice(0, 12)}…)`).toBe(false);
}

const ciphertexts = (text: string) => new Set(text.match(/enc:v2:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+/g) ?? []);

function keyFile(): { keys: { id: string; key: string }[] } {
  return JSON.parse(fs.readFileSync(path.join(s.dataDir, 'secret-keys.json'), 'utf8')) as { keys: { id: string; key: string }[] };
}

function verifyDelivery(d: Delivery, secret: string): unknown {
  return new Webhook(secret).verify(d.body, { 'webhook-id': d.headers['webhook-id']!, 'webhook-timestamp': d.headers['webhook-timestamp']!, 'webhook-signature': d.headers['webhook-signature']! });
}

/** Waits for a delivery after `from` and checks it is signed with `secret`. */
async function expectSignedDelivery(from: number, secret: string) {
  const d = await eventually(async () => deliveries.slice(from).at(-1), 30_000);
  expect(() => verifyDelivery(d, secret)).not.toThrow();
}

// ---------------------------------------------------------------------------------------------

const ids = {} as Record<'bearer' | 'basic' | 'oauth' | 'src' | 'oauthSrc' | 'echo' | 'pg' | 'sink' | 'webhook' | 'pipeline', string>;

beforeAll(async () => {
  await startLocal();
  s = await startTestServer({
    captureLogs: true,
    env: { SLUICE_LOG_LEVEL: 'trace', SLUICE_OUTBOUND_ALLOW: '127.0.0.1', SLUICE_WEBHOOK_POLL_MS: '50', SLUICE_WEBHOOK_RETRY_BASE_MS: '50' },
  });
});

afterAll(async () => {
  await s?.stop();
  await new Promise((r) => server?.close(r));
});

describe('secrets at rest and in transit', () => {
  it('creates and uses connectors, authentications and a webhook endpoint', async () => {
    ids.bearer = await createAuth({ name: 'api bearer', bearer: { token: SECRET.bearer } });
    ids.basic = await createAuth({ name: 'unused basic', basic: { username: 'bob', password: SECRET.basic } });
    ids.oauth = await createAuth({ name: 'oauth', oauth2ClientCredentials: { tokenUrl: `${base}/token`, clientId: 'cid', clientSecret: SECRET.client } });

    // The referenced bearer authentication overrides the inline (still secret, still stored) API key.
    ids.src = await createConnector('api', 'http', { url: `${base}/items`, auth: { type: 'apiKey', name: 'key', in: 'query', value: SECRET.inlineQuery } }, ids.bearer);
    ids.oauthSrc = await createConnector('oauth api', 'http', { url: `${base}/oauth-items` }, ids.oauth);
    ids.echo = await createConnector('echo', 'http', { url: `${base}/echo`, auth: { type: 'apiKey', name: 'key', in: 'query', value: SECRET.echo } });
    ids.pg = await createConnector('pg', 'postgres-source', { connectionString: `postgresql://sluice:${SECRET.pg}@127.0.0.1:1/db` });
    ids.sink = await createConnector('sink', 'webhook', { url: `${base}/hook`, auth: { type: 'apiKey', name: 'x-sink-key', value: SECRET.sink } });

    const wh = await call(
      `mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { ${ERR} ... on CreateWebhookEndpointPayload { secret webhookEndpoint { id } } } }`,
      { i: { url: `${base}/events` } },
      'webhook secret (shown once)',
    );
    ids.webhook = wh.createWebhookEndpoint.webhookEndpoint.id;
    whsec.push(wh.createWebhookEndpoint.secret);

    // Checks: working credentials pass; refusals are reported without the key.
    expect((await check(ids.src)).result).toMatchObject({ ok: true });
    expect((await check(ids.oauthSrc)).result).toMatchObject({ ok: true });
    expect((await check(ids.sink)).result).toMatchObject({ ok: true });
    const echo = await check(ids.echo);
    expect(echo.result.ok).toBe(false);
    expect(echo.result.message).toMatch(/key=\*\*\*/);
    expect(echo.job.error).toBe(echo.result.message);
    const pg = await check(ids.pg);
    expect(pg.result.ok).toBe(false);

    // Discovery and preview decrypt for the driver only.
    const disc = await call(`mutation($i: ConnectorIdInput!) { discoverConnector(input: $i) { __typename } }`, { i: { id: ids.oauthSrc } });
    expect(disc.discoverConnector.__typename).toBe('DiscoverConnectorPayload');
    const p = await call(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`, {
      i: { name: 'api to sink', sourceId: ids.src, destinationId: ids.sink, writeMode: 'APPEND' },
    });
    ids.pipeline = p.createPipeline.pipeline.id;
    const preview = await call(`mutation($i: PreviewPipelineInput!) { previewPipeline(input: $i) { ${ERR} ... on PreviewPipelinePayload { records { input } } } }`, {
      i: { id: ids.pipeline, limit: 5 },
    });
    expect(preview.previewPipeline.records).toHaveLength(2);

    // A job through the authenticated API into the authenticated sink.
    const started = await call(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, { i: { id: ids.pipeline } });
    const job = await waitJob(started.startPipeline.pipeline.currentJob.id);
    expect(job, job.error).toMatchObject({ status: 'SUCCEEDED', recordsRead: 2, recordsWritten: 2 });
    expect(sinkBatches.flat()).toHaveLength(2);

    // A job failing against an API that echoes the refused key: the error names the URL with the key redacted.
    const bad = await call(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`, {
      i: { name: 'echo to sink', sourceId: ids.echo, destinationId: ids.sink, writeMode: 'APPEND', streams: [{ name: 'echo' }], maxAttempts: 1 },
    });
    expect(bad.createPipeline.__typename, JSON.stringify(bad)).toBe('CreatePipelinePayload');
    const badStart = await call(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
      i: { id: bad.createPipeline.pipeline.id },
    });
    const failed = await waitJob(badStart.startPipeline.pipeline.currentJob.id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/HTTP 401.*key=\*\*\*|key=\*\*\*.*HTTP 401/);

    // Event deliveries are signed with the (decrypted) endpoint secret.
    await expectSignedDelivery(0, whsec[0]!);

    // Rotating the webhook secret: the previous one stays (encrypted) for the overlap.
    const rot = await call(
      `mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) { ${ERR} ... on RotateWebhookSecretPayload { secret } } }`,
      { i: { id: ids.webhook, overlapSeconds: 3600 } },
      'webhook secret (shown once)',
    );
    whsec.push(rot.rotateWebhookSecret.secret);
    const n = deliveries.length;
    await check(ids.src); // one more event
    await expectSignedDelivery(n, whsec[1]!);
    await expectSignedDelivery(n, whsec[0]!);
  });

  it('stores only ciphertext: no secret in any table, and the ciphertexts are there', async () => {
    const text = await dump();
    expectNoSecret('the database', text);
    const cts = ciphertexts(text);
    // inline query key, sink key, echo key, pg connection string, 3 authentications, 2 webhook secrets
    expect(cts.size).toBe(9);
    const primary = keyFile().keys[0]!.id;
    for (const c of cts) expect(c.startsWith(`enc:v2:${primary}:`)).toBe(true);
    // The key material itself is nowhere in the database.
    for (const k of keyFile().keys) expect(text).not.toContain(k.key);
    if (process.platform !== 'win32') expect(fs.statSync(path.join(s.dataDir, 'secret-keys.json')).mode & 0o777).toBe(0o600);
  });

  it('keeps legacy clear-text rows working (encrypted at the next write or rotation)', async () => {
    const db = s.app.services.database.prisma;
    // As written before encryption existed: the sink key, the bearer token, the webhook secret in clear.
    await db.$executeRawUnsafe(`UPDATE "Connector" SET config = jsonb_set(config, '{auth,value}', to_jsonb($1::text)) WHERE id = $2::uuid`, SECRET.sink, rawId(ids.sink));
    await db.$executeRawUnsafe(`UPDATE "Authentication" SET config = jsonb_set(config, '{token}', to_jsonb($1::text)) WHERE id = $2::uuid`, SECRET.bearer, rawId(ids.bearer));
    await db.$executeRawUnsafe(`UPDATE "WebhookEndpoint" SET secret = $1 WHERE id = $2::uuid`, whsec[1], rawId(ids.webhook));
    expect(await dump()).toContain(SECRET.sink);

    const job = await runPipeline(ids.pipeline);
    expect(job, job.error).toMatchObject({ status: 'SUCCEEDED', recordsWritten: 2 });
    const n = deliveries.length;
    await check(ids.src);
    await expectSignedDelivery(n, whsec[1]!);

    // The next write (even a rename) encrypts them; the webhook secret waits for the rotation.
    const renamedAuth = await call(`mutation($i: UpdateAuthenticationInput!) { updateAuthentication(input: $i) { __typename } }`, { i: { id: ids.bearer, name: 'api bearer 2' } });
    expect(renamedAuth.updateAuthentication.__typename).toBe('UpdateAuthenticationPayload');
    const renamedSink = await call(`mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { __typename } }`, { i: { id: ids.sink, name: 'sink 2' } });
    expect(renamedSink.updateConnector.__typename).toBe('UpdateConnectorPayload');
    const text = await dump();
    expect(text).not.toContain(SECRET.sink);
    expect(text).not.toContain(SECRET.bearer);
    expect(text).toContain(whsec[1]);
    expect((await runPipeline(ids.pipeline)).status).toBe('SUCCEEDED');
  });

  it('rotation re-encrypts every secret under a new key; everything keeps working', async () => {
    const before = await dump();
    const oldCts = ciphertexts(before);
    const oldKey = keyFile().keys[0]!.id;
    const r = await call(`mutation { rotateEncryptionKey { ${ROTATE} } }`);
    const res = r.rotateEncryptionKey;
    expect(res.__typename, JSON.stringify(res)).toBe('RotateEncryptionKeyPayload');
    expect(res.keyId).not.toBe(oldKey);
    expect(res.retiredKeyIds).toEqual([oldKey]);
    expect(res).toMatchObject({ connectors: 4, authentications: 3, webhooks: 1 });
    expect(keyFile().keys.map((k) => k.id)).toEqual([res.keyId]);
    if (process.platform !== 'win32') expect(fs.statSync(path.join(s.dataDir, 'secret-keys.json')).mode & 0o777).toBe(0o600);

    const after = await dump();
    expectNoSecret('the database after rotation', after);
    const newCts = ciphertexts(after);
    // 4 connector fields, 3 authentications, 2 webhook secrets; the legacy clear-text webhook secret is encrypted now.
    expect(oldCts.size).toBe(8);
    expect(newCts.size).toBe(9);
    for (const c of oldCts) expect(after.includes(c), 'an old ciphertext survived the rotation').toBe(false);
    for (const c of newCts) expect(c.startsWith(`enc:v2:${res.keyId}:`)).toBe(true);

    // Jobs, checks and signing still work.
    const job = await runPipeline(ids.pipeline);
    expect(job, job.error).toMatchObject({ status: 'SUCCEEDED', recordsWritten: 2 });
    expect((await check(ids.oauthSrc)).result.ok).toBe(true);
    const n = deliveries.length;
    await check(ids.src);
    await expectSignedDelivery(n, whsec[1]!);

    // A second rotation finds everything current except what it re-encrypts again.
    const again = (await call(`mutation { rotateEncryptionKey { ${ROTATE} } }`)).rotateEncryptionKey;
    expect(again.keyId).not.toBe(res.keyId);
    expect(again).toMatchObject({ connectors: 4, authentications: 3, webhooks: 1 });
  });

  it('no secret in events, errors, logs or responses', async () => {
    const events = await call(`{ events(first: 100) { totalCount nodes { type message data } } }`);
    expect(events.events.totalCount).toBeGreaterThan(10);
    expectNoSecret('events', JSON.stringify(events));
    const jobs = await call(`{ jobs(first: 100) { nodes { error attemptHistory { error } } } }`).catch(() => null);
    if (jobs) expectNoSecret('job errors', JSON.stringify(jobs));
    const conns = await call(`{ connectors(first: 50) { nodes { name config lastCheckMessage authentication { params { __typename } } } } }`);
    expect(JSON.stringify(conns)).toContain('**********');
    expectNoSecret('connectors', JSON.stringify(conns));

    expect(s.logs.length).toBeGreaterThan(50);
    expectNoSecret('logs', s.logs.join('\n'));
    for (const k of keyFile().keys) expect(s.logs.join('\n')).not.toContain(k.key);

    for (const r of responses) {
      // createWebhookEndpoint / rotateWebhookSecret show their own new secret once, by design.
      const own = r.label.startsWith('webhook secret') ? allSecrets().filter((x) => !x.startsWith('whsec_') || !r.text.includes(x)) : allSecrets();
      expectNoSecret(`a response (${r.label})`, r.text, own);
    }
  });
});

/** The database id inside a Relay global id. */
describe('configured keys (SLUICE_SECRET_KEYS)', () => {
  const A = Buffer.alloc(32, 1).toString('base64');
  const B = Buffer.alloc(32, 2).toString('base64');

  async function withServer<T>(dataDir: string, keys: string, fn: (t: TestServer) => Promise<T>): Promise<T> {
    const t = await startTestServer({ dataDir, env: { SLUICE_SECRET_KEYS: keys, SLUICE_OUTBOUND_ALLOW: '127.0.0.1' } });
    try {
      return await fn(t);
    } finally {
      await t.stop();
    }
  }

  const checkOf = async (t: TestServer, id: string) =>
    (await t.q(`mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { ... on CheckConnectorPayload { result { ok message } } } }`, { i: { id } })).checkConnector.result as {
      ok: boolean;
      message: string;
    };

  it('the operator puts a new key first, rotation re-encrypts under it, then the old key can go', async () => {
    const dataDir = fs.mkdtempSync(path.join(path.dirname(s.dataDir), 'sluice-keys-'));
    const src = await withServer(dataDir, `a:${A}`, async (t) => {
      const auth = await t.q(`mutation($i: CreateAuthenticationInput!) { createAuthentication(input: $i) { ... on CreateAuthenticationPayload { authentication { id } } } }`, {
        i: { name: 'bearer', bearer: { token: SECRET.bearer } },
      });
      const c = await t.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ... on CreateConnectorPayload { connector { id } } } }`, {
        i: { name: 'api', driver: 'http', config: { url: `${base}/items` }, authenticationId: auth.createAuthentication.authentication.id },
      });
      const id = c.createConnector.connector.id as string;
      expect(await checkOf(t, id)).toMatchObject({ ok: true });
      return id;
    });
    // Configured keys: no key file is written.
    expect(fs.existsSync(path.join(dataDir, 'secret-keys.json'))).toBe(false);

    await withServer(dataDir, `b:${B},a:${A}`, async (t) => {
      expect(await checkOf(t, src)).toMatchObject({ ok: true }); // still readable with the old key
      const r = (await t.q(`mutation { rotateEncryptionKey { ${ROTATE} } }`)).rotateEncryptionKey;
      expect(r).toMatchObject({ __typename: 'RotateEncryptionKeyPayload', keyId: 'b', retiredKeyIds: [], authentications: 1, webhooks: 0 });
      const rows = await t.app.services.database.prisma.$queryRawUnsafe<{ t: string }[]>(`SELECT t::text AS t FROM "Authentication" t`);
      expect(rows[0]!.t).toContain('enc:v2:b:');
    });

    await withServer(dataDir, `b:${B}`, async (t) => {
      expect(await checkOf(t, src)).toMatchObject({ ok: true });
    });

    // Without the key in use, the failure names the missing key id (never a value).
    await withServer(dataDir, `a:${A}`, async (t) => {
      const r = await checkOf(t, src);
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/key "b", which is not in the key ring \(SLUICE_SECRET_KEYS has: a\)/);
      expect(r.message).not.toContain(A);
    });
  });
});
