/**
 * Authentications (Algolia-style) through the real server: CRUD with typed inputs and exact
 * validation paths, write-only secrets (placeholder round trip keeps the value), IN_USE on
 * delete, Relay node look-up, and every type actually authenticating an http source (check,
 * pipeline discovery and a job) against a local API that verifies the credentials; OAuth2
 * client credentials with token caching, re-fetch after a 401 and no secret in any error.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearTokenCache, HttpCredentials } from '../../src/engine/drivers/http/auth.js';
import { eventually, startTestServer, testDataDir, type TestServer } from '../helpers/server.js';

const PLACEHOLDER = '**********';
const SECRETS = {
  password: 'basic-pass-Zq81!',
  apiKey: 'apikey-7f3c9e1b2d',
  queryKey: 'querykey-88aa11ee',
  token: 'bearer-token-5d6e7f',
  clientSecret: 'client-secret-Qw9&x=y',
};

// ---------------------------------------------------------------------------------------------
// A local API checking credentials, with an OAuth2 token endpoint.

interface Api {
  url: string;
  server: http.Server;
  tokenRequests: { auth: string | null; body: URLSearchParams }[];
  /** Tokens issued and still accepted. */
  valid: Set<string>;
  /** Requests answered with data, by path. */
  served: Record<string, number>;
  expiresIn: number | null;
  /** Revoke each token after it was used this many times (0: never). */
  revokeAfterUses: number;
}

let api: Api;

