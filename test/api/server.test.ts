/**
 * The HTTP surface users and operators rely on: liveness/readiness probes, GraphiQL, GraphQL
 * over GET, validation errors, request ids, graceful shutdown (WebSockets closed with 1001,
 * port released), configuration from the environment, and the committed schema being the
 * schema the code serves.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let origin: string;

beforeAll(async () => {
  s = await startTestServer();
  origin = new URL(s.url).origin;
});
afterAll(async () => {
  await s?.stop();
});

describe('probes', () => {
  it('/health answers 200 {status: ok}', async () => {
    const res = await fetch(`${origin}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/ready answers 200 once the database is reachable and migrated', async () => {
    const res = await fetch(`${origin}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', database: true, migrations: true });
  });

  it('the health query reports the embedded database', async () => {
    const data = await s.q(`{ health { status database databaseOk runningJobs queuedJobs version } }`);
    // The version is package.json's, not a constant of its own.
    const { version } = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(data.health).toEqual({ status: 'ok', database: 'pglite', databaseOk: true, runningJobs: 0, queuedJobs: 0, version });
  });
});

describe('GraphQL over HTTP', () => {
  it('GET /graphql from a browser serves GraphiQL', async () => {
    const res = await fetch(s.url, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('<title>Sluice GraphiQL</title>');
  });

  it('GET / redirects to /graphql', async () => {
    const res = await fetch(`${origin}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/graphql');
  });

  it('GET /graphql?query=… runs a query', async () => {
    // GET needs a CSRF-preventing header (a browser cannot send it cross-site without a preflight).
    const res = await fetch(`${s.url}?query=${encodeURIComponent('{health{status}}')}`, { headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { health: { status: 'ok' } } });
  });

  it('GET cannot run a mutation', async () => {
    const query = `mutation { deleteConnector(input: {id: "x"}) { __typename } }`;
    const res = await fetch(`${s.url}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' } });
    expect(res.status).toBe(405);
    const body = (await res.json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message).toBe('Can only perform a mutation operation from a POST request.');
  });

  it('an unknown field is a GraphQL validation error, nothing executes', async () => {
    const res = await s.gql(`{ health { status } nope }`);
    expect(res.data).toBeUndefined();
    expect(res.errors).toHaveLength(1);
    // Field suggestions are hidden (they would map the schema for someone without introspection).
    expect(res.errors![0].message).toBe('Cannot query field "nope" on type "Query".');
    expect(res.errors![0].locations).toEqual([{ line: 1, column: 21 }]);
  });

  it('a syntax error is reported as such', async () => {
    const res = await s.gql(`{ health { status `);
    expect(res.data).toBeUndefined();
    expect(res.errors![0].message).toMatch(/^Syntax Error: Expected Name, found <EOF>\./);
  });

  it('echoes the caller’s x-request-id', async () => {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-from-test-42' },
      body: JSON.stringify({ query: '{ health { status } }' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-from-test-42');
  });

  it('makes up a request id when the caller sends none', async () => {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ health { status } }' }),
    });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('loadConfig', () => {
  it('uses the defaults when nothing is set (empty strings count as unset)', () => {
    expect(loadConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 4000,
      dataDir: path.resolve('./data'),
      databaseUrl: undefined,
      logLevel: 'info',
      graphiql: true,
      maxConcurrentJobs: 4,
      progressIntervalMs: 250,
      shutdownTimeoutMs: 15000,
      webhooks: { timeoutMs: 15000, retryBaseMs: 5000, maxAgeMs: 86_400_000, disableAfterMs: 432_000_000, pollMs: 1000, leaseMs: 30_000, heartbeatMs: 10_000 },
      retention: { days: 30, count: 0, intervalMs: 3_600_000 },
      // Secure by default: keyless access only from this machine, no private outbound address.
      localAccess: true,
      bootstrapApiKey: undefined,
      outboundAllow: [],
      hardening: expect.objectContaining({ introspection: true }),
    });
    expect(loadConfig({ SLUICE_PORT: '', SLUICE_GRAPHIQL: '' })).toMatchObject({ port: 4000, graphiql: true });
  });

  it('reads valid values', () => {
    expect(
      loadConfig({
        SLUICE_HOST: '0.0.0.0',
        SLUICE_PORT: '8080',
        SLUICE_DATA_DIR: '/tmp/sluice-x',
        DATABASE_URL: 'postgresql://u:p@db:5432/sluice',
        SLUICE_LOG_LEVEL: 'debug',
        SLUICE_GRAPHIQL: 'no',
        SLUICE_MAX_CONCURRENT_JOBS: '8',
        SLUICE_PROGRESS_INTERVAL_MS: '100',
        SLUICE_SHUTDOWN_TIMEOUT_MS: '5000',
        SLUICE_WEBHOOK_TIMEOUT_MS: '20000',
        SLUICE_WEBHOOK_RETRY_BASE_MS: '1000',
        SLUICE_WEBHOOK_MAX_AGE_MS: '3600000',
        SLUICE_WEBHOOK_DISABLE_AFTER_MS: '7200000',
        SLUICE_WEBHOOK_POLL_MS: '500',
        SLUICE_WEBHOOK_LEASE_MS: '20000',
        SLUICE_WEBHOOK_HEARTBEAT_MS: '4000',
        SLUICE_EVENT_RETENTION_DAYS: '7',
        SLUICE_EVENT_RETENTION_COUNT: '1000000',
        SLUICE_RETENTION_INTERVAL_MS: '60000',
      }),
    ).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
      dataDir: '/tmp/sluice-x',
      databaseUrl: 'postgresql://u:p@db:5432/sluice',
      logLevel: 'debug',
      graphiql: false,
      maxConcurrentJobs: 8,
      progressIntervalMs: 100,
      shutdownTimeoutMs: 5000,
      webhooks: { timeoutMs: 20000, retryBaseMs: 1000, maxAgeMs: 3_600_000, disableAfterMs: 7_200_000, pollMs: 500, leaseMs: 20_000, heartbeatMs: 4000 },
      retention: { days: 7, count: 1_000_000, intervalMs: 60_000 },
    });
  });

  function problemsOf(env: Record<string, string>): string[] {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
  }
  const named = (problems: string[]) => [...new Set(problems.map((p) => p.slice(0, p.indexOf('='))))].sort();

  it('reports every bad variable at once, each by name with its value', () => {
    const problems = problemsOf({
      SLUICE_PORT: 'abc',
      DATABASE_URL: 'mysql://x',
      SLUICE_LOG_LEVEL: 'loud',
      SLUICE_GRAPHIQL: 'maybe',
      SLUICE_DATA_DIR: '/tmp/fine',
    });
    expect(named(problems)).toEqual(['DATABASE_URL', 'SLUICE_GRAPHIQL', 'SLUICE_LOG_LEVEL', 'SLUICE_PORT']);
    expect(problems).toContain('SLUICE_PORT="abc": expected a whole number');
    expect(problems).toContain('DATABASE_URL="mysql://x": expected a postgresql:// URL (leave unset for the embedded database)');
    expect(problems).toContain('SLUICE_GRAPHIQL="maybe": expected true or false');
    expect(problems.find((p) => p.startsWith('SLUICE_LOG_LEVEL='))).toMatch(/^SLUICE_LOG_LEVEL="loud": .*'fatal' \| 'error' \| 'warn' \| 'info' \| 'debug' \| 'trace' \| 'silent'/);
  });

  it.each([
    ['SLUICE_PORT', '70000', 'SLUICE_PORT="70000": must be at most 65535'],
    ['SLUICE_PORT', '-1', 'SLUICE_PORT="-1": expected a whole number'],
    ['SLUICE_MAX_CONCURRENT_JOBS', '0', 'SLUICE_MAX_CONCURRENT_JOBS="0": must be at least 1'],
    ['SLUICE_PROGRESS_INTERVAL_MS', '10', 'SLUICE_PROGRESS_INTERVAL_MS="10": must be at least 50'],
    ['SLUICE_WEBHOOK_LEASE_MS', '100', 'SLUICE_WEBHOOK_LEASE_MS="100": must be at least 500'],
    ['SLUICE_WEBHOOK_HEARTBEAT_MS', '30000', 'SLUICE_WEBHOOK_HEARTBEAT_MS="30000": must be less than SLUICE_WEBHOOK_LEASE_MS (30000)'],
  ])('%s=%s is rejected', (name, value, problem) => {
    expect(problemsOf({ [name]: value })).toEqual([problem]);
  });

  it('the error message lists every problem', () => {
    try {
      loadConfig({ SLUICE_PORT: '70000', SLUICE_GRAPHIQL: 'maybe' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(
        'Invalid configuration:\n  - SLUICE_PORT="70000": must be at most 65535\n  - SLUICE_GRAPHIQL="maybe": expected true or false',
      );
    }
  });
});

describe('schema.graphql', () => {
  // printedSchema() runs in a plain Node process (as `npm run schema` does): under vitest the
  // `graphql` package would load twice (ESM for src, CommonJS for Pothos) and refuse to mix.
  it('is the schema the code builds (printedSchema())', async () => {
    const root = new URL('../../', import.meta.url);
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const printed = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [tsx, '--eval', "import { printedSchema } from './src/server/schema.ts'; process.stdout.write(printedSchema());"],
        { cwd: root, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    const committed = fs.readFileSync(new URL('schema.graphql', root), 'utf8');
    expect(printed.length).toBeGreaterThan(1000);
    expect(printed === committed, 'schema.graphql is out of date: run `npm run schema`').toBe(true);
  });
});

/** Resolves when the socket can no longer be opened on `port`. */
function connectRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve('connected');
    });
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

