/**
 * Job logs through the real server: the runner's start and finish lines with the plan and the
 * counters; one line per HTTP request of an http source with its secrets removed (and no secret
 * anywhere in the log); the failure of a failing job; the level filter; pagination; per-attempt
 * logs; the jobLogs subscription over graphql-ws; workspace isolation; the per-job cap; pruning
 * with event retention.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';
import { bearer, callAs, createConnectorId, TERMINAL_JOB_STATUSES, waitForJob } from '../helpers/graphql.js';
import { json, startServer, type LocalServer } from '../engine/support/local-server.js';

const TOKEN = 'tok-Secret-4f9a1c2e7b';
const SIGNATURE = 'sig-Secret-88d03e51aa';

let s: TestServer;
let dir: string;
let api: LocalServer;
/** Per path: requests still to fail with 503, and a gate that holds every answer while set. */
const failNext: Record<string, number> = {};
const gates: Record<string, Promise<void> | null> = {};
let unauthorized = false;

const PAGES = 3;
const PER_PAGE = 2;

beforeAll(async () => {
  let filesData: string;
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-logs-'));
  writeCsv(path.join(dir, 'people.csv'), 25);
  api = await startServer(async (req, res) => {
    const name = new URL(req.path, 'http://x').pathname.slice(1);
    await gates[name];
    // The refusal echoes the token it got: the error message carries it until secrets are removed.
    if (unauthorized && name === 'denied') return json(res, 401, { error: `bad token ${req.query.get('token')}` });
    if ((failNext[name] ?? 0) > 0) {
      failNext[name]!--;
      return json(res, 503, { error: 'try later' });
    }
    const page = Number(req.query.get('page') ?? '1');
    const pages = name === 'many' ? 6 : PAGES;
    const items = page <= pages ? Array.from({ length: PER_PAGE }, (_, i) => ({ id: (page - 1) * PER_PAGE + i + 1, page })) : [];
    json(res, 200, { items });
  });
  s = await startTestServer({ dataDir: filesData });
});
afterAll(async () => {
  await s?.stop();
  await api?.close();
});

const LINE = 'cursor attempt at level stage message data';
const LOGS = `query($id: ID!, $first: Int, $after: String, $level: JobLogLevel) {
  job(id: $id) { status attempts logsDropped logs(first: $first, after: $after, level: $level) { totalCount pageInfo { hasNextPage endCursor } nodes { ${LINE} } } }
}`;

interface Line {
  cursor: string;
  attempt: number;
  at: string;
  level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  stage: 'SOURCE' | 'MAPPING' | 'DESTINATION' | 'RUNNER';
  message: string;
  data: any;
}

/** Every line of a job's log (page by page), oldest first. */
async function allLogs(id: string, level?: string, q: (query: string, v: Record<string, unknown>) => Promise<any> = s.q): Promise<Line[]> {
  const out: Line[] = [];
  let after: string | null = null;
  for (;;) {
    const r = await q(LOGS, { id, first: 100, after, level });
    const conn = r.job.logs;
    out.push(...conn.nodes);
    if (!conn.pageInfo.hasNextPage) return out;
    after = conn.pageInfo.endCursor;
  }
}

const httpSource = (name: string, pathName: string) =>
  createConnectorId(s.q, name, 'http', {
    url: `${api.origin}/${pathName}`,
    recordsPath: 'items',
    pagination: { type: 'page', pageParam: 'page' },
    query: { signature: SIGNATURE },
    auth: { type: 'apiKey', name: 'token', value: TOKEN, in: 'query' },
    retry: { maxAttempts: 1 },
  });

async function pipeline(name: string, sourceId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const dst = await createConnectorId(s.q, `${name} out`, 'jsonl', { path: path.join(dir, `${name}.jsonl`) });
  const p = await s.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`, {
    i: { name, sourceId, destinationId: dst, writeMode: 'APPEND', ...extra },
  });
  expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
  return p.createPipeline.pipeline.id;
}

async function start(pipelineId: string): Promise<string> {
  const r = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename ... on StartPipelinePayload { pipeline { currentJob { id } } } ... on Error { code message } } }`, {
    i: { id: pipelineId },
  });
  expect(r.startPipeline.__typename, JSON.stringify(r)).toBe('StartPipelinePayload');
  return r.startPipeline.pipeline.currentJob.id;
}

const waitJob = (id: string) =>
  waitForJob(async () => (await s.q(`query($id: ID!) { job(id: $id) { status attempts error recordsRead recordsWritten } }`, { id })).job, TERMINAL_JOB_STATUSES, 60_000);

let csvJob: string;
let httpJob: string;

