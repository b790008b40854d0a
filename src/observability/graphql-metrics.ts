/**
 * Envelop plugin feeding Metrics from GraphQL traffic, on every transport (HTTP, SSE, graphql-ws):
 * - `sluice_graphql_request_duration_seconds`: queries and mutations, timed from parse to
 *   their result (an operation refused before execution — parse or validation errors — is not
 *   timed); subscriptions are not timed (they last as long as their client wants);
 * - `sluice_subscriptions_active`: +1 when a subscription's stream opens, −1 once when it ends
 *   (completed, returned by the client or the server, or failed).
 */
import type { Plugin } from '@envelop/core';
import type { Metrics } from './metrics.js';

interface OperationNode {
  kind: string;
  operation?: string;
  name?: { value: string } | undefined;
}

/** The operation a request runs: the named one, or the only one. */
function operationOf(document: unknown, operationName: string | null | undefined): { type: string; name: string | null } {
  const defs = ((document as { definitions?: readonly OperationNode[] } | null)?.definitions ?? []).filter((d) => d.kind === 'OperationDefinition');
  const op = operationName ? defs.find((d) => d.name?.value === operationName) : defs.length === 1 ? defs[0] : undefined;
  return { type: op?.operation ?? 'unknown', name: op?.name?.value ?? null };
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> & AsyncIterator<unknown> {
  return !!v && typeof v === 'object' && Symbol.asyncIterator in v;
}

/** `it`, calling `onEnd` once when it is done, returned or throws. */
function onEnd<T>(it: AsyncIterator<T>, end: () => void): AsyncIterableIterator<T> {
  let ended = false;
  const once = () => {
    if (ended) return;
    ended = true;
    end();
  };
  const wrapped: AsyncIterableIterator<T> = {
    next: async () => {
      try {
        const r = await it.next();
        if (r.done) once();
        return r;
      } catch (err) {
        once();
        throw err;
      }
    },
    return: async (value?: unknown) => {
      once();
      return it.return ? it.return(value as T) : { done: true, value: undefined };
    },
    throw: async (err?: unknown) => {
      once();
      if (it.throw) return it.throw(err);
      throw err;
    },
    [Symbol.asyncIterator]: () => wrapped,
  };
  return wrapped;
}

export function useGraphQLMetrics(metrics: Metrics): Plugin {
  /** When each request's parse began (keyed by its context object, which envelop keeps). */
  const parsedAt = new WeakMap<object, number>();
  return {
    onParse: ({ context }) => {
      if (context && typeof context === 'object') parsedAt.set(context, performance.now());
    },
    onExecute: ({ args }) => {
      const ctx = args.contextValue as object;
      const started = parsedAt.get(ctx) ?? performance.now();
      const { type, name } = operationOf(args.document, args.operationName);
      return {
        onExecuteDone: () => {
          parsedAt.delete(ctx);
          metrics.graphqlOperation(type, name, (performance.now() - started) / 1000);
        },
      };
    },
    onSubscribe: () => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (!isAsyncIterable(result)) return;
        metrics.subscriptionOpened();
        setResult(onEnd(result as AsyncIterator<never>, () => metrics.subscriptionClosed()) as never);
      },
    }),
  };
}
