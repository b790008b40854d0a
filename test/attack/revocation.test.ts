/**
 * Attack suite: a key that is revoked, or reaches its expiry, loses its open connections —
 * graphql-ws sockets close with 4403 and SSE streams end within 5 s, with nothing delivered
 * after — while other keys' connections keep delivering. Real server, no local access; the
 * bootstrap ADMIN key mints the others.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, takeSseMessages, type SseMessage, type TestServer } from '../helpers/server.js';
import { bearer, callAs, mintKey } from '../helpers/graphql.js';

const ADMIN = 'sk_' + Buffer.alloc(32, 41).toString('base64url');
const EVENTS = `subscription { events(filter: { types: [API_KEY_CREATED] }) { type message } }`;

let s: TestServer;
const clients: Client[] = [];
const controllers: AbortController[] = [];

const as = <T = any>(key: string, query: string, variables?: Record<string, unknown>) => callAs<T>(s, key, query, variables);

/** Mints a key with the ADMIN key; its creation is also an API_KEY_CREATED event for the feeds. */
const mint = (name: string, scope: 'READ' | 'WRITE', expiresAt?: Date) => mintKey((q, v) => as(ADMIN, q, v), name, scope, expiresAt);

async function revoke(by: string, id: string) {
  const r = await as(by, `mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { __typename ... on Error { code message } } }`, { i: { id } });
  expect(r.revokeApiKey.__typename).toBe('RevokeApiKeyPayload');
}

/** A graphql-ws `events` subscription as `key`: what it received and how its socket closed. */
async function wsFeed(key: string) {
  const messages: string[] = [];
  let closedAt = 0;
  const client = createClient({ url: s.wsUrl, webSocketImpl: WebSocket, connectionParams: bearer(key), retryAttempts: 0, lazy: false, onNonLazyError: () => undefined });
  clients.push(client);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    client.on('closed', (e) => {
      closedAt = Date.now();
      const ev = e as { code: number; reason: string };
      resolve({ code: ev.code, reason: String(ev.reason) });
    }),
  );
  await new Promise<void>((resolve) => client.on('connected', () => resolve()));
  let started!: () => void;
  const subscribed = new Promise<void>((r) => (started = r));
  client.subscribe<{ events: { type: string; message: string } }>(
    { query: EVENTS },
    { next: (m) => void (m.data && messages.push(m.data.events.message)), error: () => undefined, complete: () => undefined },
  );
  // The server has the subscription once an event published after it arrives; a marker key proves it.
  void (async () => {
    for (let i = 0; i < 50 && !messages.length; i++) {
      await mint(`marker ${Math.random()}`, 'READ');
      await new Promise((r) => setTimeout(r, 100));
    }
    started();
  })();
  await subscribed;
  expect(messages.length, 'the feed delivers before revocation').toBeGreaterThan(0);
  return { messages, closed, closedAt: () => closedAt };
}

/** An SSE `events` subscription as `key`, read in the background until the response ends. */
async function sseFeed(key: string) {
  const ctrl = new AbortController();
  controllers.push(ctrl);
  const res = await fetch(s.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(key) },
    body: JSON.stringify({ query: EVENTS }),
    signal: ctrl.signal,
  });
  expect(res.status).toBe(200);
  const messages: SseMessage[] = [];
  let endedAt = 0;
  const ended = (async () => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf = takeSseMessages(buf + decoder.decode(value, { stream: true }), messages);
      }
    } catch {
      // aborted by the test
    }
    endedAt = Date.now();
  })();
  const next = () => messages.filter((m) => m.event === 'next');
  for (let i = 0; i < 50 && !next().some((m) => m.data?.data); i++) {
    await mint(`marker ${Math.random()}`, 'READ');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(next().some((m) => m.data?.data), 'the SSE feed delivers before revocation').toBe(true);
  return { messages, next, ended, endedAt: () => endedAt };
}

