/**
 * The BullMQ implementation of the job-queue seam (src/engine/queue/queue.ts), for cluster
 * mode: several worker processes share one Redis and one BullMQ queue, and the contract holds
 * across them.
 *
 * How each rule of the contract is kept:
 * - Not twice at the same time: the BullMQ job id is the Sluice job id (encoded, see
 *   `encodeJobId`), and BullMQ ignores an `add` whose id exists (waiting, delayed or active).
 *   Jobs are removed on completion, so the same id can be enqueued again later (a resumed job).
 *   Caveat: an enqueue that lands in the instant between the handler returning and BullMQ
 *   removing the finished job is ignored too (the job still exists then).
 * - At most `concurrency` handlers at once: the Worker's `concurrency`, per process.
 * - Enqueue order: BullMQ's wait list is FIFO, and a worker starts jobs in the order it
 *   fetched them. Across processes "start order" means fetch order.
 * - Groups (pipelines) never run concurrently, across processes: before calling the handler the
 *   worker takes a lease in Redis, `<prefix>:group:<group>` (SET NX PX with a unique token),
 *   renews it while the handler runs and deletes it afterwards only if it is still its own
 *   (compare-and-delete in Lua). A job whose group is busy is postponed: moved to BullMQ's
 *   delayed set for `groupRetryDelayMs` (DelayedError — not a failure, no attempt consumed)
 *   and fetched again after that; when the running job of the group finishes, its worker
 *   promotes the group's next job at once, so the hand-over does not wait for the back-off.
 * - Order within a group: each grouped enqueue takes a ticket (a per-group counter) and is
 *   recorded in `<prefix>:group:<group>:order` (a sorted set of BullMQ job keys by ticket; the
   counter is `<prefix>:group:<group>:seq`; `<group>` is URI-encoded in these keys).
 *   The lease is only granted to a job when no job of the group with an earlier ticket still
 *   exists in BullMQ, so jobs of one pipeline start in enqueue order even when a later one is
 *   fetched first (by another process, or after the earlier one was postponed). Entries whose
 *   BullMQ job no longer exists (removed, failed, enqueue never completed) are dropped when met.
 *   Limit (BullMQ's, not ours): a postponed job does not keep its place in the global line —
 *   BullMQ puts promoted delayed jobs at the back of the wait list — so jobs of other groups
 *   enqueued after it may start before it. Within its group it keeps its place.
 * - `close()` stops the worker taking jobs, waits for running handlers (`worker.close()`), then
 *   closes the queue and the connections. A job fetched just before close is put back at the
 *   front of the wait list (for another process) instead of being started.
 *
 * Worker death: a job's BullMQ lock (`lockDurationMs`, renewed every half of it) and its group
 * lease (same duration, renewed every third) expire when the process dies. BullMQ's stalled
 * check (one per `stalledIntervalMs` queue-wide, run by whichever worker is alive) marks the
 * active jobs, and the next check moves those still marked and without lock to the front of
 * the wait list, where a live worker picks them up: with the defaults (10 s / 10 s) typically
 * within 10–20 s of the death, at worst about lockDurationMs + 2 × stalledIntervalMs = 30 s.
 * A job re-run after a stall resumes from its checkpoint: the runner reads the checkpoint from
 * the database, the queue only carries the job id. After `maxStalledCount` stalls (default 2;
 * BullMQ's is 1) BullMQ fails the job — it is removed, and reported to `onError`; Sluice's own
 * retry bookkeeping lives in the database.
 * Leases are time-based: a process that is alive but cut off from Redis (or whose event loop
 * blocks) for longer than lockDurationMs loses its locks, and the job may then run elsewhere
 * while the stuck handler is still going. The order set narrows this for groups: a later job
 * of the group still waits while the earlier job exists in BullMQ.
 *
 * Handlers never throw by contract (the runner catches); if one does, the error goes to
 * `onError` and the job completes — BullMQ never retries (attempts: 1).
 *
 * `stats()` is synchronous: `active` counts the jobs this process's worker holds (kept current
 * from the worker); `waiting` is queue-wide (all processes: waiting + delayed + prioritized),
 * refreshed from Redis every `statsIntervalMs` and right after local changes, with local
 * enqueues/postponements added at once. It may lag other processes' changes by that interval.
 */
