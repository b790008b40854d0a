/**
 * `npm run bench`: Sluice's loads side by side with the native tools, in one run.
 *
 * Each scenario starts a real Sluice server as a child process (fresh data directory), drives
 * it over HTTP like a client, issues a small GraphQL query every 50 ms during the load
 * (latency p50/p99), and reads the server's peak RSS (VmHWM) at the end. Baselines run the
 * native tool on the same input. Prints a table; asserts nothing.
 *
 * Sluice keeps its own state in PostgreSQL during the bench when one answers (as deployed),
 * or in the embedded PGlite with BENCH_EMBEDDED=1 (which adds ~250 MB of RSS for PGlite).
 *
 * The `health` scenario times `/health` (p50/p99 in the latency column) while 500 graphql-ws
 * sockets connect at once, during a push flood and during a 100k-column CSV preview.
 *
 * Env: BENCH_ROWS (default 1000000), BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres;
 * PostgreSQL scenarios are skipped when it does not answer), BENCH_ONLY (comma list of scenario ids).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import cronParser from 'cron-parser';
import pg from 'pg';
import WebSocket from 'ws';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const PG_URL = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const ONLY = process.env.BENCH_ONLY?.split(',');
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
// One files root for every server started here: connectors' files live in its default workspace folder.
const filesRoot = path.join(work, 'files');
const files = path.join(filesRoot, 'default');
fs.mkdirSync(files, { recursive: true });

interface Result {
  id: string;
  scenario: string;
  records: number;
  seconds: number;
  baseline?: { tool: string; seconds: number };
  peakRssMb?: number;
  p50?: number;
  p99?: number;
  note?: string;
}

const results: Result[] = [];

function log(msg: string) {
  process.stderr.write(`${msg}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function writeCsv(file: string, rows: number) {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, 'id,name,email,city,country,amount,quantity,active,created_at,note\n');
  let buf = '';
  for (let i = 1; i <= rows; i++) {
    buf += `${i},name ${i},user${i}@example.com,city ${i % 1000},C${i % 200},${(i % 10000) / 100},${i % 50},${i % 2 === 0},2026-01-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z,note number ${i}\n`;
    if (buf.length > 1 << 20) {
      fs.writeSync(fd, buf);
      buf = '';
    }
  }
  fs.writeSync(fd, buf);
  fs.closeSync(fd);
}

/** Sluice's own database in the bench: PostgreSQL (as deployed) unless BENCH_EMBEDDED=1 or none answers. */
let stateDbSeq = 0;
async function stateDatabase(): Promise<{ env: Record<string, string>; drop(): Promise<void>; kind: string }> {
  if (process.env.BENCH_EMBEDDED === '1' || !(await pgAvailable())) return { env: {}, drop: async () => {}, kind: 'embedded PGlite' };
  const name = `sluice_bench_state_${process.pid}_${stateDbSeq++}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    kind: 'PostgreSQL',
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [name]);
      await c.query(`drop database if exists ${name}`);
      await c.end();
    },
  };
}

class Server {
  private constructor(
    readonly proc: ChildProcess,
    readonly url: string,
    private readonly state: { drop(): Promise<void>; kind: string },
  ) {}

  get stateDb() {
    return this.state.kind;
  }

  static async start(extraEnv: Record<string, string> = {}): Promise<Server> {
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(work, 'data-'));
    const state = await stateDatabase();
    extraEnv = { ...state.env, ...extraEnv };
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      // The bench drives thousands of operations from one caller and polls while loading: no rate limit.
      env: { ...process.env, SLUICE_PORT: String(port), SLUICE_DATA_DIR: dataDir, SLUICE_FILES_ROOT: filesRoot, SLUICE_LOG_LEVEL: 'warn', SLUICE_RATE_LIMIT: '0', ...extraEnv },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const url = `http://127.0.0.1:${port}/graphql`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/ready`);
        if (r.ok) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error('server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    return new Server(proc, url, state);
  }

  async q<T = any>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const r = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    const body = (await r.json()) as { data?: T; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data as T;
  }

  peakRssMb(): number {
    const status = fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  }

  async stop() {
    this.proc.kill('SIGTERM');
    await new Promise((r) => this.proc.once('exit', r));
    await this.state.drop();
  }
}

