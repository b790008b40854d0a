/**
 * Event retention through the real server: the newest N events are kept (configured by
 * environment), older ones and their finished webhook deliveries are pruned; a cursor
 * older than the retained log is a clear CURSOR_EXPIRED error for queries, subscriptions
 * and webhook replays, while cursors within retention keep resuming with no gap.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';
import { EVENT_TYPES } from '../../src/modules/event/event.types.js';

let s: TestServer;
let csv: string;
let rx: http.Server;
let rxUrl: string;
const received: string[] = [];

beforeAll(async () => {
  const { dataDir: filesData, filesDir: dir } = testDataDir('sluice-ret-');
  csv = path.join(dir, 'people.csv');
  writeCsv(csv, 2);
  rx = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['webhook-id']));
      res.end();
    });
  });
  await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
  rxUrl = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/`;
  s = await startTestServer({ dataDir: filesData, env: {
      SLUICE_EVENT_RETENTION_DAYS: '0',
      SLUICE_EVENT_RETENTION_COUNT: '15',
      SLUICE_RETENTION_INTERVAL_MS: '100',
      SLUICE_WEBHOOK_POLL_MS: '50',
    },
  });
});
afterAll(async () => {
  await s?.stop();
  rx?.closeAllConnections();
  await new Promise((r) => rx?.close(r));
});

// Every type, the opt-in audit trail included: retention counts every event.
const EVENTS = `query($after: String, $first: Int, $types: [EventType!] = [${EVENT_TYPES.join(', ')}]) { events(after: $after, first: $first, filter: { types: $types }) { totalCount nodes { cursor type } } }`;

async function createConnector(name: string) {
  const r = await s.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename } }`, { i: { name, driver: 'csv', config: { path: csv } } });
  expect(r.createConnector.__typename).toBe('CreateConnectorPayload');
}

describe('event retention', () => {
  it('keeps the newest N events, prunes older ones and their delivered outbox rows', async () => {
    const ep = await s.q(`mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { ... on CreateWebhookEndpointPayload { webhookEndpoint { id } } } }`, {
      i: { url: rxUrl, eventTypes: ['CONNECTOR_CREATED'] },
    });
    const endpointId = ep.createWebhookEndpoint.webhookEndpoint.id;
    const first = (await s.q(EVENTS, { first: 1 })).events.nodes[0];
    for (let i = 0; i < 30; i++) await createConnector(`c${i}`);
    await eventually(async () => received.length === 30);
    const page = await eventually(async () => {
      const p = (await s.q(EVENTS, { first: 100 })).events;
      return p.totalCount === 15 ? p : null;
    });
    const oldest = page.nodes[0].cursor as string;
    expect(BigInt(oldest)).toBeGreaterThan(BigInt(first.cursor));
    // Finished deliveries of pruned events are gone; those of retained events remain.
    const d = await eventually(async () => {
      const r = await s.q(`query($id: ID!) { webhookEndpoint(id: $id) { deliveries(first: 100) { totalCount nodes { eventCursor status event { cursor } } } } }`, { id: endpointId });
      const conn = r.webhookEndpoint.deliveries;
      // One delivery per retained CONNECTOR_CREATED (the retained 15 interleave audit events).
      return conn.totalCount === page.nodes.filter((n: any) => n.type === 'CONNECTOR_CREATED').length ? conn : null;
    });
    expect(d.nodes.every((n: any) => n.status === 'DELIVERED' && BigInt(n.eventCursor) >= BigInt(oldest) && n.event?.cursor === n.eventCursor)).toBe(true);

    // An expired cursor: a clear typed error for the query, the subscription and a replay.
    const q = await s.gql(EVENTS, { after: first.cursor, first: 10 });
    expect(q.errors?.[0]).toMatchObject({ extensions: { code: 'CURSOR_EXPIRED' } });
    expect(q.errors?.[0].message).toMatch(/^cursor expired: oldest available is \d+/);
    const sub = subscribe(s.ws(), `subscription($after: String) { events(after: $after) { cursor } }`, { after: first.cursor });
    await sub.done;
    expect(JSON.stringify(sub.errors)).toMatch(/cursor expired: oldest available is/);
    expect(JSON.stringify(sub.errors)).toMatch(/CURSOR_EXPIRED/);
    const replay = await s.q(`mutation($i: ReplayWebhookEventsInput!) { replayWebhookEvents(input: $i) { __typename ... on CursorExpiredError { code oldestAvailable } } }`, {
      i: { endpointId, afterCursor: first.cursor },
    });
    expect(replay.replayWebhookEvents).toMatchObject({ __typename: 'CursorExpiredError', code: 'CURSOR_EXPIRED' });
    const oldestAvailable = replay.replayWebhookEvents.oldestAvailable as string;
    expect(BigInt(oldestAvailable)).toBeLessThan(BigInt(oldest));

    // A cursor within retention still resumes: replay of what follows, then live, no gap.
    const resumeAfter = page.nodes[4].cursor as string;
    const live = subscribe(s.ws(), `subscription($after: String, $types: [EventType!]) { events(after: $after, filter: { types: $types }) { cursor type } }`, { after: resumeAfter, types: [...EVENT_TYPES] });
    await live.waitFor((m) => m.length >= 10);
    await createConnector('live');
    const msgs = await live.waitFor((m) => m.some((x: any) => x.events.type === 'CONNECTOR_CREATED' && BigInt(x.events.cursor) > BigInt(page.nodes[14].cursor)));
    live.stop();
    expect(live.errors).toEqual([]);
    const cursors = msgs.map((m: any) => m.events.cursor);
    expect(cursors.slice(0, 10)).toEqual(page.nodes.slice(5).map((n: any) => n.cursor));
    expect(new Set(cursors).size).toBe(cursors.length);
    // The cursor of the oldest retained event is still valid. (Pruning runs every 100 ms here
    // and the live event above may have pruned one more, so read the boundary afresh.)
    const ok = await eventually(async () => {
      const oldestRetained = (await s.q(EVENTS, { first: 1 })).events.nodes[0].cursor as string;
      const r = await s.gql(EVENTS, { after: oldestRetained, first: 1 });
      return r.errors === undefined ? r : null;
    });
    expect(ok.errors).toBeUndefined();
  });

  it('prunes by age', async () => {
    const retention = s.app.services.retention;
    const latest = (await s.q(`query($t: [EventType!]) { events(last: 1, filter: { types: $t }) { nodes { cursor } } }`, { t: [...EVENT_TYPES] })).events.nodes[0].cursor as string;
    // Nothing is 30 days old yet.
    expect((await retention.prune(new Date(), { days: 30, count: 0 })).events).toBe(0);
    // A month from now, everything is.
    const r = await retention.prune(new Date(Date.now() + 31 * 86_400_000), { days: 30, count: 0 });
    expect(r.events).toBeGreaterThan(0);
    expect(r.prunedThrough).toBe(latest);
    expect((await s.q(EVENTS, { first: 10 })).events.totalCount).toBe(0);
    const expired = await s.gql(EVENTS, { after: '1', first: 1 });
    expect(expired.errors?.[0]).toMatchObject({ extensions: { code: 'CURSOR_EXPIRED' } });
    expect(expired.errors?.[0].message).toContain(`oldest available is ${latest}`);
    // The newest cursor still resumes and sees what comes next.
    await createConnector('after prune');
    const next = await s.q(EVENTS, { after: latest, first: 10 });
    expect(next.events.nodes.map((n: any) => n.type)).toContain('CONNECTOR_CREATED');
  });
});