function startApi(): Promise<Api> {
  const state: Omit<Api, 'url' | 'server'> = { tokenRequests: [], valid: new Set(), served: {}, expiresIn: 3600, revokeAfterUses: 0 };
  const uses = new Map<string, number>();
  let issued = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const records = (name: string) => {
        state.served[name] = (state.served[name] ?? 0) + 1;
        const page = Number(url.searchParams.get('page') ?? '1');
        if (page > 2) return send(200, []);
        send(200, [
          { id: page * 10 + 1, name: `${name}-a` },
          { id: page * 10 + 2, name: `${name}-b` },
        ]);
      };
      const auth = req.headers.authorization ?? null;
      if (url.pathname === '/token') {
        const body = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        state.tokenRequests.push({ auth, body });
        let id: string | null = null;
        let secret: string | null = null;
        if (auth?.startsWith('Basic ')) {
          const [u, p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
          id = decodeURIComponent((u ?? '').replace(/\+/g, ' '));
          secret = decodeURIComponent((p ?? '').replace(/\+/g, ' '));
        } else {
          id = body.get('client_id');
          secret = body.get('client_secret');
        }
        if (body.get('grant_type') !== 'client_credentials') return send(400, { error: 'unsupported_grant_type' });
        // A sloppy server echoing what it got: the client secret must still never show up.
        if (id !== 'client-1' || secret !== SECRETS.clientSecret) return send(401, { error: 'invalid_client', error_description: `bad secret ${secret}` });
        const token = `at-${++issued}-${Math.random().toString(36).slice(2)}`;
        state.valid.add(token);
        return send(200, { access_token: token, token_type: 'bearer', ...(state.expiresIn !== null ? { expires_in: state.expiresIn } : {}), scope: body.get('scope') });
      }
      switch (url.pathname) {
        case '/basic':
          if (auth !== `Basic ${Buffer.from(`alice:${SECRETS.password}`).toString('base64')}`) return send(401, { error: 'bad basic' });
          return records('basic');
        case '/apikey':
          if (req.headers['x-api-key'] !== SECRETS.apiKey) return send(401, { error: `bad key ${String(req.headers['x-api-key'])}` });
          return records('apikey');
        case '/querykey':
          if (url.searchParams.get('api_key') !== SECRETS.queryKey) return send(403, { error: `bad key ${url.searchParams.get('api_key')}` });
          return records('querykey');
        case '/bearer':
          if (auth !== `Bearer ${SECRETS.token}`) return send(401, { error: 'bad token' });
          return records('bearer');
        case '/oauth': {
          const t = auth?.startsWith('Bearer ') ? auth.slice(7) : '';
          if (!state.valid.has(t)) return send(401, { error: 'invalid_token' });
          const n = (uses.get(t) ?? 0) + 1;
          uses.set(t, n);
          if (state.revokeAfterUses && n >= state.revokeAfterUses) state.valid.delete(t);
          return records('oauth');
        }
        default:
          return send(404, { error: 'not found' });
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = Object.assign(state, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }) as Api;
      resolve(a);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// GraphQL helpers.

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;

const ERR = `__typename ... on Error { code message ... on ValidationError { fieldErrors { path message } } ... on InUseError { usedBy } ... on ConflictError { currentVersion } }`;
const AUTH = `id name type version params {
  __typename
  ... on BasicAuthParams { username password }
  ... on ApiKeyAuthParams { name in key }
  ... on BearerAuthParams { token }
  ... on OAuth2ClientCredentialsAuthParams { tokenUrl clientId clientSecret scope audience clientAuthentication }
}`;

async function createAuth(input: Record<string, unknown>) {
  return (await s.q(`mutation($i: CreateAuthenticationInput!) { createAuthentication(input: $i) { ${ERR} ... on CreateAuthenticationPayload { authentication { ${AUTH} } } } }`, { i: input }))
    .createAuthentication;
}

async function createAuthOk(input: Record<string, unknown>) {
  const r = await createAuth(input);
  expect(r.__typename, JSON.stringify(r)).toBe('CreateAuthenticationPayload');
  return r.authentication as { id: string; version: number; params: Record<string, unknown> };
}

async function updateAuth(input: Record<string, unknown>) {
  return (await s.q(`mutation($i: UpdateAuthenticationInput!) { updateAuthentication(input: $i) { ${ERR} ... on UpdateAuthenticationPayload { authentication { ${AUTH} } } } }`, { i: input }))
    .updateAuthentication;
}

async function connector(input: Record<string, unknown>) {
  const r = await s.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ${ERR} ... on CreateConnectorPayload { connector { id config authentication { id name } } } } }`,
    { i: input },
  );
  return r.createConnector;
}

async function httpSource(name: string, pathname: string, authenticationId: string | null, extra: Record<string, unknown> = {}) {
  const r = await connector({
    name,
    driver: 'http',
    // Inline credentials that would fail: the referenced authentication overrides them.
    config: { url: `${api.url}${pathname}`, auth: { type: 'bearer', token: 'wrong-inline-token' }, pagination: { type: 'page' }, ...extra },
    ...(authenticationId ? { authenticationId } : {}),
  });
  expect(r.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.connector.id as string;
}

async function check(connectorId: string) {
  return (await s.q(`mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { __typename ... on CheckConnectorPayload { result { ok message } } } }`, { i: { id: connectorId } }))
    .checkConnector.result as { ok: boolean; message: string };
}

async function waitJob(id: string) {
  return eventually(async () => {
    const r = await s.q(`query($id: ID!) { job(id: $id) { status error recordsRead recordsWritten } }`, { id });
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(r.job.status) ? r.job : null;
  }, 60_000);
}

/** Source → jsonl pipeline, started; resolves with the finished job and the lines written. */
async function runJob(sourceId: string, name: string) {
  const out = path.join(dir, `${name}.jsonl`);
  const dst = await connector({ name: `${name} out`, driver: 'jsonl', config: { path: out } });
  const p = await s.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`, {
    i: { name, sourceId, destinationId: dst.connector.id, writeMode: 'APPEND' },
  });
  expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
  const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
    i: { id: p.createPipeline.pipeline.id },
  });
  const job = await waitJob(started.startPipeline.pipeline.currentJob.id);
  const lines = fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
  return { job, lines, pipelineId: p.createPipeline.pipeline.id as string };
}

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-auth-'));
  api = await startApi();
  s = await startTestServer({ dataDir: filesData, env: { SLUICE_OUTBOUND_ALLOW: '127.0.0.1' } });
});

afterAll(async () => {
  await s?.stop();
  await new Promise((r) => api?.server.close(r));
});

