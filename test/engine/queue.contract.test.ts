/**
 * The job-queue contract (src/engine/queue/queue.ts). Every JobQueue implementation runs
 * this same suite. The BullMQ implementation (cluster mode) runs when SLUICE_TEST_REDIS_URL
 * points at a Redis server; it also runs the cross-process suite below, where two BullQueue
 * instances on the same queue name and prefix stand for two worker processes.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createBullQueue, type BullQueue, type BullQueueOptions } from '../../src/engine/queue/bullmq.js';
import { MemoryQueue, type JobQueue, type QueueItem } from '../../src/engine/queue/queue.js';

const REDIS_URL = process.env.SLUICE_TEST_REDIS_URL;

/** Closed after each test, so no test sees another's queues, connections or keys. */
const cleanup: (() => Promise<void>)[] = [];
/** Key prefixes whose keys are deleted once the test's queues are closed. */
const prefixesToDrop: string[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((close) => close()));
  const prefixes = prefixesToDrop.splice(0);
  if (prefixes.length) await dropKeys(prefixes);
});

/** A queue name and key prefix no other test (or concurrent run on the same Redis) uses. */
const uniqueQueue = () => ({ name: `q-${randomUUID()}`, prefix: `sluice-test-${randomUUID()}` });

/** The BullQueue's stats refresh interval in these tests (the production default is 1 s). */
const STATS_INTERVAL_MS = 100;

async function bull(options: Partial<BullQueueOptions> & { concurrency: number; name: string; prefix: string }): Promise<BullQueue> {
  const q = await createBullQueue({ connection: { url: REDIS_URL as string }, statsIntervalMs: STATS_INTERVAL_MS, onError: () => {}, ...options });
  cleanup.push(() => q.close());
  return q;
}

async function dropKeys(prefixes: string[]) {
  const raw = new Redis(REDIS_URL as string);
  try {
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await raw.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    await raw.quit().catch(() => raw.disconnect());
  }
}

/**
 * `settleMs`: how long stats() must stay idle before waitIdle believes it. MemoryQueue's stats
 * are exact (0); BullQueue's waiting count is read from Redis asynchronously, so idle must hold
 * across more than one refresh before it counts.
 */
const implementations: { name: string; settleMs: number; make: (concurrency: number) => Promise<JobQueue> }[] = [
  { name: 'MemoryQueue', settleMs: 0, make: async (c) => new MemoryQueue(c) },
];
if (REDIS_URL) {
  implementations.push({
    name: 'BullQueue',
    settleMs: 2.5 * STATS_INTERVAL_MS,
    make: async (c) => {
      const where = uniqueQueue();
      const q = await bull({ ...where, concurrency: c });
      prefixesToDrop.push(where.prefix);
      return q;
    },
  });
} else {
  console.info('[queue.contract] SLUICE_TEST_REDIS_URL is not set: the BullMQ queue contract and cross-process tests are SKIPPED (MemoryQueue only).');
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick(5);
  }
}

describe.each(implementations)('JobQueue contract: $name', ({ make, settleMs }) => {
  const waitIdle = (q: JobQueue) => waitIdleFor(q, settleMs);

  it('runs jobs in enqueue order with at most `concurrency` at once', async () => {
    const q = await make(2);
    const started: string[] = [];
    let running = 0;
    let maxRunning = 0;
    q.process(async (item) => {
      started.push(item.jobId);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await tick(20);
      running--;
    });
    for (let i = 0; i < 6; i++) await q.enqueue({ jobId: `j${i}`, group: `g${i}` });
    await waitIdle(q);
    expect(started).toEqual(['j0', 'j1', 'j2', 'j3', 'j4', 'j5']);
    expect(maxRunning).toBe(2);
    await q.close();
  });

  it('never runs two jobs of the same group at once', async () => {
    const q = await make(4);
    const log: string[] = [];
    q.process(async (item) => {
      log.push(`start ${item.jobId}`);
      await tick(15);
      log.push(`end ${item.jobId}`);
    });
    await q.enqueue({ jobId: 'a1', group: 'A' });
    await q.enqueue({ jobId: 'a2', group: 'A' });
    await q.enqueue({ jobId: 'b1', group: 'B' });
    await waitIdle(q);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    // A different group is not held back by A.
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    await q.close();
  });

  it('ignores an enqueue of a job that is already waiting or running', async () => {
    const q = await make(1);
    const runs: string[] = [];
    q.process(async (item: QueueItem) => {
      runs.push(item.jobId);
      await tick(20);
    });
    await q.enqueue({ jobId: 'x', group: null });
    await q.enqueue({ jobId: 'x', group: null });
    await q.enqueue({ jobId: 'y', group: null });
    await q.enqueue({ jobId: 'y', group: null });
    await waitIdle(q);
    expect(runs).toEqual(['x', 'y']);
    await q.close();
  });

  it('a failing handler does not stop the queue', async () => {
    const q = await make(1);
    const runs: string[] = [];
    q.process(async (item) => {
      runs.push(item.jobId);
      if (item.jobId === 'bad') throw new Error('boom');
    });
    await q.enqueue({ jobId: 'bad', group: null });
    await q.enqueue({ jobId: 'good', group: null });
    await waitIdle(q);
    expect(runs).toEqual(['bad', 'good']);
    await q.close();
  });

  it('close() waits for running handlers and refuses new jobs', async () => {
    const q = await make(1);
    let finished = false;
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    q.process(async () => {
      started();
      await tick(30);
      finished = true;
    });
    await q.enqueue({ jobId: 'slow', group: null });
    // Pick-up is asynchronous for a queue outside the process: close once the handler runs.
    await handlerStarted;
    await q.close();
    expect(finished).toBe(true);
    await expect(q.enqueue({ jobId: 'late', group: null })).rejects.toThrow(/closed/);
  });
});

