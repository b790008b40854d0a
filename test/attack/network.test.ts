/**
 * Network attacks with an ordinary WRITE key, through the real server with keyless local
 * access off (SLUICE_LOCAL_ACCESS=false): the bootstrap ADMIN key only mints the WRITE key.
 *
 * 1. Database drivers aimed at loopback (127.0.0.1, localhost, ::1), the cloud metadata address
 *    and a private address are refused at check, discover and in a job (the job's worker thread
 *    is guarded like the API thread, an http source job included), and no connection is opened.
 * 2. On a PostgreSQL state database: the state database is refused whatever the allow-list
 *    says (127.0.0.1, ::1 and localhost allowed), in every spelling; another database of the
 *    same server works.
 * 3. Stored credentials do not follow a changed address: an update moving an http source to
 *    another origin with the secret placeholder is refused and changes nothing; the stored
 *    token never reaches the new host (a real 127.0.0.1 server records Authorization headers).
 *
 * The outbound guard is process-wide, so the servers run one after the other.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PG_URL } from '../helpers/postgres.js';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';

const ERR = `__typename ... on Error { code message }`;
const VERR = `${ERR} ... on ValidationError { fieldErrors { path message } }`;

/** A server with keyless local access off and a WRITE key minted by the bootstrap ADMIN key. */
async function attackServer(env: Record<string, string>): Promise<{ s: TestServer; as: <T = any>(q: string, v?: Record<string, unknown>) => Promise<T> }> {
  const bootstrap = `sk_${randomBytes(32).toString('base64url')}`;
  const s = await startTestServer({ env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: bootstrap, ...env } });
  const call = async (key: string, query: string, variables?: Record<string, unknown>) => {
    const r = await s.gql(query, variables, { authorization: `Bearer ${key}` });
    if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
    return r.data;
  };
  // Keyless calls are refused: everything below really runs as the WRITE key.
  expect((await s.gql(`{ viewer { scope } }`)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  const minted = await call(bootstrap, `mutation { createApiKey(input: { name: "attacker", scope: WRITE }) { __typename ... on CreateApiKeyPayload { key } } }`);
  const key = minted.createApiKey.key as string;
  expect((await call(key, `{ viewer { scope } }`)).viewer.scope).toBe('WRITE');
  return { s, as: (q, v) => call(key, q, v) };
}

const CREATE = `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ${VERR} ... on CreateConnectorPayload { connector { id } } } }`;
const UPDATE = `mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { ${VERR} ... on UpdateConnectorPayload { connector { id version config } } } }`;
const CHECK = `mutation($id: ID!) { checkConnector(input: { id: $id }) { ${ERR} ... on CheckConnectorPayload { result { ok message } } } }`;
const CHECK_CONFIG = `mutation($i: CheckConnectorConfigInput!) { checkConnectorConfig(input: $i) { ${ERR} ... on CheckConnectorConfigPayload { result { ok message } } } }`;
const DISCOVER = `mutation($id: ID!) { discoverConnector(input: { id: $id }) { ${ERR} ... on DiscoverConnectorPayload { catalog { streams { name } } } } }`;
const CREATE_PIPELINE = `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${VERR} ... on CreatePipelinePayload { pipeline { id } } } }`;
const START = `mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ${ERR} ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`;
const JOB = `query($id: ID!) { job(id: $id) { status attempts error recordsWritten } }`;

type As = <T = any>(q: string, v?: Record<string, unknown>) => Promise<T>;

async function connector(as: As, name: string, driver: string, config: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const r = (await as(CREATE, { i: { name, driver, config, ...extra } })).createConnector;
  expect(r.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.connector.id;
}

/** Runs a pipeline once and waits for the job's end. */
async function runJob(as: As, sourceId: string, destinationId: string, streams?: string[]) {
  const p = (await as(CREATE_PIPELINE, { i: { name: `p-${randomBytes(3).toString('hex')}`, sourceId, destinationId, ...(streams ? { streams: streams.map((name) => ({ name })) } : {}) } })).createPipeline;
  expect(p.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
  const run = (await as(START, { i: { id: p.pipeline.id } })).startPipeline;
  expect(run.__typename, JSON.stringify(run)).toBe('StartPipelinePayload');
  return eventually(async () => {
    const j = (await as(JOB, { id: run.pipeline.currentJob.id })).job;
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.status) ? j : null;
  }, 60_000);
}

/** A TCP listener on 127.0.0.1 that counts connections (a stand-in target: nothing may reach it). */
async function tcpTrap(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    n++;
    sockets.add(sock);
    sock.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

interface Recorder {
  origin: string;
  /** `METHOD path authorization` of every request. */
  requests: string[];
  close(): Promise<void>;
}

/** A real HTTP API on 127.0.0.1 recording each request's Authorization header. */
async function recorder(): Promise<Recorder> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('database drivers aimed at local and private addresses (nothing allow-listed)', () => {
  let s: TestServer;
  let as: As;
  let trap: Awaited<ReturnType<typeof tcpTrap>>;
  let api: Recorder;

  beforeAll(async () => {
    trap = await tcpTrap();
    api = await recorder();
    ({ s, as } = await attackServer({ SLUICE_OUTBOUND_ALLOW: '' }));
  });
  afterAll(async () => {
    await s?.stop();
    await trap?.close();
    await api?.close();
  });

  const targets = () => [
    { config: { host: '127.0.0.1', port: trap.port }, reason: '127.0.0.1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW' },
    { config: { host: 'localhost', port: trap.port }, reason: 'localhost is a loopback host name; allow it with SLUICE_OUTBOUND_ALLOW' },
    { config: { host: '::1', port: trap.port }, reason: '::1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW' },
    { config: { host: '169.254.169.254' }, reason: '169.254.169.254 is a cloud metadata address; allow it with SLUICE_OUTBOUND_ALLOW' },
    { config: { host: '10.1.2.3' }, reason: '10.1.2.3 is a private address; allow it with SLUICE_OUTBOUND_ALLOW' },
    { config: { connectionString: `postgresql://postgres:pw@127.0.0.1:${trap.port}/postgres` }, reason: '127.0.0.1 is a loopback address' },
    { config: { connectionString: `postgresql://postgres@[::ffff:127.0.0.1]:${trap.port}/postgres` }, reason: 'is a loopback address (IPv4-mapped 127.0.0.1)' },
    { config: { connectionString: `postgresql://postgres@/postgres?host=/var/run/postgresql` }, reason: '/var/run/postgresql is a Unix socket path; connectors connect over TCP only' },
  ];
  const full = (c: Record<string, unknown>) => ('connectionString' in c ? c : { database: 'postgres', user: 'postgres', password: 'pw', ...c });

  it('check (saved and unsaved) refuses every target with the guard reason, for source and destination', async () => {
    for (const driver of ['postgres-source', 'postgres-destination']) {
      for (const t of targets()) {
        const config = full(t.config);
        const unsaved = (await as(CHECK_CONFIG, { i: { driver, config } })).checkConnectorConfig;
        expect(unsaved.result.ok, `${driver} ${JSON.stringify(config)}`).toBe(false);
        expect(unsaved.result.message).toContain(' refused: ');
        expect(unsaved.result.message).toContain(t.reason);
        const id = await connector(as, `${driver} ${JSON.stringify(t.config)}`, driver, config);
        const saved = (await as(CHECK, { id })).checkConnector;
        expect(saved.result.ok).toBe(false);
        expect(saved.result.message).toContain(t.reason);
        expect(saved.result.message).not.toContain(':pw@');
      }
    }
    expect(trap.connections()).toBe(0);
  });

  it('discover is refused with CONNECTOR_FAILED naming the host and the reason', async () => {
    for (const driver of ['postgres-source', 'postgres-destination']) {
      for (const t of targets()) {
        const id = await connector(as, `d ${driver} ${JSON.stringify(t.config)}`, driver, full(t.config));
        const r = (await as(DISCOVER, { id })).discoverConnector;
        expect(r.__typename).toBe('ConnectorFailedError');
        expect(r.code).toBe('CONNECTOR_FAILED');
        expect(r.message).toContain(t.reason);
      }
    }
    expect(trap.connections()).toBe(0);
  });

  it('a job reading from or writing to 127.0.0.1 fails at once (not retried) in its worker, without a connection', async () => {
    const gen = await connector(as, 'gen', 'generator', { count: 10 });
    const sink = await connector(as, 'sink', 'null', {});
    const pgSrc = await connector(as, 'pg src', 'postgres-source', full({ host: '127.0.0.1', port: trap.port }));
    const pgDst = await connector(as, 'pg dst', 'postgres-destination', full({ host: '127.0.0.1', port: trap.port }));
    const read = await runJob(as, pgSrc, sink, ['orders']);
    expect(read).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(read.error).toContain(`refused: 127.0.0.1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW`);
    const write = await runJob(as, gen, pgDst);
    expect(write).toMatchObject({ status: 'FAILED', attempts: 1, recordsWritten: 0 });
    expect(write.error).toContain(`refused: 127.0.0.1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW`);
    expect(trap.connections()).toBe(0);
  });

  it('an http source job aimed at 127.0.0.1 is refused in the worker too: the API never sees a request', async () => {
    const src = await connector(as, 'local api', 'http', { url: `${api.origin}/things`, recordsPath: 'data', auth: { type: 'bearer', token: 'tok-job' } });
    const sink = await connector(as, 'sink 2', 'null', {});
    const job = await runJob(as, src, sink, ['things']);
    expect(job).toMatchObject({ status: 'FAILED', attempts: 1, recordsWritten: 0 });
    expect(job.error).toContain('refused: 127.0.0.1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW');
    expect(api.requests).toEqual([]);
  });
});

describe.skipIf(!PG_URL)('the state database on PostgreSQL', () => {
  let s: TestServer;
  let as: As;
  let state: Awaited<ReturnType<typeof createTestDatabase>>;
  let other: Awaited<ReturnType<typeof createTestDatabase>>;
  const server = new URL(PG_URL || 'postgresql://x');
  const port = Number(server.port || 5432);
  const user = decodeURIComponent(server.username || 'postgres');
  const nameOf = (url: string) => new URL(url).pathname.slice(1);

  beforeAll(async () => {
    state = await createTestDatabase();
    other = await createTestDatabase();
    // Every spelling of this machine is allowed: the state database stays refused anyway.
    ({ s, as } = await attackServer({ DATABASE_URL: state.url, SLUICE_OUTBOUND_ALLOW: '127.0.0.1,::1,localhost' }));
  });
  afterAll(async () => {
    await s?.stop();
    await state?.drop();
    await other?.drop();
  });

  const stateTargets = () => {
    const db = nameOf(state.url);
    return [
      { host: '127.0.0.1', port, database: db, user },
      { host: 'localhost', port, database: db, user },
      { host: '127.0.0.1', database: db, user, ...(port === 5432 ? {} : { port }) },
      { connectionString: `postgresql://${user}@127.0.0.1:${port}/${db}` },
      { connectionString: `postgresql://${user}@localhost:${port}/${db}?sslmode=disable` },
    ];
  };

  it('check and discover of the state database are refused, for source and destination', async () => {
    for (const driver of ['postgres-source', 'postgres-destination']) {
      for (const config of stateTargets()) {
        const unsaved = (await as(CHECK_CONFIG, { i: { driver, config } })).checkConnectorConfig;
        expect(unsaved.result.ok, `${driver} ${JSON.stringify(config)}`).toBe(false);
        expect(unsaved.result.message).toMatch(new RegExp(`refused: .*:${port}/${nameOf(state.url)} is Sluice's own state database, which no connector may use`));
        expect(unsaved.result.message).not.toContain('SLUICE_OUTBOUND_ALLOW');
        const id = await connector(as, `${driver} ${JSON.stringify(config)}`, driver, config);
        const d = (await as(DISCOVER, { id })).discoverConnector;
        expect(d.__typename).toBe('ConnectorFailedError');
        expect(d.message).toContain("is Sluice's own state database");
      }
    }
  });

  it('a job cannot read the state database (the API keys table) nor write into it', async () => {
    const db = nameOf(state.url);
    const sink = await connector(as, 'sink', 'null', {});
    const src = await connector(as, 'steal keys', 'postgres-source', { host: '127.0.0.1', port, database: db, user, queries: [{ name: 'keys', sql: 'SELECT * FROM "ApiKey"' }] });
    const read = await runJob(as, src, sink, ['keys']);
    expect(read).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(read.error).toContain("is Sluice's own state database");

    const gen = await connector(as, 'gen', 'generator', { count: 5, streams: ['planted'] });
    const dst = await connector(as, 'plant rows', 'postgres-destination', { host: 'localhost', port, database: db, user });
    const write = await runJob(as, gen, dst);
    expect(write).toMatchObject({ status: 'FAILED', attempts: 1, recordsWritten: 0 });
    expect(write.error).toContain("is Sluice's own state database");
    const c = new pg.Client({ connectionString: state.url });
    await c.connect();
    const planted = await c.query(`select 1 from pg_tables where tablename = 'planted'`);
    await c.end();
    expect(planted.rowCount).toBe(0);
  });

  it('another database on the same server, 127.0.0.1 allowed, works end to end', async () => {
    const db = nameOf(other.url);
    const check = (await as(CHECK_CONFIG, { i: { driver: 'postgres-destination', config: { host: '127.0.0.1', port, database: db, user } } })).checkConnectorConfig;
    expect(check.result, JSON.stringify(check)).toMatchObject({ ok: true });
    const gen = await connector(as, 'gen ok', 'generator', { count: 25, streams: ['landed'] });
    const dst = await connector(as, 'other db', 'postgres-destination', { connectionString: `postgresql://${user}@localhost:${port}/${db}` });
    const job = await runJob(as, gen, dst);
    expect(job, JSON.stringify(job)).toMatchObject({ status: 'SUCCEEDED', recordsWritten: 25 });
    const src = await connector(as, 'other db src', 'postgres-source', { host: '127.0.0.1', port, database: db, user });
    const d = (await as(DISCOVER, { id: src })).discoverConnector;
    expect(d.__typename, JSON.stringify(d)).toBe('DiscoverConnectorPayload');
    expect(d.catalog.streams.map((x: { name: string }) => x.name)).toContain('landed');
  });
});

describe('stored credentials do not follow a changed address', () => {
  let s: TestServer;
  let as: As;
  let home: Recorder;
  let evil: Recorder;

  beforeAll(async () => {
    home = await recorder();
    evil = await recorder();
    ({ s, as } = await attackServer({ SLUICE_OUTBOUND_ALLOW: '127.0.0.1' }));
  });
  afterAll(async () => {
    await s?.stop();
    await home?.close();
    await evil?.close();
  });

  const get = async (id: string) => (await as(`query($id: ID!) { node(id: $id) { ... on Connector { version config authentication { id } } } }`, { id })).node;
  const checkOk = async (id: string) => {
    const r = (await as(CHECK, { id })).checkConnector;
    expect(r.result, JSON.stringify(r)).toMatchObject({ ok: true });
  };

  it('moving an http source to another origin with the placeholder is refused, changes nothing, and the token never reaches the new host', async () => {
    const id = await connector(as, 'orders api', 'http', { url: `${home.origin}/orders`, recordsPath: 'data', auth: { type: 'bearer', token: 'tok-HOME-s3cret' } });
    const before = await get(id);
    expect(before.config.auth.token).toBe('**********');

    const moved = (await as(UPDATE, { i: { id, config: { ...before.config, url: `${evil.origin}/collect` } } })).updateConnector;
    expect(moved.__typename).toBe('ValidationError');
    expect(moved.code).toBe('VALIDATION_FAILED');
    expect(moved.fieldErrors).toEqual([{ path: 'config.auth.token', message: expect.stringContaining('config.url changed to another address') }]);
    expect(moved.fieldErrors[0].message).toContain('send this secret again');
    expect(await get(id)).toEqual(before);

    // The same origin (another path), or a non-origin field, keeps the stored token.
    const samePlace = (await as(UPDATE, { i: { id, config: { ...before.config, url: `${home.origin}/orders?page=1`, recordsPath: 'data' } } })).updateConnector;
    expect(samePlace.__typename, JSON.stringify(samePlace)).toBe('UpdateConnectorPayload');
    await checkOk(id);
    expect(home.requests.some((r) => r.endsWith('Bearer tok-HOME-s3cret'))).toBe(true);

    // Sending the secret anew moves it; the new host only ever sees the new token.
    const withNew = (await as(UPDATE, { i: { id, config: { ...before.config, url: `${evil.origin}/collect`, auth: { type: 'bearer', token: 'tok-NEW' } } } })).updateConnector;
    expect(withNew.__typename, JSON.stringify(withNew)).toBe('UpdateConnectorPayload');
    await checkOk(id);
    expect(evil.requests.length).toBeGreaterThan(0);
    expect(evil.requests.every((r) => r.endsWith('Bearer tok-NEW'))).toBe(true);
    expect(evil.requests.join('\n')).not.toContain('tok-HOME');
  });

  it('an api key in a webhook destination and a postgres password do not follow either', async () => {
    const hook = await connector(as, 'hook', 'webhook', { url: `${home.origin}/hook`, auth: { type: 'apiKey', name: 'X-Key', value: 'key-HOME' } });
    const h = await get(hook);
    const r1 = (await as(UPDATE, { i: { id: hook, config: { ...h.config, url: `${evil.origin}/hook` } } })).updateConnector;
    expect(r1.code).toBe('VALIDATION_FAILED');
    expect(r1.fieldErrors.map((e: { path: string }) => e.path)).toEqual(['config.auth.value']);

    const db = await connector(as, 'warehouse', 'postgres-source', { host: 'db.example.com', database: 'wh', user: 'etl', password: 'pw-HOME' });
    const d = await get(db);
    for (const change of [{ host: 'evil.example.com' }, { port: 6543 }, { database: 'other' }]) {
      const r = (await as(UPDATE, { i: { id: db, config: { ...d.config, ...change } } })).updateConnector;
      expect(r.code, JSON.stringify(change)).toBe('VALIDATION_FAILED');
      expect(r.fieldErrors.map((e: { path: string }) => e.path)).toEqual(['config.password']);
      expect(r.fieldErrors[0].message).toContain(`config.${Object.keys(change)[0]} changed`);
    }
    const schemaOnly = (await as(UPDATE, { i: { id: db, config: { ...d.config, schema: 'raw' } } })).updateConnector;
    expect(schemaOnly.__typename, JSON.stringify(schemaOnly)).toBe('UpdateConnectorPayload');
    const newPw = (await as(UPDATE, { i: { id: db, config: { ...d.config, host: 'evil.example.com', password: 'pw-NEW' } } })).updateConnector;
    expect(newPw.__typename, JSON.stringify(newPw)).toBe('UpdateConnectorPayload');

    // The origin fields are declared by the drivers and published.
    const defs = (await as(`{ connectorDefinitions { driver originFields } }`)).connectorDefinitions;
    expect(defs.find((x: { driver: string }) => x.driver === 'postgres-source').originFields).toEqual(['connectionString', 'host', 'port', 'database']);
    expect(defs.find((x: { driver: string }) => x.driver === 'http').originFields).toEqual(['url']);
  });

  it('a connector using a stored authentication must name it again to move to another origin', async () => {
    const a = (await as(`mutation { createAuthentication(input: { name: "home token", bearer: { token: "tok-AUTH-HOME" } }) { ${ERR} ... on CreateAuthenticationPayload { authentication { id } } } }`)).createAuthentication;
    expect(a.__typename, JSON.stringify(a)).toBe('CreateAuthenticationPayload');
    const id = await connector(as, 'via authentication', 'http', { url: `${home.origin}/auth`, recordsPath: 'data' }, { authenticationId: a.authentication.id });
    const before = await get(id);
    const moved = (await as(UPDATE, { i: { id, config: { ...before.config, url: `${evil.origin}/auth` } } })).updateConnector;
    expect(moved.code).toBe('VALIDATION_FAILED');
    expect(moved.fieldErrors).toEqual([{ path: 'authenticationId', message: expect.stringContaining('name the authentication again') }]);
    expect(await get(id)).toEqual(before);
    const evilSeen = evil.requests.length;

    const renamed = (await as(UPDATE, { i: { id, config: { ...before.config, url: `${evil.origin}/auth` }, authenticationId: a.authentication.id } })).updateConnector;
    expect(renamed.__typename, JSON.stringify(renamed)).toBe('UpdateConnectorPayload');
    await checkOk(id);
    // Re-referenced on purpose: now the authentication goes there.
    expect(evil.requests.slice(evilSeen).every((r) => r.endsWith('Bearer tok-AUTH-HOME'))).toBe(true);
  });
});