describe('CRUD', () => {
  it('creates each type; params come back with secrets as the placeholder', async () => {
    const basic = await createAuthOk({ name: 'basic', basic: { username: 'alice', password: SECRETS.password } });
    expect(basic).toMatchObject({ type: 'BASIC', version: 1, params: { __typename: 'BasicAuthParams', username: 'alice', password: PLACEHOLDER } });
    const key = await createAuthOk({ name: 'key', apiKey: { name: 'X-Api-Key', key: SECRETS.apiKey } });
    expect(key).toMatchObject({ type: 'API_KEY', params: { name: 'X-Api-Key', in: 'HEADER', key: PLACEHOLDER } });
    const bearer = await createAuthOk({ name: 'bearer', bearer: { token: SECRETS.token } });
    expect(bearer).toMatchObject({ type: 'BEARER', params: { token: PLACEHOLDER } });
    const oauth = await createAuthOk({
      name: 'oauth',
      oauth2ClientCredentials: { tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: SECRETS.clientSecret, scope: 'read:all' },
    });
    expect(oauth).toMatchObject({
      type: 'OAUTH2_CLIENT_CREDENTIALS',
      params: { tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: PLACEHOLDER, scope: 'read:all', audience: null, clientAuthentication: 'BASIC' },
    });
    for (const a of [basic, key, bearer, oauth]) for (const v of Object.values(SECRETS)) expect(JSON.stringify(a)).not.toContain(v);

    // Relay: node(id) and the connection with a type filter.
    const node = await s.q(`query($id: ID!) { node(id: $id) { __typename ... on Authentication { name type } } }`, { id: oauth.id });
    expect(node.node).toEqual({ __typename: 'Authentication', name: 'oauth', type: 'OAUTH2_CLIENT_CREDENTIALS' });
    const list = await s.q(`{ authentications(filter: { type: BEARER }, first: 10) { totalCount nodes { name } } }`);
    expect(list.authentications.totalCount).toBeGreaterThanOrEqual(1);
    expect(list.authentications.nodes.every((n: { name: string }) => n.name.startsWith('bearer'))).toBe(true);
    const one = await s.q(`query($id: ID!) { authentication(id: $id) { name params { ... on BearerAuthParams { token } } } }`, { id: bearer.id });
    expect(one.authentication).toEqual({ name: 'bearer', params: { token: PLACEHOLDER } });
  });

  it('validates: exactly one type, required and well-formed fields, with paths', async () => {
    const none = await createAuth({ name: 'none' });
    expect(none).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'input' }] });
    const two = await createAuth({ name: 'two', bearer: { token: 'abcd' }, basic: { username: 'u', password: 'pppp' } });
    expect(two.__typename).toBe('ValidationError');
    expect(two.fieldErrors.map((e: { path: string }) => e.path)).toEqual(['bearer']);
    const bad = await createAuth({ name: 'bad', oauth2ClientCredentials: { tokenUrl: 'ftp://x/token', clientId: '', clientSecret: 'x' } });
    expect(bad.fieldErrors.map((e: { path: string }) => e.path).sort()).toEqual(['oauth2ClientCredentials.clientId', 'oauth2ClientCredentials.tokenUrl']);
    const header = await createAuth({ name: 'hdr', apiKey: { name: 'Bad Header', key: 'k1234' } });
    expect(header.fieldErrors).toEqual([{ path: 'apiKey.name', message: 'must be a valid HTTP header name' }]);
    const colon = await createAuth({ name: 'colon', basic: { username: 'a:b', password: 'pw12' } });
    expect(colon.fieldErrors[0].path).toBe('basic.username');
    const placeholder = await createAuth({ name: 'ph', bearer: { token: PLACEHOLDER } });
    expect(placeholder.fieldErrors[0].path).toBe('bearer.token');
    expect((await createAuth({ name: '  ', bearer: { token: 'abcd' } })).fieldErrors[0].path).toBe('name');
  });

  it('updates: name only, placeholder keeps the secret, a type change needs the secrets, optimistic version', async () => {
    const a = await createAuthOk({ name: 'upd', bearer: { token: SECRETS.token } });
    const renamed = await updateAuth({ id: a.id, name: 'upd2' });
    expect(renamed).toMatchObject({ __typename: 'UpdateAuthenticationPayload', authentication: { name: 'upd2', version: 2, params: { token: PLACEHOLDER } } });
    const kept = await updateAuth({ id: a.id, bearer: { token: PLACEHOLDER } });
    expect(kept.authentication.version).toBe(3);
    // The kept token still authenticates.
    const src = await httpSource('upd src', '/bearer', a.id);
    expect(await check(src)).toMatchObject({ ok: true });

    const switched = await updateAuth({ id: a.id, basic: { username: 'alice', password: PLACEHOLDER } });
    expect(switched).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: 'basic.password' }] });
    expect((await updateAuth({ id: a.id, name: 'x', expectedVersion: 1 })).__typename).toBe('ConflictError');
    const both = await updateAuth({ id: a.id, bearer: { token: 'abcd' }, apiKey: { name: 'k', key: 'abcd' } });
    expect(both.__typename).toBe('ValidationError');
    const missing = await updateAuth({ id: Buffer.from('Authentication:00000000-0000-4000-8000-00000000dead').toString('base64'), name: 'x' });
    expect(missing).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });

    // A new value replaces the secret: the check now fails (wrong token).
    await updateAuth({ id: a.id, bearer: { token: 'another-token-1' } });
    expect(await check(src)).toMatchObject({ ok: false });
  });

  it('delete: IN_USE while a connector references it, then deleted', async () => {
    const a = await createAuthOk({ name: 'del', bearer: { token: SECRETS.token } });
    const src = await httpSource('del src', '/bearer', a.id);
    const del = `mutation($i: AuthenticationIdInput!) { deleteAuthentication(input: $i) { ${ERR} ... on DeleteAuthenticationPayload { authentication { id name } } } }`;
    const used = (await s.q(del, { i: { id: a.id } })).deleteAuthentication;
    expect(used).toMatchObject({ __typename: 'InUseError', code: 'IN_USE', usedBy: [src] });
    // Detach (authenticationId: null), then delete.
    const upd = await s.q(
      `mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { __typename ... on UpdateConnectorPayload { connector { authentication { id } } } } }`,
      { i: { id: src, authenticationId: null } },
    );
    expect(upd.updateConnector.connector.authentication).toBeNull();
    const ok = (await s.q(del, { i: { id: a.id } })).deleteAuthentication;
    expect(ok).toMatchObject({ __typename: 'DeleteAuthenticationPayload', authentication: { id: a.id, name: 'del' } });
    expect((await s.q(`query($id: ID!) { authentication(id: $id) { id } }`, { id: a.id })).authentication).toBeNull();
    // Each change is in the event log, without its secrets; a refused delete wrote nothing.
    const ev = await s.q(`{ events(last: 100, filter: { types: [AUTHENTICATION_CREATED, AUTHENTICATION_UPDATED, AUTHENTICATION_DELETED] }) { nodes { type data } } }`);
    const rawId = Buffer.from(a.id, 'base64').toString().split(':')[1];
    const mine = ev.events.nodes.filter((n: any) => n.data.authenticationId === rawId);
    expect(mine.map((n: any) => n.type)).toEqual(['AUTHENTICATION_CREATED', 'AUTHENTICATION_DELETED']);
  });

  it('connectors: unknown authentication or a driver without credentials is VALIDATION_FAILED', async () => {
    const ghost = Buffer.from('Authentication:00000000-0000-4000-8000-00000000beef').toString('base64');
    const r = await connector({ name: 'ghost', driver: 'http', config: { url: `${api.url}/bearer` }, authenticationId: ghost });
    expect(r).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: 'authenticationId', message: 'no such authentication' }] });
    const a = await createAuthOk({ name: 'csvauth', bearer: { token: 'abcd' } });
    const csv = await connector({ name: 'csv', driver: 'csv', config: { path: path.join(dir, 'x.csv') }, authenticationId: a.id });
    expect(csv).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: 'authenticationId' }] });
  });
});

