/**
 * Starts a real Sluice (HTTP + WebSocket, real database) for a test, on a free port and a
 * fresh data directory, and talks to it the way clients do.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import WebSocket from 'ws';
import { startApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

export interface TestServer {
  app: App;
  url: string;
  wsUrl: string;
  dataDir: string;
  /** The default workspace's files folder (created): connectors' local paths live here. */
  filesDir: string;
  config: Config;
  /** Every log line (JSON) when started with `captureLogs`; empty otherwise. */
  logs: string[];
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<{ data?: T; errors?: any[] }>;
  /** Runs a query and fails the test on GraphQL errors. */
  q<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  ws(params?: Record<string, unknown>): Client;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'sluice-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A fresh data folder and its default workspace's files folder (created), for tests that write
 * connector files before the server starts: start it with `{ dataDir }`.
 */
export function testDataDir(prefix = 'sluice-test-'): { dataDir: string; filesDir: string } {
  const dataDir = tempDir(prefix);
  const filesDir = path.join(dataDir, 'files', 'default');
  fs.mkdirSync(filesDir, { recursive: true });
  return { dataDir, filesDir };
}

export async function startTestServer(options: { dataDir?: string; env?: Record<string, string>; captureLogs?: boolean } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  const template = process.env.SLUICE_TEST_PGDATA_TEMPLATE;
  if (template && !fs.existsSync(path.join(dataDir, 'pgdata'))) fs.cpSync(template, path.join(dataDir, 'pgdata'), { recursive: true });
  const config = loadConfig({
    SLUICE_PORT: '0',
    SLUICE_DATA_DIR: dataDir,
    SLUICE_LOG_LEVEL: process.env.SLUICE_TEST_LOG_LEVEL ?? 'silent',
    SLUICE_PROGRESS_INTERVAL_MS: '200',
    // Tests talk to local servers on 127.0.0.1; '' here means nothing is allowed.
    SLUICE_OUTBOUND_ALLOW: '127.0.0.1',
    // Suites poll their server in loops; how fast they poll is the machine's speed, not the
    // behaviour under test. The suites about the rate limit set it themselves.
    SLUICE_RATE_LIMIT: '0',
    ...options.env,
  });
  const logs: string[] = [];
  const log = options.captureLogs
    ? pino({ level: config.logLevel, base: { service: 'sluice' } }, { write: (line: string) => void logs.push(line) })
    : createLogger(config.logLevel);
  const app = await startApp(config, log);
  const filesDir = path.join(config.files.root, 'default');
  fs.mkdirSync(filesDir, { recursive: true });
  const url = app.url;
  const wsUrl = url.replace(/^http/, 'ws');
  const clients: Client[] = [];

  const gql: TestServer['gql'] = async (query, variables, headers) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as { data?: any; errors?: any[] };
  };

  return {
    app,
    url,
    wsUrl,
    dataDir,
    filesDir,
    config,
    logs,
    gql,
    q: async (query, variables) => {
      const res = await gql(query, variables);
      if (res.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
      return res.data as never;
    },
    ws: (params) => {
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: params, lazy: true, retryAttempts: 0 });
      clients.push(client);
      return client;
    },
    stop: async () => {
      await Promise.all(clients.map((c) => c.dispose()));
      await app.stop();
    },
  };
}

/** Collects a subscription's messages until `until` returns true (or the timeout passes). */
export function subscribe<T = any>(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
): { messages: T[]; errors: unknown[]; done: Promise<void>; waitFor(pred: (msgs: T[]) => boolean, timeoutMs?: number): Promise<T[]>; stop(): void } {
  const messages: T[] = [];
  const errors: unknown[] = [];
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const waiters: { pred: (m: T[]) => boolean; resolve: (m: T[]) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pred(messages)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(messages);
      }
    }
  };
  const unsubscribe = client.subscribe<T>(
    { query, variables },
    {
      next: (msg) => {
        if (msg.errors) errors.push(...msg.errors);
        if (msg.data) messages.push(msg.data as T);
        check();
      },
      error: (err) => {
        errors.push(err);
        resolveDone();
      },
      complete: () => resolveDone(),
    },
  );
  return {
    messages,
    errors,
    done,
    stop: unsubscribe,
    waitFor: (pred, timeoutMs = 30_000) =>
      new Promise<T[]>((resolve, reject) => {
        if (pred(messages)) return resolve(messages);
        const timer = setTimeout(() => reject(new Error(`timed out waiting; got ${JSON.stringify(messages).slice(0, 2000)} errors ${JSON.stringify(errors)}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      }),
  };
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Writes a CSV with `rows` data rows: id,name,email,amount,active,created_at. */
export function writeCsv(file: string, rows: number): void {
  const out: string[] = ['id,name,email,amount,active,created_at'];
  for (let i = 1; i <= rows; i++) {
    out.push(`${i},user ${i},user${i}@example.com,${(i * 1.5).toFixed(2)},${i % 2 === 0},2026-01-${String((i % 28) + 1).padStart(2, '0')}T00:00:00Z`);
  }
  fs.writeFileSync(file, `${out.join('\n')}\n`);
}

/** One server-sent event: its `event:` name and its `data:` parsed as JSON (null when empty). */
export interface SseMessage {
  event: string;
  data: any;
}

/** Moves every complete SSE block of `buf` into `into`; returns the incomplete rest. */
export function takeSseMessages(buf: string, into: SseMessage[]): string {
  let i: number;
  while ((i = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, i);
    buf = buf.slice(i + 2);
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    const text = data.join('\n');
    if (data.length || event !== 'message') into.push({ event, data: text ? JSON.parse(text) : null });
  }
  return buf;
}
