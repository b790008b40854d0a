/**
 * The GraphQL client side the api and attack tests share: auth headers, typed calls that
 * fail on GraphQL errors, Relay ids, connection paging and the few mutations every suite
 * starts from (a connector, an API key). Servers come from server.ts.
 */
import { expect } from 'vitest';
import { eventually, type TestServer } from './server.js';

/** A query function that returns `data` and throws on GraphQL errors (TestServer.q, or one with a key). */
export type Gql = <T = any>(query: string, variables?: Record<string, unknown>) => Promise<T>;

/** The authorization header of an API key. */
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Runs a query with an API key and fails the test on GraphQL errors. */
export async function callAs<T = any>(s: Pick<TestServer, 'gql'>, key: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  const r = await s.gql(query, variables, bearer(key));
  if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
  return r.data as T;
}

/** A Relay global id (`base64(type:id)`). */
export const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`, 'utf8').toString('base64');

/** The type and database id inside a Relay global id. */
export const ungid = (globalId: string) => {
  const raw = Buffer.from(globalId, 'base64').toString('utf8');
  const i = raw.indexOf(':');
  return { type: raw.slice(0, i), id: raw.slice(i + 1) };
};

/** The database id inside a Relay global id. */
export function rawId(globalId: string): string {
  return ungid(globalId).id;
}

interface Connection<E> {
  edges: E[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** Every edge of a connection, page after page from `after` (`page` fetches one page). */
export async function allEdges<E = any>(page: (after: string | null) => Promise<Connection<E>>, after: string | null = null): Promise<E[]> {
  const out: E[] = [];
  for (;;) {
    const p = await page(after);
    out.push(...p.edges);
    if (!p.pageInfo.hasNextPage) return out;
    after = p.pageInfo.endCursor;
  }
}

/** Every event matching `filter` after `after`, oldest first, as `{ cursor, ...node }` with the node's `fields`. */
export async function allEvents(q: Gql, fields: string, filter: Record<string, unknown> | null = null, after: string | null = null): Promise<any[]> {
  const edges = await allEdges(
    async (a) =>
      (
        await q(
          `query($f: EventFilter, $after: String) { events(filter: $f, first: 100, after: $after) {
        pageInfo { hasNextPage endCursor } edges { cursor node { ${fields} } } } }`,
          { f: filter, after: a },
        )
      ).events,
    after,
  );
  return edges.map((e: any) => ({ cursor: e.cursor, ...e.node }));
}

export const CREATE_CONNECTOR = `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { code message } } }`;

/** Creates a connector and returns its id (fails the test when it is refused). */
export async function createConnectorId(q: Gql, name: string, driver: string, config: Record<string, unknown>): Promise<string> {
  const r = await q(CREATE_CONNECTOR, { i: { name, driver, config } });
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

/** Mints an API key with `admin` (its creation is an API_KEY_CREATED event); fails the test when refused. */
export async function mintKey(q: Gql, name: string, scope: 'READ' | 'WRITE' | 'ADMIN', expiresAt?: Date): Promise<{ key: string; id: string }> {
  const r = await q(`mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { __typename ... on CreateApiKeyPayload { key apiKey { id } } ... on Error { code message } } }`, {
    i: { name, scope, expiresAt: expiresAt?.toISOString() },
  });
  expect(r.createApiKey.__typename, JSON.stringify(r)).toBe('CreateApiKeyPayload');
  return { key: r.createApiKey.key, id: r.createApiKey.apiKey.id };
}

export const TERMINAL_JOB_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** Polls a job (as `get` reads it) until its status is one of `statuses`; resolves with it. */
export function waitForJob<J extends { status: string }>(get: () => Promise<J>, statuses = TERMINAL_JOB_STATUSES, timeoutMs = 30_000): Promise<J> {
  return eventually(async () => {
    const j = await get();
    return statuses.includes(j.status) ? j : null;
  }, timeoutMs);
}