describe('each type authenticates an http source', () => {
  beforeEach(() => {
    api.tokenRequests.length = 0;
    api.expiresIn = 3600;
    api.revokeAfterUses = 0;
  });

  const cases: [string, string, () => Record<string, unknown>][] = [
    ['basic', '/basic', () => ({ basic: { username: 'alice', password: SECRETS.password } })],
    ['api key header', '/apikey', () => ({ apiKey: { name: 'X-Api-Key', key: SECRETS.apiKey } })],
    ['api key query', '/querykey', () => ({ apiKey: { name: 'api_key', in: 'QUERY', key: SECRETS.queryKey } })],
    ['bearer', '/bearer', () => ({ bearer: { token: SECRETS.token } })],
    ['oauth2 (basic client auth)', '/oauth', () => ({ oauth2ClientCredentials: { tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: SECRETS.clientSecret, scope: 'read' } })],
    [
      'oauth2 (body client auth)',
      '/oauth',
      () => ({ oauth2ClientCredentials: { tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: SECRETS.clientSecret, audience: 'api', clientAuthentication: 'BODY' } }),
    ],
  ];

  for (const [label, pathname, params] of cases) {
    it(`${label}: check, discovery and a job with two pages`, async () => {
      const name = label.replace(/\W+/g, '-');
      const a = await createAuthOk({ name, ...params() });
      const src = await httpSource(`${name} src`, pathname, a.id);
      const c = await check(src);
      expect(c, c.message).toMatchObject({ ok: true });
      const { job, lines } = await runJob(src, name);
      expect(job, job.error).toMatchObject({ status: 'SUCCEEDED', recordsRead: 4, recordsWritten: 4 });
      expect(lines.map((l) => l.id)).toEqual([11, 12, 21, 22]);
      if (label.startsWith('oauth2')) {
        // One token per process (the check here, the job in its worker), not one per request.
        expect(api.tokenRequests.length).toBeLessThanOrEqual(3);
        const req = api.tokenRequests.at(-1)!;
        expect(req.body.get('grant_type')).toBe('client_credentials');
        if (label.includes('body')) {
          expect(req.auth).toBeNull();
          expect(req.body.get('client_id')).toBe('client-1');
          expect(req.body.get('audience')).toBe('api');
        } else {
          expect(req.auth).toMatch(/^Basic /);
          expect(req.body.get('client_secret')).toBeNull();
          expect(req.body.get('scope')).toBe('read');
        }
      }
    });
  }

  it('without the authentication the inline (wrong) credentials are used and refused', async () => {
    const src = await httpSource('inline src', '/bearer', null);
    const c = await check(src);
    expect(c.ok).toBe(false);
    expect(c.message).toMatch(/401/);
    expect(c.message).not.toContain('wrong-inline-token');
  });

  it('oauth2: a token refused with 401 is fetched again once, and the job succeeds', async () => {
    api.revokeAfterUses = 1; // every token works for one request only
    const a = await createAuthOk({ name: 'revoking', oauth2ClientCredentials: { tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: SECRETS.clientSecret } });
    const src = await httpSource('revoking src', '/oauth', a.id);
    const before = api.tokenRequests.length;
    const { job, lines } = await runJob(src, 'revoking');
    expect(job, job.error).toMatchObject({ status: 'SUCCEEDED', recordsRead: 4 });
    expect(lines).toHaveLength(4);
    // Pipeline discovery + job discovery + 3 pages: each request needed its own token after the first.
    expect(api.tokenRequests.length - before).toBeGreaterThanOrEqual(4);
  });

  it('oauth2: refused client credentials fail the check without echoing the secret', async () => {
    const a = await createAuthOk({ name: 'badclient', oauth2ClientCredentials: { tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: 'not-the-secret-123' } });
    const src = await httpSource('badclient src', '/oauth', a.id);
    const c = await check(src);
    expect(c.ok).toBe(false);
    expect(c.message).toMatch(/OAuth2 token request to http:\/\/127\.0\.0\.1:\d+\/token failed with HTTP 401 \(client credentials refused\): invalid_client/);
    expect(c.message).not.toContain('not-the-secret-123');
    expect(c.message).not.toContain(SECRETS.clientSecret);
  });

  it('an API key in the query string is redacted from failures', async () => {
    const a = await createAuthOk({ name: 'wrongq', apiKey: { name: 'api_key', in: 'QUERY', key: 'wrong-query-key-42' } });
    const src = await httpSource('wrongq src', '/querykey', a.id);
    const c = await check(src);
    expect(c.ok).toBe(false);
    expect(c.message).toContain('api_key=***');
    expect(c.message).not.toContain('wrong-query-key-42');
  });
});

