import { afterEach, describe, expect, it } from 'vitest';
import {
  HttpError,
  backoffDelay,
  parseRetryAfter,
  redactUrl,
  request,
  requestJson,
  setOutboundGuard,
  type RetryEvent,
} from '../../src/engine/drivers/http/client.js';
import { DriverError } from '../../src/engine/drivers/types.js';
import { closedPort, json, startServer, type LocalServer } from './support/local-server.js';

const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(handler: Parameters<typeof startServer>[0]): Promise<LocalServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

const fast = { baseDelayMs: 5, maxDelayMs: 20 };

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('http client: retries', () => {
  it('retries 503 and 500 with backoff, then succeeds; counts attempts', async () => {
    const s = await server((_req, res, n) => (n < 3 ? json(res, n === 1 ? 503 : 500, { n }) : json(res, 200, { ok: true })));
    const retries: RetryEvent[] = [];
    const res = await requestJson(`${s.url}items`, {}, { ...fast, onRetry: (e) => retries.push(e) });
    expect(res.body).toEqual({ ok: true });
    expect(s.requests).toHaveLength(3);
    expect(retries.map((r) => [r.attempt, r.reason])).toEqual([
      [1, 'HTTP 503'],
      [2, 'HTTP 500'],
    ]);
    for (const r of retries) expect(r.delayMs).toBeLessThanOrEqual(20);
  });

  it('gives up after maxAttempts with a retryable HttpError naming status and URL', async () => {
    const s = await server((_req, res) => json(res, 502, { error: 'upstream' }));
    const e = await rejection(request(`${s.url}x?a=1`, {}, { ...fast, maxAttempts: 3 }));
    expect(e).toBeInstanceOf(HttpError);
    const h = e as HttpError;
    expect(h.retryable).toBe(true);
    expect(h.status).toBe(502);
    expect(h.attempts).toBe(3);
    expect(h.message).toContain('HTTP 502');
    expect(h.message).toContain(`${s.url}x?a=1`);
    expect(h.message).toContain('gave up after 3 attempts');
    expect(s.requests).toHaveLength(3);
  });

  it('retries network errors (connection refused)', async () => {
    const port = await closedPort();
    const retries: RetryEvent[] = [];
    const e = await rejection(request(`http://127.0.0.1:${port}/`, {}, { ...fast, maxAttempts: 2, onRetry: (r) => retries.push(r) }));
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).retryable).toBe(true);
    expect((e as HttpError).status).toBe(0);
    expect(e.message).toContain('ECONNREFUSED');
    expect(retries).toHaveLength(1);
  });

  it('retries a connection dropped in the middle of the body (requestJson)', async () => {
    const s = await server((_req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      json(res, 200, { whole: true });
    });
    const res = await requestJson(s.url, {}, fast);
    expect(res.body).toEqual({ whole: true });
    expect(s.requests).toHaveLength(2);
  });

  it('re-sends the same body on every attempt', async () => {
    const s = await server((_req, res, n) => json(res, n === 1 ? 500 : 200, {}));
    await request(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }, fast);
    expect(s.requests.map((r) => r.body)).toEqual(['{"a":1}', '{"a":1}']);
  });
});

describe('http client: Retry-After', () => {
  it('waits the Retry-After seconds instead of the backoff', async () => {
    const s = await server((_req, res, n) => (n === 1 ? json(res, 429, {}, { 'retry-after': '1' }) : json(res, 200, { ok: 1 })));
    const retries: RetryEvent[] = [];
    const t0 = Date.now();
    await request(s.url, {}, { baseDelayMs: 0, maxDelayMs: 0, onRetry: (e) => retries.push(e) });
    const elapsed = Date.now() - t0;
    expect(retries[0]!.delayMs).toBe(1000);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(s.requests).toHaveLength(2);
  });

  it('waits until a Retry-After HTTP date', async () => {
    const at = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000);
    const s = await server((_req, res, n) => (n === 1 ? json(res, 503, {}, { 'retry-after': at.toUTCString() }) : json(res, 200, {})));
    const retries: RetryEvent[] = [];
    await request(s.url, {}, { baseDelayMs: 0, maxDelayMs: 0, onRetry: (e) => retries.push(e) });
    expect(retries[0]!.delayMs).toBeGreaterThan(400);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(2500);
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 20);
  });

  it('caps a long Retry-After at maxRetryAfterMs', async () => {
    const s = await server((_req, res, n) => (n === 1 ? json(res, 429, {}, { 'retry-after': '3600' }) : json(res, 200, {})));
    const retries: RetryEvent[] = [];
    const t0 = Date.now();
    await request(s.url, {}, { maxRetryAfterMs: 50, onRetry: (e) => retries.push(e) });
    expect(retries[0]!.delayMs).toBe(50);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('parses delta-seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('5', now)).toBe(5000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it('computes full-jitter exponential backoff within its ceiling', () => {
    expect(backoffDelay(1, 100, 10_000, () => 0.5)).toBe(50);
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(200);
    expect(backoffDelay(20, 100, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(4, 100, 10_000, () => 0)).toBe(0);
  });
});