import { randomUUID } from 'node:crypto';
import { DelayedError, Queue, WaitingError, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { closeRedis, safeReporter, toError } from '../../pubsub/redis-client.js';
import type { JobQueue, QueueItem } from './queue.js';

export interface BullQueueOptions {
  /** `{ url }` (redis:// or rediss://, extra ioredis options allowed) or ioredis options. */
  connection: ({ url: string } & RedisOptions) | RedisOptions;
  /** BullMQ queue name, shared by all processes of one deployment (default 'sluice-jobs'; no ':'). */
  name?: string;
  /** Redis key prefix of the queue and of the group leases (default 'sluice'). */
  prefix?: string;
  /** Handlers at once in this process. */
  concurrency: number;
  /** Names this process's worker (stored on the jobs it takes, shown in CLIENT LIST). */
  workerId?: string;
  /**
   * How often workers look for jobs whose worker died (default 10 000 ms). BullMQ runs one such
   * check per interval queue-wide: a check marks the active jobs, and the next one re-queues
   * those still marked (no lock renewal since) whose lock has expired.
   */
  stalledIntervalMs?: number;
  /**
   * How long a job's lock and its group lease outlive a dead worker (default 10 000 ms); renewed
   * every half (job lock) and every third (group lease) of it while the handler runs.
   */
  lockDurationMs?: number;
  /** Stalls after which BullMQ fails a job instead of re-queuing it (default 2). */
  maxStalledCount?: number;
  /** Back-off of a job whose group is busy (default 250 ms). */
  groupRetryDelayMs?: number;
  /** How often the queue-wide waiting count is refreshed (default 1000 ms). */
  statsIntervalMs?: number;
  /** Connection, worker, handler and lease errors (default: console.error). */
  onError?: (err: Error) => void;
}

interface JobData {
  jobId: string;
  group: string | null;
  /** Enqueue ticket within the group (order); absent for ungrouped jobs. */
  seq?: number;
}

const DEFAULTS = {
  name: 'sluice-jobs',
  prefix: 'sluice',
  stalledIntervalMs: 10_000,
  lockDurationMs: 10_000,
  maxStalledCount: 2,
  groupRetryDelayMs: 250,
  statsIntervalMs: 1_000,
};

/** Earlier order entries looked at per lease attempt (stale ones are dropped as they are met). */
const ORDER_SCAN = 20;

/**
 * The BullMQ job id for a Sluice job id. BullMQ refuses custom ids that contain ':' or read as
 * an integer ('12'), and '0'; Sluice ids are UUIDs and pass unchanged. Others are escaped ('%'
 * → '%25', ':' → '%3A'; an integer-like id gets the prefix '%i', which escaping never makes),
 * so the mapping stays one-to-one. The original id travels in the job data.
 */
export function encodeJobId(jobId: string): string {
  if (typeof jobId !== 'string' || jobId === '') throw new Error('job id must be a non-empty string');
  const escaped = jobId.replace(/%/g, '%25').replace(/:/g, '%3A');
  return `${parseInt(escaped, 10)}` === escaped ? `%i${escaped}` : escaped;
}

/** Takes the group lease if it is free and no earlier job of the group is still queued. */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = redis.call('ZSCORE', KEYS[2], ARGV[3]) or ARGV[4]
local limit = tonumber(ARGV[5])
local earlier = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. seq, 'LIMIT', 0, limit)
for _, member in ipairs(earlier) do
  if member ~= ARGV[3] then
    if redis.call('EXISTS', member) == 1 then return -1 end
    redis.call('ZREM', KEYS[2], member)
  end
end
if #earlier >= limit then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** Extends the lease if it is still ours. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** Leaves the order set, deletes the lease if still ours; returns the group's next job key. */
const RELEASE = `
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0)
return nxt[1] or ''
`;

/** Takes (or returns the existing) enqueue ticket of a job within its group. */
const TICKET = `
local cur = redis.call('ZSCORE', KEYS[2], ARGV[1])
if cur then return cur end
local s = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], s, ARGV[1])
return tostring(s)
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;
interface Scripts {
  sluiceGroupAcquire: Script;
  sluiceGroupRenew: Script;
  sluiceGroupRelease: Script;
  sluiceGroupTicket: Script;
}

function defineScripts(client: Redis): Scripts {
  client.defineCommand('sluiceGroupAcquire', { numberOfKeys: 2, lua: ACQUIRE });
  client.defineCommand('sluiceGroupRenew', { numberOfKeys: 1, lua: RENEW });
  client.defineCommand('sluiceGroupRelease', { numberOfKeys: 2, lua: RELEASE });
  client.defineCommand('sluiceGroupTicket', { numberOfKeys: 2, lua: TICKET });
  return client as unknown as Scripts;
}

/** The URL or host:port a connection goes to, without its password (for errors). */
function describeConnection(connection: BullQueueOptions['connection']): string {
  if ('url' in connection && typeof connection.url === 'string') {
    try {
      const u = new URL(connection.url);
      if (u.password) u.password = '***';
      return u.toString();
    } catch {
      return '(unparsable Redis URL)';
    }
  }
  const { host = '127.0.0.1', port = 6379, db } = connection as RedisOptions;
  return `redis://${host}:${port}${db ? `/${db}` : ''}`;
}