/**
 * Waits until stats() reports nothing waiting and nothing active, and has kept reporting that
 * for `settleMs` (stats that are refreshed asynchronously can be briefly behind).
 */
async function waitIdleFor(q: JobQueue, settleMs: number, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let idleSince: number | null = null;
  while (Date.now() < deadline) {
    const s = q.stats();
    if (s.waiting === 0 && s.active === 0) {
      idleSince ??= Date.now();
      if (Date.now() - idleSince >= settleMs) return;
    } else {
      idleSince = null;
    }
    await tick(5);
  }
  throw new Error('queue did not become idle');
}

interface Run {
  jobId: string;
  by: string;
  start: number;
  end?: number;
}

/** A handler factory recording every run (which process, when) and overlaps of one job id. */
function recorder() {
  const runs: Run[] = [];
  const inFlight = new Set<string>();
  const overlaps: string[] = [];
  const running = new Map<string, number>();
  const maxRunning = new Map<string, number>();
  const handler =
    (by: string, durationMs: (item: QueueItem) => number | Promise<void>) =>
    async (item: QueueItem): Promise<void> => {
      if (inFlight.has(item.jobId)) overlaps.push(item.jobId);
      inFlight.add(item.jobId);
      const run: Run = { jobId: item.jobId, by, start: Date.now() };
      runs.push(run);
      running.set(by, (running.get(by) ?? 0) + 1);
      maxRunning.set(by, Math.max(maxRunning.get(by) ?? 0, running.get(by) ?? 0));
      const d = durationMs(item);
      await (typeof d === 'number' ? tick(d) : d);
      running.set(by, (running.get(by) ?? 0) - 1);
      run.end = Date.now();
      inFlight.delete(item.jobId);
    };
  const runOf = (jobId: string) => {
    const found = runs.filter((r) => r.jobId === jobId);
    expect(found, `runs of ${jobId}`).toHaveLength(1);
    return found[0] as Run;
  };
  return { runs, overlaps, maxRunning, handler, runOf };
}

describe.runIf(REDIS_URL)('BullQueue', () => {
  it('fails with an error naming the Redis URL when Redis is not reachable', async () => {
    await expect(createBullQueue({ connection: { url: 'redis://:secret@127.0.0.1:1/0' }, concurrency: 1 })).rejects.toThrow(
      /^BullMQ queue: Redis is not reachable at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0: /,
    );
  });

  it('takes job ids BullMQ refuses as custom ids and hands them back unchanged', async () => {
    const where = uniqueQueue();
    prefixesToDrop.push(where.prefix);
    const q = await bull({ ...where, concurrency: 1 });
    const seen: string[] = [];
    q.process(async (item) => {
      seen.push(item.jobId);
    });
    // ':' and integer-looking ids are refused by BullMQ; '%i42' must not collide with '42'.
    const ids = ['a:b', '42', '0', '%i42', '%3A', 'repeat:x:1'];
    for (const jobId of ids) await q.enqueue({ jobId, group: 'G' });
    await until(() => seen.length === ids.length, 10_000, 'all jobs to run');
    expect(seen).toEqual(ids);
  });
});

