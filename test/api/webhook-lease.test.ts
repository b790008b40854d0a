/**
 * Webhook delivery leases, through real servers and a real receiver on 127.0.0.1:
 * - A delivery left claimed by a crashed process (leased, no heartbeat any more) is delivered
 *   once its lease has passed — not before, and in event order with the endpoint's other rows.
 * - On PostgreSQL with two server processes: a receiver slower than several leases gets exactly
 *   one request (the claiming process's heartbeat keeps its lease), and a process SIGKILLed
 *   mid-delivery has that delivery sent by another process within a minute.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killChildren, killGroup, spawnServer, type ChildServer } from '../helpers/child-server.js';
import { createTestDatabase, PG_URL } from '../helpers/postgres.js';
import { eventually, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { rawId } from '../helpers/graphql.js';

type Mode = { kind: 'ok' } | { kind: 'slow'; ms: number } | { kind: 'hang' };

interface Hit {
  webhookId: string;
  at: number;
}

interface Receiver {
  url: string;
  hits: Hit[];
  mode: Mode;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const pending = new Set<http.ServerResponse>();
  const r: Receiver = { url: '', hits: [], mode: { kind: 'ok' }, close: async () => {} };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      r.hits.push({ webhookId: String(req.headers['webhook-id']), at: Date.now() });
      const mode = r.mode;
      if (mode.kind === 'hang') return void pending.add(res);
      const answer = () => {
        pending.delete(res);
        res.writeHead(204);
        res.end();
      };
      if (mode.kind === 'slow') {
        pending.add(res);
        setTimeout(answer, mode.ms);
      } else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  r.close = () =>
    new Promise<void>((resolve) => {
      for (const p of pending) p.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

type Q = <T = any>(query: string, variables?: Record<string, unknown>) => Promise<T>;

async function createEndpoint(q: Q, url: string): Promise<string> {
  const r = await q(`mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { __typename ... on CreateWebhookEndpointPayload { webhookEndpoint { id } } ... on Error { message } } }`, {
    i: { url, eventTypes: ['CONNECTOR_CHECKED'] },
  });
  expect(r.createWebhookEndpoint.__typename, JSON.stringify(r)).toBe('CreateWebhookEndpointPayload');
  return r.createWebhookEndpoint.webhookEndpoint.id;
}

async function createNullConnector(q: Q): Promise<string> {
  const r = await q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { message } } }`, {
    i: { name: `sink ${crypto.randomUUID()}`, driver: 'null', config: {} },
  });
  expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.createConnector.connector.id;
}

/** A CONNECTOR_CHECKED event (queued for the endpoint by the process that runs the check). */
async function emitEvent(q: Q, connectorId: string): Promise<void> {
  const r = await q(`mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { __typename } }`, { i: { id: connectorId } });
  expect(r.checkConnector.__typename).toBe('CheckConnectorPayload');
}

/** The database id inside a Relay global id. */
interface DeliveryRow {
  id: string;
  messageId: string;
  status: string;
  attempts: number;
  leaseUntil: Date | null;
  leaseOwner: string | null;
}

async function deliveriesOf(s: TestServer, endpointId: string): Promise<DeliveryRow[]> {
  return s.app.services.database.prisma.$queryRawUnsafe<DeliveryRow[]>(
    `SELECT id::text AS id, "messageId", status::text AS status, attempts, "leaseUntil", "leaseOwner" FROM "WebhookDelivery" WHERE "endpointId" = $1::uuid ORDER BY "eventSequence"`,
    rawId(endpointId),
  );
}

const receivers: Receiver[] = [];
afterAll(async () => {
  killChildren();
  await Promise.all(receivers.map((r) => r.close()));
});