describe('graceful shutdown', () => {
  // Runs last: it stops the file's server (the afterAll stop is then a no-op).
  it('closes open WebSockets with 1001, ends SSE streams and releases the port', async () => {
    const t = s;
    const port = t.app.port;

    const socket = new WebSocket(t.wsUrl, 'graphql-transport-ws');
    const messages: { type: string }[] = [];
    socket.on('message', (raw) => messages.push(JSON.parse(String(raw)) as { type: string }));
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    expect(socket.protocol).toBe('graphql-transport-ws');
    socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    for (let i = 0; i < 100 && !messages.some((m) => m.type === 'connection_ack'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(messages).toEqual([{ type: 'connection_ack' }]);
    // A live subscription is open on the socket.
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { events { cursor } }' } }));

    // And an SSE stream is open.
    const sse = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { events { cursor } }' }),
    });
    expect(sse.status).toBe(200);
    const sseEnded = (async () => {
      const reader = sse.body!.getReader();
      try {
        for (;;) if ((await reader.read()).done) return 'ended';
      } catch {
        return 'ended';
      }
    })();

    const started = Date.now();
    await t.app.stop();
    const stopMs = Date.now() - started;

    expect(await closed).toEqual({ code: 1001, reason: 'Server shutting down' });
    expect(await sseEnded).toBe('ended');
    expect(stopMs).toBeLessThan(10_000);
    expect(await connectRefused(port)).toBe('ECONNREFUSED');
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    // A second stop is a no-op, not an error.
    await expect(t.app.stop()).resolves.toBeUndefined();
  });
});
