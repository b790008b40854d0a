/**
 * The pub/sub contract (src/pubsub/pubsub.ts): every implementation (in-process now, Redis
 * in cluster mode) runs this suite. The Redis implementation runs when
 * SLUICE_TEST_REDIS_URL points at a Redis server; it also runs the cross-process suite
 * below, where two instances with the same prefix stand for two processes.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createSluicePubSub, type PubSub, type PipelineStateMessage } from '../../src/pubsub/pubsub.js';
import { createRedisPubSub, type RedisPubSub } from '../../src/pubsub/redis.js';

const REDIS_URL = process.env.SLUICE_TEST_REDIS_URL;

/** Closed after each test, so no test sees another's instances or connections. */
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((close) => close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A prefix no other test (or concurrent run on the same Redis) uses. */
const uniquePrefix = () => `sluice-test-${randomUUID()}`;

async function redisPubSub(prefix = uniquePrefix(), onError: (err: Error) => void = () => {}): Promise<RedisPubSub> {
  const ps = await createRedisPubSub({ url: REDIS_URL as string, prefix, onError });
  cleanup.push(() => ps.close());
  return ps;
}

function rawRedis(): Redis {
  const raw = new Redis(REDIS_URL as string);
  cleanup.push(async () => {
    await raw.quit().catch(() => raw.disconnect());
  });
  return raw;
}

const implementations: { name: string; make: () => Promise<PubSub> }[] = [{ name: 'in-process', make: async () => createSluicePubSub() }];
if (REDIS_URL) implementations.push({ name: 'redis', make: () => redisPubSub() });
else console.info('[pubsub.contract] SLUICE_TEST_REDIS_URL is not set: the Redis pub/sub contract and cross-process tests are SKIPPED (in-process implementation only).');

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

describe.runIf(REDIS_URL)('PubSub across processes: redis', () => {
  const versions = (ms: PipelineStateMessage[]) => ms.map((m) => m.version);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('the subscription is active once createRedisPubSub resolves, before any subscribe call', async () => {
    const prefix = uniquePrefix();
    const raw = rawRedis();
    await raw.ping();
    await Promise.all([redisPubSub(prefix), redisPubSub(prefix)]);
    // PUBLISH answers how many connections it reached: both processes, already listening.
    expect(await raw.publish(`${prefix}:pipelineStateChanged:P`, JSON.stringify(msg('P', 1)))).toBe(2);
  });

  it('a subscriber on one process receives, in order, everything another process publishes after subscribe returned', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([redisPubSub(prefix), redisPubSub(prefix)]);
    const sub = a.subscribe('pipelineStateChanged', 'P');
    for (let v = 1; v <= 200; v++) b.publish('pipelineStateChanged', 'P', msg('P', v));
    expect(versions(await take(sub, 200, 10_000))).toEqual(range(1, 200));
    await sub.return?.();
  });

  it('keys published interleaved keep their order per key', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([redisPubSub(prefix), redisPubSub(prefix)]);
    const x = a.subscribe('jobLogs', 'job:1');
    const y = a.subscribe('jobLogs', 'job:2');
    const line = (jobId: string, n: number) => ({ id: String(n), jobId, attempt: 1, at: new Date(0).toISOString(), level: 'INFO' as const, stage: 'RUNNER' as const, message: `${jobId} ${n}`, data: null, last: false });
    for (let n = 1; n <= 100; n++) {
      b.publish('jobLogs', 'job:1', line('job:1', n));
      b.publish('jobLogs', 'job:2', line('job:2', n));
    }
    // Keys may contain ':' — each subscriber gets only its own key, whole.
    const [gotX, gotY] = await Promise.all([take(x, 100, 10_000), take(y, 100, 10_000)]);
    expect(gotX.map((l) => `${l.jobId} ${l.id}`)).toEqual(range(1, 100).map((n) => `job:1 ${n}`));
    expect(gotY.map((l) => `${l.jobId} ${l.id}`)).toEqual(range(1, 100).map((n) => `job:2 ${n}`));
  });

  it('every process, the publishers included, sees the same order per key', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([redisPubSub(prefix), redisPubSub(prefix)]);
    const onA = a.subscribe('pipelineStateChanged', 'P');
    const onB = b.subscribe('pipelineStateChanged', 'P');
    for (let v = 1; v <= 50; v++) {
      a.publish('pipelineStateChanged', 'P', msg('P', v));
      b.publish('pipelineStateChanged', 'P', msg('P', 1000 + v));
    }
    const [seenA, seenB] = await Promise.all([take(onA, 100, 10_000), take(onB, 100, 10_000)]);
    expect(seenA).toHaveLength(100);
    expect(versions(seenA)).toEqual(versions(seenB));
    // Each process's own publishes stay in call order within the global order.
    expect(versions(seenA).filter((v) => v < 1000)).toEqual(range(1, 50));
    expect(versions(seenA).filter((v) => v > 1000)).toEqual(range(1001, 1050));
  });

  it('an instance with another prefix receives nothing', async () => {
    const prefix = uniquePrefix();
    const [a, b, other] = await Promise.all([redisPubSub(prefix), redisPubSub(prefix), redisPubSub(uniquePrefix())]);
    const same = a.subscribe('pipelineStateChanged', 'P');
    const foreign = other.subscribe('pipelineStateChanged', 'P');
    b.publish('pipelineStateChanged', 'P', msg('P', 1));
    // The message was published (the same prefix got it) and still did not cross prefixes.
    expect(versions(await take(same, 1))).toEqual([1]);
    expect(await take(foreign, 1, 200)).toEqual([]);
  });

  it('drops a malformed message, reports it to onError, and keeps delivering', async () => {
    const prefix = uniquePrefix();
    const errors: Error[] = [];
    const [a, b] = await Promise.all([redisPubSub(prefix, (err) => errors.push(err)), redisPubSub(prefix)]);
    const sub = a.subscribe('pipelineStateChanged', 'P');
    const raw = rawRedis();
    await raw.publish(`${prefix}:pipelineStateChanged:P`, 'not json {');
    await raw.publish(`${prefix}:no-key-separator`, '{}');
    b.publish('pipelineStateChanged', 'P', msg('P', 1));
    // The first thing the subscriber sees is the well-formed message: the malformed one was
    // dropped, not delivered in some other shape.
    expect(await take(sub, 1)).toEqual([msg('P', 1)]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/not JSON/), expect.stringMatching(/expected .*<topic>:<key>/)]);
    b.publish('pipelineStateChanged', 'P', msg('P', 2));
    expect(versions(await take(sub, 1))).toEqual([2]);
  });

  it('after close: delivery stops, open iterators end, publish and subscribe are harmless no-ops', async () => {
    const prefix = uniquePrefix();
    const errors: Error[] = [];
    const [a, b] = await Promise.all([redisPubSub(prefix, (err) => errors.push(err)), redisPubSub(prefix)]);
    const onA = a.subscribe('pipelineStateChanged', 'P');
    const onB = b.subscribe('pipelineStateChanged', 'P');
    const pending = onA.next();
    await a.close();
    expect(await Promise.race([pending, sleep(1000).then(() => 'still pending')])).toEqual({ value: undefined, done: true });
    expect(() => a.publish('pipelineStateChanged', 'P', msg('P', 1))).not.toThrow();
    expect((await a.subscribe('pipelineStateChanged', 'P').next()).done).toBe(true);
    await a.close();
    // The closed instance's publish went nowhere; the other process carries on.
    b.publish('pipelineStateChanged', 'P', msg('P', 2));
    expect(versions(await take(onB, 2, 500))).toEqual([2]);
    expect(errors).toEqual([]);
  });

  it('restores the subscription after the connection drops; open iterators keep receiving', { timeout: 20_000 }, async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([redisPubSub(prefix), redisPubSub(prefix)]);
    const sub = a.subscribe('pipelineStateChanged', 'P');
    const probe = a.subscribe('pipelineStateChanged', 'probe');
    const raw = rawRedis();
    const clients = String(await raw.call('CLIENT', 'LIST')).split('\n');
    const ids = clients.filter((c) => c.includes(` name=${prefix}:pubsub:sub `)).map((c) => /\bid=(\d+)/.exec(c)?.[1]);
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(await raw.call('CLIENT', 'KILL', 'ID', id as string)).toBe(1);
    // Messages published until the subscription is back are lost (no replay); wait for it.
    let restored = false;
    for (let deadline = Date.now() + 15_000; !restored && Date.now() < deadline; ) {
      b.publish('pipelineStateChanged', 'probe', msg('probe', 0));
      restored = (await take(probe, 1, 100)).length === 1;
    }
    expect(restored).toBe(true);
    for (let v = 1; v <= 50; v++) b.publish('pipelineStateChanged', 'P', msg('P', v));
    expect(versions(await take(sub, 50, 10_000))).toEqual(range(1, 50));
  });
});

describe('createRedisPubSub', () => {
  it('rejects when Redis is unreachable rather than serving without a subscription', async () => {
    const errors: Error[] = [];
    await expect(createRedisPubSub({ url: 'redis://127.0.0.1:1', prefix: uniquePrefix(), onError: (err) => errors.push(err) })).rejects.toThrow();
    expect(errors.length).toBeGreaterThan(0);
    // A failed start leaves nothing behind: no connection keeps retrying (and reporting).
    const reported = errors.length;
    await sleep(400);
    expect(errors).toHaveLength(reported);
  });

  it("rejects a prefix that could overlap another prefix's channels ('a' would hear 'a:b')", async () => {
    await expect(createRedisPubSub({ url: 'redis://127.0.0.1:1', prefix: 'sluice:staging' })).rejects.toThrow(/invalid prefix/);
    await expect(createRedisPubSub({ url: 'redis://127.0.0.1:1', prefix: '' })).rejects.toThrow(/invalid prefix/);
  });
});
