/**
 * The pub/sub seam: typed topics keyed by id. Embedded mode uses an in-process event
 * target; cluster mode swaps in a Redis-backed event target behind the same interface, so
 * publishers and GraphQL subscriptions never know which one runs.
 *
 * Contract: payloads are JSON-serialisable (they may cross a process boundary); a
 * subscriber receives every message published after its `subscribe` call returned, in
 * publish order per key. Nothing is replayed: durable history lives in the event log.
 */
import { createPubSub, type PubSubEventTarget } from 'graphql-yoga';

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

/** An event log row, published after its transaction committed. */
export interface EventMessage {
  sequence: string;
  id: string;
  type: string;
  pipelineId: string | null;
  jobId: string | null;
  connectorId: string | null;
  message: string;
  data: unknown;
  createdAt: string;
}

export const ALL = '*';

type Topics = {
  pipelineStateChanged: [key: string, payload: PipelineStateMessage];
  jobProgress: [key: string, payload: JobProgressMessage];
  /** Keyed by ALL for now; scoped keys (workspace) come with tenancy. */
  events: [key: string, payload: EventMessage];
};

export type TopicName = keyof Topics;

export interface PubSub {
  publish<T extends TopicName>(topic: T, ...args: Topics[T]): void;
  subscribe<T extends TopicName>(topic: T, key: Topics[T][0]): AsyncIterableIterator<Topics[T][1]> & AsyncIterable<Topics[T][1]>;
}

export type SluiceEventTarget = PubSubEventTarget<Topics>;

/** In-process pub/sub (embedded mode); pass an event target to go across processes. */
export function createSluicePubSub(eventTarget?: SluiceEventTarget): PubSub {
  const inner = createPubSub<Topics>(eventTarget ? { eventTarget } : undefined);
  return {
    publish: (topic, ...args) => (inner.publish as (t: string, ...a: unknown[]) => void)(topic, ...args),
    subscribe: (topic, key) =>
      (inner.subscribe as (t: string, k: string) => AsyncIterableIterator<never> & AsyncIterable<never>)(topic, key),
  };
}
