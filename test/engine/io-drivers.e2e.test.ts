/**
 * The new drivers through the real job runner (worker thread, checkpoints, dead letters).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StreamStates } from '../../src/engine/drivers/types.js';
import { Runner, type CheckpointData, type JobOutcome, type RunnerHost } from '../../src/engine/runner/runner.js';
import { zeroCounters, type Counters, type DeadLetterRecord, type JobPlan } from '../../src/engine/runner/protocol.js';
import { json, startServer, type LocalServer } from './support/local-server.js';
import { testFiles, type TestFiles } from '../helpers/files.js';

let dir: string;
let files: TestFiles;
const servers: LocalServer[] = [];
beforeAll(() => {
  files = testFiles('sluice-e2e-');
  // A folder inside the workspace's files folder (the folder itself is not a file path).
  dir = path.join(files.dir, 'work');
  fs.mkdirSync(dir);
});
afterAll(() => {
  files.cleanup();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

class Host implements RunnerHost {
  state: StreamStates = {};
  dead: DeadLetterRecord[] = [];
  outcome: JobOutcome | null = null;
  totals: Counters = zeroCounters();
  logs: string[] = [];
  checkpoints = 0;
  constructor(private readonly plan: JobPlan) {}
  async begin(): Promise<JobPlan> {
    return this.plan;
  }
  async checkpoint(_id: string, data: CheckpointData): Promise<void> {
    this.checkpoints++;
    if (data.state) this.state = { ...this.state, ...data.state };
    this.dead.push(...data.deadLetters);
  }
  progress(): void {}
  log(_id: string, _level: string, message: string): void {
    this.logs.push(message);
  }
  async finish(_id: string, outcome: JobOutcome, totals: Counters): Promise<void> {
    this.outcome = outcome;
    this.totals = totals;
  }
}

function plan(p: Partial<JobPlan> & Pick<JobPlan, 'source' | 'destination' | 'streams'>): JobPlan {
  return {
    jobId: `job-${Math.random().toString(36).slice(2)}`,
    pipelineId: 'p1',
    files: files.scope,
    state: {},
    mapping: null,
    writeMode: 'APPEND',
    batchSize: 1000,
    failureThreshold: 100,
    totals: zeroCounters(),
    streamTotals: {},
    ...p,
  };
}

async function run(p: JobPlan, stopAfterMs?: number): Promise<Host> {
  const host = new Host(p);
  const runner = new Runner(host, { progressIntervalMs: 1000, log: pino({ level: 'silent' }) });
  const done = runner.run(p.jobId);
  if (stopAfterMs !== undefined) setTimeout(() => runner.requestStop(p.jobId, 'PAUSED'), stopAfterMs);
  await done;
  return host;
}

describe('new drivers through the job runner', () => {
  it('generator → null: every record counted, final state { next: count + 1 }', async () => {
    const count = 300_000;
    const t0 = Date.now();
    const host = await run(plan({ source: { driver: 'generator', config: { count } }, destination: { driver: 'null', config: {} }, streams: [{ name: 'stream_1', syncMode: 'INCREMENTAL' }] }));
    const secs = (Date.now() - t0) / 1000;
    console.log(`runner generator→null: ${count} records in ${secs.toFixed(2)}s (${Math.round(count / secs)} records/s incl. worker start)`);
    expect(host.outcome).toEqual({ status: 'SUCCEEDED' });
    expect(host.totals.recordsRead).toBe(count);
    expect(host.totals.recordsWritten).toBe(count);
    expect(host.totals.bytesWritten).toBeGreaterThan(0);
    expect(host.state).toEqual({ stream_1: { next: count + 1 } });
  });

  it('an unbounded generator stops at a batch boundary with its cursor checkpointed', async () => {
    const host = await run(
      plan({ source: { driver: 'generator', config: { count: 0, rate: 20_000 } }, destination: { driver: 'null', config: {} }, streams: [{ name: 'stream_1', syncMode: 'INCREMENTAL' }] }),
      700,
    );
    expect(host.outcome).toEqual({ status: 'PAUSED' });
    const next = (host.state.stream_1 as { next: number }).next;
    expect(next).toBeGreaterThan(1);
    expect(host.totals.recordsWritten).toBe(next - 1);
  });

  it('json (bad line) → file csv: good records written, the bad one dead-lettered at READ', async () => {
    const src = path.join(dir, 'in.jsonl');
    fs.writeFileSync(src, '{"id":1,"name":"a"}\n{"id":2,\n{"id":3,"name":"c, d"}\n');
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const host = await run(
      plan({
        source: { driver: 'json', config: { url: src } },
        destination: { driver: 'file', config: { path: out, filePattern: '{stream}.csv' } },
        streams: [{ name: 'in', syncMode: 'FULL_REFRESH' }],
      }),
    );
    expect(host.outcome).toEqual({ status: 'SUCCEEDED' });
    expect(fs.readFileSync(path.join(out, 'in.csv'), 'utf8')).toBe('id,name\r\n1,a\r\n3,"c, d"\r\n');
    expect(host.dead).toHaveLength(1);
    expect(host.dead[0]).toMatchObject({ stream: 'in', stage: 'READ', record: { _raw: '{"id":2,' } });
    expect(host.state).toEqual({ in: { row: 3 } });
  });

  it('http (paginated) → webhook: pages delivered as batches, 400 rejections dead-lettered at WRITE', async () => {
    const api = await startServer((req, res) => {
      const page = Number(req.query.get('page'));
      json(res, 200, { data: page <= 3 ? [{ id: page * 2 - 1 }, { id: page * 2 }] : [] });
    });
    const hook = await startServer((req, res) => {
      const body = JSON.parse(req.body) as { records: { id: number }[] };
      if (body.records.some((r) => r.id === 4)) return json(res, 400, { error: 'no 4' });
      json(res, 200, {});
    });
    servers.push(api, hook);
    const host = await run(
      plan({
        source: { driver: 'http', config: { url: `${api.url}things`, recordsPath: 'data', pagination: { type: 'page' } } },
        destination: { driver: 'webhook', config: { url: `${hook.url}in`, batchSize: 1 } },
        streams: [{ name: 'things', syncMode: 'FULL_REFRESH' }],
      }),
    );
    expect(host.outcome).toEqual({ status: 'SUCCEEDED' });
    expect(hook.requests.map((r) => (JSON.parse(r.body) as { records: { id: number }[] }).records[0]!.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(host.totals).toMatchObject({ recordsRead: 6, recordsWritten: 5, recordsFailed: 1 });
    expect(host.dead).toMatchObject([{ stage: 'WRITE', record: { id: 4 } }]);
    expect(host.state).toEqual({ things: { done: true } });
  });
});