async function connector(s: Server, name: string, driver: string, config: Record<string, unknown>) {
  const r = await s.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { message } } }`,
    { i: { name, driver, config } },
  );
  if (!r.createConnector.connector) throw new Error(`${name}: ${r.createConnector.message}`);
  return r.createConnector.connector.id as string;
}

/** Runs a pipeline's initial load, measuring wall time and query latency every 50 ms. */
async function load(s: Server, pipeline: Record<string, unknown>): Promise<{ seconds: number; records: number; p50: number; p99: number; peakRssMb: number }> {
  const p = await s.q(
    `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { message } } }`,
    { i: pipeline },
  );
  if (!p.createPipeline.pipeline) throw new Error(p.createPipeline.message);
  const id = p.createPipeline.pipeline.id;
  const t0 = performance.now();
  const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, { i: { id } });
  const jobId = started.startPipeline.pipeline.currentJob.id;
  const latencies: number[] = [];
  let job: any;
  for (;;) {
    const t = performance.now();
    const r = await s.q(`query($id: ID!) { job(id: $id) { status recordsWritten recordsFailed error } }`, { id: jobId });
    latencies.push(performance.now() - t);
    job = r.job;
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status)) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  if (job.status !== 'SUCCEEDED') throw new Error(`job ${job.status}: ${job.error}`);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { seconds, records: job.recordsWritten, p50: pct(0.5), p99: pct(0.99), peakRssMb: s.peakRssMb() };
}

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

const mapping10 = {
  mapping: {
    user_id: 'id',
    full_name: 'name',
    email: 'email',
    city: 'city',
    country: 'country',
    amount: 'amount',
    quantity: 'quantity',
    active: 'active',
    created_at: 'created_at',
    note: 'note',
  },
  cast: { user_id: 'int', amount: 'float', quantity: 'int', active: 'bool' },
};

async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function withPgDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `sluice_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [name]);
    await admin.query(`drop database if exists ${name}`);
    await admin.end();
  }
}

const CREATE_USERS = `create table users (id bigint primary key, name text, email text, city text, country text, amount double precision, quantity bigint, active boolean, created_at timestamptz, note text)`;


/** Maps `items` with at most `limit` calls in flight. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** Every node of a connection query (`path` names the connection in the answer), 100 per page. */
async function allNodes(s: Server, query: string, variables: Record<string, unknown>, path: string): Promise<any[]> {
  const out: any[] = [];
  let after: string | null = null;
  for (;;) {
    const r: any = await s.q(query, { ...variables, after });
    const conn = r[path];
    out.push(...conn.nodes);
    if (!conn.pageInfo.hasNextPage) return out;
    after = conn.pageInfo.endCursor;
  }
}

const pctOf = (values: number[], p: number) => {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? 0;
};

/** Polls /health every 20 ms while `fn` runs; its latency percentiles (ms). */
async function healthDuring(s: Server, fn: () => Promise<unknown>): Promise<{ p50: number; p99: number; polls: number; seconds: number }> {
  const health = s.url.replace(/\/graphql$/, '/health');
  const latencies: number[] = [];
  let running = true;
  const poll = (async () => {
    while (running) {
      const t = performance.now();
      await fetch(health).then((r) => r.text());
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    running = false;
    await poll;
  }
  return { p50: pctOf(latencies, 0.5), p99: pctOf(latencies, 0.99), polls: latencies.length, seconds: (performance.now() - t0) / 1000 };
}

/** A graphql-ws socket authenticated with `key`, resolved at the server's connection_ack. */
function wsConnect(s: Server, key: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(s.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    sock.on('open', () => sock.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } })));
    sock.on('message', (d) => JSON.parse(String(d)).type === 'connection_ack' && resolve(sock));
    sock.on('close', (code) => reject(new Error(`socket closed with ${code}`)));
    sock.on('error', reject);
  });
}

const CREATE_PIPELINE = `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { message } } }`;

