/**
 * The pipeline lifecycle as a client sees it, through the real server (HTTP + graphql-ws):
 * every (state, action) pair, availableActions, pause/stop/reset/run/cancel mid-load with exact
 * cursors and row counts in a real SQLite destination, optimistic concurrency, Feldera-style
 * connector pause, and bad records vs the failure threshold.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';

type State = 'STOP' | 'INIT' | 'READY' | 'PAUSE';
type Action = 'START' | 'STOP' | 'PAUSE' | 'RESUME' | 'RESET';

const SMALL_ROWS = 50;
const BIG_ROWS = 300_000;
const BIG_BATCH = 500;

let s: TestServer;
let ws: Client;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let smallCsv: string;
let bigCsv: string;
let n = 0;

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-lifecycle-'));
  smallCsv = path.join(dir, 'small.csv');
  bigCsv = path.join(dir, 'big.csv');
  writeCsv(smallCsv, SMALL_ROWS);
  writeCsv(bigCsv, BIG_ROWS);
  s = await startTestServer({ dataDir: filesData });
  ws = s.ws();
});
afterAll(async () => {
  await s?.stop();
});

// ---------------------------------------------------------------------------------------------
// Client helpers

const PIPELINE_FIELDS = `id name state previousState version cursor availableActions active inactiveReason stateReason
  currentJob { id kind trigger status }`;
const JOB_FIELDS = `id kind trigger status attempts recordsRead recordsWritten recordsFailed error cursorStart cursorEnd finishedAt
  attemptHistory { number status error }`;

const cap = (a: string) => a.charAt(0) + a.slice(1).toLowerCase();

interface Made {
  id: string;
  source: { id: string; name: string };
  destination: { id: string; name: string };
  db: string;
}

async function createConnector(name: string, driver: string, config: Record<string, unknown>) {
  const r = await s.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id name } } ... on Error { code message } } }`,
    { i: { name, driver, config } },
  );
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector as { id: string; name: string };
}

async function createMapping(spec: Record<string, unknown>) {
  const r = await s.q(
    `mutation($i: CreateMappingInput!) { createMapping(input: $i) { __typename ... on CreateMappingPayload { mapping { id } } ... on Error { code message } } }`,
    { i: { name: `mapping ${++n}`, spec } },
  );
  expect(r.createMapping.__typename, JSON.stringify(r)).toBe('CreateMappingPayload');
  return r.createMapping.mapping.id as string;
}

/** A csv → sqlite pipeline with its own connectors and its own SQLite file (table `rows`). */
async function makePipeline(options: { csv?: string; batchSize?: number; writeMode?: string; streams?: unknown[]; mappingId?: string; failureThreshold?: number } = {}): Promise<Made> {
  const k = ++n;
  const source = await createConnector(`source ${k}`, 'csv', { path: options.csv ?? smallCsv });
  const db = path.join(dir, `out-${k}.db`);
  const destination = await createConnector(`destination ${k}`, 'sqlite', { path: db, table: 'rows' });
  const r = await s.q(
    `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id state } } ... on Error { code message } } }`,
    {
      i: {
        name: `pipeline ${k}`,
        sourceId: source.id,
        destinationId: destination.id,
        batchSize: options.batchSize ?? 5000,
        ...(options.writeMode ? { writeMode: options.writeMode } : {}),
        ...(options.streams ? { streams: options.streams } : {}),
        ...(options.mappingId ? { mappingId: options.mappingId } : {}),
        ...(options.failureThreshold != null ? { failureThreshold: options.failureThreshold } : {}),
      },
    },
  );
  expect(r.createPipeline.__typename, JSON.stringify(r)).toBe('CreatePipelinePayload');
  expect(r.createPipeline.pipeline.state).toBe('STOP');
  return { id: r.createPipeline.pipeline.id, source, destination, db };
}

