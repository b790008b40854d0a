/**
 * The pub/sub contract (src/pubsub/pubsub.ts): every implementation (in-process now, Redis
 * in cluster mode) runs this suite.
 */
import { describe, expect, it } from 'vitest';
import { createSluicePubSub, type PubSub, type PipelineStateMessage } from '../../src/pubsub/pubsub.js';

const implementations: { name: string; make: () => Promise<PubSub> }[] = [{ name: 'in-process', make: async () => createSluicePubSub() }];

const msg = (pipelineId: string, version: number): PipelineStateMessage => ({
  pipelineId,
  action: 'START',
  state: 'INIT',
  previousState: 'STOP',
  reason: null,
  version,
  at: new Date(0).toISOString(),
});

async function take<T>(it: AsyncIterator<T>, n: number, timeoutMs = 2000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const r = await Promise.race([it.next(), new Promise<null>((res) => setTimeout(() => res(null), Math.max(1, deadline - Date.now())))]);
    if (!r || r.done) break;
    out.push(r.value);
  }
  return out;
}

describe.each(implementations)('PubSub contract: $name', ({ make }) => {
  it('delivers messages published after subscribe, in order, only for the key', async () => {
    const ps = await make();
    const a = ps.subscribe('pipelineStateChanged', 'A');
    const b = ps.subscribe('pipelineStateChanged', 'B');
    const got = take(a, 3);
    for (let v = 1; v <= 3; v++) {
      ps.publish('pipelineStateChanged', 'A', msg('A', v));
      ps.publish('pipelineStateChanged', 'B', msg('B', 100 + v));
    }
    expect((await got).map((m) => m.version)).toEqual([1, 2, 3]);
    expect((await take(b, 3)).map((m) => m.version)).toEqual([101, 102, 103]);
    await a.return?.();
    await b.return?.();
  });

  it('topics are separate even with the same key', async () => {
    const ps = await make();
    const events = ps.subscribe('events', 'k');
    ps.publish('pipelineStateChanged', 'k', msg('k', 1));
    expect(await take(events, 1, 100)).toEqual([]);
    await events.return?.();
  });

  it('a returned subscription receives nothing more', async () => {
    const ps = await make();
    const a = ps.subscribe('pipelineStateChanged', 'A');
    await a.return?.();
    ps.publish('pipelineStateChanged', 'A', msg('A', 1));
    expect((await a.next()).done).toBe(true);
  });

  it('delivers JSON-equal payloads', async () => {
    const ps = await make();
    const a = ps.subscribe('jobProgress', 'j');
    const payload = { jobId: 'j', pipelineId: 'p', status: 'RUNNING', recordsRead: 1, recordsWritten: 1, recordsFailed: 0, bytesRead: 10, bytesWritten: 10, final: false, at: new Date(0).toISOString() };
    const got = take(a, 1);
    ps.publish('jobProgress', 'j', payload);
    expect(await got).toEqual([JSON.parse(JSON.stringify(payload))]);
    await a.return?.();
  });
});
