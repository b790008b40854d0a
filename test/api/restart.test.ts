/**
 * Restarts, as an operator causes them: a clean stop and start on the same data folder keeps
 * every object and the event log; a graceful stop mid-job checkpoints exactly and the job
 * resumes after the restart; a hard kill (SIGKILL of the real `tsx src/main.ts` process)
 * mid-job is recovered at the next start, and with UPSERT the result is exactly-once.
 *
 * The tests share one data folder (and one embedded database) in sequence: each starts the
 * server the previous one left running, so only the first pays for creating the database.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killChildren, killGroup, spawnServer, type Gql } from '../helpers/child-server.js';
import { eventually, startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';
import { allEvents as eventLog } from '../helpers/graphql.js';

const BIG_ROWS = 300_000;
const BATCH = 500;

let s: TestServer | null = null;
let dataDir: string;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let bigCsv: string;
let n = 0;

beforeAll(() => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-restart-files-'));
  bigCsv = path.join(dir, 'big.csv');
  writeCsv(bigCsv, BIG_ROWS);
});

afterAll(async () => {
  killChildren();
  await s?.stop();
});

// ---------------------------------------------------------------------------------------------
// Client helpers (work against the in-process server and the child process alike)

const PIPELINE_FIELDS = `id name state previousState version cursor stateReason availableActions active inactiveReason writeMode batchSize
  streams { name syncMode primaryKey } createdAt updatedAt`;
const JOB_FIELDS = `id kind trigger status attempts recordsRead recordsWritten recordsFailed bytesRead bytesWritten error
  cursorStart cursorEnd mappingVersion createdAt startedAt finishedAt attemptHistory { number status error recordsRead recordsWritten }`;

async function createConnector(q: Gql, name: string, driver: string, config: Record<string, unknown>): Promise<string> {
  const r = await q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { code message } } }`,
    { i: { name, driver, config } },
  );
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

/** A csv → sqlite pipeline writing table `rows` of its own SQLite file. */
async function makePipeline(q: Gql, options: { csv: string; writeMode?: string; streams?: unknown[]; mappingId?: string; batchSize?: number }) {
  const k = ++n;
  const sourceId = await createConnector(q, `source ${k}`, 'csv', { path: options.csv });
  const db = path.join(dir, `out-${k}.db`);
  const destinationId = await createConnector(q, `destination ${k}`, 'sqlite', { path: db, table: 'rows' });
  const r = await q(
    `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`,
    {
      i: {
        name: `pipeline ${k}`,
        sourceId,
        destinationId,
        batchSize: options.batchSize ?? BATCH,
        ...(options.writeMode ? { writeMode: options.writeMode } : {}),
        ...(options.streams ? { streams: options.streams } : {}),
        ...(options.mappingId ? { mappingId: options.mappingId } : {}),
      },
    },
  );
  expect(r.createPipeline.__typename, JSON.stringify(r)).toBe('CreatePipelinePayload');
  return { id: r.createPipeline.pipeline.id as string, sourceId, destinationId, db };
}

async function start(q: Gql, id: string): Promise<string> {
  const r = await q(
    `mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename ... on StartPipelinePayload { pipeline { state currentJob { id } } } ... on Error { code message } } }`,
    { i: { id } },
  );
  expect(r.startPipeline.__typename, JSON.stringify(r)).toBe('StartPipelinePayload');
  expect(r.startPipeline.pipeline.state).toBe('INIT');
  return r.startPipeline.pipeline.currentJob.id;
}

const getPipeline = async (q: Gql, id: string) => (await q(`query($id: ID!) { pipeline(id: $id) { ${PIPELINE_FIELDS} } }`, { id })).pipeline;
const getJob = async (q: Gql, id: string) => (await q(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id })).job;

/** The whole event log (or the part after `after`), paging 100 at a time. */
const allEvents = (q: Gql, filter: Record<string, unknown> | null = null, after: string | null = null) =>
  eventLog(q, 'id type message pipelineId jobId connectorId data createdAt', filter, after);

function table(db: string): { n: number; d: number; max: number | null } {
  const conn = new Database(db, { readonly: true });
  try {
    return conn.prepare('select count(*) as n, count(distinct id) as d, max(cast(id as integer)) as max from rows').get() as never;
  } finally {
    conn.close();
  }
}

/** Queries whichever in-process server is running now. */
const sq: Gql = (query, variables) => s!.q(query, variables);

// ---------------------------------------------------------------------------------------------

