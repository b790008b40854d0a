/**
 * Scheduling and triggers through the real server: second-granularity crons firing on real
 * time (one SCHEDULE job per fire), interval and time-zone schedules, typed validation errors,
 * enable/disable and pause/resume (dis)arming, concurrency (skip vs queue, a fire that finds a
 * job running), execution timeout, retries with backoff, auto-stop after consecutive
 * failures, and catch-up of fires missed while the server was down (RUN_ONCE vs SKIP).
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';
import { allEvents as eventLog, createConnectorId, TERMINAL_JOB_STATUSES, waitForJob, type Gql } from '../helpers/graphql.js';

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let nullDst: string;
let n = 0;

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-sched-'));
  s = await startTestServer({ dataDir: filesData });
  nullDst = await connector('discard', 'null', {});
});
afterAll(async () => {
  await s?.stop();
});

const sq: Gql = (query, variables) => s.q(query, variables);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const P_FIELDS = `id name state previousState stateReason enabled trigger schedule { cron timezone every unit } nextRunAt lastRunAt
  allowParallelRuns concurrencyPolicy catchUp executionTimeoutMs autoStopAfterFailures consecutiveFailures version`;
const J_FIELDS = `id kind trigger status attempts error recordsRead recordsWritten createdAt startedAt finishedAt nextAttemptAt
  attemptHistory { number status error startedAt finishedAt }`;
const CREATE_PIPELINE = `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename
  ... on CreatePipelinePayload { pipeline { ${P_FIELDS} } } ... on ValidationError { code message fieldErrors { path message } } ... on Error { code message } } }`;
const UPDATE_PIPELINE = `mutation($i: UpdatePipelineInput!) { updatePipeline(input: $i) { __typename
  ... on UpdatePipelinePayload { pipeline { ${P_FIELDS} } } ... on ValidationError { code message fieldErrors { path message } } ... on Error { code message } } }`;
const RUN = `mutation($i: PipelineIdInput!) { runPipeline(input: $i) { __typename ... on RunPipelinePayload { job { id status trigger } } ... on Error { code message } } }`;

const connector = (name: string, driver: string, config: Record<string, unknown>, q: Gql = sq) => createConnectorId(q, `${name} ${++n}`, driver, config);

const gen = (config: Record<string, unknown>, q: Gql = sq) => connector('generator', 'generator', config, q);
const FULL_REFRESH = [{ name: 'stream_1', syncMode: 'FULL_REFRESH' }];

async function createPipeline(input: Record<string, unknown>, q: Gql = sq): Promise<any> {
  const r = await q(CREATE_PIPELINE, { i: { name: `pipeline ${++n}`, destinationId: nullDst, batchSize: 100, ...input } });
  expect(r.createPipeline.__typename, JSON.stringify(r)).toBe('CreatePipelinePayload');
  return r.createPipeline.pipeline;
}

async function act(action: 'start' | 'stop' | 'pause' | 'resume', id: string, q: Gql = sq): Promise<any> {
  const name = `${action}Pipeline`;
  const r = await q(`mutation($i: PipelineActionInput!) { ${name}(input: $i) { __typename ... on Error { code message } ... on ${name[0]!.toUpperCase()}${name.slice(1)}Payload { pipeline { ${P_FIELDS} currentJob { id } } } } }`, {
    i: { id },
  });
  expect(r[name].__typename, JSON.stringify(r)).toMatch(/Payload$/);
  return r[name].pipeline;
}

async function setEnabled(id: string, enabled: boolean, q: Gql = sq): Promise<any> {
  const name = enabled ? 'enablePipeline' : 'disablePipeline';
  const r = await q(`mutation($i: PipelineIdInput!) { ${name}(input: $i) { __typename ... on Error { code message } ... on ${enabled ? 'Enable' : 'Disable'}PipelinePayload { pipeline { ${P_FIELDS} } } } }`, {
    i: { id },
  });
  expect(r[name].__typename, JSON.stringify(r)).toMatch(/Payload$/);
  return r[name].pipeline;
}

const getPipeline = async (id: string, q: Gql = sq) => (await q(`query($id: ID!) { pipeline(id: $id) { ${P_FIELDS} currentJob { id status } } }`, { id })).pipeline;
const getJob = async (id: string, q: Gql = sq) => (await q(`query($id: ID!) { job(id: $id) { ${J_FIELDS} } }`, { id })).job;
const jobsOf = async (id: string, q: Gql = sq): Promise<any[]> =>
  (await q(`query($id: ID!) { pipeline(id: $id) { jobs(first: 100) { nodes { ${J_FIELDS} } } } }`, { id })).pipeline.jobs.nodes;

const waitJob = (id: string, statuses = TERMINAL_JOB_STATUSES, q: Gql = sq) => waitForJob(() => getJob(id, q), statuses, 30_000);

async function waitState(id: string, state: string, q: Gql = sq) {
  return eventually(async () => {
    const p = await getPipeline(id, q);
    return p.state === state ? p : null;
  }, 30_000);
}

/** Events matching `filter` (after `after` when given), oldest first. */
const allEvents = (filter: Record<string, unknown>, after: string | null = null, q: Gql = sq): Promise<any[]> =>
  eventLog(q, 'type message pipelineId jobId data createdAt', filter, after);

