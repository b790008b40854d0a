/**
 * GraphQL hardening through the real server: for each limit, a request just at the limit
 * passes and one just over it is refused with its code (src/server/hardening.ts). Small
 * limits come from the environment so that everything runs fast.
 */
import http from 'node:http';
import { getIntrospectionQuery } from 'graphql';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, subscribe, type TestServer } from '../helpers/server.js';

/** Small limits, one per dimension; every query here stays inside the other limits. */
const LIMITS = {
  SLUICE_MAX_DEPTH: '5',
  SLUICE_MAX_ALIASES: '3',
  SLUICE_MAX_TOKENS: '200',
  SLUICE_MAX_DIRECTIVES: '3',
  SLUICE_MAX_COST: '50',
  SLUICE_MAX_BODY_BYTES: '4096',
  SLUICE_WS_INIT_TIMEOUT_MS: '300',
  SLUICE_WS_MAX_SUBSCRIPTIONS: '2',
  SLUICE_WS_MAX_MESSAGE_BYTES: '2048',
};

let small: TestServer; // the limits above
let limited: TestServer; // 5 operations per minute, introspection off
let dflt: TestServer; // the defaults

beforeAll(async () => {
  [small, limited, dflt] = await Promise.all([
    startTestServer({ env: LIMITS }),
    startTestServer({ env: { SLUICE_RATE_LIMIT: '5', SLUICE_RATE_LIMIT_WINDOW_MS: '60000', SLUICE_INTROSPECTION: 'false' } }),
    startTestServer(),
  ]);
});
afterAll(async () => {
  await Promise.all([small?.stop(), limited?.stop(), dflt?.stop()]);
});

const codes = (res: { errors?: { extensions?: { code?: string } }[] }) => (res.errors ?? []).map((e) => e.extensions?.code);
const ok = (res: { data?: unknown; errors?: unknown[] }) => {
  expect(res.errors).toBeUndefined();
  expect(res.data).toBeDefined();
};
const post = (s: TestServer, body: string, headers: Record<string, string> = {}) =>
  fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body });

describe('document limits', () => {
  it('depth: 5 levels pass, 6 are DEPTH_LIMIT_EXCEEDED', async () => {
    ok(await small.gql(`{ pipelines(first: 1) { edges { node { mapping { id } } } } }`));
    const res = await small.gql(`{ pipelines(first: 1) { edges { node { mapping { versions { version } } } } } }`);
    expect(res.data).toBeUndefined();
    expect(codes(res)).toEqual(['DEPTH_LIMIT_EXCEEDED']);
    expect(res.errors![0].message).toBe('Query depth limit of 5 exceeded, found 6.');
  });

  it('aliases: 3 pass, 4 are ALIAS_LIMIT_EXCEEDED', async () => {
    const q = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: pipelines(first: 1) { totalCount }`).join(' ')} }`;
    ok(await small.gql(q(3)));
    expect(codes(await small.gql(q(4)))).toEqual(['ALIAS_LIMIT_EXCEEDED']);
  });

  it('tokens: 200 pass, 201 are TOKEN_LIMIT_EXCEEDED (parsing stops)', async () => {
    // `{ events(first: 1 filter: { types: [ … ] }) { totalCount } }`: 19 tokens + one per list item.
    const q = (tokens: number) => `{ events(first: 1 filter: { types: [${' PIPELINE_CREATED'.repeat(tokens - 19)} ] }) { totalCount } }`;
    ok(await small.gql(q(200)));
    const res = await small.gql(q(201));
    expect(codes(res)).toEqual(['TOKEN_LIMIT_EXCEEDED']);
    expect(res.errors![0].message).toBe('Token limit of 200 exceeded.');
  });

  it('directives: 3 pass, 4 are DIRECTIVE_LIMIT_EXCEEDED', async () => {
    const q = (n: number) => `{ ${'__typename @skip(if: false) '.repeat(n)}}`;
    ok(await small.gql(q(3)));
    expect(codes(await small.gql(q(4)))).toEqual(['DIRECTIVE_LIMIT_EXCEEDED']);
  });

  it('cost: 50 passes, 51 is COST_LIMIT_EXCEEDED', async () => {
    // A top-level scalar costs 1.
    const q = (n: number) => `{ ${'__typename '.repeat(n)}}`;
    ok(await small.gql(q(50)));
    expect(codes(await small.gql(q(51)))).toEqual(['COST_LIMIT_EXCEEDED']);
  });

  it('the limits apply over graphql-ws too', async () => {
    const sub = subscribe(small.ws(), `subscription { events { ${'__typename '.repeat(51)}} }`);
    await sub.done;
    expect(sub.errors).toMatchObject([[{ extensions: { code: 'COST_LIMIT_EXCEEDED' } }]]);
  });

  it('the defaults let GraphiQL’s full introspection query and big legitimate queries through', async () => {
    const introspection = getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true });
    const res = await dflt.gql(introspection);
    ok(res);
    expect((res.data as any).__schema.queryType.name).toBe('Query');
    ok(
      await dflt.gql(`{
        connectors(first: 100) { totalCount edges { node { id name driver role config paused version createdAt updatedAt } } }
        mappings(first: 100) { totalCount edges { node { id name version spec { mapping cast unset passThrough } versions { version spec { mapping cast } } } } }
        pipelines(first: 10) { edges { node { id name state mapping { id } source { id } destination { id } jobs(first: 10) { totalCount nodes { id status } } } } }
      }`),
    );
  });
});