describe('what a job logs', () => {
  it('a job log opens with the plan and closes with the status, counters and duration (RUNNER lines)', async () => {
    const src = await createConnectorId(s.q, 'people', 'csv', { path: path.join(dir, 'people.csv') });
    csvJob = await start(await pipeline('people', src, { streams: [{ name: 'people', syncMode: 'FULL_REFRESH' }] }));
    const job = await waitJob(csvJob);
    expect(job).toMatchObject({ status: 'SUCCEEDED', recordsRead: 25, recordsWritten: 25 });
    // The finish line commits with the status: no waiting needed.
    const lines = await allLogs(csvJob);
    const runner = lines.filter((l) => l.stage === 'RUNNER');
    expect(runner[0]).toMatchObject({ attempt: 1, level: 'INFO', message: expect.stringMatching(/^attempt 1 started \(sync\): csv → jsonl, streams: people \(FULL_REFRESH\); write mode APPEND/) });
    expect(runner[0]!.data).toMatchObject({ source: 'csv', destination: 'jsonl', writeMode: 'APPEND', streams: [{ name: 'people', syncMode: 'FULL_REFRESH', writeMode: 'APPEND' }] });
    const last = lines[lines.length - 1]!;
    expect(last).toMatchObject({ stage: 'RUNNER', level: 'INFO', attempt: 1, message: expect.stringMatching(/^attempt 1 succeeded: 25 read, 25 written, 0 failed in \d+ ms \(job SUCCEEDED\)$/) });
    expect(last.data).toMatchObject({ status: 'SUCCEEDED', recordsRead: 25, recordsWritten: 25, recordsFailed: 0, durationMs: expect.any(Number) });
    // Oldest first, with increasing cursors and times.
    const cursors = lines.map((l) => BigInt(l.cursor));
    expect([...cursors].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(cursors);
    expect(new Set(cursors).size).toBe(cursors.length);
  });

  it('an http source logs every request (method, URL, status, duration) with its secrets removed; no secret is anywhere in the log', async () => {
    const src = await httpSource('api', 'items');
    const pid = await pipeline('api', src);
    const before = api.requests.length;
    httpJob = await start(pid);
    expect((await waitJob(httpJob)).status).toBe('SUCCEEDED');
    const sent = api.requests.slice(before);
    // The requests really carried the secrets.
    expect(sent.length).toBeGreaterThanOrEqual(PAGES + 1);
    expect(sent.every((r) => r.query.get('token') === TOKEN && r.query.get('signature') === SIGNATURE)).toBe(true);

    const lines = await allLogs(httpJob);
    const requests = lines.filter((l) => l.data?.http);
    expect(requests).toHaveLength(sent.length);
    for (const l of requests) {
      expect(l).toMatchObject({ stage: 'SOURCE', level: 'DEBUG', attempt: 1 });
      expect(l.data.http).toMatchObject({ method: 'GET', status: 200, durationMs: expect.any(Number), attempt: 1 });
      const u = new URL(l.data.http.url);
      expect(u.origin).toBe(api.origin);
      expect(u.searchParams.get('token')).toBe('***');
      expect(u.searchParams.get('signature')).toBe('***');
      expect(l.message).toMatch(/^HTTP source: GET http:\/\/127\.0\.0\.1:\d+\/items\?.* → HTTP 200 in \d+ ms$/);
    }
    // Every page was requested and logged.
    const pages = requests.map((l) => new URL(l.data.http.url).searchParams.get('page'));
    for (let p = 1; p <= PAGES + 1; p++) expect(pages).toContain(String(p));
    const text = JSON.stringify(lines);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(SIGNATURE);
    expect(text).toContain('token=***');
  });

  it('a failing job logs why it failed (ERROR), its refused request (WARN), and still no secret', async () => {
    const src = await httpSource('denied', 'denied');
    const pid = await pipeline('denied', src);
    unauthorized = true;
    let jobId: string;
    try {
      jobId = await start(pid);
      const job = await waitJob(jobId);
      expect(job.status).toBe('FAILED');
    } finally {
      unauthorized = false;
    }
    const lines = await allLogs(jobId);
    const errors = lines.filter((l) => l.level === 'ERROR');
    expect(errors.map((l) => l.message)).toEqual([
      expect.stringMatching(/^attempt 1 failed: HTTP source: GET http:\/\/127\.0\.0\.1:\d+\/denied\?.*failed with HTTP 401.*\(authentication refused\)/),
      expect.stringMatching(/^attempt 1 failed: 0 read, 0 written, 0 failed( in \d+ ms)? \(job FAILED\)$/),
    ]);
    expect(errors[0]).toMatchObject({ stage: 'RUNNER', data: { outcome: 'FAILED', retryable: false } });
    // A driver's own failure carries no stack (only unexpected errors do).
    expect(errors[0]!.data.stack).toBeUndefined();
    expect(lines.filter((l) => l.data?.http?.status === 401).map((l) => l.level)).toContain('WARN');
    const text = JSON.stringify(lines);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(SIGNATURE);
  });
});

describe('reading logs', () => {
  it('level keeps that level and the more severe ones', async () => {
    const all = await allLogs(httpJob);
    const info = await allLogs(httpJob, 'INFO');
    const error = await allLogs(httpJob, 'ERROR');
    expect(all.some((l) => l.level === 'DEBUG')).toBe(true);
    expect(info.length).toBeGreaterThan(0);
    expect(info.every((l) => l.level !== 'DEBUG')).toBe(true);
    expect(info.map((l) => l.cursor)).toEqual(all.filter((l) => l.level !== 'DEBUG').map((l) => l.cursor));
    expect(error).toEqual([]);
    const counted = await s.q(LOGS, { id: httpJob, first: 1, level: 'INFO' });
    expect(counted.job.logs.totalCount).toBe(info.length);
  });

  it('pages with first/after: every line once, in order, with stable cursors', async () => {
    const all = await allLogs(httpJob);
    expect(all.length).toBeGreaterThan(4);
    const paged: Line[] = [];
    let after: string | null = null;
    for (;;) {
      const r: any = await s.q(LOGS, { id: httpJob, first: 2, after });
      expect(r.job.logs.nodes.length).toBeLessThanOrEqual(2);
      paged.push(...r.job.logs.nodes);
      if (!r.job.logs.pageInfo.hasNextPage) break;
      after = r.job.logs.pageInfo.endCursor;
    }
    expect(paged).toEqual(all);
    // A cursor keeps pointing at the same place.
    const from = all[2]!.cursor;
    const again = await s.q(LOGS, { id: httpJob, first: 3, after: from });
    expect(again.job.logs.nodes).toEqual(all.slice(3, 6));
    const bad = await s.gql(LOGS, { id: httpJob, first: 3, after: 'nope' });
    expect(JSON.stringify(bad.errors)).toContain('invalid cursor');
  });

  it('each attempt has its own lines: a retried job logs the failure, the retry, and the second attempt', async () => {
    const src = await httpSource('flaky', 'flaky');
    const pid = await pipeline('flaky', src, { maxAttempts: 3, retryBackoffMs: 100 });
    // The first attempt's discovery and first page fail (retryable 503); the second attempt succeeds.
    failNext.flaky = 2;
    const jobId = await start(pid);
    const job = await waitJob(jobId);
    expect(job).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    const r = await s.q(`query($id: ID!) { job(id: $id) { attemptHistory { number status logs(first: 100) { totalCount nodes { ${LINE} } } } } }`, { id: jobId });
    const [a1, a2] = r.job.attemptHistory;
    expect(a1.number).toBe(1);
    expect(a1.logs.nodes.every((l: Line) => l.attempt === 1)).toBe(true);
    expect(a2.logs.nodes.every((l: Line) => l.attempt === 2)).toBe(true);
    const m1 = a1.logs.nodes.map((l: Line) => `${l.level} ${l.message}`);
    expect(m1[0]).toMatch(/^INFO attempt 1 started/);
    expect(m1).toContainEqual(expect.stringMatching(/^ERROR attempt 1 failed: HTTP source: .*HTTP 503/));
    expect(m1).toContainEqual(expect.stringMatching(/^WARN retrying from the last checkpoint in \d+s \(attempt 2 of 3\)$/));
    expect(m1[m1.length - 1]).toMatch(/^WARN attempt 1 failed; the job is retried: /);
    const m2 = a2.logs.nodes.map((l: Line) => `${l.level} ${l.message}`);
    expect(m2[0]).toMatch(/^INFO attempt 2 started/);
    expect(m2[m2.length - 1]).toMatch(/^INFO attempt 2 succeeded: 6 read, 6 written/);
    // The job's log is both attempts, in order.
    const all = await allLogs(jobId);
    expect(all.map((l) => l.cursor)).toEqual([...a1.logs.nodes, ...a2.logs.nodes].map((l: Line) => l.cursor));
    expect(a1.logs.totalCount + a2.logs.totalCount).toBe(all.length);
  });
});

describe('live and isolated', () => {
  it('jobLogs streams the lines over graphql-ws as they are stored, then completes after the finish line', async () => {
    const src = await httpSource('slow', 'slow');
    const pid = await pipeline('slow', src);
    let release!: () => void;
    gates.slow = new Promise<void>((r) => (release = r));
    try {
      const jobId = await start(pid);
      const client = s.ws();
      const SUB = `subscription($id: ID!, $level: JobLogLevel, $after: String) { jobLogs(jobId: $id, level: $level, after: $after) { ${LINE} jobId } }`;
      // From the start of the log (replayed), then live.
      const sub = subscribe<{ jobLogs: Line }>(client, SUB, { id: jobId, after: '0' });
      const infoOnly = subscribe<{ jobLogs: Line }>(client, SUB, { id: jobId, after: '0', level: 'INFO' });
      await sub.waitFor((m) => m.some((x) => x.jobLogs.message.startsWith('attempt 1 started')));
      await infoOnly.waitFor((m) => m.some((x) => x.jobLogs.message.startsWith('attempt 1 started')));
      // Nothing was requested yet: the source waits at the gate.
      expect(sub.messages.some((x) => x.jobLogs.data?.http)).toBe(false);
      release();
      await sub.done;
      await infoOnly.done;
      expect(sub.errors).toEqual([]);
      const got = sub.messages.map((x) => x.jobLogs);
      expect(got.filter((l) => l.data?.http).length).toBeGreaterThanOrEqual(PAGES + 1);
      expect(got[got.length - 1]!.message).toMatch(/^attempt 1 succeeded: 6 read, 6 written/);
      // Exactly what is stored, in order, once each.
      const stored = await allLogs(jobId);
      expect(got.map((l) => l.cursor)).toEqual(stored.map((l) => l.cursor));
      expect(got.map(({ jobId: _j, ...l }: Line & { jobId?: string }) => l)).toEqual(stored);
      expect(new Set(got.map((l: any) => l.jobId))).toEqual(new Set([jobId]));
      expect(infoOnly.messages.map((x) => x.jobLogs.cursor)).toEqual(stored.filter((l) => l.level !== 'DEBUG').map((l) => l.cursor));
      expect(JSON.stringify(got)).not.toContain(TOKEN);
      // Subscribing to a job that already ended completes at once.
      const endedSub = subscribe(client, SUB, { id: jobId });
      await endedSub.done;
      expect(endedSub.messages).toEqual([]);
    } finally {
      release?.();
      gates.slow = null;
    }
  });

  it('a job cancelled while it waits (never ran) ends its jobLogs and jobProgress streams with a last line', async () => {
    const src = await httpSource('waiting', 'waiting');
    const pid = await pipeline('waiting', src);
    const paused = await s.q(`mutation($i: ConnectorIdInput!) { pauseConnector(input: $i) { __typename } }`, { i: { id: src } });
    expect(paused.pauseConnector.__typename).toBe('PauseConnectorPayload');
    const jobId = await start(pid);
    await expect.poll(async () => (await s.q(`query($id: ID!) { job(id: $id) { status } }`, { id: jobId })).job.status, { timeout: 20_000 }).toBe('PAUSED');
    const client = s.ws();
    const logs = subscribe<{ jobLogs: Line }>(client, `subscription($id: ID!) { jobLogs(jobId: $id) { ${LINE} } }`, { id: jobId });
    const progress = subscribe<{ jobProgress: { status: string; final: boolean } }>(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status final } }`, { id: jobId });
    await progress.waitFor((m) => m.length > 0);
    const cancelled = await s.q(`mutation($i: JobIdInput!) { cancelJob(input: $i) { __typename } }`, { i: { id: jobId } });
    expect(cancelled.cancelJob.__typename).toBe('CancelJobPayload');
    await Promise.all([logs.done, progress.done]);
    expect(progress.messages.at(-1)!.jobProgress).toEqual({ status: 'CANCELLED', final: true });
    expect(logs.messages.map((m) => [m.jobLogs.stage, m.jobLogs.level, m.jobLogs.message])).toEqual([['RUNNER', 'INFO', 'job cancelled while paused (cancelJob)']]);
    expect((await allLogs(jobId)).map((l) => l.message)).toEqual(['job cancelled while paused (cancelJob)']);
  });

  it("another workspace's key can neither read a job's logs nor subscribe to them", async () => {
    const admin = await s.q(`mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { ... on CreateApiKeyPayload { key } } }`, { i: { name: 'logs admin', scope: 'ADMIN' } });
    const w = await callAs(s, admin.createApiKey.key, `mutation { createWorkspace(input: { name: "logs other" }) { __typename ... on CreateWorkspacePayload { key } ... on Error { code message } } }`);
    expect(w.createWorkspace.__typename, JSON.stringify(w)).toBe('CreateWorkspacePayload');
    const other = w.createWorkspace.key as string;
    // Visible to its own workspace.
    expect((await allLogs(httpJob)).length).toBeGreaterThan(0);
    const r = await s.gql(LOGS, { id: httpJob, first: 10 }, bearer(other));
    expect(r.errors).toBeUndefined();
    expect(r.data!.job).toBeNull();
    const node = await s.gql(`query($id: ID!) { node(id: $id) { ... on Job { logs(first: 10) { nodes { message } } } } }`, { id: httpJob }, bearer(other));
    expect(node.data?.node ?? null).toBeNull();
    const client = s.ws(bearer(other));
    const sub = subscribe(client, `subscription($id: ID!) { jobLogs(jobId: $id, after: "0") { message } }`, { id: httpJob });
    await sub.done;
    expect(sub.messages).toEqual([]);
    expect(JSON.stringify(sub.errors)).toMatch(/not found/i);
  });
});

describe('cap and retention', () => {
  let capped: TestServer;
  let jobId: string;
  let jobRequests: number;
  const CAP = 3;

  beforeAll(async () => {
    const { dataDir } = testDataDir('sluice-logs-cap-');
    capped = await startTestServer({ dataDir, env: { SLUICE_JOB_LOG_MAX_LINES: String(CAP) } });
  });
  afterAll(async () => {
    await capped?.stop();
  });

  it('keeps at most SLUICE_JOB_LOG_MAX_LINES driver lines per job, notes the cap once, and counts what it dropped', async () => {
    const src = await createConnectorId(capped.q, 'many', 'http', {
      url: `${api.origin}/many`,
      recordsPath: 'items',
      pagination: { type: 'page', pageParam: 'page' },
      auth: { type: 'apiKey', name: 'token', value: TOKEN, in: 'query' },
    });
    const dst = await createConnectorId(capped.q, 'many out', 'jsonl', { path: path.join(capped.filesDir, 'many.jsonl') });
    const p = await capped.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`, {
      i: { name: 'many', sourceId: src, destinationId: dst, writeMode: 'APPEND' },
    });
    const before = api.requests.length;
    const started = await capped.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
      i: { id: p.createPipeline.pipeline.id },
    });
    jobId = started.startPipeline.pipeline.currentJob.id;
    const job = await waitForJob(async () => (await capped.q(`query($id: ID!) { job(id: $id) { status recordsRead } }`, { id: jobId })).job, TERMINAL_JOB_STATUSES, 60_000);
    expect(job).toMatchObject({ status: 'SUCCEEDED', recordsRead: 12 });
    jobRequests = api.requests.length - before;
    expect(jobRequests).toBeGreaterThan(CAP + 2);

    const lines = await allLogs(jobId, undefined, capped.q);
    const driverLines = lines.filter((l) => l.stage !== 'RUNNER');
    expect(driverLines).toHaveLength(CAP);
    const caps = lines.filter((l) => l.message === `log capped at ${CAP} lines; further lines dropped`);
    expect(caps).toHaveLength(1);
    expect(caps[0]).toMatchObject({ level: 'WARN', stage: 'RUNNER' });
    // The runner's own lines are kept beyond the cap.
    expect(lines[0]!.message).toMatch(/^attempt 1 started/);
    expect(lines[lines.length - 1]!.message).toMatch(/^attempt 1 succeeded: 12 read, 12 written/);
    const r = await capped.q(`query($id: ID!) { job(id: $id) { logsDropped } }`, { id: jobId });
    // Every request is a driver line: those beyond the cap were dropped, and counted.
    expect(r.job.logsDropped).toBe(jobRequests - CAP);
  });

  it('event retention prunes the logs of jobs whose events it pruned', async () => {
    const retention = capped.app.services.retention;
    const count = async () => (await capped.q(LOGS, { id: jobId, first: 1 })).job.logs.totalCount as number;
    const kept = await count();
    expect(kept).toBeGreaterThan(CAP);
    // Nothing is old enough yet: the logs stay.
    const now = await retention.prune(new Date(), { days: 30, count: 0 });
    expect(now.jobLogs).toBe(0);
    expect(await count()).toBe(kept);
    // A month from now every event is pruned, and with them the logs of ended jobs.
    const later = await retention.prune(new Date(Date.now() + 31 * 86_400_000), { days: 30, count: 0 });
    expect(later.events).toBeGreaterThan(0);
    expect(later.jobLogs).toBe(kept);
    expect(await count()).toBe(0);
    expect((await capped.q(`query($id: ID!) { job(id: $id) { logsDropped } }`, { id: jobId })).job.logsDropped).toBe(0);
  });
});
