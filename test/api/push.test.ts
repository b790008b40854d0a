/**
 * The SUBSCRIPTION trigger's push endpoint through the real server: push tokens (shown once,
 * stored hashed, replaced by a new one), JSON arrays and NDJSON through the pipeline's mapping
 * into a real SQLite file, one answer for every authentication failure, exact 4xx answers for
 * bad payloads, and the durable acknowledgement: records answered 202 survive a graceful stop
 * and a SIGKILL of the real process, and arrive exactly once when the destination resumes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killChildren, killGroup, spawnServer, type Gql } from '../helpers/child-server.js';
import { eventually, startTestServer, testDataDir, type TestServer } from '../helpers/server.js';
import { createConnectorId, waitForJob } from '../helpers/graphql.js';

let s: TestServer | null = null;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let csv: string;
let mappingId: string;
let n = 0;

/** Queries whichever in-process server is running now. */
const sq: Gql = (query, variables) => s!.q(query, variables);
const base = () => s!.url.replace(/\/graphql$/, '');

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-push-'));
  // The pipelines' source: a CSV with a header and no rows (its initial load reads nothing).
  csv = path.join(dir, 'events.csv');
  fs.writeFileSync(csv, 'id,name,amount\n');
  s = await startTestServer({ dataDir: filesData });
  const m = await sq(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { __typename ... on CreateMappingPayload { mapping { id } } } }`, {
    i: { name: 'events', spec: { mapping: { event_id: 'id', label: 'name', amount: 'amount' }, cast: { event_id: 'int', amount: 'float' }, passThrough: false } },
  });
  mappingId = m.createMapping.mapping.id;
});
afterAll(async () => {
  killChildren();
  await s?.stop();
});

const connector = (q: Gql, name: string, driver: string, config: Record<string, unknown>) => createConnectorId(q, `${name} ${++n}`, driver, config);

const PIPELINE_FIELDS = `id name state trigger enabled hasPushToken pushPath nextRunAt currentJob { id status }`;

/** A SUBSCRIPTION pipeline: empty CSV → mapping → table `events` of its own SQLite file. */
async function pushPipeline(options: { start?: boolean; db?: string; maxAttempts?: number } = {}) {
  const k = ++n;
  const sourceId = await connector(sq, 'events csv', 'csv', { path: csv });
  const db = options.db ?? path.join(dir, `push-${k}.db`);
  const destinationId = await connector(sq, 'events db', 'sqlite', { path: db, table: 'events' });
  const r = await sq(
    `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { ${PIPELINE_FIELDS} } } ... on Error { code message } } }`,
    { i: { name: `push ${k}`, sourceId, destinationId, mappingId, trigger: 'SUBSCRIPTION', ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}) } },
  );
  expect(r.createPipeline.__typename, JSON.stringify(r)).toBe('CreatePipelinePayload');
  const p = r.createPipeline.pipeline;
  const uuid = Buffer.from(p.id, 'base64').toString('utf8').replace(/^Pipeline:/, '');
  if (options.start !== false) {
    await sq(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id: p.id } });
    await eventually(async () => (await getPipeline(p.id)).state === 'READY');
  }
  return { ...p, uuid, db, sourceId, destinationId };
}

async function createToken(id: string, q: Gql = sq): Promise<{ token: string; path: string }> {
  const r = await q(`mutation($i: PipelineIdInput!) { createPushToken(input: $i) { __typename ... on CreatePushTokenPayload { pushToken { token path } } ... on Error { code } } }`, {
    i: { id },
  });
  expect(r.createPushToken.__typename, JSON.stringify(r)).toBe('CreatePushTokenPayload');
  return r.createPushToken.pushToken;
}

const getPipeline = async (id: string, q: Gql = sq) => (await q(`query($id: ID!) { pipeline(id: $id) { ${PIPELINE_FIELDS} } }`, { id })).pipeline;
const getJob = async (id: string, q: Gql = sq) =>
  (await q(`query($id: ID!) { job(id: $id) { id kind trigger status attempts error recordsRead recordsWritten recordsFailed } }`, { id })).job;

const waitJob = (id: string, q: Gql = sq) => waitForJob(() => getJob(id, q));

async function push(
  url: string,
  body: string,
  options: { token?: string | null; contentType?: string | null; method?: string; authorization?: string } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/json';
  if (options.authorization) headers.authorization = options.authorization;
  else if (options.token) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(url, { method: options.method ?? 'POST', headers, ...(options.method === 'GET' ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

function rows(db: string): unknown[] {
  if (!fs.existsSync(db)) return [];
  const conn = new Database(db, { readonly: true });
  try {
    const exists = conn.prepare(`select 1 from sqlite_master where type = 'table' and name = 'events'`).get();
    return exists ? conn.prepare('select event_id, label, amount from events order by event_id').all() : [];
  } finally {
    conn.close();
  }
}

const pushEvents = async (id: string, q: Gql = sq) =>
  (await q(`query($id: ID!) { events(filter: { pipelineId: $id, types: [PUSH_ACCEPTED] }) { totalCount nodes { data } } }`, { id })).events;

const pushBatches = (uuid: string) => s!.app.services.database.prisma.pushBatch.count({ where: { pipelineId: uuid } });

// ---------------------------------------------------------------------------------------------

describe('push tokens', () => {
  it('createPushToken returns the token once; only its hash is stored; hasPushToken tells it exists', async () => {
    const p = await pushPipeline({ start: false });
    expect(p).toMatchObject({ trigger: 'SUBSCRIPTION', hasPushToken: false, pushPath: `/pipelines/${p.uuid}/records`, nextRunAt: null });
    const { token, path: pushPath } = await createToken(p.id);
    expect(token).toMatch(/^sluice_push_[A-Za-z0-9_-]{43}$/);
    expect(pushPath).toBe(`/pipelines/${p.uuid}/records`);
    expect((await getPipeline(p.id)).hasPushToken).toBe(true);

    // Nothing readable returns the token again: not the pipeline (every field), not the events.
    const everything = await sq(
      `query($id: ID!) { pipeline(id: $id) { id name state trigger enabled hasPushToken pushPath schedule { cron } stateReason cursor streams { name } source { config } destination { config } } }`,
      { id: p.id },
    );
    expect(JSON.stringify(everything)).not.toContain(token.slice('sluice_push_'.length, 30));
    const log = await sq(`query($id: ID!) { events(filter: { pipelineId: $id }) { nodes { message data } } }`, { id: p.id });
    expect(JSON.stringify(log)).not.toContain(token.slice('sluice_push_'.length, 30));
    const row = await s!.app.services.database.prisma.pipeline.findUniqueOrThrow({ where: { id: p.uuid } });
    expect(row.pushTokenHash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(token);
  });
});

describe('pushing records', () => {
  it('a JSON array, one object and NDJSON are answered 202 and land in the destination through the mapping', async () => {
    const p = await pushPipeline();
    const { token } = await createToken(p.id);
    const byUuid = `${base()}/pipelines/${p.uuid}/records`;
    const byGlobalId = `${base()}/pipelines/${encodeURIComponent(p.id)}/records`;

    const a = await push(
      byUuid,
      JSON.stringify([
        { id: 1, name: 'alpha', amount: '1.5', extra: 'dropped by the mapping' },
        { id: '2', name: 'beta', amount: 2 },
      ]),
      { token },
    );
    expect(a.status).toBe(202);
    expect(a.body).toEqual({ accepted: 2, stream: 'events', jobId: expect.any(String) });
    const j1 = await waitJob(a.body.jobId);
    expect(j1).toMatchObject({ kind: 'SYNC', trigger: 'SUBSCRIPTION', status: 'SUCCEEDED', recordsRead: 2, recordsWritten: 2, recordsFailed: 0 });
    expect(rows(p.db)).toEqual([
      { event_id: 1, label: 'alpha', amount: 1.5 },
      { event_id: 2, label: 'beta', amount: 2 },
    ]);

    // One object (not an array), with an explicit ?stream= and a charset.
    const one = await push(`${byUuid}?stream=events`, JSON.stringify({ id: 3, name: 'gamma', amount: '3.25' }), { token, contentType: 'application/json; charset=utf-8' });
    expect(one.status).toBe(202);
    expect(one.body).toMatchObject({ accepted: 1, stream: 'events' });
    expect((await waitJob(one.body.jobId)).status).toBe('SUCCEEDED');

    // NDJSON via the pipeline's global id, with CRLF and a blank line.
    const nd = await push(byGlobalId, '{"id":4,"name":"delta","amount":"4"}\r\n\r\n{"id":5,"name":"epsilon","amount":5.5}\n{"id":6,"name":"zeta"}\n', {
      token,
      contentType: 'application/x-ndjson',
    });
    expect(nd.status).toBe(202);
    expect(nd.body).toMatchObject({ accepted: 3, stream: 'events' });
    const j3 = await waitJob(nd.body.jobId);
    expect(j3).toMatchObject({ trigger: 'SUBSCRIPTION', status: 'SUCCEEDED', recordsRead: 3, recordsWritten: 3 });

    expect(rows(p.db)).toEqual([
      { event_id: 1, label: 'alpha', amount: 1.5 },
      { event_id: 2, label: 'beta', amount: 2 },
      { event_id: 3, label: 'gamma', amount: 3.25 },
      { event_id: 4, label: 'delta', amount: 4 },
      { event_id: 5, label: 'epsilon', amount: 5.5 },
      { event_id: 6, label: 'zeta', amount: null },
    ]);
    const accepted = await pushEvents(p.id);
    expect(accepted.nodes.map((e: any) => e.data)).toEqual([
      { count: 2, stream: 'events' },
      { count: 1, stream: 'events' },
      { count: 3, stream: 'events' },
    ]);
    // Drained batches are removed; nothing is left waiting.
    expect(await pushBatches(p.uuid)).toBe(0);
    expect((await getPipeline(p.id)).currentJob).toBeNull();
  });

  it('authentication failures (no header, wrong token, unknown or malformed pipeline, replaced token) all answer 401 with the same body', async () => {
    const p = await pushPipeline();
    const other = await pushPipeline({ start: false });
    const { token: old } = await createToken(p.id);
    const { token: otherToken } = await createToken(other.id);
    const { token } = await createToken(p.id); // replaces `old`
    const url = `${base()}/pipelines/${p.uuid}/records`;
    const body = JSON.stringify([{ id: 1, name: 'x' }]);
    const failures = [
      await push(url, body, {}),
      await push(url, body, { authorization: 'Bearer' }),
      await push(url, body, { authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` }),
      await push(url, body, { token: `${token}x` }),
      await push(url, body, { token: old }),
      await push(url, body, { token: otherToken }),
      await push(`${base()}/pipelines/00000000-0000-4000-8000-000000000000/records`, body, { token }),
      await push(`${base()}/pipelines/not-a-pipeline/records`, body, { token }),
      await push(`${base()}/pipelines/${encodeURIComponent(Buffer.from(`Connector:${p.uuid}`).toString('base64'))}/records`, body, { token }),
    ];
    for (const f of failures) {
      expect(f.status).toBe(401);
      expect(f.body).toEqual({ error: 'a valid push token is required (Authorization: Bearer <token>)', code: 'UNAUTHENTICATED' });
      expect(f.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await pushEvents(p.id)).totalCount).toBe(0);
    expect(await pushBatches(p.uuid)).toBe(0);
    expect((await getPipeline(p.id)).currentJob).toBeNull();

    const ok = await push(url, body, { token });
    expect(ok.status).toBe(202);
    expect((await waitJob(ok.body.jobId)).status).toBe('SUCCEEDED');
    expect(rows(p.db)).toEqual([{ event_id: 1, label: 'x', amount: null }]);
  });

  it('bad payloads are refused with 400 naming the line or index, 415, 405 or 409; nothing is accepted', async () => {
    const p = await pushPipeline();
    const { token } = await createToken(p.id);
    const url = `${base()}/pipelines/${p.uuid}/records`;
    const NDJSON = 'application/x-ndjson';

    const invalidJson = await push(url, '[{"id":1},', { token });
    expect(invalidJson.status).toBe(400);
    expect(invalidJson.body).toMatchObject({ code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'body' }] });
    expect(invalidJson.body.error).toMatch(/^invalid JSON: body: /);

    const notObject = await push(url, '[{"id":1},{"id":2},3]', { token });
    expect(notObject.status).toBe(400);
    expect(notObject.body).toEqual({
      error: 'invalid record: [2]: each record must be a JSON object',
      code: 'VALIDATION_FAILED',
      fieldErrors: [{ path: '[2]', message: 'each record must be a JSON object' }],
    });
    for (const bad of ['[[1,2]]', '["a"]', '[null]', '42', '"text"', 'null']) {
      const r = await push(url, bad, { token });
      expect(r.status, bad).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }

    const badLine = await push(url, '{"id":1}\n{"id":\n{"id":3}\n', { token, contentType: NDJSON });
    expect(badLine.status).toBe(400);
    expect(badLine.body).toMatchObject({ code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'line 2' }] });
    expect(badLine.body.error).toMatch(/^invalid NDJSON: line 2: /);
    const arrayLine = await push(url, '{"id":1}\n\n[1]\n', { token, contentType: NDJSON });
    expect(arrayLine.status).toBe(400);
    expect(arrayLine.body).toEqual({ error: 'invalid record: line 3: each line must be a JSON object', code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'line 3', message: 'each line must be a JSON object' }] });

    for (const empty of ['[]', '']) {
      const r = await push(url, empty, { token, contentType: empty ? 'application/json' : NDJSON });
      expect(r.status, JSON.stringify(empty)).toBe(400);
      expect(r.body).toEqual({ error: 'no records in the body', code: 'VALIDATION_FAILED' });
    }

    const csvBody = await push(url, 'id,name\n1,x\n', { token, contentType: 'text/csv' });
    expect(csvBody.status).toBe(415);
    expect(csvBody.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');

    const unknownStream = await push(`${url}?stream=nope`, '[{"id":1}]', { token });
    expect(unknownStream.status).toBe(400);
    expect(unknownStream.body).toEqual({ error: 'the pipeline has no stream "nope"', code: 'VALIDATION_FAILED' });

    const get = await push(url, '', { token, method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');

    // A STOP pipeline takes no records.
    const stopped = await pushPipeline({ start: false });
    const { token: stoppedToken } = await createToken(stopped.id);
    const conflict = await push(`${base()}/pipelines/${stopped.uuid}/records`, '[{"id":1}]', { token: stoppedToken });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ code: 'CONFLICT' });
    expect(conflict.body.error).toMatch(/STOP/);

    for (const x of [p, stopped]) {
      expect((await pushEvents(x.id)).totalCount).toBe(0);
      expect(await pushBatches(x.uuid)).toBe(0);
      expect((await getPipeline(x.id)).currentJob).toBeNull();
    }
    expect(rows(p.db)).toEqual([]);
  });
});

