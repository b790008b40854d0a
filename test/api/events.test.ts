/**
 * The event log through the real server: strictly increasing sequences, filters, Relay
 * pagination in both directions with the event's own `cursor`, and the resumable `events`
 * subscription — over graphql-ws (replay after a cursor, then live, with no gap and no
 * duplicate even while new events commit during the replay) and over SSE.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, subscribe, takeSseMessages, testDataDir, type TestServer } from '../helpers/server.js';
import { DEFAULT_WORKSPACE_ID } from '../../src/tenancy/scope.js';
import { allEdges } from '../helpers/graphql.js';

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let csvPath: string;

interface Ev {
  id: string;
  cursor: string;
  type: string;
  message: string;
  pipelineId: string | null;
  connectorId: string | null;
  jobId: string | null;
  createdAt: string;
}
const EVENT = `id cursor type message pipelineId connectorId jobId createdAt`;
const PAGE = `query($f: EventFilter, $first: Int, $after: String, $last: Int, $before: String) {
  events(filter: $f, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { ${EVENT} } }
  }
}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every event matching `filter` (after `after`), oldest first, read page by page. */
async function allEvents(filter: Record<string, unknown> = {}, after: string | null = null): Promise<Ev[]> {
  const edges = await allEdges(async (a) => (await s.q(PAGE, { f: filter, first: 100, after: a })).events, after);
  return edges.map((e: any) => e.node);
}

async function createConnector(name: string): Promise<string> {
  const r = await s.q(
    `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } } }`,
    { i: { name, driver: 'csv', config: { path: csvPath } } },
  );
  expect(r.createConnector.__typename).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

let sourceId: string;
let destinationId: string;
let pipelineId: string;
let checkJobId: string;

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-events-'));
  csvPath = path.join(dir, 'people.csv');
  fs.writeFileSync(csvPath, 'id,name\n1,Ann\n2,Bob\n3,Cy\n');
  s = await startTestServer({ dataDir: filesData });
  sourceId = await createConnector('events source');
  const dst = await s.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ... on CreateConnectorPayload { connector { id } } } }`, {
    i: { name: 'events destination', driver: 'jsonl', config: { path: path.join(dir, 'out.jsonl') } },
  });
  destinationId = dst.createConnector.connector.id;
  const p = await s.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ... on CreatePipelinePayload { pipeline { id } } } }`, {
    i: { name: 'events pipeline', sourceId, destinationId },
  });
  pipelineId = p.createPipeline.pipeline.id;
  const check = await s.q(`mutation($id: ID!) { checkConnector(input: {id: $id}) { ... on CheckConnectorPayload { job { id } } } }`, { id: sourceId });
  checkJobId = check.checkConnector.job.id;
  // A log long enough that a replay takes more than one page (the stream reads 500 at a
  // time). Seeded in one statement for speed (nothing subscribes yet, so nothing to publish).
  await s.app.services.database.prisma.event.createMany({
    data: Array.from({ length: 700 }, (_, i) => ({ workspaceId: DEFAULT_WORKSPACE_ID, type: 'JOB_PROGRESS', message: `seed ${i}`, data: { seed: i } })),
  });
});
afterAll(async () => {
  await s?.stop();
});