describe('OAuth2 token cache (driver level)', () => {
  beforeEach(() => {
    clearTokenCache();
    api.tokenRequests.length = 0;
    api.revokeAfterUses = 0;
  });

  const creds = () =>
    new HttpCredentials({ type: 'oauth2ClientCredentials', tokenUrl: `${api.url}/token`, clientId: 'client-1', clientSecret: SECRETS.clientSecret }, 'test');

  it('reuses a token until shortly before expires_in, then fetches a new one', async () => {
    api.expiresIn = 2; // used for 1 s (refreshed 1 s early)
    const c = creds();
    const h1: Record<string, string> = {};
    await c.apply(h1, new URL(`${api.url}/oauth`));
    const h2: Record<string, string> = {};
    await creds().apply(h2, new URL(`${api.url}/oauth`));
    expect(h2.authorization).toBe(h1.authorization);
    expect(api.tokenRequests).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1100));
    const h3: Record<string, string> = {};
    await c.apply(h3, new URL(`${api.url}/oauth`));
    expect(h3.authorization).not.toBe(h1.authorization);
    expect(api.tokenRequests).toHaveLength(2);
  });

  it('invalidate() after a 401 forgets the token; scrub() hides secret and token', async () => {
    api.expiresIn = 3600;
    const c = creds();
    const h: Record<string, string> = {};
    await c.apply(h, new URL(`${api.url}/oauth`));
    const token = h.authorization!.slice(7);
    expect(c.refreshable).toBe(true);
    expect(c.invalidate()).toBe(true);
    await c.apply(h, new URL(`${api.url}/oauth`));
    expect(api.tokenRequests).toHaveLength(2);
    expect(c.scrub(`x ${token} y ${SECRETS.clientSecret}`)).toBe('x *** y ***');
    // Concurrent requests share one token request.
    clearTokenCache();
    await Promise.all([1, 2, 3].map(() => creds().apply({}, new URL(`${api.url}/oauth`))));
    expect(api.tokenRequests).toHaveLength(3);
  });
});
