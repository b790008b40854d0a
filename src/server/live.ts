/**
 * Ends live transports of a key that stopped granting access (see live-connections.ts):
 * - graphql-ws: the socket is closed with 4403 (`closeSocketOnEnd`);
 * - subscriptions over SSE (`accept: text/event-stream` on /graphql): the stream yields one
 *   last result with an `UNAUTHENTICATED` error and completes, so the response ends.
 */
import type { Plugin } from '@envelop/core';
import type { ExecutionResult } from 'graphql';
import type { WebSocket } from 'ws';
import { GraphQLError } from '../graphql/graphql-cjs.js';
import type { EndReason, LiveConnections } from '../modules/workspace/live-connections.js';
import type { AuthContext } from '../tenancy/scope.js';

const REASONS: Record<EndReason, string> = {
  revoked: 'Forbidden: the API key was revoked',
  expired: 'Forbidden: the API key expired',
};

/** Tracks an authenticated graphql-ws socket until it closes; revocation or expiry closes it with 4403. */
export function closeSocketOnEnd(live: LiveConnections, auth: AuthContext, socket: WebSocket): void {
  const untrack = live.track(auth, (reason) => socket.close(4403, REASONS[reason]));
  socket.once('close', untrack);
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> & AsyncIterator<unknown> {
  return !!v && typeof v === 'object' && Symbol.asyncIterator in v;
}

/**
 * `it`, ending early when `end` is called: the pending `next` answers `last()` at once, then
 * the iterator is done; the source is returned without waiting for it.
 */
function endable<T>(it: AsyncIterator<T>, last: () => T): { iterator: AsyncIterableIterator<T>; end(): void } {
  let ended = false;
  let lastSent = false;
  let wake!: () => void;
  const endSignal = new Promise<'ended'>((resolve) => (wake = () => resolve('ended')));
  const finish = (): IteratorResult<T> => {
    if (lastSent) return { done: true, value: undefined };
    lastSent = true;
    return { done: false, value: last() };
  };
  const iterator: AsyncIterableIterator<T> = {
    next: async () => {
      if (ended) return finish();
      const r = await Promise.race([it.next(), endSignal]);
      return r === 'ended' ? finish() : r;
    },
    return: async (value?: unknown) => {
      ended = lastSent = true;
      wake();
      await it.return?.(value as T);
      return { done: true, value: undefined };
    },
    throw: async (err?: unknown) => {
      ended = lastSent = true;
      wake();
      if (it.throw) return it.throw(err);
      throw err;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return {
    iterator,
    end: () => {
      if (ended) return;
      ended = true;
      wake();
      void it.return?.()?.catch?.(() => undefined);
    },
  };
}

/**
 * Envelop plugin: every subscription served over HTTP (SSE) is tracked by its key and ended
 * on revocation or expiry. graphql-ws operations are left alone: their socket is closed.
 */
export function useLiveStreams(live: LiveConnections): Plugin<{ auth?: AuthContext; socket?: unknown }> {
  return {
    onSubscribe: ({ args }) => ({
      onSubscribeResult: ({ result, setResult }) => {
        const { auth, socket } = args.contextValue;
        if (socket || !auth?.apiKeyId || !isAsyncIterable(result)) return;
        let untrack = () => {};
        const stream = endable(result as AsyncIterator<ExecutionResult>, () => {
          const error = new GraphQLError('The API key is unknown, revoked or expired.', { extensions: { code: 'UNAUTHENTICATED' } });
          return { errors: [error] } as ExecutionResult;
        });
        const done = () => untrack();
        untrack = live.track(auth, () => stream.end());
        const it = stream.iterator;
        const wrapped: AsyncIterableIterator<ExecutionResult> = {
          next: async () => {
            const r = await it.next();
            if (r.done) done();
            return r;
          },
          return: (v?: unknown) => {
            done();
            return it.return!(v);
          },
          throw: (e?: unknown) => {
            done();
            return it.throw!(e);
          },
          [Symbol.asyncIterator]: () => wrapped,
        };
        setResult(wrapped);
      },
    }),
  };
}