describe('events query', () => {
  it('sequences are strictly increasing; `cursor` is the edge cursor', async () => {
    const page = (await s.q(PAGE, { first: 100 })).events;
    expect(page.totalCount).toBe(704);
    expect(page.edges).toHaveLength(100);
    for (const e of page.edges) expect(e.cursor).toBe(e.node.cursor);
    const seqs = page.edges.map((e: any) => BigInt(e.cursor));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i] > seqs[i - 1]).toBe(true);
    expect(page.edges.slice(0, 4).map((e: any) => e.node.type)).toEqual(['CONNECTOR_CREATED', 'CONNECTOR_CREATED', 'PIPELINE_CREATED', 'CONNECTOR_CHECKED']);
    const all = await allEvents();
    expect(all).toHaveLength(page.totalCount);
    for (let i = 1; i < all.length; i++) expect(BigInt(all[i]!.cursor) > BigInt(all[i - 1]!.cursor)).toBe(true);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
  });

  it('a page is at most 100 events (more is PAGE_SIZE_EXCEEDED); the default is 20', async () => {
    const over = await s.gql(PAGE, { first: 101 });
    expect(over.errors?.[0]?.extensions?.code).toBe('PAGE_SIZE_EXCEEDED');
    const big = (await s.q(PAGE, { first: 100 })).events;
    expect(big.edges).toHaveLength(100);
    expect(big.pageInfo.hasNextPage).toBe(true);
    const dflt = (await s.q(PAGE, {})).events;
    expect(dflt.edges).toHaveLength(20);
  });

  it('filters by pipelineId, connectorId, jobId and types', async () => {
    const all = await allEvents();
    const byPipeline = await allEvents({ pipelineId });
    expect(byPipeline.map((e) => e.type)).toEqual(['PIPELINE_CREATED']);
    expect(byPipeline).toEqual(all.filter((e) => e.pipelineId === pipelineId));

    const byConnector = await allEvents({ connectorId: sourceId });
    expect(byConnector.map((e) => e.type)).toEqual(['CONNECTOR_CREATED', 'CONNECTOR_CHECKED']);
    expect(byConnector.every((e) => e.connectorId === sourceId)).toBe(true);

    const byJob = await allEvents({ jobId: checkJobId });
    expect(byJob.map((e) => [e.type, e.jobId, e.connectorId])).toEqual([['CONNECTOR_CHECKED', checkJobId, sourceId]]);

    const byTypes = await allEvents({ types: ['PIPELINE_CREATED', 'CONNECTOR_CHECKED'] });
    expect(byTypes).toEqual(all.filter((e) => e.type === 'PIPELINE_CREATED' || e.type === 'CONNECTOR_CHECKED'));
    expect(byTypes).toHaveLength(2);

    const combined = (await s.q(PAGE, { f: { connectorId: sourceId, types: ['CONNECTOR_CHECKED'] } })).events;
    expect(combined.totalCount).toBe(1);
    expect(combined.edges[0].node.jobId).toBe(checkJobId);

    const none = (await s.q(PAGE, { f: { pipelineId: Buffer.from('Pipeline:00000000-0000-7000-8000-000000000000').toString('base64') } })).events;
    expect(none).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: '', endCursor: '' }, edges: [] });
  });

  it('filters by since / until (inclusive)', async () => {
    const all = await allEvents();
    const times = [...new Set(all.map((e) => e.createdAt))].sort();
    expect(times.length).toBeGreaterThan(2);
    const since = times[1]!;
    const until = times[times.length - 2]!;
    expect(await allEvents({ since })).toEqual(all.filter((e) => e.createdAt >= since));
    expect(await allEvents({ until })).toEqual(all.filter((e) => e.createdAt <= until));
    const between = await allEvents({ since, until });
    expect(between).toEqual(all.filter((e) => e.createdAt >= since && e.createdAt <= until));
    expect(between.length).toBeLessThan(all.length);
    expect((await s.q(PAGE, { f: { since: '2100-01-01T00:00:00Z' } })).events.totalCount).toBe(0);
  });

  it('pages forward with first/after and backward with last/before, using event cursors', async () => {
    const filter = { types: ['CONNECTOR_CREATED', 'PIPELINE_CREATED', 'CONNECTOR_CHECKED', 'JOB_PROGRESS'] };
    const all = await allEvents(filter);
    const window = all.slice(0, 23);
    const lastCursor = window.at(-1)!.cursor;
    const f = { ...filter, until: undefined };

    // Forward: pages of 5 over the first 23 events (before = the 24th event's cursor).
    const forward: Ev[] = [];
    let after: string | null = null;
    const sizes: number[] = [];
    for (;;) {
      const page: any = (await s.q(PAGE, { f, first: 5, after, before: all[23]!.cursor })).events;
      expect(page.totalCount).toBe(all.length);
      sizes.push(page.edges.length);
      forward.push(...page.edges.map((e: any) => e.node));
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(sizes).toEqual([5, 5, 5, 5, 3]);
    expect(forward).toEqual(window);

    // Backward: last 5 before a cursor, until the start.
    const backward: Ev[] = [];
    let before: string | null = all[23]!.cursor;
    for (;;) {
      const page: any = (await s.q(PAGE, { f, last: 5, before })).events;
      backward.unshift(...page.edges.map((e: any) => e.node));
      expect(page.pageInfo.hasNextPage).toBe(true);
      if (!page.pageInfo.hasPreviousPage) break;
      before = page.pageInfo.startCursor;
    }
    expect(backward).toEqual(window);
    expect(backward.at(-1)!.cursor).toBe(lastCursor);

    // `last` alone is the newest events, still oldest first.
    const newest = (await s.q(PAGE, { f, last: 3 })).events;
    expect(newest.edges.map((e: any) => e.node)).toEqual(all.slice(-3));
    expect(newest.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });

    // `after` a cursor from an unfiltered listing works with any filter.
    const mid = all[10]!.cursor;
    const rest = (await s.q(PAGE, { f: { types: ['JOB_PROGRESS'] }, first: 3, after: mid })).events;
    expect(rest.edges.map((e: any) => e.node)).toEqual(all.filter((e) => e.type === 'JOB_PROGRESS' && BigInt(e.cursor) > BigInt(mid)).slice(0, 3));
  });

  it.each([
    ['after', 'abc'],
    ['after', '-1'],
    ['before', '12.5'],
    ['after', Buffer.from('Event:1').toString('base64')],
  ])('an invalid %s cursor (%s) is a clear error', async (arg, cursor) => {
    const res = await s.gql(PAGE, { first: 5, [arg]: cursor });
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0].message).toBe(`invalid cursor: ${arg}: expected an event cursor (a sequence number)`);
    expect(res.errors![0].extensions.code).toBe('VALIDATION_FAILED');
  });
});

