/**
 * The foundation's end-to-end promise: a real CSV file loads into SQLite through the real
 * server, progress streams over graphql-ws, INIT → READY, and the API stays responsive.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';

const ROWS = 100_000;

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-load-'));
  writeCsv(path.join(dir, 'users.csv'), ROWS);
  s = await startTestServer({ dataDir: filesData });
});
afterAll(async () => {
  await s?.stop();
});

async function setup(name: string, destination: { driver: string; config: Record<string, unknown> }, mapping?: Record<string, unknown>) {
  const src = await s.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { message } } }`,
    { i: { name: `${name} source`, driver: 'csv', config: { path: path.join(dir, 'users.csv') } } },
  );
  const dst = await s.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { message } } }`,
    { i: { name: `${name} destination`, ...destination } },
  );
  let mappingId: string | undefined;
  if (mapping) {
    const m = await s.q(
      `mutation($i: CreateMappingInput!) { createMapping(input: $i) { __typename ... on CreateMappingPayload { mapping { id version } } ... on Error { message } } }`,
      { i: { name: `${name} mapping`, spec: mapping } },
    );
    mappingId = m.createMapping.mapping.id;
  }
  const p = await s.q(
    `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id state availableActions } } ... on Error { code message } } }`,
    { i: { name, sourceId: src.createConnector.connector.id, destinationId: dst.createConnector.connector.id, mappingId, batchSize: 5000 } },
  );
  expect(p.createPipeline.__typename).toBe('CreatePipelinePayload');
  return p.createPipeline.pipeline as { id: string; state: string; availableActions: string[] };
}

describe('100k-row CSV → SQLite through the server', () => {
  it('loads every row, streams progress over graphql-ws and moves INIT → READY', async () => {
    const db = path.join(dir, 'out.db');
    const pipeline = await setup('users to sqlite', { driver: 'sqlite', config: { path: db, table: 'users' } }, {
      mapping: { user_id: 'id', full_name: 'name', contact: 'email', amount: 'amount' },
      cast: { user_id: 'int', amount: 'float' },
      passThrough: false,
    });
    expect(pipeline.state).toBe('STOP');
    expect(pipeline.availableActions).toEqual(['START', 'RESET']);

    const ws = s.ws();
    const states = subscribe(ws, `subscription($id: ID!) { pipelineStateChanged(pipelineId: $id) { action state previousState } }`, { id: pipeline.id });
    await new Promise((r) => setTimeout(r, 200));

    const started = Date.now();
    const res = await s.q(
      `mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename ... on StartPipelinePayload { pipeline { state currentJob { id status } } } } }`,
      { i: { id: pipeline.id } },
    );
    expect(res.startPipeline.pipeline.state).toBe('INIT');
    const jobId = res.startPipeline.pipeline.currentJob.id;

    const progress = subscribe(ws, `subscription($id: ID!) { jobProgress(jobId: $id) { status recordsRead recordsWritten recordsFailed final } }`, { id: jobId });

    // The API answers while the load runs.
    const latencies: number[] = [];
    while (!progress.messages.some((m: any) => m.jobProgress.final)) {
      const t = Date.now();
      await s.q(`{ health { status } }`);
      latencies.push(Date.now() - t);
      await new Promise((r) => setTimeout(r, 20));
      if (Date.now() - started > 60_000) break;
    }
    await progress.done;
    const elapsed = Date.now() - started;
    const msgs = progress.messages.map((m: any) => m.jobProgress);
    const last = msgs.at(-1);
    expect(last).toMatchObject({ status: 'SUCCEEDED', recordsRead: ROWS, recordsWritten: ROWS, recordsFailed: 0, final: true });
    // Counters never go backwards.
    for (let i = 1; i < msgs.length; i++) expect(msgs[i].recordsWritten).toBeGreaterThanOrEqual(msgs[i - 1].recordsWritten);
    latencies.sort((a, b) => a - b);
    console.log(
      `[load] ${ROWS} rows in ${elapsed} ms (${Math.round(ROWS / (elapsed / 1000))} rows/s); ${msgs.length} progress messages; ` +
        `query p50 ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms over ${latencies.length} queries`,
    );

    await states.waitFor((m) => m.some((x: any) => x.pipelineStateChanged.state === 'READY'));
    expect(states.messages.map((m: any) => m.pipelineStateChanged)).toEqual([
      { action: 'START', state: 'INIT', previousState: 'STOP' },
      { action: 'INITIAL_LOAD_COMPLETED', state: 'READY', previousState: 'INIT' },
    ]);

    const job = await s.q(`query($id: ID!) { job(id: $id) { status recordsRead recordsWritten attempts mappingVersion cursorEnd } }`, { id: jobId });
    expect(job.job).toMatchObject({ status: 'SUCCEEDED', recordsRead: ROWS, recordsWritten: ROWS, attempts: 1, mappingVersion: 1 });
    expect(job.job.cursorEnd).toEqual({ users: { row: ROWS } });

    const rows = new Database(db, { readonly: true });
    expect(rows.prepare('select count(*) as n from users').get()).toEqual({ n: ROWS });
    expect(rows.prepare('select user_id, full_name, contact, amount from users where user_id = 42').get()).toEqual({
      user_id: 42,
      full_name: 'user 42',
      contact: 'user42@example.com',
      amount: 63,
    });
    rows.close();
  });

  it('loads into JSONL with pass-through records', async () => {
    const out = path.join(dir, 'users.jsonl');
    const pipeline = await setup('users to jsonl', { driver: 'jsonl', config: { path: out } });
    await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id: pipeline.id } });
    await eventually(async () => (await s.q(`query($id: ID!) { pipeline(id: $id) { state } }`, { id: pipeline.id })).pipeline.state === 'READY');
    const lines = fs.readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(ROWS);
    expect(JSON.parse(lines[0]!)).toMatchObject({ id: 1, name: 'user 1', email: 'user1@example.com' });
  });
});