async function act(id: string, action: Action, expectedVersion?: number) {
  const r = await s.q(
    `mutation($i: PipelineActionInput!) { r: ${action.toLowerCase()}Pipeline(input: $i) {
      __typename
      ... on Error { code message }
      ... on InvalidTransitionError { action state allowedActions }
      ... on ConflictError { currentVersion }
      ... on ${cap(action)}PipelinePayload { pipeline { ${PIPELINE_FIELDS} } }
    } }`,
    { i: { id, ...(expectedVersion != null ? { expectedVersion } : {}) } },
  );
  return r.r;
}

async function actOk(id: string, action: Action) {
  const r = await act(id, action);
  expect(r.__typename, JSON.stringify(r)).toBe(`${cap(action)}PipelinePayload`);
  return r.pipeline;
}

async function pipeline(id: string) {
  return (await s.q(`query($id: ID!) { pipeline(id: $id) { ${PIPELINE_FIELDS} } }`, { id })).pipeline;
}

async function job(id: string) {
  return (await s.q(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id })).job;
}

async function setConnectorPaused(id: string, paused: boolean) {
  const m = paused ? 'pauseConnector' : 'resumeConnector';
  const r = await s.q(
    `mutation($i: ConnectorIdInput!) { r: ${m}(input: $i) { __typename ... on ${paused ? 'Pause' : 'Resume'}ConnectorPayload { connector { paused } } ... on Error { code message } } }`,
    { i: { id } },
  );
  expect(r.r, JSON.stringify(r)).toEqual({ __typename: `${paused ? 'Pause' : 'Resume'}ConnectorPayload`, connector: { paused } });
}

async function stateEvents(pipelineId: string) {
  const r = await s.q(
    `query($f: EventFilter) { events(filter: $f, first: 100) { totalCount edges { cursor node { type data } } } }`,
    { f: { pipelineId, types: ['PIPELINE_STATE_CHANGED'] } },
  );
  return r.events as { totalCount: number; edges: { cursor: string; node: { type: string; data: any } }[] };
}

async function eventCount(pipelineId: string): Promise<number> {
  return (await s.q(`query($f: EventFilter) { events(filter: $f, first: 1) { totalCount } }`, { f: { pipelineId } })).events.totalCount;
}

/**
 * Resolves once a query sent after a subscription, on the same socket and reading the same
 * pipeline, has answered: by then the subscription (which reads the pipeline first) is live.
 */
async function wsBarrier(pipelineId: string) {
  await new Promise<void>((resolve, reject) => {
    ws.subscribe({ query: 'query($id: ID!) { pipeline(id: $id) { id } }', variables: { id: pipelineId } }, { next: () => undefined, error: reject, complete: resolve });
  });
}

async function watchStates(id: string) {
  const sub = subscribe(ws, `subscription($id: ID!) { pipelineStateChanged(pipelineId: $id) { action state previousState version } }`, { id });
  await wsBarrier(id);
  return sub;
}

function watchJob(jobId: string) {
  return subscribe(ws, `subscription($id: ID!) { jobProgress(jobId: $id) { status recordsRead recordsWritten recordsFailed final } }`, { id: jobId });
}

type Progress = ReturnType<typeof watchJob>;
const writing = (p: Progress) => p.waitFor((m) => m.some((x: any) => x.jobProgress.status === 'RUNNING' && x.jobProgress.recordsWritten > 0));
const ended = (p: Progress, status: string) => p.waitFor((m) => m.some((x: any) => x.jobProgress.final && x.jobProgress.status === status), 45_000);

async function waitState(id: string, state: State) {
  return eventually(async () => {
    const p = await pipeline(id);
    return p.state === state ? p : null;
  });
}