describe('events subscription over graphql-ws', () => {
  const SUB = `subscription($after: String, $f: EventFilter) { events(after: $after, filter: $f) { ${EVENT} } }`;

  it('resumes after a cursor: replays what was missed, then live, with no gap and no duplicate while events commit during the replay', async () => {
    // A replay of 2400 events (five pages of the stream's log reads).
    await s.app.services.database.prisma.event.createMany({
      data: Array.from({ length: 2000 }, (_, i) => ({ workspaceId: DEFAULT_WORKSPACE_ID, type: 'JOB_PROGRESS', message: `replay seed ${i}`, data: { seed: i } })),
    });
    const latest = (await s.q(PAGE, { last: 1 })).events.edges[0].node as Ev;
    const cursor = (BigInt(latest.cursor) - 2400n).toString();
    const replayed = 2400;

    const client = s.ws();
    const sub = subscribe<{ events: Ev }>(client, SUB, { after: cursor });
    // Right away, 50 new events commit concurrently — while the replay runs. The API stays
    // responsive meanwhile: many of them commit before the client has the whole replay.
    let duringReplay = 0;
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        createConnector(`during replay ${i}`).then((id) => {
          if (sub.messages.length > 0 && sub.messages.length < replayed) duringReplay++;
          return id;
        }),
      ),
    );
    expect(new Set(ids).size).toBe(50);

    const expected = await allEvents({}, cursor);
    expect(expected).toHaveLength(replayed + 50);
    await sub.waitFor((m) => m.length >= expected.length, 30_000);
    await sleep(300); // anything extra (a duplicate) would arrive now
    expect(sub.errors).toEqual([]);
    const got = sub.messages.map((m) => m.events);
    expect(got.map((e) => e.cursor)).toEqual(expected.map((e) => e.cursor));
    expect(got).toEqual(expected);
    expect(duringReplay).toBeGreaterThanOrEqual(10);

    // And it is live: the next event arrives too.
    const extra = await createConnector('after replay');
    await sub.waitFor((m) => m.length === expected.length + 1);
    expect(sub.messages.at(-1)!.events).toMatchObject({ type: 'CONNECTOR_CREATED', connectorId: extra });
    sub.stop();
  });

  it('a filtered resumable subscription gets exactly the matching events', async () => {
    const start = (await s.q(PAGE, { last: 1 })).events.edges[0].cursor as string;
    const a = await createConnector('filter a');
    const b = await createConnector('filter b');
    await s.q(`mutation($id: ID!) { updateConnector(input: {id: $id, name: "filter a2"}) { __typename } }`, { id: a });
    await s.q(`mutation($id: ID!) { deleteConnector(input: {id: $id}) { __typename } }`, { id: b });

    const client = s.ws();
    const types = subscribe<{ events: Ev }>(client, SUB, { after: start, f: { types: ['CONNECTOR_UPDATED', 'CONNECTOR_DELETED'] } });
    const byConnector = subscribe<{ events: Ev }>(client, SUB, { after: start, f: { connectorId: a } });
    await types.waitFor((m) => m.length >= 2);
    await byConnector.waitFor((m) => m.length >= 2);
    // Live, interleaved with events that do not match.
    await createConnector('filter c');
    await s.q(`mutation($id: ID!) { updateConnector(input: {id: $id, name: "filter a3"}) { __typename } }`, { id: a });
    await types.waitFor((m) => m.length >= 3);
    await byConnector.waitFor((m) => m.length >= 3);
    await sleep(300);

    expect(types.messages.map((m) => [m.events.type, m.events.connectorId])).toEqual([
      ['CONNECTOR_UPDATED', a],
      ['CONNECTOR_DELETED', b],
      ['CONNECTOR_UPDATED', a],
    ]);
    expect(types.messages.map((m) => m.events)).toEqual(await allEvents({ types: ['CONNECTOR_UPDATED', 'CONNECTOR_DELETED'] }, start));
    expect(byConnector.messages.map((m) => m.events.type)).toEqual(['CONNECTOR_CREATED', 'CONNECTOR_UPDATED', 'CONNECTOR_UPDATED']);
    expect(byConnector.messages.map((m) => m.events)).toEqual(await allEvents({ connectorId: a }, start));
    types.stop();
    byConnector.stop();
  });

  it('without `after`, only events committed from now on arrive (none of the history), each once', async () => {
    const latest = (await s.q(PAGE, { last: 1 })).events.edges[0].cursor as string;
    const client = s.ws();
    const sub = subscribe<{ events: Ev }>(client, SUB, {});
    // No acknowledgement for a subscription: produce events until the first one shows up.
    for (let i = 0; i < 100 && sub.messages.length === 0; i++) {
      await createConnector(`probe ${i}`);
      await sleep(50);
    }
    expect(sub.messages.length).toBeGreaterThan(0);
    const first = sub.messages[0]!.events;
    expect(BigInt(first.cursor) > BigInt(latest)).toBe(true);
    for (let i = 0; i < 5; i++) await createConnector(`live ${i}`);
    const expected = await allEvents({}, (BigInt(first.cursor) - 1n).toString());
    await sub.waitFor((m) => m.length >= expected.length);
    await sleep(300);
    expect(sub.messages.map((m) => m.events)).toEqual(expected);
    expect(expected.slice(-5).map((e) => e.type)).toEqual(Array(5).fill('CONNECTOR_CREATED'));
    sub.stop();
  });

  it('an invalid cursor is a clear error', async () => {
    const client = s.ws();
    const sub = subscribe(client, SUB, { after: 'yesterday' });
    await sub.done;
    expect(sub.messages).toEqual([]);
    expect(sub.errors).toHaveLength(1);
    expect(sub.errors[0]).toMatchObject({
      message: 'invalid cursor: after: expected an event cursor (a sequence number)',
      extensions: { code: 'VALIDATION_FAILED' },
    });
  });
});