describe('a delivery claimed by a crashed process', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: { SLUICE_WEBHOOK_LEASE_MS: '3000', SLUICE_WEBHOOK_HEARTBEAT_MS: '500', SLUICE_WEBHOOK_POLL_MS: '50' } });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('is delivered once its lease has passed, not before, and before the endpoint’s later rows', async () => {
    const rec = await receiver();
    receivers.push(rec);
    const endpointId = await createEndpoint(s.q, rec.url);
    const db = s.app.services.database.prisma;
    const [event] = await db.$queryRawUnsafe<{ id: string; sequence: bigint }[]>(`SELECT id::text AS id, sequence FROM "Event" ORDER BY sequence DESC LIMIT 1`);
    // As a killed process leaves rows: its claim (last renewed just now) on the first, the next one due behind it.
    const now = Date.now();
    const leaseUntil = new Date(now + 3000);
    const insert = (messageId: string, seq: bigint, lease: Date | null, owner: string | null) =>
      db.$executeRawUnsafe(
        `INSERT INTO "WebhookDelivery" (id, "endpointId", "messageId", "eventId", "eventSequence", "eventType", body, status, attempts, "nextAttemptAt", "queuedAt", "createdAt", "leaseUntil", "leaseOwner")
         VALUES ($1::uuid, $2::uuid, $3, $4::uuid, $5, 'CONNECTOR_CHECKED', '{"type":"CONNECTOR_CHECKED"}', 'PENDING', 0, $6::timestamp, $6::timestamp, $6::timestamp, $7::timestamp, $8)`,
        crypto.randomUUID(),
        rawId(endpointId),
        messageId,
        event!.id,
        seq,
        new Date(now - 1000).toISOString(),
        lease?.toISOString() ?? null,
        owner,
      );
    await insert('msg_claimed_by_the_dead', event!.sequence, leaseUntil, 'a-killed-process');
    await insert('msg_next_in_line', event!.sequence + 1n, null, null);
    s.app.services.deliveries.wake();

    const hits = await eventually(async () => (rec.hits.length >= 2 ? rec.hits : null), 60_000);
    expect(hits.map((h) => h.webhookId)).toEqual(['msg_claimed_by_the_dead', 'msg_next_in_line']);
    // Nothing went out while the dead process's lease was still valid (the next row waited with it).
    for (const h of hits) expect(h.at).toBeGreaterThanOrEqual(leaseUntil.getTime());
    const rows = await eventually(async () => {
      const r = await deliveriesOf(s, endpointId);
      return r.every((d) => d.status === 'DELIVERED') ? r : null;
    });
    for (const d of rows) expect(d).toMatchObject({ attempts: 1, leaseUntil: null, leaseOwner: null });
    expect(rec.hits).toHaveLength(2);
  });
});

describe.skipIf(!PG_URL)('several processes on one PostgreSQL database', () => {
  const LEASE_MS = 3000;
  const SLOW_MS = 10_000; // more than three leases
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Record<string, string>;
  let t: TestServer | null = null;
  let child: ChildServer | null = null;
  let rec: Receiver;
  let endpointId = '';
  let connectorId = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    env = {
      DATABASE_URL: db.url,
      SLUICE_SECRET_KEYS: `lease:${crypto.randomBytes(32).toString('base64')}`,
      SLUICE_OUTBOUND_ALLOW: '127.0.0.1',
      SLUICE_WEBHOOK_LEASE_MS: String(LEASE_MS),
      SLUICE_WEBHOOK_HEARTBEAT_MS: '500',
      SLUICE_WEBHOOK_POLL_MS: '50',
      SLUICE_WEBHOOK_TIMEOUT_MS: '30000',
      SLUICE_WEBHOOK_RETRY_BASE_MS: '600000',
    };
    rec = await receiver();
    receivers.push(rec);
    t = await startTestServer({ env });
    child = await spawnServer(tempDir('sluice-lease-child-'), env);
    endpointId = await createEndpoint(t.q, rec.url);
    connectorId = await createNullConnector(t.q);
  });
  afterAll(async () => {
    killChildren();
    await t?.stop().catch(() => undefined);
    await db?.drop();
  });

  it('a receiver slower than the lease gets exactly one request: the heartbeat keeps the claim', async () => {
    rec.mode = { kind: 'slow', ms: SLOW_MS };
    const from = rec.hits.length;
    await emitEvent(t!.q, connectorId);
    const first = await eventually(async () => rec.hits[from], 30_000);
    const row = await eventually(async () => (await deliveriesOf(t!, endpointId)).find((d) => d.messageId === first.webhookId && d.status === 'DELIVERED'), 60_000);
    // Two more leases after the answer: no other process took the row in the meantime, or takes it now.
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    expect(rec.hits.slice(from).map((h) => h.webhookId)).toEqual([first.webhookId]);
    expect(row).toMatchObject({ attempts: 1, leaseOwner: null });
  });

  it('a process killed mid-delivery: another process delivers it within a minute', async () => {
    // Only the child runs the loop now, and the receiver holds its request.
    await t!.stop();
    t = null;
    rec.mode = { kind: 'hang' };
    const from = rec.hits.length;
    await emitEvent(child!.q, connectorId);
    const held = await eventually(async () => rec.hits[from], 30_000);

    killGroup(child!.child, 'SIGKILL');
    await child!.exited;
    expect(child!.child.signalCode).toBe('SIGKILL');
    const killedAt = Date.now();

    rec.mode = { kind: 'ok' };
    t = await startTestServer({ env });
    const again = await eventually(async () => rec.hits.slice(from + 1).find((h) => h.webhookId === held.webhookId), 60_000, 100);
    expect(again.at - killedAt).toBeLessThan(60_000);
    const row = await eventually(async () => (await deliveriesOf(t!, endpointId)).find((d) => d.messageId === held.webhookId && d.status === 'DELIVERED'));
    // The killed process never recorded its attempt; the survivor's is the only one.
    expect(row).toMatchObject({ attempts: 1, leaseUntil: null, leaseOwner: null });
  });
});