describe('restarts', () => {
  it('a stop and a start on the same data folder keep every object, the job counters and the event log', async () => {
    s = await startTestServer({ dataDir: filesData });
    dataDir = s.dataDir;
    const q = sq;
    const csv = path.join(dir, 'small.csv');
    writeCsv(csv, 1000);

    const m = await q(
      `mutation($i: CreateMappingInput!) { createMapping(input: $i) { __typename ... on CreateMappingPayload { mapping { id } } } }`,
      { i: { name: 'users', spec: { mapping: { id: 'id', name: 'name' }, cast: { id: 'int' } } } },
    );
    const mappingId = m.createMapping.mapping.id;
    const upd = await q(
      `mutation($i: UpdateMappingInput!) { updateMapping(input: $i) { __typename ... on UpdateMappingPayload { mapping { version } } } }`,
      { i: { id: mappingId, spec: { mapping: { id: 'id', name: 'name', amount: 'amount' }, cast: { id: 'int', amount: 'float' } } } },
    );
    expect(upd.updateMapping.mapping.version).toBe(2);
    const p = await makePipeline(q, { csv, mappingId, batchSize: 250 });
    const jobId = await start(q, p.id);
    await eventually(async () => (await getPipeline(q, p.id)).state === 'READY');
    await q(`mutation($i: ConnectorIdInput!) { pauseConnector(input: $i) { __typename } }`, { i: { id: p.sourceId } });

    const SNAPSHOT = `query($p: ID!, $j: ID!) {
      connectors(first: 100) { totalCount edges { node { id name driver role config paused version createdAt updatedAt } } }
      mappings(first: 100) { totalCount edges { node { id name version spec { mapping cast unset passThrough } versions { version spec { mapping cast } } } } }
      pipeline(id: $p) { ${PIPELINE_FIELDS} mapping { id } source { id } destination { id } jobs(first: 10) { totalCount } }
      job(id: $j) { ${JOB_FIELDS} }
    }`;
    const before = await q(SNAPSHOT, { p: p.id, j: jobId });
    const eventsBefore = await allEvents(q);
    // What the snapshot pins down: a loaded READY pipeline with an exact cursor and counters.
    expect(before.pipeline).toMatchObject({ state: 'READY', previousState: 'INIT', cursor: { small: { row: 1000 } }, active: false });
    expect(before.job).toMatchObject({ status: 'SUCCEEDED', attempts: 1, recordsRead: 1000, recordsWritten: 1000, mappingVersion: 2 });
    expect(before.connectors.totalCount).toBe(2);
    expect(before.mappings.edges[0].node.versions).toHaveLength(2);
    expect(eventsBefore.map((e) => e.type)).toEqual(
      expect.arrayContaining(['CONNECTOR_CREATED', 'MAPPING_CREATED', 'MAPPING_UPDATED', 'PIPELINE_CREATED', 'PIPELINE_STATE_CHANGED', 'JOB_SUCCEEDED', 'CONNECTOR_PAUSED']),
    );
    const sequences = eventsBefore.map((e) => BigInt(e.cursor));
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]! > sequences[i - 1]!).toBe(true);

    await s.stop();
    s = await startTestServer({ dataDir });
    const q2 = sq;

    expect(await q2(SNAPSHOT, { p: p.id, j: jobId })).toEqual(before);
    expect(await allEvents(q2)).toEqual(eventsBefore);

    // The log continues after the old events.
    await q2(`mutation($i: ConnectorIdInput!) { resumeConnector(input: $i) { __typename } }`, { i: { id: p.sourceId } });
    const stop = await q2(
      `mutation($i: PipelineActionInput!) { stopPipeline(input: $i) { __typename ... on StopPipelinePayload { pipeline { state version } } } }`,
      { i: { id: p.id, expectedVersion: before.pipeline.version } },
    );
    expect(stop.stopPipeline.pipeline).toEqual({ state: 'STOP', version: before.pipeline.version + 1 });
    const newer = await allEvents(q2, null, eventsBefore.at(-1)!.cursor);
    expect(newer.map((e) => e.type)).toEqual(['CONNECTOR_RESUMED', 'PIPELINE_STATE_CHANGED']);
    expect(BigInt(newer[0].cursor)).toBeGreaterThan(sequences.at(-1)!);
    expect(BigInt(newer[1].cursor)).toBeGreaterThan(BigInt(newer[0].cursor));
  });

  it('a graceful stop mid-job checkpoints exactly; after the restart the job resumes and APPEND holds every row once', async () => {
    const q = sq;
    const p = await makePipeline(q, { csv: bigCsv });
    const jobId = await start(q, p.id);
    const progress = subscribe(s!.ws(), `subscription($id: ID!) { jobProgress(jobId: $id) { status recordsWritten } }`, { id: jobId });
    await progress.waitFor((m) => m.some((x: any) => x.jobProgress.status === 'RUNNING' && x.jobProgress.recordsWritten > 0));
    expect((await getJob(q, jobId)).status).toBe('RUNNING');

    await s!.stop();
    s = null;
    const atStop = table(p.db);
    expect(atStop.n).toBeGreaterThan(0);
    expect(atStop.n).toBeLessThan(BIG_ROWS);
    expect(atStop.n % BATCH).toBe(0);

    s = await startTestServer({ dataDir });
    const q2 = sq;
    const done = await eventually(async () => {
      const j = await getJob(q2, jobId);
      return j.status === 'SUCCEEDED' || j.status === 'FAILED' ? j : null;
    }, 45_000);
    expect(done).toMatchObject({ status: 'SUCCEEDED', recordsRead: BIG_ROWS, recordsWritten: BIG_ROWS, recordsFailed: 0, cursorEnd: { big: { row: BIG_ROWS } } });
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect(done.attemptHistory[0]).toMatchObject({ number: 1, status: 'FAILED', error: 'interrupted by shutdown; resumes at next start', recordsWritten: atStop.n });
    expect(done.attemptHistory.at(-1)).toMatchObject({ status: 'SUCCEEDED' });

    // The interruption was recorded with exactly what the table held, then the job resumed.
    const jobEvents = await allEvents(q2, { jobId });
    const interrupted = jobEvents.find((e) => e.type === 'JOB_QUEUED' && e.message.startsWith('job interrupted'));
    expect(interrupted?.data).toMatchObject({ recordsWritten: atStop.n });
    expect(jobEvents.filter((e) => e.type === 'JOB_STARTED').map((e) => e.data.attempt)).toEqual(done.attemptHistory.map((a: any) => a.number));

    expect(table(p.db)).toEqual({ n: BIG_ROWS, d: BIG_ROWS, max: BIG_ROWS });
    expect(await getPipeline(q2, p.id)).toMatchObject({ state: 'READY', cursor: { big: { row: BIG_ROWS } } });
  });

  it('a hard kill (SIGKILL) mid-job: the next start recovers the job and UPSERT ends with exactly N rows', async () => {
    await s!.stop();
    s = null;

    const first = await spawnServer(dataDir);
    const p = await makePipeline(first.q, { csv: bigCsv, writeMode: 'UPSERT', streams: [{ name: 'big', syncMode: 'INCREMENTAL', primaryKey: ['id'] }] });
    const jobId = await start(first.q, p.id);
    const running = await eventually(async () => {
      const j = await getJob(first.q, jobId);
      return j.status === 'RUNNING' && j.recordsWritten > 0 ? j : null;
    });
    expect(running.recordsWritten).toBeLessThan(BIG_ROWS);

    killGroup(first.child, 'SIGKILL');
    await first.exited;
    expect(first.child.signalCode).toBe('SIGKILL');
    const atKill = table(p.db);
    expect(atKill.n).toBeGreaterThan(0);
    expect(atKill.n).toBeLessThan(BIG_ROWS);
    expect(atKill.d).toBe(atKill.n);

    // Start again on the same folder (in-process this time: the recovery is the same code path).
    s = await startTestServer({ dataDir });
    const q = sq;
    const done = await eventually(async () => {
      const j = await getJob(q, jobId);
      return j.status === 'SUCCEEDED' || j.status === 'FAILED' ? j : null;
    }, 45_000);
    expect(done).toMatchObject({ status: 'SUCCEEDED', cursorEnd: { big: { row: BIG_ROWS } } });
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect(done.attemptHistory[0]).toMatchObject({ number: 1, status: 'FAILED', error: 'the process stopped during this attempt' });
    expect(done.attemptHistory.at(-1)).toMatchObject({ status: 'SUCCEEDED' });
    // At-least-once: rows after the last checkpoint may be read twice, never skipped.
    expect(done.recordsRead).toBeGreaterThanOrEqual(BIG_ROWS);

    const recovered = (await allEvents(q, { jobId })).filter((e) => e.type === 'JOB_QUEUED').map((e) => e.message);
    expect(recovered).toContain('job recovered after restart: resuming from its checkpoint');
    expect(await getPipeline(q, p.id)).toMatchObject({ state: 'READY', cursor: { big: { row: BIG_ROWS } } });
    expect(table(p.db)).toEqual({ n: BIG_ROWS, d: BIG_ROWS, max: BIG_ROWS });
  });
});