/** Resolves with `p`, or rejects after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);
}

beforeAll(async () => {
  s = await startTestServer({ env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: ADMIN } });
});

afterAll(async () => {
  for (const c of controllers) c.abort();
  await Promise.all(clients.map((c) => c.dispose()));
  await s?.stop();
});

describe('revocation reaches open connections', () => {
  it('revoking a key closes its graphql-ws socket with 4403 within 5 s; nothing is delivered after; other keys keep their feed', async () => {
    const victim = await mint('victim ws', 'READ');
    const bystander = await mint('bystander ws', 'WRITE');
    const revoked = await wsFeed(victim.key);
    const other = await wsFeed(bystander.key);

    const revokedAt = Date.now();
    await revoke(ADMIN, victim.id);
    const close = await within(revoked.closed, 5_000, 'the 4403 close');
    expect(close.code).toBe(4403);
    expect(close.reason).toMatch(/revoked/);
    expect(revoked.closedAt() - revokedAt).toBeLessThan(5_000);

    const seen = revoked.messages.length;
    await mint('after revocation', 'READ');
    await expect.poll(() => other.messages.some((m) => m.includes('"after revocation"')), { timeout: 10_000 }).toBe(true);
    expect(revoked.messages.length).toBe(seen);
    // The bystander's socket is still open and serving.
    const res = await s.gql(`{ viewer { scope } }`, {}, bearer(bystander.key));
    expect(res.data?.viewer.scope).toBe('WRITE');
  });

  it('revoking a key ends its SSE stream within 5 s with an UNAUTHENTICATED error; other keys keep theirs', async () => {
    const victim = await mint('victim sse', 'READ');
    const bystander = await mint('bystander sse', 'READ');
    const revoked = await sseFeed(victim.key);
    const other = await sseFeed(bystander.key);

    const revokedAt = Date.now();
    // A WRITE key that created nothing may only revoke itself; the ADMIN key revokes any.
    await revoke(ADMIN, victim.id);
    await within(revoked.ended, 5_000, 'the end of the SSE stream');
    expect(revoked.endedAt() - revokedAt).toBeLessThan(5_000);
    const last = revoked.next().at(-1)!;
    expect(last.data.errors[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect(revoked.messages.at(-1)!.event).toBe('complete');

    const seen = revoked.next().length;
    await mint('after sse revocation', 'READ');
    await expect
      .poll(() => other.next().some((m) => JSON.stringify(m.data).includes('after sse revocation')), { timeout: 10_000 })
      .toBe(true);
    expect(revoked.next().length).toBe(seen);
  });

  it('a key that revokes itself loses its own socket too', async () => {
    const self = await mint('self revoker', 'WRITE');
    const feed = await wsFeed(self.key);
    await revoke(self.key, self.id);
    expect((await within(feed.closed, 5_000, 'the 4403 close')).code).toBe(4403);
  });
});

describe('expiry reaches open connections', () => {
  it('a key reaching its expiresAt loses its socket (4403) and its SSE stream, not before; other keys are unaffected', async () => {
    const expiresAt = new Date(Date.now() + 4_000);
    const expiring = await mint('expiring', 'READ', expiresAt);
    const bystander = await mint('bystander expiry', 'READ');
    const ws = await wsFeed(expiring.key);
    const sse = await sseFeed(expiring.key);
    const other = await wsFeed(bystander.key);

    const close = await within(ws.closed, expiresAt.getTime() - Date.now() + 5_000, 'the 4403 close at expiry');
    expect(close.code).toBe(4403);
    expect(close.reason).toMatch(/expired/);
    expect(ws.closedAt()).toBeGreaterThanOrEqual(expiresAt.getTime());
    await within(sse.ended, 5_000, 'the end of the SSE stream at expiry');
    expect(sse.endedAt()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(sse.next().at(-1)!.data.errors[0].extensions.code).toBe('UNAUTHENTICATED');

    // The expired key is refused over HTTP too; the other key's feed goes on.
    const res = await s.gql(`{ viewer { scope } }`, {}, bearer(expiring.key));
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const seen = ws.messages.length;
    await mint('after expiry', 'READ');
    await expect.poll(() => other.messages.some((m) => m.includes('"after expiry"')), { timeout: 10_000 }).toBe(true);
    expect(ws.messages.length).toBe(seen);
  });
});