/** Reads `event:`/`data:` messages from an SSE response until `until` is satisfied. */
async function readSse(res: Response, until: (msgs: { event: string; data: any }[]) => boolean, timeoutMs = 30_000) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const msgs: { event: string; data: any }[] = [];
  let buf = '';
  const deadline = Date.now() + timeoutMs;
  while (!until(msgs)) {
    if (Date.now() > deadline) throw new Error(`SSE timed out; got ${JSON.stringify(msgs).slice(0, 2000)}`);
    const { value, done } = await reader.read();
    if (done) break;
    buf = takeSseMessages(buf + decoder.decode(value, { stream: true }), msgs);
  }
  await reader.cancel().catch(() => undefined);
  return msgs;
}

describe('subscriptions over SSE', () => {
  it('`events` over HTTP with accept: text/event-stream replays after a cursor, then goes live', async () => {
    const all = (await s.q(PAGE, { last: 3 })).events.edges.map((e: any) => e.node) as Ev[];
    const cursor = all[0]!.cursor;
    const ctrl = new AbortController();
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: `subscription($after: String) { events(after: $after) { cursor type connectorId } }`, variables: { after: cursor } }),
      signal: ctrl.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const live = createConnector('over sse');
    const msgs = await readSse(res, (m) => m.filter((x) => x.event === 'next').length >= 3);
    const id = await live;
    ctrl.abort();
    const next = msgs.filter((m) => m.event === 'next').map((m) => m.data.data.events);
    expect(next.slice(0, 2)).toEqual(all.slice(-2).map((e) => ({ cursor: e.cursor, type: e.type, connectorId: e.connectorId })));
    expect(next[2]).toMatchObject({ type: 'CONNECTOR_CREATED', connectorId: id });
    expect(BigInt(next[2].cursor) > BigInt(all.at(-1)!.cursor)).toBe(true);
  });

  it('`pipelineStateChanged` over SSE follows a pipeline from START to READY', async () => {
    const ctrl = new AbortController();
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: `subscription($id: ID!) { pipelineStateChanged(pipelineId: $id) { pipelineId action state previousState } }`,
        variables: { id: pipelineId },
      }),
      signal: ctrl.signal,
    });
    expect(res.status).toBe(200);
    const start = await s.q(`mutation($id: ID!) { startPipeline(input: {id: $id}) { __typename ... on StartPipelinePayload { pipeline { state } } } }`, { id: pipelineId });
    expect(start.startPipeline).toEqual({ __typename: 'StartPipelinePayload', pipeline: { state: 'INIT' } });
    const msgs = await readSse(res, (m) => m.some((x) => x.event === 'next' && x.data.data.pipelineStateChanged.state === 'READY'));
    ctrl.abort();
    expect(msgs.filter((m) => m.event === 'next').map((m) => m.data.data.pipelineStateChanged)).toEqual([
      { pipelineId, action: 'START', state: 'INIT', previousState: 'STOP' },
      { pipelineId, action: 'INITIAL_LOAD_COMPLETED', state: 'READY', previousState: 'INIT' },
    ]);
    const ev = await allEvents({ pipelineId, types: ['PIPELINE_STATE_CHANGED'] });
    expect(ev).toHaveLength(2);
  });
});
