/**
 * The pub/sub seam: typed topics keyed by id. Embedded mode uses an in-process event
 * target; cluster mode swaps in a Redis-backed event target behind the same interface, so
 * publishers and GraphQL subscriptions never know which one runs.
 *
 * Contract: payloads are JSON-serialisable (they may cross a process boundary); a
 * subscriber receives every message published after its `subscribe` call returned, in
 * publish order per key. Nothing is replayed: durable history lives in the event log.
 */

/** A pipeline lifecycle transition, as published on `pipelineStateChanged`. */
export interface PipelineStateMessage {
  pipelineId: string;
  action: string;
  state: string;
  previousState: string | null;
  reason: string | null;
  version: number;
  at: string;
}

/** A job's counters; `final` is true on the last message of a run (any terminal or paused status). */
export interface JobProgressMessage {
  jobId: string;
  pipelineId: string | null;
  status: string;
  recordsRead: number;
  recordsWritten: number;
  recordsFailed: number;
  bytesRead: number;
  bytesWritten: number;
  final: boolean;
  at: string;
}

/** A job log line, published once it is stored (keyed by job id). */
export interface JobLogMessage {
  /** The line's position in the job log (a decimal string): its cursor. */
  id: string;
  jobId: string;
  attempt: number;
  at: string;
  level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  stage: 'SOURCE' | 'MAPPING' | 'DESTINATION' | 'RUNNER';
  message: string;
  data: unknown;
  /** True on the runner's finish line of a job that ended for good (SUCCEEDED, FAILED, CANCELLED). */
  last: boolean;
}

/** An event log row, published after its transaction committed. */
export interface EventMessage {
  sequence: string;
  id: string;
  /** The workspace the event belongs to: subscribers only ever see their own. */
  workspaceId: string;
  type: string;
  pipelineId: string | null;
  jobId: string | null;
  connectorId: string | null;
  message: string;
  data: unknown;
  createdAt: string;
}

/**
 * An API key stopped granting access (revoked). Every process closes the key's open sockets
 * and streams when it hears this (cluster mode carries it across processes).
 */
export interface ApiKeyRevokedMessage {
  apiKeyId: string;
  workspaceId: string;
  at: string;
}

export const ALL = '*';

type Topics = {
  pipelineStateChanged: [key: string, payload: PipelineStateMessage];
  jobProgress: [key: string, payload: JobProgressMessage];
  /** Keyed by job id. */
  jobLogs: [key: string, payload: JobLogMessage];
  /** Keyed by ALL for now; scoped keys (workspace) come with tenancy. */
  events: [key: string, payload: EventMessage];
  /** Keyed by ALL. */
  apiKeyRevoked: [key: string, payload: ApiKeyRevokedMessage];
};

export type TopicName = keyof Topics;

export interface PubSub {
  publish<T extends TopicName>(topic: T, key: string, payload: Topics[T][1]): void;
  /** Listening starts when this returns; iterate to read, `return()` to stop. */
  subscribe<T extends TopicName>(topic: T, key: string): AsyncIterableIterator<Topics[T][1]>;
}

/**
 * Where messages travel: an EventTarget whose events are CustomEvents named
 * `<topic>:<key>` with the payload in `detail` (the shape @graphql-yoga/redis-event-target
 * carries across processes).
 */
export type SluiceEventTarget = EventTarget;

/** Messages kept per subscriber that has not read them yet; beyond it the oldest are dropped. */
export const SUBSCRIBER_BUFFER = 10_000;

/**
 * Pub/sub over an event target (in-process by default). Unlike a lazy iterator, the
 * listener is attached when `subscribe` returns, so a caller can subscribe, then read a
 * snapshot from the database, then iterate — without missing what was published between.
 */
export function createSluicePubSub(eventTarget: SluiceEventTarget = new EventTarget()): PubSub {
  return {
    publish: (topic, key, payload) => {
      eventTarget.dispatchEvent(new CustomEvent(`${topic}:${key}`, { detail: payload }));
    },
    subscribe: <T extends TopicName>(topic: T, key: string) => {
      type P = Topics[T][1];
      const name = `${topic}:${key}`;
      const buffer: P[] = [];
      let waiting: ((r: IteratorResult<P>) => void) | null = null;
      let done = false;
      const listener = (event: Event) => {
        const payload = (event as CustomEvent<P>).detail;
        if (waiting) {
          const w = waiting;
          waiting = null;
          w({ value: payload, done: false });
          return;
        }
        buffer.push(payload);
        if (buffer.length > SUBSCRIBER_BUFFER) buffer.shift();
      };
      eventTarget.addEventListener(name, listener);
      const finish = (): Promise<IteratorResult<P>> => {
        if (!done) {
          done = true;
          eventTarget.removeEventListener(name, listener);
          buffer.length = 0;
          waiting?.({ value: undefined, done: true });
          waiting = null;
        }
        return Promise.resolve({ value: undefined, done: true });
      };
      const iterator: AsyncIterableIterator<P> = {
        next: () => {
          if (buffer.length) return Promise.resolve({ value: buffer.shift() as P, done: false });
          if (done) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve) => (waiting = resolve));
        },
        return: finish,
        throw: async (err?: unknown) => {
          await finish();
          throw err;
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
  };
}