function table(db: string): { n: number; d: number; max: number | null } {
  const conn = new Database(db, { readonly: true });
  try {
    return conn.prepare('select count(*) as n, count(distinct id) as d, max(cast(id as integer)) as max from rows').get() as never;
  } finally {
    conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Reaching each state deterministically. Every pipeline's destination ends up paused so no job
// can move it on behind the test's back (versions and event counts stay exact).

type Start = 'STOP' | 'INIT' | 'READY' | 'PAUSE (from READY)' | 'PAUSE (from INIT)';

async function reach(start: Start): Promise<Made> {
  const p = await makePipeline();
  if (start === 'STOP') {
    await setConnectorPaused(p.destination.id, true);
    return p;
  }
  if (start === 'INIT' || start === 'PAUSE (from INIT)') {
    // Feldera connector pause before start: the pipeline goes INIT and its job waits PAUSED.
    await setConnectorPaused(p.destination.id, true);
    expect((await actOk(p.id, 'START')).state).toBe('INIT');
    await eventually(async () => (await pipeline(p.id)).currentJob?.status === 'PAUSED');
  } else {
    expect((await actOk(p.id, 'START')).state).toBe('INIT');
    await waitState(p.id, 'READY');
    await setConnectorPaused(p.destination.id, true);
  }
  if (start.startsWith('PAUSE')) expect((await actOk(p.id, 'PAUSE')).state).toBe('PAUSE');
  return p;
}

const stateOf = (start: Start): State => (start.startsWith('PAUSE') ? 'PAUSE' : (start as State));

const EXPECTED: Record<Start, Record<Action, State | null>> = {
  STOP: { START: 'INIT', STOP: null, PAUSE: null, RESUME: null, RESET: 'INIT' },
  INIT: { START: null, STOP: 'STOP', PAUSE: 'PAUSE', RESUME: null, RESET: 'INIT' },
  READY: { START: null, STOP: 'STOP', PAUSE: 'PAUSE', RESUME: null, RESET: 'INIT' },
  'PAUSE (from READY)': { START: null, STOP: 'STOP', PAUSE: null, RESUME: 'READY', RESET: 'INIT' },
  'PAUSE (from INIT)': { START: null, STOP: 'STOP', PAUSE: null, RESUME: 'INIT', RESET: 'INIT' },
};

/** RUN (runPipeline, no state change) is offered exactly where runPipeline is accepted. */
const AVAILABLE: Record<State, (Action | 'RUN')[]> = {
  STOP: ['START', 'RESET'],
  INIT: ['STOP', 'PAUSE', 'RESET', 'RUN'],
  READY: ['STOP', 'PAUSE', 'RESET', 'RUN'],
  PAUSE: ['STOP', 'RESUME', 'RESET'],
};

const STARTS = Object.keys(EXPECTED) as Start[];
const TABLE = STARTS.flatMap((start) => (Object.keys(EXPECTED[start]) as Action[]).map((action) => ({ start, action, to: EXPECTED[start][action] })));

// ---------------------------------------------------------------------------------------------

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(Array.from({ length: limit }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

describe('state machine', () => {
  // Prepared concurrently up front (reaching READY runs a load): a fresh pipeline for each
  // legal (state, action) pair, and per state one pipeline that takes every illegal action
  // (an illegal action changes nothing, so they can share it) with a live state feed.
  const fresh = new Map<string, Made>();
  const shared = new Map<Start, { p: Made; states: ReturnType<typeof subscribe> }>();
  beforeAll(async () => {
    const tasks: (() => Promise<void>)[] = STARTS.map((start) => async () => {
      const p = await reach(start);
      shared.set(start, { p, states: await watchStates(p.id) });
    });
    for (const c of TABLE) if (c.to) tasks.push(async () => void fresh.set(`${c.start} + ${c.action}`, await reach(c.start)));
    await pool(tasks, 6, (task) => task());
  }, 120_000);

  it.each(STARTS)('availableActions in %s', async (start) => {
    const { p } = shared.get(start)!;
    const state = stateOf(start);
    const now = await pipeline(p.id);
    expect(now.state).toBe(state);
    expect(now.availableActions).toEqual(AVAILABLE[state]);
    expect(now.previousState).toBe(
      ({ STOP: null, INIT: 'STOP', READY: 'INIT', 'PAUSE (from READY)': 'READY', 'PAUSE (from INIT)': 'INIT' } as const)[start],
    );
  });

  it.each(TABLE)('$start + $action → $to', async ({ start, action, to }) => {
    const from = stateOf(start);

    if (to === null) {
      const { p, states } = shared.get(start)!;
      const before = await pipeline(p.id);
      expect(before.state).toBe(from);
      const eventsBefore = await eventCount(p.id);

      const res = await act(p.id, action);
      expect(res).toEqual({
        __typename: 'InvalidTransitionError',
        code: 'INVALID_TRANSITION',
        message: `cannot ${action} a pipeline in state ${from}; allowed now: ${before.availableActions.join(', ')}`,
        action,
        state: from,
        allowedActions: before.availableActions,
      });
      expect(await pipeline(p.id)).toEqual(before);
      expect(await eventCount(p.id)).toBe(eventsBefore);
      // Nothing was published: a message published before the mutation answered would reach
      // this socket before the answer to a query sent on it afterwards.
      await wsBarrier(p.id);
      expect(states.messages).toEqual([]);
      return;
    }

    const p = fresh.get(`${start} + ${action}`)!;
    const before = await pipeline(p.id);
    expect(before.state).toBe(from);
    const changesBefore = await stateEvents(p.id);
    const states = await watchStates(p.id);

    const res = await act(p.id, action);
    expect(res.__typename).toBe(`${cap(action)}PipelinePayload`);
    expect(res.pipeline).toMatchObject({ state: to, previousState: from, version: before.version + 1, availableActions: AVAILABLE[to] });
    if (action === 'RESET') expect(res.pipeline.cursor).toBeNull();
    expect(await pipeline(p.id)).toMatchObject({ state: to, previousState: from, version: before.version + 1 });

    const changes = await stateEvents(p.id);
    expect(changes.totalCount).toBe(changesBefore.totalCount + 1);
    expect(changes.edges.at(-1)!.node.data).toEqual({ action, from, to, reason: null });
    expect(BigInt(changes.edges.at(-1)!.cursor)).toBeGreaterThan(BigInt(changesBefore.edges.at(-1)?.cursor ?? '0'));

    await states.waitFor((m) => m.length > 0);
    expect(states.messages.map((m: any) => m.pipelineStateChanged)).toEqual([{ action, state: to, previousState: from, version: before.version + 1 }]);
    states.stop();
  });
});

describe('loads: pause, stop, reset, run', () => {
  it('pause mid-load stops at a checkpoint; resume continues from the cursor with no gap or duplicate', async () => {
    const p = await makePipeline({ csv: bigCsv, batchSize: BIG_BATCH });
    const started = await actOk(p.id, 'START');
    const jobId = started.currentJob.id;
    const progress = watchJob(jobId);
    await writing(progress);

    expect(await actOk(p.id, 'PAUSE')).toMatchObject({ state: 'PAUSE', previousState: 'INIT' });
    await ended(progress, 'PAUSED');

    const paused = await job(jobId);
    const after = await pipeline(p.id);
    const rows = table(p.db);
    expect(paused.status).toBe('PAUSED');
    expect(rows.n).toBeGreaterThan(0);
    expect(rows.n).toBeLessThan(BIG_ROWS);
    expect(rows.n % BIG_BATCH).toBe(0);
    expect(rows.d).toBe(rows.n);
    expect(after.cursor).toEqual({ big: { row: rows.n } });
    expect(paused.recordsWritten).toBe(rows.n);
    expect(paused.cursorEnd).toEqual({ big: { row: rows.n } });
    expect(after.currentJob).toMatchObject({ id: jobId, status: 'PAUSED' });

    expect(await actOk(p.id, 'RESUME')).toMatchObject({ state: 'INIT', previousState: 'PAUSE' });
    await ended(progress, 'SUCCEEDED');
    await progress.done;

    const done = await job(jobId);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempts: 2, recordsRead: BIG_ROWS, recordsWritten: BIG_ROWS, recordsFailed: 0, cursorEnd: { big: { row: BIG_ROWS } } });
    expect(done.attemptHistory.map((a: any) => [a.number, a.status])).toEqual([
      [1, 'PAUSED'],
      [2, 'SUCCEEDED'],
    ]);
    expect(table(p.db)).toEqual({ n: BIG_ROWS, d: BIG_ROWS, max: BIG_ROWS });
    const ready = await waitState(p.id, 'READY');
    expect(ready.cursor).toEqual({ big: { row: BIG_ROWS } });
    expect(ready.currentJob).toBeNull();
  });

  it('stop mid-load keeps the cursor; start again loads the rest and ends READY', async () => {
    const p = await makePipeline({ csv: bigCsv, batchSize: BIG_BATCH });
    const first = (await actOk(p.id, 'START')).currentJob.id;
    const progress = watchJob(first);
    await writing(progress);

    expect(await actOk(p.id, 'STOP')).toMatchObject({ state: 'STOP', previousState: 'INIT' });
    await ended(progress, 'CANCELLED');
    await progress.done; // CANCELLED is terminal: the feed completes

    const rows = table(p.db);
    expect(rows.n).toBeGreaterThan(0);
    expect(rows.n).toBeLessThan(BIG_ROWS);
    expect(rows.n % BIG_BATCH).toBe(0);
    const stopped = await pipeline(p.id);
    expect(stopped).toMatchObject({ state: 'STOP', cursor: { big: { row: rows.n } }, currentJob: null });
    expect(await job(first)).toMatchObject({ status: 'CANCELLED', recordsWritten: rows.n });

    const restarted = await actOk(p.id, 'START');
    expect(restarted).toMatchObject({ state: 'INIT', cursor: { big: { row: rows.n } } });
    const second = restarted.currentJob.id;
    expect(second).not.toBe(first);
    const progress2 = watchJob(second);
    await ended(progress2, 'SUCCEEDED');

    expect(await job(second)).toMatchObject({
      kind: 'SYNC',
      trigger: 'START',
      status: 'SUCCEEDED',
      attempts: 1,
      cursorStart: { big: { row: rows.n } },
      cursorEnd: { big: { row: BIG_ROWS } },
      recordsRead: BIG_ROWS - rows.n,
      recordsWritten: BIG_ROWS - rows.n,
    });
    expect((await waitState(p.id, 'READY')).cursor).toEqual({ big: { row: BIG_ROWS } });
    expect(table(p.db)).toEqual({ n: BIG_ROWS, d: BIG_ROWS, max: BIG_ROWS });
  });

  it('reset clears the cursor, goes INIT and a RESET job reloads from scratch (UPSERT: exactly N rows)', async () => {
    const ROWS = 20_000;
    const csv = path.join(dir, 'mid.csv');
    writeCsv(csv, ROWS);
    const p = await makePipeline({ csv, writeMode: 'UPSERT', streams: [{ name: 'mid', primaryKey: ['id'] }] });
    await actOk(p.id, 'START');
    const ready = await waitState(p.id, 'READY');
    expect(ready.cursor).toEqual({ mid: { row: ROWS } });
    expect(table(p.db)).toEqual({ n: ROWS, d: ROWS, max: ROWS });

    // Hold the reload (connector pause) so the reset's own effects can be read exactly.
    await setConnectorPaused(p.destination.id, true);
    const reset = await actOk(p.id, 'RESET');
    expect(reset).toMatchObject({ state: 'INIT', previousState: 'READY', version: ready.version + 1, cursor: null });
    expect(reset.currentJob).toMatchObject({ kind: 'RESET', trigger: 'RESET' });
    const jobId = reset.currentJob.id;
    await eventually(async () => (await job(jobId)).status === 'PAUSED');
    expect(await job(jobId)).toMatchObject({ cursorStart: null, attempts: 0 });

    const progress = watchJob(jobId);
    await setConnectorPaused(p.destination.id, false);
    await ended(progress, 'SUCCEEDED');
    expect(await job(jobId)).toMatchObject({ status: 'SUCCEEDED', recordsRead: ROWS, recordsWritten: ROWS, cursorStart: null, cursorEnd: { mid: { row: ROWS } } });
    const after = await waitState(p.id, 'READY');
    expect(after.cursor).toEqual({ mid: { row: ROWS } });
    expect(table(p.db)).toEqual({ n: ROWS, d: ROWS, max: ROWS });
  });

  it('runPipeline: READY → a MANUAL SYNC job that continues from the cursor; STOP → INVALID_TRANSITION; active job → CONFLICT', async () => {
    const csv = path.join(dir, 'run.csv');
    writeCsv(csv, SMALL_ROWS);
    const p = await makePipeline({ csv });
    const RUN = `mutation($i: PipelineIdInput!) { runPipeline(input: $i) {
      __typename
      ... on Error { code message }
      ... on InvalidTransitionError { action state allowedActions }
      ... on RunPipelinePayload { job { id kind trigger status } }
    } }`;

    // From STOP: typed error, nothing created.
    const fromStop = (await s.q(RUN, { i: { id: p.id } })).runPipeline;
    expect(fromStop).toEqual({
      __typename: 'InvalidTransitionError',
      code: 'INVALID_TRANSITION',
      message: 'cannot RUN a pipeline in state STOP; allowed now: START, RESET',
      action: 'RUN',
      state: 'STOP',
      allowedActions: ['START', 'RESET'],
    });
    expect((await s.q(`query($id: ID!) { pipeline(id: $id) { jobs { totalCount } } }`, { id: p.id })).pipeline.jobs.totalCount).toBe(0);

    await actOk(p.id, 'START');
    const ready = await waitState(p.id, 'READY');
    expect(table(p.db).n).toBe(SMALL_ROWS);

    // Append 10 rows: an incremental run reads exactly those.
    const extra: string[] = [];
    for (let i = SMALL_ROWS + 1; i <= SMALL_ROWS + 10; i++) extra.push(`${i},user ${i},user${i}@example.com,${(i * 1.5).toFixed(2)},${i % 2 === 0},2026-01-01T00:00:00Z`);
    fs.appendFileSync(csv, `${extra.join('\n')}\n`);

    const run = (await s.q(RUN, { i: { id: p.id } })).runPipeline;
    expect(run.__typename).toBe('RunPipelinePayload');
    expect(run.job).toMatchObject({ kind: 'SYNC', trigger: 'MANUAL' });
    const progress = watchJob(run.job.id);
    await ended(progress, 'SUCCEEDED');
    expect(await job(run.job.id)).toMatchObject({
      status: 'SUCCEEDED',
      cursorStart: { run: { row: SMALL_ROWS } },
      cursorEnd: { run: { row: SMALL_ROWS + 10 } },
      recordsRead: 10,
      recordsWritten: 10,
    });
    expect(table(p.db)).toEqual({ n: SMALL_ROWS + 10, d: SMALL_ROWS + 10, max: SMALL_ROWS + 10 });
    expect(await pipeline(p.id)).toMatchObject({ state: 'READY', version: ready.version, cursor: { run: { row: SMALL_ROWS + 10 } } });

    // While a job is active (held by a paused connector): CONFLICT, no second job.
    await setConnectorPaused(p.destination.id, true);
    const held = (await s.q(RUN, { i: { id: p.id } })).runPipeline;
    expect(held.__typename).toBe('RunPipelinePayload');
    await eventually(async () => (await job(held.job.id)).status === 'PAUSED');
    const busy = (await s.q(RUN, { i: { id: p.id } })).runPipeline;
    expect(busy).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(busy.message).toMatch(/paused/i);
    expect((await s.q(`query($id: ID!) { pipeline(id: $id) { jobs { totalCount } } }`, { id: p.id })).pipeline.jobs.totalCount).toBe(3);
    const heldProgress = watchJob(held.job.id);
    await setConnectorPaused(p.destination.id, false);
    await ended(heldProgress, 'SUCCEEDED');
    expect(await job(held.job.id)).toMatchObject({ status: 'SUCCEEDED', recordsRead: 0, recordsWritten: 0 });
  });
});

describe('concurrency, connector pause, cancel', () => {
  it('a stale expectedVersion is a CONFLICT with currentVersion and changes nothing', async () => {
    const p = await reach('STOP');
    const v0 = (await pipeline(p.id)).version;
    const started = await act(p.id, 'START', v0);
    expect(started.__typename).toBe('StartPipelinePayload');
    expect(started.pipeline).toMatchObject({ state: 'INIT', version: v0 + 1 });
    await eventually(async () => (await pipeline(p.id)).currentJob?.status === 'PAUSED');

    const before = await pipeline(p.id);
    const events = await eventCount(p.id);
    const stale = await act(p.id, 'STOP', v0);
    expect(stale).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT', currentVersion: v0 + 1 });
    expect(await pipeline(p.id)).toEqual(before);
    expect(await eventCount(p.id)).toBe(events);

    const fresh = await act(p.id, 'STOP', v0 + 1);
    expect(fresh.__typename).toBe('StopPipelinePayload');
    expect(fresh.pipeline).toMatchObject({ state: 'STOP', version: v0 + 2 });
  });

  it('pausing a connector makes its READY pipeline inactive without changing its state', async () => {
    const p = await makePipeline();
    await actOk(p.id, 'START');
    const ready = await waitState(p.id, 'READY');
    expect(ready).toMatchObject({ active: true, inactiveReason: null });
    const changes = (await stateEvents(p.id)).totalCount;

    await setConnectorPaused(p.source.id, true);
    expect(await pipeline(p.id)).toEqual({ ...ready, active: false, inactiveReason: `connector paused: ${p.source.name}` });
    expect((await stateEvents(p.id)).totalCount).toBe(changes);

    await setConnectorPaused(p.source.id, false);
    expect(await pipeline(p.id)).toEqual(ready);
  });

  it('pausing the source mid-load stops the job PAUSED at a checkpoint; resumeConnector re-queues it and it completes', async () => {
    const p = await makePipeline({ csv: bigCsv, batchSize: BIG_BATCH });
    const jobId = (await actOk(p.id, 'START')).currentJob.id;
    const progress = watchJob(jobId);
    await writing(progress);

    await setConnectorPaused(p.source.id, true);
    await ended(progress, 'PAUSED');
    const rows = table(p.db);
    expect(rows.n).toBeGreaterThan(0);
    expect(rows.n).toBeLessThan(BIG_ROWS);
    expect(rows.n % BIG_BATCH).toBe(0);
    expect(await pipeline(p.id)).toMatchObject({
      state: 'INIT',
      active: false,
      inactiveReason: `connector paused: ${p.source.name}`,
      cursor: { big: { row: rows.n } },
      currentJob: { id: jobId, status: 'PAUSED' },
    });

    await setConnectorPaused(p.source.id, false);
    await ended(progress, 'SUCCEEDED');
    expect(await job(jobId)).toMatchObject({ status: 'SUCCEEDED', attempts: 2, recordsRead: BIG_ROWS, recordsWritten: BIG_ROWS });
    expect(table(p.db)).toEqual({ n: BIG_ROWS, d: BIG_ROWS, max: BIG_ROWS });
    expect(await waitState(p.id, 'READY')).toMatchObject({ active: true, cursor: { big: { row: BIG_ROWS } } });
  });

  it('cancelJob ends a running job CANCELLED; cancelling a finished job is a ValidationError', async () => {
    const CANCEL = `mutation($i: JobIdInput!) { cancelJob(input: $i) {
      __typename
      ... on Error { code message }
      ... on CancelJobPayload { job { id status } }
    } }`;
    const p = await makePipeline({ csv: bigCsv, batchSize: BIG_BATCH });
    const jobId = (await actOk(p.id, 'START')).currentJob.id;
    const progress = watchJob(jobId);
    await writing(progress);

    const res = (await s.q(CANCEL, { i: { id: jobId } })).cancelJob;
    expect(res).toMatchObject({ __typename: 'CancelJobPayload', job: { id: jobId } });
    await ended(progress, 'CANCELLED');
    await progress.done;
    const rows = table(p.db);
    expect(rows.n).toBeLessThan(BIG_ROWS);
    const cancelled = await job(jobId);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', recordsWritten: rows.n });
    expect(cancelled.finishedAt).not.toBeNull();
    expect(await pipeline(p.id)).toMatchObject({ state: 'INIT', currentJob: null, cursor: { big: { row: rows.n } } });

    expect((await s.q(CANCEL, { i: { id: jobId } })).cancelJob).toEqual({
      __typename: 'ValidationError',
      code: 'VALIDATION_FAILED',
      message: 'job is not active: id: job is already CANCELLED',
    });

    const small = await makePipeline();
    const smallJob = (await actOk(small.id, 'START')).currentJob.id;
    await waitState(small.id, 'READY');
    expect((await s.q(CANCEL, { i: { id: smallJob } })).cancelJob).toEqual({
      __typename: 'ValidationError',
      code: 'VALIDATION_FAILED',
      message: 'job is not active: id: job is already SUCCEEDED',
    });
    expect((await job(smallJob)).status).toBe('SUCCEEDED');
  });
});

describe('bad records and the failure threshold', () => {
  const ROWS = 1000;
  let csv: string;
  let mappingId: string;

  beforeAll(async () => {
    // Every 10th row has an amount that is not a number: 10% bad.
    csv = path.join(dir, 'bad.csv');
    const out = ['id,name,amount'];
    for (let i = 1; i <= ROWS; i++) out.push(`${i},user ${i},${i % 10 === 0 ? 'n/a' : (i * 1.5).toFixed(2)}`);
    fs.writeFileSync(csv, `${out.join('\n')}\n`);
    mappingId = await createMapping({ passThrough: true, cast: { amount: 'float' } });
  });

  it('10% bad with failureThreshold 20: dead letters at stage MAPPING, the job succeeds', async () => {
    const p = await makePipeline({ csv, mappingId, failureThreshold: 20, batchSize: 250 });
    const jobId = (await actOk(p.id, 'START')).currentJob.id;
    const progress = watchJob(jobId);
    await ended(progress, 'SUCCEEDED');
    expect(await job(jobId)).toMatchObject({ status: 'SUCCEEDED', recordsRead: ROWS, recordsWritten: 900, recordsFailed: 100, error: null });
    await waitState(p.id, 'READY');

    const dl = (
      await s.q(`query($id: ID!) { pipeline(id: $id) { deadLetters(first: 100) { totalCount nodes: edges { node { stage error record stream job { id } } } } } }`, { id: p.id })
    ).pipeline.deadLetters;
    expect(dl.totalCount).toBe(100);
    const nodes = dl.nodes.map((e: any) => e.node).sort((a: any, b: any) => Number(a.record.id) - Number(b.record.id));
    expect(nodes.map((d: any) => Number(d.record.id))).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 10));
    for (const d of nodes) {
      expect(d).toMatchObject({ stage: 'MAPPING', stream: 'bad', job: { id: jobId } });
      expect(d.record).toEqual({ id: d.record.id, name: `user ${d.record.id}`, amount: 'n/a' });
      expect(d.error).toContain('"amount"');
      expect(d.error).toContain('float');
    }
    const conn = new Database(p.db, { readonly: true });
    expect(conn.prepare('select count(*) as n, sum(cast(id as integer) % 10 = 0) as bad, typeof(amount) as t from rows').get()).toEqual({ n: 900, bad: 0, t: 'real' });
    conn.close();
  });

  it('10% bad with failureThreshold 5: the job fails, naming the threshold', async () => {
    const p = await makePipeline({ csv, mappingId, failureThreshold: 5, batchSize: 250 });
    const jobId = (await actOk(p.id, 'START')).currentJob.id;
    const progress = watchJob(jobId);
    await ended(progress, 'FAILED');
    const failed = await job(jobId);
    expect(failed).toMatchObject({ status: 'FAILED', recordsRead: 250, recordsFailed: 25 });
    expect(failed.error).toBe('25 of 250 records failed (10.0%), above the failure threshold of 5%');
    const after = await pipeline(p.id);
    expect(after).toMatchObject({ state: 'INIT', currentJob: null, stateReason: `last job failed: ${failed.error}` });
  });
});