function newClient(connection: BullQueueOptions['connection'], extra: RedisOptions): Redis {
  const { url, ...rest } = connection as { url?: string } & RedisOptions;
  const options: RedisOptions = { ...rest, ...extra, lazyConnect: true };
  return url ? new Redis(url, options) : new Redis(options);
}

export class BullQueue implements JobQueue {
  private readonly name: string;
  private readonly prefix: string;
  private readonly opts: Required<Omit<BullQueueOptions, 'connection' | 'workerId' | 'onError' | 'name' | 'prefix'>>;
  private readonly workerId: string | undefined;
  private readonly report: (err: unknown) => void;
  private readonly queue: Queue<JobData>;
  private readonly scripts: Scripts;
  private worker: Worker<JobData, void> | null = null;
  private handler: ((item: QueueItem) => Promise<void>) | null = null;

  private closed = false;
  private closing: Promise<void> | null = null;
  private dead = false;
  /** Jobs this process's worker holds (fetched, running or being postponed), by BullMQ id. */
  private readonly held = new Set<string>();
  private waitingCount = 0;
  /** Bumped on every local change, so a count read from Redis across one is not trusted. */
  private generation = 0;
  private refreshing = false;
  private refreshAgain = false;
  /** Set while reading the counts fails, so an outage is reported once, not every interval. */
  private statsFailing = false;
  private readonly statsTimer: NodeJS.Timeout;
  private readonly leaseTimers = new Set<NodeJS.Timeout>();

