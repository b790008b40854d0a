/**
 * The Redis implementation of the pub/sub seam (src/pubsub/pubsub.ts), for cluster mode:
 * several processes (API replicas, workers) share one Redis, and a subscription on any of
 * them sees what any of them publishes.
 *
 * Shape: each process holds ONE pattern subscription (`PSUBSCRIBE <prefix>:*`), established
 * before `createRedisPubSub` resolves, i.e. before the process serves anything. Every
 * message on the prefix reaches every process and is dispatched on a local event target,
 * where `createSluicePubSub` does the per-subscriber work (buffer cap, iterator semantics).
 * Subscribing locally is therefore immediate: a subscriber receives every message that
 * Redis delivers after its `subscribe` call returned — there is no per-subscription
 * SUBSCRIBE round trip during which a message could slip by. (The converse does not hold:
 * a message published shortly before `subscribe` returned may still be in flight and be
 * delivered too. The contract promises a lower bound only; readers that combine a snapshot
 * with the stream already tolerate overlap, e.g. by version or cursor.)
 *
 * Order: a local publish also travels through Redis (it is not dispatched locally first),
 * so every process, the publisher included, sees one global order per key — the order in
 * which Redis received the publishes. One publisher connection per process keeps that
 * process's own publishes in call order.
 *
 * Across a Redis outage or restart: both connections reconnect by themselves and the
 * pattern subscription is restored (ioredis `autoResubscribe`, on by default and pinned
 * below). Open iterators stay open and resume receiving once the subscription is back.
 * Messages published while the subscriber connection was down — or before it had
 * re-subscribed — are lost for every subscriber; nothing is replayed. Durable history is the
 * event log: a client that cares resumes with `events(after:)` from its last cursor.
 * Connection errors during the outage are reported to `onError`.
 *
 * Payloads cross process boundaries as JSON. A message on the prefix that is not
 * `<topic>:<key>` or not JSON (another writer, another version) is dropped and reported to
 * `onError`; it never reaches subscribers and never stops delivery of later messages.
 */
import { Redis } from 'ioredis';
import { createSluicePubSub, type PubSub, type TopicName } from './pubsub.js';
import { closeRedis, safeReporter, toError } from './redis-client.js';

export interface RedisPubSubOptions {
  /** A redis:// or rediss:// URL. */
  url: string;
  /**
   * Channel namespace (default 'sluice'): processes with the same prefix and Redis see each
   * other's messages, processes with another prefix do not. Must be non-empty and contain no
   * ':' — otherwise one prefix could be the start of another's channels ('a' would hear 'a:b').
   */
  prefix?: string;
  /** Where connection, publish and malformed-message errors go (default: console.error). */
  onError?: (err: Error) => void;
}

export interface RedisPubSub extends PubSub {
  /**
   * Stops this process's pub/sub for good: delivery stops, every open iterator ends (a
   * pending or later `next()` resolves `done`; unread buffered messages are discarded), and
   * both connections are closed. A `subscribe` afterwards returns an already-ended iterator;
   * a `publish` afterwards is silently dropped (no throw, no onError) — publishers may still
   * be winding down during shutdown. Idempotent.
   */
  close(): Promise<void>;
}

/** A PSUBSCRIBE glob matching exactly the channels that start with `<prefix>:`. */
const patternFor = (prefix: string) => `${prefix.replace(/[\\*?[\]]/g, (c) => `\\${c}`)}:*`;

export async function createRedisPubSub(options: RedisPubSubOptions): Promise<RedisPubSub> {
  const prefix = options.prefix ?? 'sluice';
  if (!prefix || prefix.includes(':')) throw new Error(`redis pub/sub: invalid prefix ${JSON.stringify(prefix)}: must be non-empty and contain no ':'`);
  const onError = options.onError ?? ((err: Error) => console.error('[sluice] redis pub/sub:', err));
  const report = safeReporter(onError);
  const channelPrefix = `${prefix}:`;
  const pattern = patternFor(prefix);

  // lazyConnect so a Redis that is unreachable at startup fails `createRedisPubSub` instead
  // of leaving the process serving without a subscription.
  const connectionOptions = { lazyConnect: true, autoResubscribe: true } as const;
  const name = prefix.replace(/[^\x21-\x7e]/g, '_'); // CLIENT SETNAME refuses spaces and control characters
  const subscriber = new Redis(options.url, { ...connectionOptions, connectionName: `${name}:pubsub:sub` });
  const publisher = new Redis(options.url, { ...connectionOptions, connectionName: `${name}:pubsub:pub` });
  subscriber.on('error', report);
  publisher.on('error', report);

  const target = new EventTarget();
  const local = createSluicePubSub(target);
  let closed = false;

  const onMessage = (_pattern: string, channel: string, message: string) => {
    if (closed || !channel.startsWith(channelPrefix)) return;
    const rest = channel.slice(channelPrefix.length);
    const sep = rest.indexOf(':');
    if (sep <= 0) {
      report(new Error(`redis pub/sub: dropped a message on channel ${JSON.stringify(channel)}: expected ${channelPrefix}<topic>:<key>`));
      return;
    }
    let detail: unknown;
    try {
      detail = JSON.parse(message);
    } catch (err) {
      report(new Error(`redis pub/sub: dropped a message on channel ${JSON.stringify(channel)}: not JSON (${toError(err).message})`));
      return;
    }
    target.dispatchEvent(new CustomEvent(`${rest.slice(0, sep)}:${rest.slice(sep + 1)}`, { detail }));
  };
  subscriber.on('pmessage', onMessage);

  try {
    await Promise.all([subscriber.connect(), publisher.connect()]);
    await subscriber.psubscribe(pattern);
  } catch (err) {
    subscriber.disconnect();
    publisher.disconnect();
    throw toError(err);
  }

  /** Open iterators, so `close()` can end them; an iterator leaves when its consumer ends it. */
  const live = new Set<AsyncIterableIterator<unknown>>();

  return {
    publish: (topic, key, payload) => {
      if (closed) return;
      const channel = `${channelPrefix}${topic}:${key}`;
      let message: string | undefined;
      try {
        message = JSON.stringify(payload);
      } catch (err) {
        report(new Error(`redis pub/sub: cannot publish on ${JSON.stringify(channel)}: payload is not JSON-serialisable (${toError(err).message})`));
        return;
      }
      if (message === undefined) {
        report(new Error(`redis pub/sub: cannot publish on ${JSON.stringify(channel)}: payload is not JSON-serialisable`));
        return;
      }
      publisher.publish(channel, message).catch(report);
    },
    subscribe: <T extends TopicName>(topic: T, key: string) => {
      const inner = local.subscribe(topic, key);
      if (closed) {
        void inner.return?.();
        return inner;
      }
      const tracked: typeof inner = {
        next: () => inner.next(),
        return: (value) => {
          live.delete(tracked);
          return inner.return ? inner.return(value) : Promise.resolve({ value: undefined, done: true });
        },
        throw: (err) => {
          live.delete(tracked);
          return inner.throw ? inner.throw(err) : Promise.reject(err);
        },
        [Symbol.asyncIterator]() {
          return tracked;
        },
      };
      live.add(tracked);
      return tracked;
    },
    close: (() => {
      let closing: Promise<void> | undefined;
      return () => {
        if (!closing) {
          closed = true;
          subscriber.off('pmessage', onMessage);
          for (const it of [...live]) void it.return?.();
          closing = Promise.all([closeRedis(subscriber), closeRedis(publisher)]).then(() => undefined);
        }
        return closing;
      };
    })(),
  };
}