async function lastCursor(q: Gql = sq): Promise<string> {
  const r = await q(`{ events(last: 1) { edges { cursor } } }`);
  return r.events.edges[0]?.cursor ?? '0';
}

const EVENTS_SUB = `subscription($f: EventFilter, $after: String) { events(filter: $f, after: $after) { cursor type jobId data message createdAt } }`;

/** SCHEDULE_FIRED events, each with the event committed right after it in the same transaction. */
function firesOf(events: any[]) {
  return events
    .map((e, i) => ({ e, next: events[i + 1] }))
    .filter(({ e }) => e.type === 'SCHEDULE_FIRED')
    .map(({ e, next }) => ({ fire: e, next: next && BigInt(next.cursor) === BigInt(e.cursor) + 1n ? next : undefined }));
}

const ms = (iso: string | null | undefined) => (iso ? new Date(iso).getTime() : NaN);

// ---------------------------------------------------------------------------------------------

describe('schedules on real time', () => {
  it('a 6-field cron (every 2 s) fires on time with exactly one SCHEDULE job per fire; disable, enable, pause and resume (dis)arm it', async () => {
    const src = await gen({ count: 50 });
    const created = await createPipeline({ sourceId: src, trigger: 'SCHEDULE', schedule: { cron: '*/2 * * * * *' }, enabled: false, streams: FULL_REFRESH });
    const id = created.id;
    expect(created).toMatchObject({
      state: 'STOP',
      trigger: 'SCHEDULE',
      enabled: false,
      schedule: { cron: '*/2 * * * * *', timezone: 'UTC', every: null, unit: null },
      nextRunAt: null,
      lastRunAt: null,
      allowParallelRuns: false,
      concurrencyPolicy: 'SKIP',
      catchUp: 'SKIP',
      autoStopAfterFailures: 5,
    });

    // Disabled: the initial load runs, nothing is armed.
    const started = await act('start', id);
    expect(started).toMatchObject({ state: 'INIT', nextRunAt: null });
    const ready = await waitState(id, 'READY');
    expect(ready).toMatchObject({ enabled: false, nextRunAt: null, lastRunAt: null });

    const from = await lastCursor();
    const live = subscribe(s.ws(), EVENTS_SUB, { f: { pipelineId: id }, after: from });
    const t0 = Date.now();
    const enabled = await setEnabled(id, true);
    expect(enabled).toMatchObject({ enabled: true, state: 'READY' });
    expect(ms(enabled.nextRunAt) % 2000).toBe(0);
    expect(ms(enabled.nextRunAt)).toBeGreaterThan(t0);
    expect(ms(enabled.nextRunAt)).toBeLessThanOrEqual(Date.now() + 2000);

    const fired = firesOf(
      (await live.waitFor((m) => firesOf(m.map((x: any) => x.events)).filter((f) => f.next).length >= 2, 15_000)).map((x: any) => x.events),
    ).filter((f) => f.next);
    const disabled = await setEnabled(id, false);
    expect(disabled).toMatchObject({ enabled: false, nextRunAt: null, state: 'READY' });
    const afterDisable = await lastCursor();

    // Each fire: on the cron (even seconds), on time, and followed in its own transaction by one job.
    const log = await allEvents({ pipelineId: id }, from);
    const fires = firesOf(log);
    expect(fires.length).toBeGreaterThanOrEqual(2);
    const scheduled = fires.map((f) => ms(f.fire.data.scheduledAt));
    for (const [i, f] of fires.entries()) {
      expect(scheduled[i]! % 2000, JSON.stringify(f.fire)).toBe(0);
      expect(f.fire.data.lateMs).toBeGreaterThanOrEqual(0);
      expect(f.fire.data.lateMs).toBeLessThan(2000); // within one period of the cron
      expect(ms(f.fire.data.nextRunAt)).toBe(scheduled[i]! + 2000);
      expect(f.next?.type, `fire ${f.fire.data.scheduledAt} was not followed by its job`).toBe('JOB_QUEUED');
      if (i > 0) expect(scheduled[i]).toBe(scheduled[i - 1]! + 2000); // no fire missed, none repeated
    }
    expect(fired.length).toBeGreaterThanOrEqual(2);
    expect(log.filter((e) => e.type === 'RUN_SKIPPED')).toEqual([]);

    // Exactly one SCHEDULE job per fire, and no other job since the initial load.
    const jobs = await jobsOf(id);
    const scheduleJobs = jobs.filter((j) => j.trigger === 'SCHEDULE');
    expect(scheduleJobs.map((j) => j.id).sort()).toEqual(fires.map((f) => f.next.jobId).sort());
    expect(jobs.filter((j) => j.trigger !== 'SCHEDULE').map((j) => j.trigger)).toEqual(['START']);
    for (const j of scheduleJobs) {
      const done = await waitJob(j.id);
      expect(done).toMatchObject({ kind: 'SYNC', status: 'SUCCEEDED', recordsRead: 50, recordsWritten: 50 });
      expect(ms(done.createdAt)).toBeGreaterThanOrEqual(scheduled[0]!);
    }

    // lastRunAt is the last fire.
    expect(ms(disabled.lastRunAt)).toBe(scheduled.at(-1));
    expect((await allEvents({ pipelineId: id, types: ['PIPELINE_DISABLED', 'PIPELINE_ENABLED'] }, from)).map((e) => e.type)).toEqual([
      'PIPELINE_ENABLED',
      'PIPELINE_DISABLED',
    ]);

    // Disabled: no fire for longer than a period; the lifecycle state is untouched.
    await sleep(2600);
    expect((await allEvents({ pipelineId: id, types: ['SCHEDULE_FIRED', 'SCHEDULE_SKIPPED', 'JOB_QUEUED'] }, afterDisable))).toEqual([]);
    expect(await getPipeline(id)).toMatchObject({ state: 'READY', enabled: false, nextRunAt: null, lastRunAt: disabled.lastRunAt });
    expect(await jobsOf(id)).toHaveLength(jobs.length);

    // Enabled again: re-armed on the cron, and it fires.
    const t1 = Date.now();
    const again = await setEnabled(id, true);
    expect(again.state).toBe('READY');
    expect(ms(again.nextRunAt)).toBeGreaterThan(t1);
    expect(ms(again.nextRunAt) % 2000).toBe(0);
    const reFire = await eventually(async () => (await allEvents({ pipelineId: id, types: ['SCHEDULE_FIRED'] }, afterDisable))[0], 10_000);
    expect(ms(reFire.data.scheduledAt)).toBe(ms(again.nextRunAt));
    const advanced = await getPipeline(id);
    expect(ms(advanced.lastRunAt)).toBeGreaterThanOrEqual(ms(reFire.data.scheduledAt));
    expect(ms(advanced.nextRunAt)).toBeGreaterThan(ms(advanced.lastRunAt));

    // Pausing disarms; resuming re-arms (and it fires again).
    await eventually(async () => (await getPipeline(id)).currentJob === null, 10_000);
    const paused = await act('pause', id);
    expect(paused).toMatchObject({ state: 'PAUSE', enabled: true, nextRunAt: null });
    const afterPause = await lastCursor();
    const resumed = await act('resume', id);
    expect(resumed.state).toBe('READY');
    expect(ms(resumed.nextRunAt)).toBeGreaterThan(Date.now() - 50);
    expect(ms(resumed.nextRunAt) % 2000).toBe(0);
    const resumedFire = await eventually(async () => (await allEvents({ pipelineId: id, types: ['SCHEDULE_FIRED'] }, afterPause))[0], 10_000);
    expect(ms(resumedFire.data.scheduledAt)).toBe(ms(resumed.nextRunAt));

    live.stop();
    await setEnabled(id, false);
  });

  it('pipelines due at the same instant fire together: one SCHEDULE job each, and a busy one records RUN_SKIPPED', async () => {
    const cron = '*/3 * * * * *';
    const quick = await gen({ count: 5 });
    const busySrc = await gen({ count: 0, rate: 100 }); // its initial load never ends on its own
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await createPipeline({ sourceId: quick, trigger: 'SCHEDULE', schedule: { cron }, enabled: false, streams: FULL_REFRESH })).id);
    const busy = (await createPipeline({ sourceId: busySrc, trigger: 'SCHEDULE', schedule: { cron }, enabled: false })).id;
    for (const id of [...ids, busy]) await act('start', id);
    for (const id of ids) await waitState(id, 'READY');
    const busyJob = (await getPipeline(busy)).currentJob.id;
    await waitJob(busyJob, ['RUNNING']);

    // Enable all just after a cron instant, so every one is armed for the next.
    await sleep(3000 - (Date.now() % 3000) + 100);
    const from = await lastCursor();
    const armed = [];
    for (const id of [...ids, busy]) armed.push((await setEnabled(id, true)).nextRunAt);
    expect(new Set(armed).size, `armed for ${[...new Set(armed)].join(', ')}`).toBe(1);
    const at = armed[0];

    const log = await eventually(async () => {
      const l = await allEvents({ types: ['SCHEDULE_FIRED', 'JOB_QUEUED', 'RUN_SKIPPED'] }, from);
      return l.filter((e) => e.type === 'SCHEDULE_FIRED').length >= 5 ? l : null;
    }, 15_000);
    for (const id of [...ids, busy]) await setEnabled(id, false);

    const fired = log.filter((e) => e.type === 'SCHEDULE_FIRED');
    expect(fired.map((e) => e.pipelineId).sort()).toEqual([...ids, busy].sort());
    for (const f of fired) {
      expect(f.data.scheduledAt).toBe(at);
      expect(f.data.lateMs).toBeLessThan(1000);
      expect(f.data.timerLateMs).toBeLessThanOrEqual(f.data.lateMs);
      // Its outcome is the very next event of the log, for the same pipeline.
      const next = log.find((e) => BigInt(e.cursor) === BigInt(f.cursor) + 1n);
      expect(next?.pipelineId).toBe(f.pipelineId);
      expect(next?.type).toBe(f.pipelineId === busy ? 'RUN_SKIPPED' : 'JOB_QUEUED');
    }
    for (const id of ids) {
      const jobs = (await jobsOf(id)).filter((j) => j.trigger === 'SCHEDULE');
      expect(jobs).toHaveLength(1);
      expect(await waitJob(jobs[0].id)).toMatchObject({ status: 'SUCCEEDED', recordsRead: 5 });
      expect((await getPipeline(id)).lastRunAt).toBe(at);
    }
    expect((await jobsOf(busy)).map((j) => j.id)).toEqual([busyJob]);
    expect(await act('stop', busy)).toMatchObject({ state: 'STOP' });
  });

  it('every N units: nextRunAt is one interval from now; a cron is evaluated in its time zone; a schedule change re-plans', async () => {
    const src = await gen({ count: 10 });
    const every = await createPipeline({ sourceId: src, trigger: 'SCHEDULE', schedule: { every: 1, unit: 'MINUTES' } });
    expect(every.schedule).toEqual({ cron: null, timezone: 'UTC', every: 1, unit: 'MINUTES' });
    expect(every.nextRunAt).toBeNull(); // STOP: nothing scheduled
    const before = Date.now();
    const started = await act('start', every.id);
    const after = Date.now();
    expect(ms(started.nextRunAt)).toBeGreaterThanOrEqual(before + 60_000);
    expect(ms(started.nextRunAt)).toBeLessThanOrEqual(after + 60_000);
    // Finishing the initial load does not move the planned fire.
    expect(await waitState(every.id, 'READY')).toMatchObject({ nextRunAt: started.nextRunAt, lastRunAt: null });

    const tokyo = await createPipeline({ sourceId: src, trigger: 'SCHEDULE', schedule: { cron: '0 9 * * *', timezone: 'Asia/Tokyo' } });
    expect(tokyo.schedule).toEqual({ cron: '0 9 * * *', timezone: 'Asia/Tokyo', every: null, unit: null });
    const t = await act('start', tokyo.id);
    const next = new Date(t.nextRunAt);
    // 09:00 in Tokyo (UTC+9, no DST) is 00:00 UTC, within the next day.
    expect([next.getUTCHours(), next.getUTCMinutes(), next.getUTCSeconds(), next.getUTCMilliseconds()]).toEqual([0, 0, 0, 0]);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime()).toBeLessThanOrEqual(Date.now() + 86_400_000);

    // A new time zone re-plans the next fire: 09:00 in Kolkata (UTC+5:30) is 03:30 UTC.
    const upd = await sq(UPDATE_PIPELINE, { i: { id: tokyo.id, schedule: { cron: '0 9 * * *', timezone: 'Asia/Kolkata' } } });
    expect(upd.updatePipeline.__typename, JSON.stringify(upd)).toBe('UpdatePipelinePayload');
    const k = upd.updatePipeline.pipeline;
    expect(k.schedule).toEqual({ cron: '0 9 * * *', timezone: 'Asia/Kolkata', every: null, unit: null });
    const kn = new Date(k.nextRunAt);
    expect([kn.getUTCHours(), kn.getUTCMinutes(), kn.getUTCSeconds()]).toEqual([3, 30, 0]);
    expect(kn.getTime()).toBeGreaterThan(Date.now());
    expect(kn.getTime()).toBeLessThanOrEqual(Date.now() + 86_400_000);

    // Switching the trigger off SCHEDULE disarms it.
    const od = await sq(UPDATE_PIPELINE, { i: { id: every.id, trigger: 'ON_DEMAND' } });
    expect(od.updatePipeline.pipeline).toMatchObject({ trigger: 'ON_DEMAND', nextRunAt: null });
    await act('stop', every.id);
    expect(await act('stop', tokyo.id)).toMatchObject({ state: 'STOP', nextRunAt: null });
  });

  const invalid: [string, Record<string, unknown>, string[]][] = [
    ['an invalid cron field', { trigger: 'SCHEDULE', schedule: { cron: '61 * * * *' } }, ['schedule.cron']],
    ['a cron with 3 fields', { trigger: 'SCHEDULE', schedule: { cron: '* * *' } }, ['schedule.cron']],
    ['an unknown time zone', { trigger: 'SCHEDULE', schedule: { cron: '0 9 * * *', timezone: 'Mars/Olympus_Mons' } }, ['schedule.timezone']],
    ['both cron and every', { trigger: 'SCHEDULE', schedule: { cron: '0 9 * * *', every: 1, unit: 'HOURS' } }, ['schedule']],
    ['SCHEDULE without a schedule', { trigger: 'SCHEDULE' }, ['schedule']],
    ['every without a unit', { trigger: 'SCHEDULE', schedule: { every: 5 } }, ['schedule.unit']],
    ['every 0', { trigger: 'SCHEDULE', schedule: { every: 0, unit: 'DAYS' } }, ['schedule.every']],
    ['a bad cron and a bad zone', { trigger: 'SCHEDULE', schedule: { cron: 'every minute', timezone: 'Nowhere/Land' } }, ['schedule.cron', 'schedule.timezone']],
    ['an execution timeout under 1 s', { executionTimeoutMs: 500 }, ['executionTimeoutMs']],
    ['a negative autoStopAfterFailures', { autoStopAfterFailures: -1 }, ['autoStopAfterFailures']],
  ];

  it.each(invalid)('create with %s → ValidationError with its paths, nothing created', async (_label, input, paths) => {
    const src = await gen({ count: 1 });
    const count = async () => (await sq(`{ pipelines { totalCount } }`)).pipelines.totalCount;
    const before = await count();
    const createdEvents = (await allEvents({ types: ['PIPELINE_CREATED'] })).length;
    const r = await sq(CREATE_PIPELINE, { i: { name: 'invalid', sourceId: src, destinationId: nullDst, ...input } });
    expect(r.createPipeline).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(r.createPipeline.fieldErrors.map((e: any) => e.path).sort()).toEqual([...paths].sort());
    for (const e of r.createPipeline.fieldErrors) expect(e.message.length).toBeGreaterThan(5);
    expect(await count()).toBe(before);
    expect((await allEvents({ types: ['PIPELINE_CREATED'] })).length).toBe(createdEvents);
  });

  it('update with an invalid schedule → ValidationError, nothing changed (schedule, nextRunAt, version)', async () => {
    const src = await gen({ count: 10 });
    const p = await createPipeline({ sourceId: src, trigger: 'SCHEDULE', schedule: { every: 2, unit: 'HOURS' } });
    const started = await act('start', p.id);
    const before = await getPipeline(p.id);
    expect(ms(before.nextRunAt)).toBe(ms(started.nextRunAt));
    for (const [input, paths] of [
      [{ schedule: { cron: '0 0 31 2 * * * *' } }, ['schedule.cron']],
      [{ schedule: { cron: '0 9 * * *', timezone: 'Europe/Atlantis' } }, ['schedule.timezone']],
      [{ schedule: null }, ['schedule']],
      [{ schedule: { cron: '0 9 * * *', every: 3, unit: 'DAYS' } }, ['schedule']],
    ] as [Record<string, unknown>, string[]][]) {
      const r = await sq(UPDATE_PIPELINE, { i: { id: p.id, ...input } });
      expect(r.updatePipeline.__typename, JSON.stringify(input)).toBe('ValidationError');
      expect(r.updatePipeline.fieldErrors.map((e: any) => e.path).sort()).toEqual(paths);
      const now = await getPipeline(p.id);
      expect(now.version).toBe(before.version);
      expect(now.schedule).toEqual({ cron: null, timezone: 'UTC', every: 2, unit: 'HOURS' });
      expect(now.nextRunAt).toBe(before.nextRunAt);
    }
    await act('stop', p.id);
  });
});