describe('page sizes', () => {
  it('first/last up to 100 work; 101 is PAGE_SIZE_EXCEEDED, literal or variable, on every connection', async () => {
    ok(await dflt.gql(`{ pipelines(first: 100) { totalCount } events(last: 100) { totalCount } b: events(first: 0) { totalCount } }`));
    ok(await dflt.gql(`query($n: Int) { connectors(first: $n) { totalCount } }`, { n: 100 }));

    const refused = [
      [`{ pipelines(first: 101) { totalCount } }`, {}],
      [`{ events(last: 101) { totalCount } }`, {}],
      [`query($n: Int) { connectors(first: $n) { totalCount } }`, { n: 101 }],
      [`query($n: Int = 101) { mappings(last: $n) { totalCount } }`, {}],
      [`query($n: Int) { webhookEndpoints(first: 1) { edges { node { deliveries(first: $n) { totalCount } } } } }`, { n: 1000 }],
      [`{ pipelines(first: 1) { edges { node { jobs(last: 101) { totalCount } } } } }`, {}],
      [`{ ...F } fragment F on Query { jobs(first: 101) { totalCount } }`, {}],
    ] as const;
    for (const [query, variables] of refused) {
      const res = await dflt.gql(query, variables);
      expect(res.data, query).toBeUndefined();
      expect(codes(res), query).toEqual(['PAGE_SIZE_EXCEEDED']);
      expect(res.errors![0].extensions.maximum).toBe(100);
    }
    const neg = await dflt.gql(`{ pipelines(first: -1) { totalCount } }`);
    expect(codes(neg)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('HTTP', () => {
  const sized = (bytes: number) => {
    const base = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
    return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(bytes - base.length) } });
  };

  it('body size: 4096 bytes pass, 4097 are 413 PAYLOAD_TOO_LARGE before parsing', async () => {
    expect(sized(4096)).toHaveLength(4096);
    const fine = await post(small, sized(4096));
    expect(fine.status).toBe(200);
    expect(await fine.json()).toEqual({ data: { __typename: 'Query' } });
    const big = await post(small, sized(4097));
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ errors: [{ extensions: { code: 'PAYLOAD_TOO_LARGE', maxBytes: 4096 } }] });
  });

  it('body size: a chunked body is counted as it streams', async () => {
    const chunked = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(small.url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
        });
        req.on('error', reject);
        for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
        req.end();
      });
    const fine = await chunked(sized(4096));
    expect(fine.status).toBe(200);
    const big = await chunked(sized(6000));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('batching is off: an array body is refused', async () => {
    const res = await post(dflt, JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]));
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).errors[0].message).toMatch(/Batching is not supported/);
  });

  it('CSRF: simple requests (form, text/plain, GET without a header) are refused; JSON POST works', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await fetch(dflt.url, { method: 'POST', headers: { 'content-type': type }, body: JSON.stringify({ query: '{ __typename }' }) });
      expect(res.status, type).toBe(403);
      expect(((await res.json()) as any).errors[0].extensions.code).toBe('CSRF_PREVENTED');
    }
    const get = (headers: Record<string, string> = {}, query = '{ __typename }') =>
      fetch(`${dflt.url}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json', ...headers } });
    const bare = await get();
    expect(bare.status).toBe(403);
    expect(((await bare.json()) as any).errors[0].extensions.code).toBe('CSRF_PREVENTED');
    const withHeader = await get({ 'x-graphql-yoga-csrf': '1' });
    expect(withHeader.status).toBe(200);
    expect(await withHeader.json()).toEqual({ data: { __typename: 'Query' } });
    // Mutations never run over GET.
    expect((await get({ 'x-graphql-yoga-csrf': '1' }, `mutation { deleteConnector(input: {id: "x"}) { __typename } }`)).status).toBe(405);
    expect((await post(dflt, JSON.stringify({ query: '{ __typename }' }))).status).toBe(200);
  });

  it('CORS: no grant for another origin; its pages cannot open a WebSocket either', async () => {
    const evil = 'http://evil.example';
    const res = await post(dflt, JSON.stringify({ query: '{ __typename }' }), { origin: evil });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(dflt.url, { method: 'OPTIONS', headers: { origin: evil, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(dflt.wsUrl, 'graphql-transport-ws', { origin: evil });
      ws.on('unexpected-response', (_req, r) => resolve(r.statusCode!));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(refused).toBe(403);
    const own = new WebSocket(dflt.wsUrl, 'graphql-transport-ws', { origin: new URL(dflt.url).origin });
    await new Promise((resolve, reject) => own.on('open', resolve).on('error', reject));
    own.close();
  });

  it('suggestions are hidden from validation and variable errors', async () => {
    const res = await dflt.gql(`{ pipelinez { totalCount } }`);
    expect(res.errors![0].message).toBe('Cannot query field "pipelinez" on type "Query".');
    const vars = await dflt.gql(`query($f: EventFilter) { events(filter: $f) { totalCount } }`, { f: { typez: [] } });
    expect(vars.errors![0].message).toMatch(/Field "typez" is not defined by type "EventFilter"\.$/);
    const enumValue = await dflt.gql(`{ events(filter: { types: [PIPELINE_CREATE] }) { totalCount } }`);
    expect(enumValue.errors![0].message).toBe('Value "PIPELINE_CREATE" does not exist in "EventType" enum.');
    const sub = subscribe(dflt.ws(), `subscription { evnts { type } }`);
    await sub.done;
    expect(sub.errors).toMatchObject([[{ message: 'Cannot query field "evnts" on type "Subscription".' }]]);
    for (const e of [...res.errors!, ...vars.errors!, ...enumValue.errors!]) expect(e.message).not.toMatch(/Did you mean/);
  });

  it('introspection: on by default, refused with INTROSPECTION_DISABLED when SLUICE_INTROSPECTION=false', async () => {
    ok(await dflt.gql(`{ __schema { queryType { name } } }`));
    for (const q of [`{ __schema { queryType { name } } }`, `{ __type(name: "Query") { name } }`]) {
      const res = await limited.gql(q);
      expect(res.data).toBeUndefined();
      expect(res.errors!.length).toBeGreaterThan(0);
      expect(new Set(codes(res))).toEqual(new Set(['INTROSPECTION_DISABLED']));
    }
    // Over graphql-ws too (not counted by the rate limiter: nothing executes).
    const sub = subscribe(limited.ws(), `{ __schema { description } }`);
    await sub.done;
    expect(sub.errors).toMatchObject([[{ extensions: { code: 'INTROSPECTION_DISABLED' } }]]);
  });

  it('rate limit: 5 operations pass, the 6th is 429 RATE_LIMITED with Retry-After; graphql-ws is counted too', async () => {
    for (let i = 0; i < 5; i++) expect((await post(limited, JSON.stringify({ query: '{ __typename }' }))).status).toBe(200);
    const res = await post(limited, JSON.stringify({ query: '{ __typename }' }));
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await res.json()) as any;
    expect(body.errors[0].extensions).toEqual({ code: 'RATE_LIMITED', retryAfter });
    const sub = subscribe(limited.ws(), `subscription { events { type } }`);
    await sub.done;
    // Over graphql-ws the refusal is the operation's result (no HTTP status to carry).
    expect(sub.errors).toHaveLength(1);
    expect((sub.errors[0] as any).extensions).toEqual({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
  });
});

describe('graphql-ws', () => {
  const open = (url: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, 'graphql-transport-ws');
      ws.on('open', () => resolve(ws)).on('error', reject);
    });
  const closed = (ws: WebSocket) => new Promise<{ code: number; at: number }>((resolve) => ws.on('close', (code) => resolve({ code, at: Date.now() })));
  const message = (ws: WebSocket) => new Promise<any>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))));

  it('init timeout: no connection_init in 300 ms closes with 4408; an init in time is acknowledged', async () => {
    const started = Date.now();
    const idle = await open(small.wsUrl);
    const { code, at } = await closed(idle);
    expect(code).toBe(4408);
    expect(at - started).toBeGreaterThanOrEqual(250);
    expect(at - started).toBeLessThan(3000);

    const prompt = await open(small.wsUrl);
    const ack = message(prompt);
    prompt.send(JSON.stringify({ type: 'connection_init' }));
    expect(await ack).toEqual({ type: 'connection_ack' });
    await new Promise((r) => setTimeout(r, 400));
    expect(prompt.readyState).toBe(WebSocket.OPEN);
    prompt.close();
  });

  it('per-socket cap: 2 operations at once pass, a 3rd is TOO_MANY_SUBSCRIPTIONS; completing one frees a slot', async () => {
    const client = small.ws();
    const a = subscribe(client, `subscription { events { type } }`);
    const b = subscribe(client, `subscription { events { type } }`);
    const c = subscribe(client, `{ __typename }`);
    await c.done;
    expect(c.errors).toMatchObject([[{ extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 2 } }]]);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    a.stop();
    // The client's complete message reaches the server, then the slot is free.
    let d;
    for (let i = 0; i < 50; i++) {
      d = subscribe(client, `{ __typename }`);
      await d.done;
      if (!d.errors.length) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(d!.errors).toEqual([]);
    expect(d!.messages).toEqual([{ __typename: 'Query' }]);
    b.stop();
  });

  it('message size: 2048 bytes pass, 2049 close the socket with 1009', async () => {
    const ws = await open(small.wsUrl);
    const ack = message(ws);
    ws.send(JSON.stringify({ type: 'connection_init' }));
    await ack;
    const sized = (bytes: number) => {
      const msg = (pad: string) => JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ __typename }', variables: { pad } } });
      return msg('x'.repeat(bytes - msg('').length));
    };
    expect(Buffer.byteLength(sized(2048))).toBe(2048);
    const next = message(ws);
    ws.send(sized(2048));
    expect(await next).toEqual({ id: '1', type: 'next', payload: { data: { __typename: 'Query' } } });
    const close = closed(ws);
    ws.send(sized(2049));
    expect((await close).code).toBe(1009);
  });
});