const scenarios: { id: string; run: (csv: string) => Promise<void> }[] = [
  {
    id: 'csv-sqlite',
    run: async (csv) => {
      const baseDb = path.join(work, 'baseline.db');
      const baseline = time(() => execFileSync('sqlite3', [baseDb, '.mode csv', `.import ${csv} users`], { stdio: 'ignore' }));
      const s = await Server.start();
      try {
        const src = await connector(s, 'csv', 'csv', { path: csv });
        const dst = await connector(s, 'sqlite', 'sqlite', { path: path.join(files, 'sluice.db'), table: 'users' });
        const m = await s.q(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { ... on CreateMappingPayload { mapping { id } } } }`, {
          i: { name: 'ten fields', spec: mapping10 },
        });
        const r = await load(s, { name: 'csv→sqlite', sourceId: src, destinationId: dst, mappingId: m.createMapping.mapping.id, batchSize: 10_000 });
        results.push({ id: 'csv-sqlite', scenario: 'CSV → SQLite (10-field mapping)', ...r, baseline: { tool: 'sqlite3 .import', seconds: baseline } });
      } finally {
        await s.stop();
      }
    },
  },
  {
    id: 'csv-postgres',
    run: async (csv) => {
      if (!(await pgAvailable())) return void results.push({ id: 'csv-postgres', scenario: 'CSV → PostgreSQL', records: 0, seconds: 0, note: `skipped: no PostgreSQL at ${PG_URL}` });
      await withPgDatabase(async (url) => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(CREATE_USERS.replace('users', 'baseline_users'));
        await c.end();
        const baseline = time(() => execFileSync('psql', [url, '-q', '-c', `\\copy baseline_users from '${csv}' csv header`], { stdio: 'ignore' }));
        const s = await Server.start();
        try {
          const src = await connector(s, 'csv', 'csv', { path: csv });
          const dst = await connector(s, 'pg', 'postgres-destination', { connectionString: url, table: 'users' });
          const m = await s.q(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { ... on CreateMappingPayload { mapping { id } } } }`, {
            i: { name: 'ten fields', spec: mapping10 },
          });
          const r = await load(s, { name: 'csv→pg', sourceId: src, destinationId: dst, mappingId: m.createMapping.mapping.id, batchSize: 10_000 });
          results.push({ id: 'csv-postgres', scenario: 'CSV → PostgreSQL (10-field mapping)', ...r, baseline: { tool: 'psql \\copy', seconds: baseline } });
        } finally {
          await s.stop();
        }
      });
    },
  },
  {
    id: 'postgres-postgres',
    run: async (csv) => {
      if (!(await pgAvailable())) return void results.push({ id: 'postgres-postgres', scenario: 'PostgreSQL → PostgreSQL', records: 0, seconds: 0, note: 'skipped: no PostgreSQL' });
      await withPgDatabase(async (url) => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(CREATE_USERS);
        await c.query(CREATE_USERS.replace('users', 'baseline_copy'));
        await c.end();
        execFileSync('psql', [url, '-q', '-c', `\\copy users from '${csv}' csv header`], { stdio: 'ignore' });
        const baseline = time(() =>
          execFileSync('bash', ['-c', `psql "${url}" -q -c "COPY users TO STDOUT" | psql "${url}" -q -c "COPY baseline_copy FROM STDIN"`], { stdio: 'ignore' }),
        );
        const s = await Server.start();
        try {
          const src = await connector(s, 'pg source', 'postgres-source', { connectionString: url, tables: ['users'] });
          const dst = await connector(s, 'pg dest', 'postgres-destination', { connectionString: url, table: 'users_copy' });
          const r = await load(s, {
            name: 'pg→pg',
            sourceId: src,
            destinationId: dst,
            batchSize: 10_000,
            streams: [{ name: 'users', syncMode: 'INCREMENTAL', cursorField: ['id'], primaryKey: ['id'] }],
          });
          results.push({ id: 'postgres-postgres', scenario: 'PostgreSQL → PostgreSQL (incremental)', ...r, baseline: { tool: 'COPY TO | COPY FROM', seconds: baseline } });
        } finally {
          await s.stop();
        }
      });
    },
  },
  {
    id: 'generator-null',
    run: async () => {
      const s = await Server.start();
      try {
        const src = await connector(s, 'gen', 'generator', { count: ROWS, seed: 1 });
        const dst = await connector(s, 'null', 'null', {});
        const r = await load(s, { name: 'gen→null', sourceId: src, destinationId: dst, batchSize: 10_000 });
        results.push({ id: 'generator-null', scenario: 'generator → null (engine overhead)', ...r, note: `${((r.seconds * 1e9) / Math.max(1, r.records)).toFixed(0)} ns/record` });
      } finally {
        await s.stop();
      }
    },
  },
  {
    // 1,000 pipelines on one per-minute cron (second 0 of each minute): how late the fires are
    // and that each fire makes exactly one job. Pipelines are created disabled and started, so
    // their initial loads finish without fires in between; all are then enabled right after a
    // cron instant so every one is armed for the same next instant — the worst case: 1,000 fires
    // due in the same millisecond. Env: BENCH_SCHEDULES (1000), BENCH_SCHEDULE_CRON ('0 * * * * *').
    id: 'schedule-1000',
    run: async () => {
      const N = Number(process.env.BENCH_SCHEDULES ?? 1000);
      const cron = process.env.BENCH_SCHEDULE_CRON ?? '0 * * * * *';
      const s = await Server.start();
      try {
        const src = await connector(s, 'gen', 'generator', { count: 10 });
        const dst = await connector(s, 'null', 'null', {});
        const t0 = performance.now();
        const ids = await pool(Array.from({ length: N }, (_, i) => i), 8, async (i) => {
          const r = await s.q(CREATE_PIPELINE, {
            i: { name: `scheduled ${i}`, sourceId: src, destinationId: dst, trigger: 'SCHEDULE', schedule: { cron }, enabled: false },
          });
          if (!r.createPipeline.pipeline) throw new Error(r.createPipeline.message);
          return r.createPipeline.pipeline.id as string;
        });
        const tCreated = performance.now();
        await pool(ids, 8, (id) => s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id } }));
        for (;;) {
          const r = await s.q(`{ pipelines(filter: { state: READY }) { totalCount } }`);
          if (r.pipelines.totalCount === N) break;
          const failed = await s.q(`{ jobs(filter: { statuses: [FAILED] }) { totalCount } }`);
          if (failed.jobs.totalCount) throw new Error(`${failed.jobs.totalCount} initial load(s) failed`);
          await new Promise((res) => setTimeout(res, 500));
        }
        const tReady = performance.now();
        log(`[bench] schedule-1000: ${N} pipelines created in ${((tCreated - t0) / 1000).toFixed(1)} s, initial loads done in ${((tReady - tCreated) / 1000).toFixed(1)} s`);

        // Enable all just after a cron instant: every pipeline is then armed for the next one.
        const instant = cronParser.parseExpression(cron, { tz: 'UTC' }).next().toDate().getTime();
        await new Promise((res) => setTimeout(res, Math.max(0, instant + 300 - Date.now())));
        const tEnable = performance.now();
        await pool(ids, 8, (id) => s.q(`mutation($i: PipelineIdInput!) { enablePipeline(input: $i) { __typename } }`, { i: { id } }));
        const enableSeconds = (performance.now() - tEnable) / 1000;
        const armed = await allNodes(
          s,
          `query($after: String) { pipelines(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id nextRunAt } } }`,
          {},
          'pipelines',
        );
        const targets = new Set(armed.map((p) => p.nextRunAt));
        if (targets.size !== 1 || armed.some((p) => !p.nextRunAt)) throw new Error(`pipelines armed for ${targets.size} different instants (enabling took ${enableSeconds.toFixed(1)} s)`);
        const target = new Date([...targets][0] as string).getTime();
        log(`[bench] schedule-1000: enabled in ${enableSeconds.toFixed(1)} s; all ${N} armed for ${new Date(target).toISOString()}; waiting ${((target - Date.now()) / 1000).toFixed(0)} s`);

        // Around the fire: a small query every 50 ms (API latency while the fires commit).
        await new Promise((res) => setTimeout(res, Math.max(0, target - 1000 - Date.now())));
        const latencies: number[] = [];
        const since = new Date(target - 1000).toISOString();
        let fired = 0;
        const deadline = Date.now() + 120_000;
        while (fired < N && Date.now() < deadline) {
          const t = performance.now();
          const r = await s.q(`query($since: DateTime) { events(filter: { types: [SCHEDULE_FIRED], since: $since }) { totalCount } }`, { since });
          latencies.push(performance.now() - t);
          fired = r.events.totalCount;
          await new Promise((res) => setTimeout(res, 50));
        }
        const allFiredMs = Date.now() - target;
        const events = await allNodes(
          s,
          `query($after: String, $since: DateTime) { events(first: 100, after: $after, filter: { types: [SCHEDULE_FIRED, RUN_SKIPPED, SCHEDULE_SKIPPED], since: $since }) {
            pageInfo { hasNextPage endCursor } nodes { type pipelineId data createdAt } } }`,
          { since },
          'events',
        );
        const fires = events.filter((e) => e.type === 'SCHEDULE_FIRED' && new Date(e.data.scheduledAt).getTime() === target);
        const late = fires.map((e) => e.data.lateMs as number);
        const timerLate = fires.map((e) => (e.data.timerLateMs ?? e.data.lateMs) as number);
        // Commit lag: when the fire's transaction wrote its event (the job is created in the same transaction).
        const commit = fires.map((e) => new Date(e.createdAt).getTime() - target);
        const jobs = await allNodes(
          s,
          `query($after: String, $since: DateTime) { jobs(first: 100, after: $after, filter: { kinds: [SYNC], createdAfter: $since }) {
            pageInfo { hasNextPage endCursor } nodes { trigger createdAt pipeline { id } } } }`,
          { since },
          'jobs',
        );
        const perPipeline = new Map<string, number>(ids.map((id) => [id, 0]));
        for (const j of jobs) if (j.trigger === 'SCHEDULE') perPipeline.set(j.pipeline.id, (perPipeline.get(j.pipeline.id) ?? 0) + 1);
        const histogram = new Map<number, number>();
        for (const c of perPipeline.values()) histogram.set(c, (histogram.get(c) ?? 0) + 1);
        const perFire = [...histogram.entries()].sort((a, b) => a[0] - b[0]).map(([jobsN, pipelines]) => `${jobsN} job(s) ×${pipelines}`).join(', ');
        const skipped = events.length - fires.length;
        const note =
          `cron "${cron}"; ${fires.length}/${N} fired; jobs per fire: ${perFire}; skipped ${skipped}; ` +
          `lateness (lateMs: fire recorded, job queued) min ${pctOf(late, 0)} / p50 ${pctOf(late, 0.5)} / p99 ${pctOf(late, 0.99)} / max ${pctOf(late, 1)} ms; ` +
          `timer lateness p50 ${pctOf(timerLate, 0.5)} / p99 ${pctOf(timerLate, 0.99)} ms; ` +
          `commit lag p50 ${pctOf(commit, 0.5)} / p99 ${pctOf(commit, 0.99)} / max ${pctOf(commit, 1)} ms; all fired after ${allFiredMs} ms; state DB ${s.stateDb}`;
        log(`[bench] schedule-1000: ${note}`);
        results.push({
          id: 'schedule-1000',
          scenario: `${N} per-minute schedules (generator → null)`,
          records: fires.length,
          seconds: allFiredMs / 1000,
          p50: pctOf(latencies, 0.5),
          p99: pctOf(latencies, 0.99),
          peakRssMb: s.peakRssMb(),
          note,
        });
      } finally {
        await s.stop();
      }
    },
  },
  {
    id: 'health',
    run: async () => {
      const s = await Server.start();
      try {
        const k = await s.q(`mutation { createApiKey(input: { name: "bench", scope: WRITE }) { ... on CreateApiKeyPayload { key } } }`);
        const key = k.createApiKey.key as string;
        let sockets: WebSocket[] = [];
        const socketsRun = await healthDuring(s, async () => {
          sockets = await Promise.all(Array.from({ length: 500 }, () => wsConnect(s, key)));
        });
        for (const w of sockets) w.close();
        results.push({ id: 'health', scenario: '/health while 500 graphql-ws sockets connect', records: sockets.length, seconds: socketsRun.seconds, p50: socketsRun.p50, p99: socketsRun.p99, peakRssMb: s.peakRssMb(), note: `/health latency over ${socketsRun.polls} polls` });

        const src = await connector(s, 'push source', 'generator', { count: 1 });
        const dst = await connector(s, 'push sink', 'null', {});
        const p = await s.q(CREATE_PIPELINE, { i: { name: 'push flood', sourceId: src, destinationId: dst, trigger: 'SUBSCRIPTION' } });
        const id = p.createPipeline.pipeline.id;
        await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id } });
        for (let i = 0; i < 200; i++) {
          if ((await s.q(`query($id: ID!) { pipeline(id: $id) { state } }`, { id })).pipeline.state === 'READY') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const t = await s.q(`mutation($i: PipelineIdInput!) { createPushToken(input: $i) { ... on CreatePushTokenPayload { pushToken { token path } } } }`, { i: { id } });
        const pushUrl = new URL(t.createPushToken.pushToken.path, s.url).href;
        const body = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ id: i, name: `record ${i}`, payload: 'x'.repeat(100) })));
        let pushes = 0;
        const flood = await healthDuring(s, () =>
          Promise.all(
            Array.from({ length: 25 }, async () => {
              const until = Date.now() + 10_000;
              while (Date.now() < until) {
                const r = await fetch(pushUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.createPushToken.pushToken.token}` }, body });
                await r.text();
                if (r.status === 202) pushes++;
              }
            }),
          ),
        );
        results.push({ id: 'health', scenario: '/health during a push flood (25 clients × 200 records)', records: pushes * 200, seconds: flood.seconds, p50: flood.p50, p99: flood.p99, peakRssMb: s.peakRssMb(), note: `${pushes} pushes accepted; /health latency over ${flood.polls} polls` });

        const wide = path.join(work, 'wide.csv');
        fs.writeFileSync(wide, `${Array.from({ length: 100_000 }, (_, i) => `column${i}`).join(',')}\n${Array.from({ length: 100_000 }, (_, i) => i % 10).join(',')}\n`);
        const wideId = await connector(s, 'wide', 'csv', { path: wide });
        let outcome = '';
        const preview = await healthDuring(s, async () => {
          const r = await s.q(`mutation($i: PreviewMappingInput!) { previewMapping(input: $i) { __typename ... on Error { code } } }`, {
            i: { connectorId: wideId, spec: { mapping: { first: 'column0' } }, limit: 5 },
          });
          const d = await s.q(`mutation($i: ConnectorIdInput!) { discoverConnector(input: $i) { __typename ... on Error { code } } }`, { i: { id: wideId } });
          outcome = `${r.previewMapping.__typename}, ${d.discoverConnector.__typename}`;
        });
        results.push({ id: 'health', scenario: '/health during a 100k-column CSV preview + discovery', records: 1, seconds: preview.seconds, p50: preview.p50, p99: preview.p99, peakRssMb: s.peakRssMb(), note: `${outcome}; /health latency over ${preview.polls} polls` });
      } finally {
        await s.stop();
      }
    },
  },
];

async function main() {
  log(`[bench] ${ROWS} rows; work dir ${work}; Sluice's own database: ${process.env.BENCH_EMBEDDED === '1' || !(await pgAvailable()) ? 'embedded PGlite' : 'PostgreSQL'} (BENCH_EMBEDDED=1 for PGlite)`);
  const csv = path.join(files, 'users.csv');
  const tGen = time(() => writeCsv(csv, ROWS));
  log(`[bench] wrote ${csv} (${Math.round(fs.statSync(csv).size / 1e6)} MB) in ${tGen.toFixed(1)} s`);
  for (const sc of scenarios) {
    if (ONLY && !ONLY.includes(sc.id)) continue;
    log(`[bench] ${sc.id} …`);
    try {
      await sc.run(csv);
    } catch (err) {
      results.push({ id: sc.id, scenario: sc.id, records: 0, seconds: 0, note: `error: ${(err as Error).message.slice(0, 200)}` });
    }
  }
  printTable();
  fs.rmSync(work, { recursive: true, force: true });
}

function printTable() {
  const rows = results.map((r) => {
    const rate = r.seconds ? Math.round(r.records / r.seconds) : 0;
    const baseRate = r.baseline ? Math.round(ROWS / r.baseline.seconds) : 0;
    return [
      r.scenario,
      r.records ? r.records.toLocaleString('en') : '-',
      r.seconds ? r.seconds.toFixed(2) : '-',
      rate ? rate.toLocaleString('en') : '-',
      r.baseline ? `${r.baseline.tool}: ${r.baseline.seconds.toFixed(2)} s (${baseRate.toLocaleString('en')}/s)` : '-',
      r.baseline && r.seconds ? `${(r.seconds / r.baseline.seconds).toFixed(2)}×` : '-',
      r.peakRssMb ? String(r.peakRssMb) : '-',
      r.p50 !== undefined ? `${r.p50.toFixed(1)} / ${r.p99!.toFixed(1)}` : '-',
      r.note ?? '',
    ];
  });
  const head = ['scenario', 'records', 'seconds', 'records/s', 'baseline (same run)', 'time vs baseline', 'peak RSS MB', 'query p50/p99 ms', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