describe('concurrency', () => {
  it('SKIP: runPipeline while a job runs → ConflictError and a RUN_SKIPPED event, no second job', async () => {
    const src = await gen({ count: 0, rate: 100 }); // unbounded: runs until cancelled
    const p = await createPipeline({ sourceId: src });
    expect(p).toMatchObject({ trigger: 'ON_DEMAND', allowParallelRuns: false, concurrencyPolicy: 'SKIP' });
    const jobId = (await act('start', p.id)).currentJob.id;
    await waitJob(jobId, ['RUNNING']);

    const r = await sq(RUN, { i: { id: p.id } });
    expect(r.runPipeline).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(r.runPipeline.message).toMatch(/running/);
    const skipped = await allEvents({ pipelineId: p.id, types: ['RUN_SKIPPED'] });
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ jobId, data: { trigger: 'MANUAL' } });
    expect((await jobsOf(p.id)).map((j) => j.id)).toEqual([jobId]);

    await sq(`mutation($i: JobIdInput!) { cancelJob(input: $i) { __typename } }`, { i: { id: jobId } });
    expect((await waitJob(jobId)).status).toBe('CANCELLED');
  });

  it('QUEUE: runPipeline while a job runs queues a second job that starts after the first ends', async () => {
    const src = await gen({ count: 200, rate: 400 }); // ~0.5 s per run
    const p = await createPipeline({ sourceId: src, concurrencyPolicy: 'QUEUE', streams: FULL_REFRESH });
    expect(p.concurrencyPolicy).toBe('QUEUE');
    const firstId = (await act('start', p.id)).currentJob.id;
    await waitJob(firstId, ['RUNNING']);

    const r = await sq(RUN, { i: { id: p.id } });
    expect(r.runPipeline.__typename, JSON.stringify(r)).toBe('RunPipelinePayload');
    expect(r.runPipeline.job).toMatchObject({ status: 'QUEUED', trigger: 'MANUAL' });
    const secondId = r.runPipeline.job.id;
    expect((await getJob(firstId)).status).toBe('RUNNING');
    expect((await getJob(secondId)).status).toBe('QUEUED');

    const first = await waitJob(firstId);
    const second = await waitJob(secondId);
    expect(first).toMatchObject({ status: 'SUCCEEDED', recordsRead: 200 });
    expect(second).toMatchObject({ status: 'SUCCEEDED', recordsRead: 200, attempts: 1 });
    expect(ms(second.startedAt)).toBeGreaterThanOrEqual(ms(first.finishedAt));
    expect(await allEvents({ pipelineId: p.id, types: ['RUN_SKIPPED'] })).toEqual([]);
  });

  it('allowParallelRuns: a second run starts while the first is still running', async () => {
    const src = await gen({ count: 0, rate: 100 });
    const p = await createPipeline({ sourceId: src, allowParallelRuns: true });
    const firstId = (await act('start', p.id)).currentJob.id;
    await waitJob(firstId, ['RUNNING']);
    const r = await sq(RUN, { i: { id: p.id } });
    expect(r.runPipeline.__typename, JSON.stringify(r)).toBe('RunPipelinePayload');
    const second = await waitJob(r.runPipeline.job.id, ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']);
    expect(second.status).toBe('RUNNING');
    expect((await getJob(firstId)).status).toBe('RUNNING');
    expect(await act('stop', p.id)).toMatchObject({ state: 'STOP' });
    expect((await waitJob(firstId)).status).toBe('CANCELLED');
    expect((await waitJob(second.id)).status).toBe('CANCELLED');
  });

  it('a schedule fire that finds a job running (SKIP) records RUN_SKIPPED and creates no job', async () => {
    const src = await gen({ count: 0, rate: 100 }); // the initial load never ends on its own
    const p = await createPipeline({ sourceId: src, trigger: 'SCHEDULE', schedule: { cron: '* * * * * *' } });
    const from = await lastCursor();
    const started = await act('start', p.id);
    expect(started.state).toBe('INIT');
    expect(started.nextRunAt).not.toBeNull(); // INIT counts as running: armed
    const jobId = started.currentJob.id;

    const skipped = await eventually(async () => {
      const log = await allEvents({ pipelineId: p.id, types: ['SCHEDULE_FIRED', 'RUN_SKIPPED'] }, from);
      return log.some((e) => e.type === 'RUN_SKIPPED') ? log : null;
    }, 10_000);
    const skip = skipped.find((e) => e.type === 'RUN_SKIPPED')!;
    expect(skip).toMatchObject({ jobId, data: { trigger: 'SCHEDULE' } });
    expect(skip.message).toMatch(/parallel runs are off/);
    const fire = skipped.find((e) => e.type === 'SCHEDULE_FIRED' && e.data.scheduledAt === skip.data.scheduledAt);
    expect(fire, JSON.stringify(skipped)).toBeDefined();
    expect((await jobsOf(p.id)).map((j) => [j.id, j.trigger])).toEqual([[jobId, 'START']]);

    expect(await act('stop', p.id)).toMatchObject({ state: 'STOP', nextRunAt: null });
    expect((await waitJob(jobId)).status).toBe('CANCELLED');
  });
});

