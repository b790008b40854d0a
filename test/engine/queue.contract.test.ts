/**
 * The job-queue contract (src/engine/queue/queue.ts). Every JobQueue implementation runs
 * this same suite; add the cluster queue to `implementations` when it exists.
 */
import { describe, expect, it } from 'vitest';
import { MemoryQueue, type JobQueue, type QueueItem } from '../../src/engine/queue/queue.js';

const implementations: { name: string; make: (concurrency: number) => Promise<JobQueue> }[] = [
  { name: 'MemoryQueue', make: async (c) => new MemoryQueue(c) },
];

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe.each(implementations)('JobQueue contract: $name', ({ make }) => {
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
    q.process(async () => {
      await tick(30);
      finished = true;
    });
    await q.enqueue({ jobId: 'slow', group: null });
    await tick(5);
    await q.close();
    expect(finished).toBe(true);
    await expect(q.enqueue({ jobId: 'late', group: null })).rejects.toThrow(/closed/);
  });
});

async function waitIdle(q: JobQueue) {
  for (let i = 0; i < 400; i++) {
    const s = q.stats();
    if (s.waiting === 0 && s.active === 0) return;
    await tick(5);
  }
  throw new Error('queue did not become idle');
}