describe.runIf(REDIS_URL)('BullQueue across processes (two instances on one queue)', () => {
  const shared = () => {
    const where = uniqueQueue();
    prefixesToDrop.push(where.prefix);
    return where;
  };

  it('shares the jobs between the processes and runs none twice', async () => {
    const where = shared();
    const a = await bull({ ...where, concurrency: 2, workerId: 'a' });
    const b = await bull({ ...where, concurrency: 2, workerId: 'b' });
    const rec = recorder();
    const ids = Array.from({ length: 16 }, (_, i) => `job-${i}`);
    // Every job enqueued through both processes, all while it is waiting.
    for (const jobId of ids) {
      await a.enqueue({ jobId, group: null });
      await b.enqueue({ jobId, group: null });
    }
    a.process(rec.handler('a', () => 50));
    b.process(rec.handler('b', () => 50));
    await until(() => rec.runs.filter((r) => r.end).length >= ids.length, 15_000, 'all jobs to finish');
    await tick(400); // a duplicate run would start by now
    expect(rec.runs.map((r) => r.jobId).sort()).toEqual([...ids].sort());
    expect(rec.overlaps).toEqual([]);
    expect(rec.runs.some((r) => r.by === 'a')).toBe(true);
    expect(rec.runs.some((r) => r.by === 'b')).toBe(true);
    expect(rec.maxRunning.get('a')).toBeLessThanOrEqual(2);
    expect(rec.maxRunning.get('b')).toBeLessThanOrEqual(2);
  });

  it('never overlaps two jobs of one group, even when each process takes one', async () => {
    const where = shared();
    const a = await bull({ ...where, concurrency: 1, workerId: 'a' });
    const b = await bull({ ...where, concurrency: 1, workerId: 'b' });
    const rec = recorder();
    a.process(rec.handler('a', () => 600));
    await a.enqueue({ jobId: 'p1', group: 'P' });
    await until(() => rec.runs.length === 1, 10_000, 'p1 to start on a');
    // a stops taking jobs (it finishes p1), so the next job of P can only go to b.
    const aClosed = a.close();
    b.process(rec.handler('b', () => 20));
    await b.enqueue({ jobId: 'p2', group: 'P' });
    await b.enqueue({ jobId: 'q1', group: 'Q' });
    await until(() => rec.runs.filter((r) => r.end).length === 3, 10_000, 'p1, p2 and q1 to finish');
    await aClosed;
    const p1 = rec.runOf('p1');
    const p2 = rec.runOf('p2');
    const q1 = rec.runOf('q1');
    expect([p1.by, p2.by, q1.by]).toEqual(['a', 'b', 'b']);
    expect(p2.start).toBeGreaterThanOrEqual(p1.end as number);
    // b was not blocked by the busy group: another group ran meanwhile.
    expect(q1.start).toBeLessThan(p1.end as number);
  });

  it("starts a group's jobs one at a time in enqueue order across processes", async () => {
    const where = shared();
    const a = await bull({ ...where, concurrency: 2, workerId: 'a' });
    const b = await bull({ ...where, concurrency: 2, workerId: 'b' });
    const rec = recorder();
    a.process(rec.handler('a', () => 30));
    b.process(rec.handler('b', () => 30));
    const group = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
    for (const [i, jobId] of group.entries()) {
      const via = i % 2 ? b : a;
      await via.enqueue({ jobId, group: 'P' });
      await via.enqueue({ jobId: `o${i}`, group: `O${i}` });
    }
    await until(() => rec.runs.filter((r) => r.end).length === 12, 15_000, 'all jobs to finish');
    const runs = group.map((id) => rec.runOf(id));
    expect([...runs].sort((x, y) => x.start - y.start).map((r) => r.jobId)).toEqual(group);
    for (let i = 1; i < runs.length; i++) expect((runs[i] as Run).start).toBeGreaterThanOrEqual((runs[i - 1] as Run).end as number);
  });

  it("a pipeline's postponed job keeps its place in the pipeline and is handed over at once", async () => {
    const where = shared();
    const a = await bull({ ...where, concurrency: 1, workerId: 'a' });
    // b backs off a long time when a group is busy: only the hand-over can start p2 early.
    const b = await bull({ ...where, concurrency: 1, workerId: 'b', groupRetryDelayMs: 1_500 });
    const rec = recorder();
    a.process(rec.handler('a', (item) => (item.jobId === 'p1' ? 400 : 20)));
    await a.enqueue({ jobId: 'p1', group: 'P' });
    await until(() => rec.runs.length === 1, 10_000, 'p1 to start on a');
    b.process(rec.handler('b', () => 20));
    await b.enqueue({ jobId: 'p2', group: 'P' }); // a is busy: b takes p2 and postpones it
    await until(() => rec.runOf('p1').end !== undefined, 10_000, 'p1 to finish');
    // Enqueued after p1 finished, while p2 may still be in its back-off: they come after p2.
    await a.enqueue({ jobId: 'p3', group: 'P' });
    await b.enqueue({ jobId: 'p4', group: 'P' });
    await until(() => rec.runs.filter((r) => r.end).length === 4, 15_000, 'p1..p4 to finish');
    const runs = ['p1', 'p2', 'p3', 'p4'].map((id) => rec.runOf(id));
    expect([...runs].sort((x, y) => x.start - y.start).map((r) => r.jobId)).toEqual(['p1', 'p2', 'p3', 'p4']);
    for (let i = 1; i < runs.length; i++) expect((runs[i] as Run).start).toBeGreaterThanOrEqual((runs[i - 1] as Run).end as number);
    const [p1, p2] = runs as [Run, Run];
    expect(p2.start - (p1.end as number)).toBeLessThan(1_000);
  });

  it('closing one process while it runs a job waits for that job; the other takes the rest', async () => {
    const where = shared();
    const a = await bull({ ...where, concurrency: 1, workerId: 'a' });
    const b = await bull({ ...where, concurrency: 1, workerId: 'b' });
    const rec = recorder();
    a.process(rec.handler('a', () => 500));
    await a.enqueue({ jobId: 'long', group: 'L' });
    await until(() => rec.runs.length === 1, 10_000, 'the long job to start on a');
    b.process(rec.handler('b', () => 20));
    let closedAt = 0;
    const aClosed = a.close().then(() => (closedAt = Date.now()));
    for (const jobId of ['m1', 'm2', 'm3']) await b.enqueue({ jobId, group: null });
    await aClosed;
    const long = rec.runOf('long');
    expect(long.end, 'the long job had finished when close() resolved').toBeDefined();
    expect(closedAt).toBeGreaterThanOrEqual(long.end as number);
    await expect(a.enqueue({ jobId: 'late', group: null })).rejects.toThrow(/closed/);
    await until(() => rec.runs.filter((r) => r.end).length === 4, 10_000, 'm1..m3 to finish');
    expect(['m1', 'm2', 'm3'].map((id) => rec.runOf(id).by)).toEqual(['b', 'b', 'b']);
    expect(rec.runOf('long').by).toBe('a');
  });

  it('a job whose process vanished is picked up by the other process within seconds', async () => {
    const where = shared();
    // The doomed process's locks outlive it by 0.6 s; stalled jobs are looked for every 1.2 s
    // and re-queued on the second look, so s1 comes back well after its group lease expired.
    const crashed = await bull({ ...where, lockDurationMs: 600, stalledIntervalMs: 1_200, concurrency: 1, workerId: 'crashed' });
    const survivor = await bull({ ...where, lockDurationMs: 5_000, stalledIntervalMs: 1_200, concurrency: 1, workerId: 'survivor' });
    const rec = recorder();
    let unblockZombie!: () => void;
    const zombie = new Promise<void>((r) => (unblockZombie = r));
    cleanup.push(async () => unblockZombie());
    crashed.process(rec.handler('crashed', () => zombie));
    await crashed.enqueue({ jobId: 's1', group: 'S' });
    await until(() => rec.runs.length === 1, 10_000, 's1 to start on the doomed process');
    // The process dies: connections drop, nothing is released, locks stop being renewed.
    await crashed.disconnect();
    const crashedAt = Date.now();
    // A later job of the same pipeline must still wait for s1's re-run, also once the group
    // lease of the vanished run has expired.
    await survivor.enqueue({ jobId: 's2', group: 'S' });
    survivor.process(rec.handler('survivor', () => 20));
    await until(() => rec.runs.filter((r) => r.by === 'survivor' && r.end).length === 2, 15_000, 's1 and s2 to run on the survivor');
    const reruns = rec.runs.filter((r) => r.by === 'survivor');
    expect(reruns.map((r) => r.jobId)).toEqual(['s1', 's2']);
    expect((reruns[0] as Run).start - crashedAt).toBeLessThan(8_000);
    expect((reruns[1] as Run).start).toBeGreaterThanOrEqual((reruns[0] as Run).end as number);
    // The first run never finished (its handler is still blocked in the vanished process).
    expect(rec.runs[0]).toMatchObject({ jobId: 's1', by: 'crashed' });
    expect(rec.runs[0]?.end).toBeUndefined();
  });
});