describe('timeouts, retries and auto-stop', () => {
  it('executionTimeoutMs ends a job that runs too long: FAILED with a timeout error, not retried', async () => {
    const src = await gen({ count: 0, rate: 100 });
    const p = await createPipeline({ sourceId: src, executionTimeoutMs: 1000, maxAttempts: 3, retryBackoffMs: 0 });
    expect(p.executionTimeoutMs).toBe(1000);
    const jobId = (await act('start', p.id)).currentJob.id;
    const job = await waitJob(jobId);
    expect(job.status).toBe('FAILED');
    expect(job.error).toMatch(/execution timeout/);
    expect(job.error).toMatch(/1s/);
    expect(job.attempts).toBe(1);
    expect(job.recordsRead).toBeGreaterThan(0);
    const ran = ms(job.finishedAt) - ms(job.startedAt);
    expect(ran).toBeGreaterThanOrEqual(1000);
    expect(ran).toBeLessThan(5000);
    expect(await getPipeline(p.id)).toMatchObject({ state: 'INIT', consecutiveFailures: 1 });
    expect((await allEvents({ jobId, types: ['JOB_FAILED', 'JOB_RETRYING'] })).map((e) => e.type)).toEqual(['JOB_FAILED']);
  });

  it('retries retryable failures with growing backoff, keeping the attempt history; exhausted retries fail the job', async () => {
    let failing = false;
    const api = http.createServer((_req, res) => {
      if (failing) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ id: 1, name: 'a' }, { id: 2, name: 'b' }]));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(api.address() as net.AddressInfo).port}/items`;
      const src = await connector('api', 'http', { url, retry: { maxAttempts: 1 } });
      const p = await createPipeline({ sourceId: src, maxAttempts: 3, retryBackoffMs: 400 });
      // The API fails until the second retry is announced (the third attempt is due 600–1200 ms later).
      failing = true;
      const jobId = (await act('start', p.id)).currentJob.id;
      await eventually(async () => (await allEvents({ jobId, types: ['JOB_RETRYING'] })).length >= 2, 20_000, 20);
      failing = false;
      const job = await waitJob(jobId);
      expect(job).toMatchObject({ status: 'SUCCEEDED', attempts: 3, recordsRead: 2, recordsWritten: 2 });
      expect(job.attemptHistory.map((a: any) => [a.number, a.status])).toEqual([
        [1, 'FAILED'],
        [2, 'FAILED'],
        [3, 'SUCCEEDED'],
      ]);
      for (const a of job.attemptHistory.slice(0, 2)) expect(a.error).toMatch(/503/);

      const retrying = await allEvents({ jobId, types: ['JOB_RETRYING'] });
      expect(retrying.map((e) => e.data.attempt)).toEqual([1, 2]);
      const starts = (await allEvents({ jobId, types: ['JOB_STARTED'] })).map((e) => [e.data.attempt, ms(e.createdAt)]);
      expect(starts.map((x) => x[0])).toEqual([1, 2, 3]);
      // Backoff: attempt k+1 starts no earlier than announced; the delay grows (×3 with jitter: 200–400 ms, then 600–1200 ms).
      const h = job.attemptHistory;
      for (const k of [0, 1]) {
        const due = ms(retrying[k].data.nextAttemptAt);
        expect(ms(h[k + 1].startedAt)).toBeGreaterThanOrEqual(due - 5);
        const gap = ms(h[k + 1].startedAt) - ms(h[k].finishedAt);
        expect(gap).toBeGreaterThanOrEqual(k === 0 ? 195 : 595);
        expect(gap).toBeLessThan(k === 0 ? 3000 : 4000);
      }
      expect(await getPipeline(p.id)).toMatchObject({ state: 'READY', consecutiveFailures: 0 });

      // Retries run out: FAILED after maxAttempts, counted once as a failed job.
      const p2 = await createPipeline({ sourceId: src, maxAttempts: 2, retryBackoffMs: 100 });
      failing = true;
      const job2 = await waitJob((await act('start', p2.id)).currentJob.id);
      expect(job2).toMatchObject({ status: 'FAILED', attempts: 2 });
      expect(job2.error).toMatch(/503/);
      expect(job2.attemptHistory.map((a: any) => a.status)).toEqual(['FAILED', 'FAILED']);
      expect(await getPipeline(p2.id)).toMatchObject({ state: 'INIT', consecutiveFailures: 1 });
    } finally {
      failing = false;
      await new Promise((r) => api.close(r));
    }
  });

  it('auto-stop: after N consecutive failed jobs the pipeline goes to STOP with a reason and an event; a success resets the count', async () => {
    const csv = path.join(dir, 'vanishing.csv');
    writeCsv(csv, 10);
    const src = await connector('vanishing', 'csv', { path: csv });
    const p = await createPipeline({ sourceId: src, autoStopAfterFailures: 2, streams: [{ name: 'vanishing', syncMode: 'FULL_REFRESH' }] });
    expect(p.autoStopAfterFailures).toBe(2);
    const states = subscribe(s.ws(), `subscription($id: ID!) { pipelineStateChanged(pipelineId: $id) { action state previousState reason } }`, { id: p.id });
    fs.rmSync(csv);

    // 1st failure (the initial load; a missing file is permanent: no retry).
    const j1 = await waitJob((await act('start', p.id)).currentJob.id);
    expect(j1).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(await getPipeline(p.id)).toMatchObject({ state: 'INIT', consecutiveFailures: 1 });

    // A success in between resets the count.
    writeCsv(csv, 10);
    const ok = await sq(RUN, { i: { id: p.id } });
    expect((await waitJob(ok.runPipeline.job.id)).status).toBe('SUCCEEDED');
    expect(await getPipeline(p.id)).toMatchObject({ state: 'READY', consecutiveFailures: 0 });
    fs.rmSync(csv);

    const r2 = await sq(RUN, { i: { id: p.id } });
    expect((await waitJob(r2.runPipeline.job.id)).status).toBe('FAILED');
    expect(await getPipeline(p.id)).toMatchObject({ state: 'READY', consecutiveFailures: 1 });
    expect(await allEvents({ pipelineId: p.id, types: ['PIPELINE_AUTO_STOPPED'] })).toEqual([]);

    const r3 = await sq(RUN, { i: { id: p.id } });
    const last = await waitJob(r3.runPipeline.job.id);
    expect(last.status).toBe('FAILED');
    const stopped = await getPipeline(p.id);
    expect(stopped).toMatchObject({ state: 'STOP', previousState: 'READY', consecutiveFailures: 2 });
    expect(stopped.stateReason).toMatch(/stopped after 2 consecutive failed jobs/);
    expect(stopped.stateReason).toMatch(/vanishing\.csv/);
    const auto = await allEvents({ pipelineId: p.id, types: ['PIPELINE_AUTO_STOPPED'] });
    expect(auto).toHaveLength(1);
    expect(auto[0]).toMatchObject({ jobId: last.id, data: { failures: 2 } });
    await states.waitFor((m) => m.some((x: any) => x.pipelineStateChanged.action === 'AUTO_STOP'), 5000);
    expect(states.messages.map((x: any) => x.pipelineStateChanged).find((c: any) => c.action === 'AUTO_STOP')).toMatchObject({
      state: 'STOP',
      previousState: 'READY',
    });
    states.stop();

    const again = await sq(RUN, { i: { id: p.id } });
    expect(again.runPipeline).toMatchObject({ __typename: 'InvalidTransitionError', code: 'INVALID_TRANSITION' });
  });
});

describe('catch-up after a restart', () => {
  it('a fire missed while the server was down: RUN_ONCE runs exactly one SCHEDULE job at start; SKIP records SCHEDULE_SKIPPED (MISSED) and runs nothing', async () => {
    let s2: TestServer | null = await startTestServer();
    const dataDir = s2.dataDir;
    const q2: Gql = (query, variables) => s2!.q(query, variables);
    try {
      const src = await gen({ count: 20 }, q2);
      const dst = await connector('discard', 'null', {}, q2);
      const streams = FULL_REFRESH; // every run reads the 20 records
      // A cron that fires once a year, a few seconds from now.
      const due = new Date(Math.ceil((Date.now() + 7000) / 1000) * 1000);
      const cron = `${due.getUTCSeconds()} ${due.getUTCMinutes()} ${due.getUTCHours()} ${due.getUTCDate()} ${due.getUTCMonth() + 1} *`;
      const mk = (catchUp: string) =>
        createPipeline({ sourceId: src, destinationId: dst, trigger: 'SCHEDULE', schedule: { cron, timezone: 'UTC' }, catchUp, streams }, q2);
      const runOnce = await mk('RUN_ONCE');
      const skip = await mk('SKIP');
      expect([runOnce.catchUp, skip.catchUp]).toEqual(['RUN_ONCE', 'SKIP']);
      for (const p of [runOnce, skip]) {
        expect((await act('start', p.id, q2)).nextRunAt).toBe(due.toISOString());
        await waitState(p.id, 'READY', q2);
      }
      expect(Date.now(), 'setup took too long: the fire would happen while the server runs').toBeLessThan(due.getTime() - 500);
      const stoppedAt = await lastCursor(q2);
      await s2.stop();
      s2 = null;

      // Down past the fire (nothing runs, so there is nothing to await but the clock).
      await sleep(due.getTime() + 300 - Date.now());
      s2 = await startTestServer({ dataDir });

      // Right after the start (no waiting): the catch-up already happened.
      const log = await allEvents({ types: ['SCHEDULE_FIRED', 'SCHEDULE_SKIPPED', 'RUN_SKIPPED', 'JOB_QUEUED'] }, stoppedAt, q2);
      const byPipeline = (id: string) => log.filter((e) => e.pipelineId === id);
      const fired = byPipeline(runOnce.id).filter((e) => e.type === 'SCHEDULE_FIRED');
      expect(fired).toHaveLength(1);
      expect(fired[0].data.scheduledAt).toBe(due.toISOString());
      expect(fired[0].data.lateMs).toBeGreaterThanOrEqual(300);
      expect(byPipeline(runOnce.id).map((e) => e.type)).toEqual(['SCHEDULE_FIRED', 'JOB_QUEUED']);

      expect(byPipeline(skip.id).map((e) => e.type)).toEqual(['SCHEDULE_SKIPPED']);
      expect(byPipeline(skip.id)[0].data).toEqual({ scheduledAt: due.toISOString(), reason: 'MISSED' });

      const scheduleJobs = (await jobsOf(runOnce.id, q2)).filter((j) => j.trigger === 'SCHEDULE');
      expect(scheduleJobs).toHaveLength(1);
      expect(scheduleJobs[0].id).toBe(byPipeline(runOnce.id)[1].jobId);
      expect(await waitJob(scheduleJobs[0].id, undefined, q2)).toMatchObject({ status: 'SUCCEEDED', recordsRead: 20 });
      expect((await jobsOf(skip.id, q2)).map((j) => j.trigger)).toEqual(['START']);

      // Both are re-armed for next year's fire; only RUN_ONCE ran.
      const a = await getPipeline(runOnce.id, q2);
      const b = await getPipeline(skip.id, q2);
      expect(a.lastRunAt).toBe(due.toISOString());
      expect(b.lastRunAt).toBeNull();
      for (const p of [a, b]) {
        expect(p.state).toBe('READY');
        expect(ms(p.nextRunAt)).toBeGreaterThan(due.getTime() + 300 * 86_400_000);
        expect(new Date(p.nextRunAt).toISOString().slice(4)).toBe(due.toISOString().slice(4)); // same date and time, next year
      }
    } finally {
      await s2?.stop();
    }
  });
});