describe('durable acknowledgement', () => {
  it('records of a push job that failed are not stranded: the next push job delivers them first', async () => {
    const db = path.join(dir, 'not-yet', 'late.db'); // the directory does not exist yet: writes fail (not retryable)
    const p = await pushPipeline({ db, maxAttempts: 1 });
    const { token } = await createToken(p.id);
    const url = `${base()}/pipelines/${p.uuid}/records`;
    const a = await push(url, JSON.stringify([{ id: 1, name: 'first', amount: 1 }]), { token });
    expect(a.status).toBe(202);
    const failed = await waitJob(a.body.jobId);
    expect(failed).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(failed.error).toMatch(/directory does not exist/);
    expect(await pushBatches(p.uuid)).toBe(1); // still kept

    fs.mkdirSync(path.dirname(db));
    const b = await push(url, JSON.stringify([{ id: 2, name: 'second', amount: 2 }]), { token });
    expect(b.status).toBe(202);
    expect(await waitJob(b.body.jobId)).toMatchObject({ status: 'SUCCEEDED', recordsRead: 2, recordsWritten: 2 });
    expect(rows(db)).toEqual([
      { event_id: 1, label: 'first', amount: 1 },
      { event_id: 2, label: 'second', amount: 2 },
    ]);
    expect(await pushBatches(p.uuid)).toBe(0);
  });

  it('records answered 202 survive a graceful stop and a SIGKILL, and arrive exactly once when the destination resumes', async () => {
    const p = await pushPipeline();
    const { token } = await createToken(p.id);
    await sq(`mutation($i: ConnectorIdInput!) { pauseConnector(input: $i) { __typename } }`, { i: { id: p.destinationId } });
    const dataDir = s!.dataDir;

    // 1. Accepted while the destination is paused: nothing drains, the job waits.
    const first = await push(`${base()}/pipelines/${p.uuid}/records`, JSON.stringify([{ id: 1, name: 'one', amount: 1 }, { id: 2, name: 'two', amount: 2 }]), { token });
    expect(first.status).toBe(202);
    expect(first.body.accepted).toBe(2);
    const jobId = first.body.jobId;
    await eventually(async () => (await getJob(jobId)).status === 'PAUSED');
    await s!.stop();
    s = null;
    expect(rows(p.db)).toEqual([]);

    // 2. The real process: accept more, then SIGKILL it right after the answer.
    const child = await spawnServer(dataDir);
    const second = await push(`${child.base}/pipelines/${p.uuid}/records`, '{"id":3,"name":"three","amount":3}\n{"id":4,"name":"four","amount":4}\n{"id":5,"name":"five"}\n', {
      token,
      contentType: 'application/x-ndjson',
    });
    killGroup(child.child, 'SIGKILL');
    await child.exited;
    expect(second.status).toBe(202);
    expect(second.body).toEqual({ accepted: 3, stream: 'events', jobId: null }); // the paused job will take these too
    expect(child.child.signalCode).toBe('SIGKILL');
    expect(rows(p.db)).toEqual([]);

    // 3. Start again; the records are all there, waiting for the destination.
    s = await startTestServer({ dataDir });
    expect(await pushBatches(p.uuid)).toBe(2);
    expect((await pushEvents(p.id)).nodes.map((e: any) => e.data)).toEqual([
      { count: 2, stream: 'events' },
      { count: 3, stream: 'events' },
    ]);
    expect((await getJob(jobId)).status).toBe('PAUSED');

    await sq(`mutation($i: ConnectorIdInput!) { resumeConnector(input: $i) { __typename } }`, { i: { id: p.destinationId } });
    const done = await waitJob(jobId);
    expect(done).toMatchObject({ trigger: 'SUBSCRIPTION', status: 'SUCCEEDED', recordsRead: 5, recordsWritten: 5, recordsFailed: 0 });
    expect(rows(p.db)).toEqual([
      { event_id: 1, label: 'one', amount: 1 },
      { event_id: 2, label: 'two', amount: 2 },
      { event_id: 3, label: 'three', amount: 3 },
      { event_id: 4, label: 'four', amount: 4 },
      { event_id: 5, label: 'five', amount: null },
    ]);
    expect(await pushBatches(p.uuid)).toBe(0);
    // Exactly once: no other job picks the records up again.
    const jobs = await sq(`query($id: ID!) { pipeline(id: $id) { jobs(first: 20) { nodes { id trigger status } } } }`, { id: p.id });
    expect(jobs.pipeline.jobs.nodes.filter((j: any) => j.trigger === 'SUBSCRIPTION')).toEqual([{ id: jobId, trigger: 'SUBSCRIPTION', status: 'SUCCEEDED' }]);
    expect(rows(p.db)).toHaveLength(5);
  });
});