describe('http client: permanent failures', () => {
  it('fails at once on 401 without retrying, naming status and URL but not the credentials', async () => {
    const s = await server((_req, res) => json(res, 401, { error: 'bad token' }));
    const e = await rejection(request(`${s.url}secure`, { headers: { authorization: 'Bearer s3cr3t-token' } }, fast));
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).retryable).toBe(false);
    expect((e as HttpError).status).toBe(401);
    expect(e.message).toContain('401');
    expect(e.message).toContain(`${s.url}secure`);
    expect(e.message).toContain('authentication refused');
    expect(e.message).not.toContain('s3cr3t');
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]!.headers.authorization).toBe('Bearer s3cr3t-token');
  });

  it('fails at once on 403 and 404', async () => {
    for (const status of [403, 404]) {
      const s = await server((_req, res) => json(res, status, {}));
      const e = await rejection(request(s.url, {}, fast));
      expect((e as HttpError).status).toBe(status);
      expect((e as DriverError).retryable).toBe(false);
      expect(s.requests).toHaveLength(1);
    }
  });

  it('redacts URL credentials and secret query parameters in messages', async () => {
    const s = await server((_req, res) => json(res, 400, {}));
    const url = new URL(`${s.url}q?api_key=topsecret&x=1`);
    url.username = 'user';
    url.password = 'pw';
    const e = await rejection(request(url, {}, { secretQueryParams: ['api_key'] }));
    expect(e.message).not.toContain('topsecret');
    expect(e.message).not.toContain('pw@');
    expect(e.message).toContain('api_key=***');
    expect(s.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('user:pw').toString('base64')}`);
    expect(redactUrl('https://u:p@h/x?token=a&b=2', ['token'])).toBe('https://h/x?token=***&b=2');
  });

  it('rejects unsupported schemes and invalid URLs without a request', async () => {
    await expect(request('ftp://127.0.0.1/x')).rejects.toThrow(/unsupported URL scheme/);
    await expect(request('not a url')).rejects.toThrow(/invalid URL/);
  });
});

describe('http client: timeouts and cancellation', () => {
  it('times out a slow attempt and retries it', async () => {
    const s = await server((_req, res) => {
      setTimeout(() => json(res, 200, {}), 1000);
    });
    const t0 = Date.now();
    const e = await rejection(request(s.url, {}, { ...fast, timeoutMs: 100, maxAttempts: 2 }));
    expect(e.message).toContain('timed out after 100 ms');
    expect((e as HttpError).retryable).toBe(true);
    expect(s.requests).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(900);
  });

  it('aborts a request in flight promptly with the signal reason', async () => {
    const s = await server(() => {
      /* never answers */
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    const e = await rejection(request(s.url, {}, { signal: ac.signal, timeoutMs: 10_000 }));
    expect(e.name).toBe('AbortError');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.requests).toHaveLength(1);
  });

  it('aborts during a backoff sleep without another attempt', async () => {
    const s = await server((_req, res) => json(res, 503, {}, { 'retry-after': '30' }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('job cancelled')), 100);
    const t0 = Date.now();
    const e = await rejection(request(s.url, {}, { signal: ac.signal }));
    expect(e.message).toBe('job cancelled');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.requests).toHaveLength(1);
  });

  it('rejects at once with an already aborted signal', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(request(s.url, {}, { signal: AbortSignal.abort() }));
    expect(e.name).toBe('AbortError');
    expect(s.requests).toHaveLength(0);
  });
});

describe('http client: redirects and the outbound guard', () => {
  it('follows redirects, asking the guard about every hop', async () => {
    const target = await server((_req, res) => json(res, 200, { final: true }));
    const s = await server((req, res) => {
      if (req.path === '/a') res.writeHead(302, { location: '/b' }).end();
      else res.writeHead(307, { location: `${target.url}c` }).end();
    });
    const seen: string[] = [];
    const res = await requestJson(`${s.url}a`, {}, { guardUrl: async (u) => void seen.push(u.toString()) });
    expect(res.body).toEqual({ final: true });
    expect(seen).toEqual([`${s.url}a`, `${s.url}b`, `${target.url}c`]);
  });

  it('drops credentials on a cross-origin redirect', async () => {
    const other = await server((_req, res) => json(res, 200, {}));
    const s = await server((_req, res) => res.writeHead(302, { location: other.url }).end());
    await request(s.url, { headers: { authorization: 'Bearer t', 'x-api-key': 'k', 'x-other': 'o' } }, { sensitiveHeaders: ['X-Api-Key'] });
    expect(s.requests[0]!.headers.authorization).toBe('Bearer t');
    expect(other.requests[0]!.headers.authorization).toBeUndefined();
    expect(other.requests[0]!.headers['x-api-key']).toBeUndefined();
    expect(other.requests[0]!.headers['x-other']).toBe('o');
  });

  it('does not follow redirects with redirect: error (webhooks)', async () => {
    const other = await server((_req, res) => json(res, 200, {}));
    const s = await server((_req, res) => res.writeHead(301, { location: `${other.url}elsewhere` }).end());
    const e = await rejection(request(s.url, { method: 'POST', body: '{}' }, { redirect: 'error' }));
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).retryable).toBe(false);
    expect(e.message).toContain('redirects are not followed');
    expect(e.message).toContain(`${other.url}elsewhere`);
    expect(other.requests).toHaveLength(0);
  });

  it('a guard refusal fails without sending anything; setOutboundGuard applies to every request', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(
      request(s.url, {}, {
        guardUrl: async (u) => {
          throw new DriverError(`outbound address ${u.hostname} is not allowed`);
        },
      }),
    );
    expect(e.message).toContain('not allowed');
    expect(s.requests).toHaveLength(0);
    setOutboundGuard(async () => {
      throw new Error('private address');
    });
    try {
      const g = await rejection(request(s.url));
      expect(g).toBeInstanceOf(DriverError);
      expect((g as DriverError).retryable).toBe(false);
      expect(g.message).toContain('private address');
    } finally {
      setOutboundGuard(null);
    }
    expect(s.requests).toHaveLength(0);
  });
});