  /** Use `createBullQueue`, which waits until Redis is reachable. */
  constructor(
    options: BullQueueOptions,
    /** Queue-side client: enqueues, leases, counts. */
    private readonly client: Redis,
    /** The worker's client (maxRetriesPerRequest: null, as BullMQ requires). */
    private readonly workerClient: Redis,
  ) {
    this.name = options.name ?? DEFAULTS.name;
    this.prefix = options.prefix ?? DEFAULTS.prefix;
    if (!this.name || this.name.includes(':') || this.name === 'group') {
      throw new Error(`BullQueue: invalid queue name ${JSON.stringify(this.name)}: must be non-empty, contain no ':' and not be 'group'`);
    }
    if (!this.prefix) throw new Error('BullQueue: prefix must be non-empty');
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new Error(`BullQueue: concurrency must be a positive integer, got ${options.concurrency}`);
    this.opts = {
      concurrency: options.concurrency,
      stalledIntervalMs: options.stalledIntervalMs ?? DEFAULTS.stalledIntervalMs,
      lockDurationMs: options.lockDurationMs ?? DEFAULTS.lockDurationMs,
      maxStalledCount: options.maxStalledCount ?? DEFAULTS.maxStalledCount,
      groupRetryDelayMs: options.groupRetryDelayMs ?? DEFAULTS.groupRetryDelayMs,
      statsIntervalMs: options.statsIntervalMs ?? DEFAULTS.statsIntervalMs,
    };
    this.workerId = options.workerId;
    const onError = options.onError ?? ((err: Error) => console.error('[sluice] bullmq queue:', err));
    const report = safeReporter(onError);
    this.report = (err: unknown) => {
      if (!this.dead) report(err);
    };
    this.scripts = defineScripts(client);
    this.queue = new Queue<JobData>(this.name, {
      connection: client,
      prefix: this.prefix,
      defaultJobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: true },
    });
    // The queue forwards its connection's errors; the worker's connection has no listener
    // of BullMQ's until process() creates the worker.
    this.queue.on('error', this.report);
    workerClient.on('error', (err: Error) => {
      if (!this.worker) this.report(err);
    });
    this.statsTimer = setInterval(() => this.refreshWaiting(), this.opts.statsIntervalMs);
    this.statsTimer.unref();
  }

  /** Resolves once the BullMQ queue is usable (connection up, version checked). */
  async ready(): Promise<void> {
    await this.queue.waitUntilReady();
    this.refreshWaiting();
  }

  async enqueue(item: QueueItem): Promise<void> {
    if (this.closed) throw new Error('queue is closed');
    const id = encodeJobId(item.jobId);
    const data: JobData = { jobId: item.jobId, group: item.group ?? null };
    if (data.group !== null) {
      const keys = this.groupKeys(data.group);
      data.seq = Number(await this.scripts.sluiceGroupTicket(keys.seq, keys.order, this.queue.toKey(id)));
    }
    await this.queue.add('run', data, { jobId: id, attempts: 1, removeOnComplete: true, removeOnFail: true });
    this.localChange(1);
  }

  process(handler: (item: QueueItem) => Promise<void>): void {
    this.handler = handler;
    if (this.worker || this.closed) return;
    const worker = new Worker<JobData, void>(this.name, (job, token) => this.runJob(job, token), {
      connection: this.workerClient,
      prefix: this.prefix,
      concurrency: this.opts.concurrency,
      autorun: false,
      ...(this.workerId ? { name: this.workerId } : {}),
      lockDuration: this.opts.lockDurationMs,
      stalledInterval: this.opts.stalledIntervalMs,
      maxStalledCount: this.opts.maxStalledCount,
    });
    worker.on('error', this.report);
    worker.on('active', (job) => {
      if (job.id) this.held.add(job.id);
      this.localChange(0);
    });
    worker.on('failed', (job, err) => {
      // Only BullMQ fails jobs (our processor never throws anything but Delayed/WaitingError):
      // a job that stalled more than maxStalledCount times. It is removed (removeOnFail).
      this.report(new Error(`bullmq queue: job ${job?.data.jobId ?? '(removed)'} failed: ${err.message}`));
    });
    this.worker = worker;
    worker.run().catch(this.report);
  }

  stats(): { waiting: number; active: number } {
    return { waiting: this.waitingCount, active: this.held.size };
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      clearInterval(this.statsTimer);
      this.closing = (async () => {
        // worker.close() stops fetching and resolves once running processors returned (each
        // releases its group lease first); then the queue, then our connections.
        if (this.worker) await this.worker.close().catch(this.report);
        await this.queue.close().catch(this.report);
        await Promise.all([closeRedis(this.workerClient), closeRedis(this.client)]);
      })();
    }
    return this.closing;
  }

  /**
   * Drops every Redis connection at once, without waiting for anything — what a killed process
   * looks like to Redis. For tests (simulating a dead worker) and last-resort shutdown. Locks
   * are no longer renewed, so another process re-runs this process's jobs after they expire.
   * Handlers still running here keep running but can no longer report. The instance is unusable
   * afterwards; `close()` resolves at once.
   */
  async disconnect(): Promise<void> {
    if (this.dead) return;
    this.dead = true;
    this.closed = true;
    clearInterval(this.statsTimer);
    for (const t of this.leaseTimers) clearInterval(t);
    this.leaseTimers.clear();
    // close(true): stop BullMQ's lock renewal and fetch loop without touching Redis (it would
    // otherwise reconnect its blocking connection); force drops that connection.
    const workerClosed = this.worker ? this.worker.close(true).catch(() => undefined) : Promise.resolve();
    this.client.disconnect();
    this.workerClient.disconnect();
    this.closing = workerClosed.then(() => undefined);
    await this.closing;
  }

  private groupKeys(group: string) {
    const base = `${this.prefix}:group:${encodeURIComponent(group)}`;
    return { lock: base, order: `${base}:order`, seq: `${base}:seq` };
  }

  private async runJob(job: Job<JobData>, token: string | undefined): Promise<void> {
    const id = job.id as string;
    this.held.add(id);
    try {
      if (this.closed) {
        // Fetched just before close(): back to the front of the line, for another process.
        await job.moveToWait(token).catch(this.report);
        this.localChange(1);
        throw new WaitingError();
      }
      const item: QueueItem = { jobId: job.data.jobId, group: job.data.group ?? null };
      if (item.group === null) {
        await this.callHandler(item);
        return;
      }
      const keys = this.groupKeys(item.group);
      const member = this.queue.toKey(id);
      const lease = randomUUID();
      let acquired = 0;
      try {
        acquired = Number(await this.scripts.sluiceGroupAcquire(keys.lock, keys.order, lease, this.opts.lockDurationMs, member, job.data.seq ?? '+inf', ORDER_SCAN));
      } catch (err) {
        this.report(err);
      }
      if (acquired !== 1) {
        // Group busy (or an earlier job of it still queued): back off without failing.
        try {
          await job.moveToDelayed(Date.now() + this.opts.groupRetryDelayMs, token);
          this.localChange(1);
        } catch (err) {
          // Left active with its lock no longer renewed: the stalled check re-queues it.
          this.report(err);
        }
        throw new DelayedError();
      }
      const renew = setInterval(() => {
        this.scripts.sluiceGroupRenew(keys.lock, lease, this.opts.lockDurationMs).then(
          (ok) => {
            if (Number(ok) !== 1) this.report(new Error(`bullmq queue: group lease of ${item.group} for job ${item.jobId} was lost (expired); another job of the group may start`));
          },
          this.report,
        );
      }, Math.max(100, Math.floor(this.opts.lockDurationMs / 3)));
      renew.unref();
      this.leaseTimers.add(renew);
      try {
        await this.callHandler(item);
      } finally {
        clearInterval(renew);
        this.leaseTimers.delete(renew);
        if (!this.dead) await this.releaseGroup(keys, lease, member);
      }
    } finally {
      this.held.delete(id);
      this.localChange(0);
    }
  }

  private async callHandler(item: QueueItem): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    try {
      await handler(item);
    } catch (err) {
      this.report(new Error(`bullmq queue: handler for job ${item.jobId} threw (handlers must not): ${toError(err).message}`));
    }
  }

  private async releaseGroup(keys: { lock: string; order: string }, lease: string, member: string): Promise<void> {
    let next = '';
    try {
      next = String(await this.scripts.sluiceGroupRelease(keys.lock, keys.order, lease, member));
    } catch (err) {
      this.report(err); // the lease expires by itself
      return;
    }
    // Hand over at once: the group's next job is most likely waiting out its back-off.
    const ours = this.queue.toKey('');
    if (!next.startsWith(ours)) return;
    try {
      const job = await this.queue.getJob(next.slice(ours.length));
      if (job && (await job.isDelayed())) await job.promote();
    } catch {
      // Not delayed any more (fetched meanwhile) or gone: nothing to hand over.
    }
  }

  /** A local change to the counts: adjust `waiting` now, re-read it from Redis soon. */
  private localChange(waitingDelta: number): void {
    this.waitingCount = Math.max(0, this.waitingCount + waitingDelta);
    this.generation++;
    this.refreshWaiting();
  }

  private refreshWaiting(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    void (async () => {
      try {
        for (let round = 0; round < 5; round++) {
          this.refreshAgain = false;
          const generation = this.generation;
          const counts = await this.queue.getJobCounts('waiting', 'delayed', 'prioritized');
          if (this.closed) return;
          // A count read across a local change may predate it: keep the local figure, re-read.
          if (generation === this.generation) this.waitingCount = (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0);
          else this.refreshAgain = true;
          this.statsFailing = false;
          if (!this.refreshAgain) return;
        }
      } catch (err) {
        if (!this.closed && !this.statsFailing) this.report(new Error(`bullmq queue: cannot read the queue's counts (stats() keeps its last figures): ${toError(err).message}`));
        this.statsFailing = true;
      } finally {
        this.refreshing = false;
      }
    })();
  }
}

