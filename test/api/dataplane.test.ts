/**
 * Data-plane behaviour through the server: dead letters and their replay after a mapping
 * fix, preview without writing, per-stream counters, and retries of transient failures.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, testDataDir, type TestServer } from '../helpers/server.js';
import { createConnectorId, TERMINAL_JOB_STATUSES, waitForJob } from '../helpers/graphql.js';

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-dp-'));
  s = await startTestServer({ dataDir: filesData });
});
afterAll(async () => {
  await s?.stop();
});

const CREATE_PIPELINE = `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`;

const connector = (name: string, driver: string, config: Record<string, unknown>) => createConnectorId(s.q, name, driver, config);

const waitJob = (id: string, statuses = TERMINAL_JOB_STATUSES) =>
  waitForJob(
    async () => (await s.q(`query($id: ID!) { job(id: $id) { status attempts error recordsRead recordsWritten recordsFailed streams { stream recordsRead recordsWritten recordsFailed } attemptHistory { number status error } } }`, { id })).job,
    statuses,
    60_000,
  );

function writePrices(file: string, rows: number, badEvery: number) {
  const lines = ['sku,price'];
  for (let i = 1; i <= rows; i++) lines.push(`sku-${i},${i % badEvery === 0 ? `${i}.5 EUR` : `${i}.5`}`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

describe('dead letters and replay', () => {
  it('dead-letters bad records with their stage and error, then replays them after a mapping fix', async () => {
    const csv = path.join(dir, 'prices.csv');
    writePrices(csv, 1000, 50); // 20 bad rows = 2 %
    const src = await connector('prices', 'csv', { path: csv });
    const dst = await connector('prices db', 'sqlite', { path: path.join(dir, 'prices.db'), table: 'prices' });
    const m = await s.q(
      `mutation($i: CreateMappingInput!) { createMapping(input: $i) { ... on CreateMappingPayload { mapping { id } } } }`,
      { i: { name: 'prices', spec: { mapping: { sku: 'sku', price: 'price' }, cast: { price: 'float' } } } },
    );
    const mappingId = m.createMapping.mapping.id;
    const p = await s.q(CREATE_PIPELINE, {
      i: { name: 'prices', sourceId: src, destinationId: dst, mappingId, writeMode: 'UPSERT', streams: [{ name: 'prices', primaryKey: ['sku'] }] },
    });
    const pipelineId = p.createPipeline.pipeline.id;
    const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
      i: { id: pipelineId },
    });
    const job = await waitJob(started.startPipeline.pipeline.currentJob.id);
    expect(job).toMatchObject({ status: 'SUCCEEDED', recordsRead: 1000, recordsWritten: 980, recordsFailed: 20 });
    expect(job.streams).toEqual([{ stream: 'prices', recordsRead: 1000, recordsWritten: 980, recordsFailed: 20 }]);

    const letters = await s.q(`query($id: ID!) { pipeline(id: $id) { deadLetters(first: 100) { totalCount nodes { stage stream error record } } } }`, { id: pipelineId });
    expect(letters.pipeline.deadLetters.totalCount).toBe(20);
    const first = letters.pipeline.deadLetters.nodes.find((n: any) => n.record.sku === 'sku-50');
    expect(first).toMatchObject({ stage: 'MAPPING', stream: 'prices', record: { sku: 'sku-50', price: '50.5 EUR' } });
    expect(first.error).toMatch(/price/);

    // The fix: keep unparsable prices as text in a column of their own.
    await s.q(`mutation($i: UpdateMappingInput!) { updateMapping(input: $i) { __typename } }`, {
      i: { id: mappingId, spec: { mapping: { sku: 'sku', price_text: 'price' } } },
    });
    const replay = await s.q(
      `mutation($i: ReplayFailedRecordsInput!) { replayFailedRecords(input: $i) { __typename ... on ReplayFailedRecordsPayload { job { id kind mappingVersion } } ... on Error { code message } } }`,
      { i: { pipelineId } },
    );
    expect(replay.replayFailedRecords.job).toMatchObject({ kind: 'REPLAY', mappingVersion: 2 });
    const replayed = await waitJob(replay.replayFailedRecords.job.id);
    const dl = await s.q(`query($id: ID!) { job(id: $id) { deadLetters(first: 2) { nodes { stage error record } } } }`, { id: replay.replayFailedRecords.job.id });
    expect(dl.job.deadLetters.nodes).toEqual([]);
    expect(replayed).toMatchObject({ status: 'SUCCEEDED', recordsRead: 20, recordsWritten: 20, recordsFailed: 0 });

    const after = await s.q(`query($id: ID!) { pipeline(id: $id) { deadLetters { totalCount } cursor } }`, { id: pipelineId });
    expect(after.pipeline.deadLetters.totalCount).toBe(0);
    expect(after.pipeline.cursor).toEqual({ prices: { row: 1000 } });
    const db = new Database(path.join(dir, 'prices.db'), { readonly: true });
    expect(db.prepare('select count(*) as n from prices').get()).toEqual({ n: 1000 });
    expect(db.prepare("select price, price_text from prices where sku = 'sku-50'").get()).toEqual({ price: null, price_text: '50.5 EUR' });
    expect(db.prepare("select price from prices where sku = 'sku-51'").get()).toEqual({ price: 51.5 });
    db.close();

    const none = await s.gql(
      `mutation($i: ReplayFailedRecordsInput!) { replayFailedRecords(input: $i) { __typename ... on Error { code } } }`,
      { i: { pipelineId } },
    );
    expect(none.data.replayFailedRecords).toEqual({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
  });

  it('fails the job when the failed share exceeds failureThreshold', async () => {
    const csv = path.join(dir, 'bad.csv');
    writePrices(csv, 1000, 10); // 10 %
    const src = await connector('bad prices', 'csv', { path: csv });
    const dst = await connector('bad db', 'sqlite', { path: path.join(dir, 'bad.db') });
    const m = await s.q(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { ... on CreateMappingPayload { mapping { id } } } }`, {
      i: { name: 'strict', spec: { passThrough: true, cast: { price: 'float' } } },
    });
    const p = await s.q(CREATE_PIPELINE, { i: { name: 'strict', sourceId: src, destinationId: dst, mappingId: m.createMapping.mapping.id, failureThreshold: 5, batchSize: 100 } });
    const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
      i: { id: p.createPipeline.pipeline.id },
    });
    const job = await waitJob(started.startPipeline.pipeline.currentJob.id);
    expect(job.status).toBe('FAILED');
    expect(job.attempts).toBe(1); // not retryable
    expect(job.error).toMatch(/failure threshold of 5%/);
    const pl = await s.q(`query($id: ID!) { pipeline(id: $id) { state stateReason } }`, { id: p.createPipeline.pipeline.id });
    expect(pl.pipeline.state).toBe('INIT');
    expect(pl.pipeline.stateReason).toMatch(/threshold/);
  });

  it('applies failureThreshold from the first record: three records, all failing, fail the job', async () => {
    const csv = path.join(dir, 'tiny-bad.csv');
    fs.writeFileSync(csv, 'id,price\n1,x\n2,y\n3,z\n');
    const src = await connector('tiny bad', 'csv', { path: csv });
    const dst = await connector('tiny db', 'sqlite', { path: path.join(dir, 'tiny.db') });
    const m = await s.q(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { ... on CreateMappingPayload { mapping { id } } } }`, {
      i: { name: 'tiny strict', spec: { passThrough: true, cast: { price: 'float' } } },
    });
    const p = await s.q(CREATE_PIPELINE, { i: { name: 'tiny strict', sourceId: src, destinationId: dst, mappingId: m.createMapping.mapping.id, failureThreshold: 50 } });
    const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
      i: { id: p.createPipeline.pipeline.id },
    });
    const job = await waitJob(started.startPipeline.pipeline.currentJob.id);
    expect(job.status).toBe('FAILED');
    expect(job.error).toBe('3 of 3 records failed (100.0%), above the failure threshold of 50%');
  });
});

describe('preview', () => {
  it('previewPipeline and previewMapping pull live records, map them and write nothing', async () => {
    const csv = path.join(dir, 'preview.csv');
    writePrices(csv, 100, 3);
    const src = await connector('preview src', 'csv', { path: csv });
    const out = path.join(dir, 'preview.jsonl');
    const dst = await connector('preview dst', 'jsonl', { path: out });
    const m = await s.q(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { ... on CreateMappingPayload { mapping { id } } } }`, {
      i: { name: 'preview', spec: { mapping: { id: 'sku', amount: 'price' }, cast: { amount: 'float' } } },
    });
    const p = await s.q(CREATE_PIPELINE, { i: { name: 'preview', sourceId: src, destinationId: dst, mappingId: m.createMapping.mapping.id } });
    const r = await s.q(
      `mutation($i: PreviewPipelineInput!) { previewPipeline(input: $i) { __typename ... on PreviewPipelinePayload { records { stream input output error { stage path code message } } } ... on Error { code message } } }`,
      { i: { id: p.createPipeline.pipeline.id, limit: 5 } },
    );
    const records = r.previewPipeline.records;
    expect(records).toHaveLength(5);
    expect(records[0]).toEqual({ stream: 'preview', input: { sku: 'sku-1', price: '1.5' }, output: { id: 'sku-1', amount: 1.5 }, error: null });
    expect(records[2]).toMatchObject({ output: null, error: { stage: 'MAPPING', path: 'amount', code: 'CAST_FAILED' } });
    expect(fs.existsSync(out)).toBe(false);
    const state = await s.q(`query($id: ID!) { pipeline(id: $id) { state cursor jobs { totalCount } } }`, { id: p.createPipeline.pipeline.id });
    expect(state.pipeline).toEqual({ state: 'STOP', cursor: null, jobs: { totalCount: 0 } });

    const pm = await s.q(
      `mutation($i: PreviewMappingInput!) { previewMapping(input: $i) { __typename ... on PreviewMappingPayload { records { output } } ... on Error { code message } } }`,
      { i: { connectorId: src, spec: { mapping: { upper: { const: 'X' }, sku: 'sku' } }, limit: 2 } },
    );
    expect(pm.previewMapping.records.map((x: any) => x.output)).toEqual([
      { upper: 'X', sku: 'sku-1' },
      { upper: 'X', sku: 'sku-2' },
    ]);

    const bad = await s.q(`mutation($i: PreviewPipelineInput!) { previewPipeline(input: $i) { __typename ... on ValidationError { fieldErrors { path } } } }`, {
      i: { id: p.createPipeline.pipeline.id, limit: 100000 },
    });
    expect(bad.previewPipeline).toEqual({ __typename: 'ValidationError', fieldErrors: [{ path: 'limit' }] });
  });

  it('a source that cannot be read is a ConnectorFailedError', async () => {
    const csv = path.join(dir, 'vanishing.csv');
    writePrices(csv, 10, 100);
    const src = await connector('vanishing', 'csv', { path: csv });
    const dst = await connector('vanishing dst', 'jsonl', { path: path.join(dir, 'v.jsonl') });
    const p = await s.q(CREATE_PIPELINE, { i: { name: 'vanishing', sourceId: src, destinationId: dst } });
    fs.rmSync(csv);
    const r = await s.q(`mutation($i: PreviewPipelineInput!) { previewPipeline(input: $i) { __typename ... on Error { code message } } }`, {
      i: { id: p.createPipeline.pipeline.id },
    });
    expect(r.previewPipeline.__typename).toBe('ConnectorFailedError');
    expect(r.previewPipeline.code).toBe('CONNECTOR_FAILED');
    expect(r.previewPipeline.message).toMatch(/vanishing/);
  });
});

describe('retries', () => {
  it('retries a transient failure from the last checkpoint with backoff, keeping the attempt history', async () => {
    const csv = path.join(dir, 'retry.csv');
    writePrices(csv, 500, 100000);
    const dbFile = path.join(dir, 'locked.db');
    const lock = new Database(dbFile);
    lock.exec('create table held (x int)');
    lock.exec('begin exclusive');
    const src = await connector('retry src', 'csv', { path: csv });
    const dst = await connector('retry dst', 'sqlite', { path: dbFile, table: 'prices' });
    const p = await s.q(CREATE_PIPELINE, { i: { name: 'retry', sourceId: src, destinationId: dst, maxAttempts: 3, retryBackoffMs: 300 } });
    const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, {
      i: { id: p.createPipeline.pipeline.id },
    });
    const jobId = started.startPipeline.pipeline.currentJob.id;
    // The first attempt fails on the locked database; release the lock once it has.
    await eventually(async () => (await s.q(`query($id: ID!) { job(id: $id) { attempts status } }`, { id: jobId })).job.attempts >= 1 &&
      (await s.q(`query($id: ID!) { events(filter: { jobId: $id, types: [JOB_RETRYING] }) { totalCount } }`, { id: jobId })).events.totalCount >= 1, 60_000);
    lock.exec('rollback');
    lock.close();
    const job = await waitJob(jobId);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempts).toBeGreaterThanOrEqual(2);
    expect(job.attemptHistory[0]).toMatchObject({ number: 1, status: 'FAILED' });
    expect(job.attemptHistory[0].error).toMatch(/lock|busy/i);
    expect(job.attemptHistory.at(-1)).toMatchObject({ status: 'SUCCEEDED' });
    const rows = new Database(dbFile, { readonly: true });
    expect(rows.prepare('select count(*) as n from prices').get()).toEqual({ n: 500 });
    rows.close();
  });
});

describe('write modes per stream', () => {
  it('OVERWRITE replaces the table on every run and is refused with INCREMENTAL', async () => {
    const csv = path.join(dir, 'ow.csv');
    writePrices(csv, 300, 100000);
    const src = await connector('ow src', 'csv', { path: csv });
    const dbFile = path.join(dir, 'ow.db');
    const dst = await connector('ow dst', 'sqlite', { path: dbFile, table: 'prices' });
    const refused = await s.q(CREATE_PIPELINE, {
      i: { name: 'ow bad', sourceId: src, destinationId: dst, streams: [{ name: 'ow', syncMode: 'INCREMENTAL', writeMode: 'OVERWRITE' }] },
    });
    expect(refused.createPipeline).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });

    const p = await s.q(CREATE_PIPELINE, {
      i: { name: 'ow', sourceId: src, destinationId: dst, streams: [{ name: 'ow', syncMode: 'FULL_REFRESH', writeMode: 'OVERWRITE' }] },
    });
    const id = p.createPipeline.pipeline.id;
    const started = await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, { i: { id } });
    expect((await waitJob(started.startPipeline.pipeline.currentJob.id)).status).toBe('SUCCEEDED');
    writePrices(csv, 200, 100000); // the source shrank: the table must follow
    const run = await s.q(`mutation($i: PipelineIdInput!) { runPipeline(input: $i) { ... on RunPipelinePayload { job { id } } ... on Error { code message } } }`, { i: { id } });
    expect((await waitJob(run.runPipeline.job.id)).status).toBe('SUCCEEDED');
    const db = new Database(dbFile, { readonly: true });
    expect(db.prepare('select count(*) as n from prices').get()).toEqual({ n: 200 });
    db.close();
    const pl = await s.q(`query($id: ID!) { pipeline(id: $id) { streams { name syncMode writeMode } } }`, { id });
    expect(pl.pipeline.streams).toEqual([{ name: 'ow', syncMode: 'FULL_REFRESH', writeMode: 'OVERWRITE' }]);
  });
});