/**
 * Connects to Redis and returns a BullQueue; rejects with an error naming the Redis address when
 * Redis is not reachable (ioredis' connectTimeout, 10 s by default).
 */
export async function createBullQueue(options: BullQueueOptions): Promise<BullQueue> {
  const where = describeConnection(options.connection);
  const label = `${options.prefix ?? DEFAULTS.prefix}:${options.name ?? DEFAULTS.name}${options.workerId ? `:${options.workerId}` : ''}`.replace(/[^\x21-\x7e]/g, '_');
  const client = newClient(options.connection, { connectionName: `${label}:queue` });
  const workerClient = newClient(options.connection, { connectionName: `${label}:worker`, maxRetriesPerRequest: null });
  // Until the queue reports them, connection errors surface as the rejection of connect()
  // below; the no-op listeners stay (an 'error' event without listener would crash).
  const swallow = () => undefined;
  client.on('error', swallow);
  workerClient.on('error', swallow);
  try {
    await Promise.all([client.connect(), workerClient.connect()]);
  } catch (err) {
    client.disconnect();
    workerClient.disconnect();
    throw new Error(`BullMQ queue: Redis is not reachable at ${where}: ${toError(err).message}`);
  }
  let queue: BullQueue;
  try {
    queue = new BullQueue(options, client, workerClient);
  } catch (err) {
    client.disconnect();
    workerClient.disconnect();
    throw err;
  }
  try {
    await queue.ready();
  } catch (err) {
    await queue.disconnect();
    throw new Error(`BullMQ queue: Redis at ${where} is not usable: ${toError(err).message}`);
  }
  return queue;
}
