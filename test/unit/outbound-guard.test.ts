/**
 * The outbound-request guard: every address form that must be refused, public addresses, the
 * allow-list, redirects, and DNS rebinding (fake DNS answers, real local HTTP servers).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request, setOutboundGuard } from '../../src/engine/drivers/http/client.js';
import { DriverError } from '../../src/engine/drivers/types.js';
import { installOutboundGuard } from '../../src/engine/drivers/kit/outbound.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  blockedReason,
  createOutboundGuard,
  OutboundRefusedError,
  parseAllowList,
  type LookupAll,
  type OutboundGuard,
  type ResolvedAddress,
} from '../../src/security/outbound-guard.js';
import { json, startServer, type LocalServer } from '../engine/support/local-server.js';

/** Fake DNS: each name answers its list of answers in turn (the last one repeats). */
function fakeDns(table: Record<string, (string | string[])[]>): LookupAll & { calls: string[] } {
  const seen = new Map<string, number>();
  const calls: string[] = [];
  const fn = (async (name: string): Promise<ResolvedAddress[]> => {
    calls.push(name);
    const answers = table[name];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    const n = seen.get(name) ?? 0;
    seen.set(name, n + 1);
    const a = answers[Math.min(n, answers.length - 1)]!;
    return (Array.isArray(a) ? a : [a]).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  }) as LookupAll & { calls: string[] };
  fn.calls = calls;
  return fn;
}

async function refusal(guard: OutboundGuard, url: string): Promise<OutboundRefusedError> {
  try {
    await guard.check(new URL(url));
  } catch (e) {
    expect(e).toBeInstanceOf(OutboundRefusedError);
    return e as OutboundRefusedError;
  }
  throw new Error(`${url} was not refused`);
}

const rejection = (p: Promise<unknown>): Promise<Error> =>
  p.then(
    () => Promise.reject(new Error('expected a rejection')),
    (e: unknown) => e as Error,
  );

const guards: OutboundGuard[] = [];
const uninstalls: (() => Promise<void>)[] = [];
const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(uninstalls.splice(0).map((u) => u()));
  await Promise.all(guards.splice(0).map((g) => g.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  setOutboundGuard(null);
});

function guardWith(options: Parameters<typeof createOutboundGuard>[0] = {}): OutboundGuard {
  const g = createOutboundGuard({ lookup: fakeDns({}), ...options });
  guards.push(g);
  return g;
}

function install(options: Parameters<typeof installOutboundGuard>[0]): OutboundGuard {
  const { guard, uninstall } = installOutboundGuard(options);
  uninstalls.push(uninstall);
  return guard;
}

async function server(handler: Parameters<typeof startServer>[0]): Promise<LocalServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

describe('outbound guard: address forms', () => {
  // [URL, the host named in the message, the reason]
  const refused: [string, string, string][] = [
    // IPv4 spellings (the URL parser normalises them to dotted decimal)
    ['http://127.0.0.1/', '127.0.0.1', 'a loopback address'],
    ['http://2130706433/', '127.0.0.1', 'a loopback address'],
    ['http://0x7f.1/', '127.0.0.1', 'a loopback address'],
    ['http://0x7f000001/', '127.0.0.1', 'a loopback address'],
    ['http://0177.0.0.1/', '127.0.0.1', 'a loopback address'],
    ['http://127.1/', '127.0.0.1', 'a loopback address'],
    ['http://127.255.255.254:8080/x', '127.255.255.254', 'a loopback address'],
    ['http://0.0.0.0/', '0.0.0.0', 'an unspecified address'],
    ['http://0/', '0.0.0.0', 'an unspecified address'],
    ['http://10.0.0.5/', '10.0.0.5', 'a private address'],
    ['http://172.16.0.1/', '172.16.0.1', 'a private address'],
    ['http://172.31.255.255/', '172.31.255.255', 'a private address'],
    ['http://192.168.1.1/', '192.168.1.1', 'a private address'],
    ['http://0xc0a80101/', '192.168.1.1', 'a private address'],
    ['http://100.64.0.1/', '100.64.0.1', 'a carrier-grade NAT address'],
    ['http://169.254.1.1/', '169.254.1.1', 'a link-local address'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'a cloud metadata address'],
    ['http://2852039166/', '169.254.169.254', 'a cloud metadata address'],
    ['http://100.100.100.200/', '100.100.100.200', 'a cloud metadata address'],
    ['http://224.0.0.1/', '224.0.0.1', 'a multicast address'],
    ['http://255.255.255.255/', '255.255.255.255', 'a broadcast address'],
    ['http://240.0.0.1/', '240.0.0.1', 'a reserved address'],
    ['http://192.0.2.1/', '192.0.2.1', 'a reserved address'],
    // IPv6 literals
    ['http://[::1]/', '::1', 'a loopback address'],
    ['http://[0:0:0:0:0:0:0:1]:8080/', '::1', 'a loopback address'],
    ['http://[::]/', '::', 'an unspecified address'],
    ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1', 'a loopback address (IPv4-mapped 127.0.0.1)'],
    ['http://[::ffff:7f00:1]/', '::ffff:7f00:1', 'a loopback address (IPv4-mapped 127.0.0.1)'],
    ['http://[::ffff:10.0.0.1]/', '::ffff:a00:1', 'a private address (IPv4-mapped 10.0.0.1)'],
    ['http://[::ffff:169.254.169.254]/', '::ffff:a9fe:a9fe', 'a cloud metadata address (IPv4-mapped 169.254.169.254)'],
    ['http://[::127.0.0.1]/', '::7f00:1', 'a loopback address (IPv4-compatible 127.0.0.1)'],
    ['http://[::ffff:0:7f00:1]/', '::ffff:0:7f00:1', 'a reserved address (IPv4-translated 127.0.0.1)'],
    ['http://[fe80::1]/', 'fe80::1', 'a link-local address'],
    ['http://[febf::1]/', 'febf::1', 'a link-local address'],
    ['http://[fd00::1]/', 'fd00::1', 'a unique local (private) address'],
    ['http://[fc00::1]/', 'fc00::1', 'a unique local (private) address'],
    ['http://[fd00:ec2::254]/', 'fd00:ec2::254', 'a cloud metadata address'],
    ['http://[fec0::1]/', 'fec0::1', 'a site-local (private) address'],
    ['http://[ff02::1]/', 'ff02::1', 'a multicast address'],
    ['http://[64:ff9b::a00:1]/', '64:ff9b::a00:1', 'a private address (NAT64 10.0.0.1)'],
    ['http://[64:ff9b::7f00:1]/', '64:ff9b::7f00:1', 'a loopback address (NAT64 127.0.0.1)'],
    ['http://[64:ff9b::169.254.169.254]/', '64:ff9b::a9fe:a9fe', 'a cloud metadata address (NAT64 169.254.169.254)'],
    ['http://[2002:7f00:1::]/', '2002:7f00:1::', 'a loopback address (6to4 127.0.0.1)'],
    ['http://[2002:c0a8:101::1]/', '2002:c0a8:101::1', 'a private address (6to4 192.168.1.1)'],
    ['http://[2001:db8::1]/', '2001:db8::1', 'a reserved address'],
    ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', '2001:0:4136:e378:8000:63bf:3fff:fdd2', 'a Teredo tunnel address'],
    ['http://[100::1]/', '100::1', 'a reserved address'],
    // Names refused without asking DNS
    ['http://localhost/', 'localhost', 'a loopback host name'],
    ['http://LOCALHOST.:3000/', 'localhost', 'a loopback host name'],
    ['http://api.localhost/', 'api.localhost', 'a loopback host name'],
    ['http://metadata.google.internal/computeMetadata/v1/', 'metadata.google.internal', 'a cloud metadata host name'],
    ['http://metadata.google.internal./', 'metadata.google.internal', 'a cloud metadata host name'],
    ['http://metadata/', 'metadata', 'a cloud metadata host name'],
    ['http://metadata.goog/', 'metadata.goog', 'a cloud metadata host name'],
    ['http://instance-data/', 'instance-data', 'a cloud metadata host name'],
    ['http://instance-data.ec2.internal/', 'instance-data.ec2.internal', 'a cloud metadata host name'],
  ];

  it.each(refused)('refuses %s', async (url, host, reason) => {
    const lookup = fakeDns({});
    const guard = guardWith({ lookup });
    const e = await refusal(guard, url);
    expect(e.message).toBe(`${host} is ${reason}; allow it with SLUICE_OUTBOUND_ALLOW`);
    expect(e.host).toBe(host);
    expect(e.code).toBe('ERR_OUTBOUND_REFUSED');
    expect(lookup.calls).toEqual([]); // literals and refused names never reach DNS
  });

  it('lets public addresses through without DNS for literals', async () => {
    const lookup = fakeDns({});
    const guard = guardWith({ lookup });
    for (const url of [
      'http://93.184.216.34/',
      'https://8.8.8.8:8443/x?y=1',
      'http://1.1.1.1/',
      'http://172.32.0.1/', // just outside 172.16/12
      'http://100.128.0.1/', // just outside 100.64/10
      'http://[2606:2800:220:1:248:1893:25c8:1946]/',
      'http://[2a00:1450:4001:80b::200e]/',
      'http://[64:ff9b::5db8:d822]/', // NAT64 of 93.184.216.34
      'http://[2002:5db8:d822::1]/', // 6to4 of 93.184.216.34
      'http://[::ffff:8.8.8.8]/', // IPv4-mapped public
    ]) {
      await expect(guard.check(new URL(url)), url).resolves.toBeUndefined();
    }
    expect(lookup.calls).toEqual([]);
    expect(blockedReason('93.184.216.34')).toBeNull();
    expect(blockedReason('10.1.2.3')).toBe('a private address');
    expect(blockedReason('not-an-ip')).toBe('not a valid IP address');
  });

  it('resolves names and refuses when ANY address is blocked', async () => {
    const lookup = fakeDns({
      'public.example': ['93.184.216.34'],
      'dual.example': [['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946']],
      'internal.example': ['10.0.0.5'],
      'mixed.example': [['93.184.216.34', '127.0.0.1']],
      'mixed6.example': [['2606:2800:220:1:248:1893:25c8:1946', 'fd00::1']],
      'mapped.example': ['::ffff:169.254.169.254'],
      'loop6.example': ['::1'],
      'localtest.me': ['127.0.0.1'],
    });
    const guard = guardWith({ lookup });
    await expect(guard.check(new URL('http://public.example/'))).resolves.toBeUndefined();
    await expect(guard.check(new URL('https://dual.example/'))).resolves.toBeUndefined();
    expect((await refusal(guard, 'http://internal.example/')).message).toBe(
      'internal.example resolves to 10.0.0.5, a private address; allow it with SLUICE_OUTBOUND_ALLOW',
    );
    expect((await refusal(guard, 'http://mixed.example/')).message).toContain('mixed.example resolves to 127.0.0.1, a loopback address');
    expect((await refusal(guard, 'http://mixed6.example/')).message).toContain('resolves to fd00::1, a unique local (private) address');
    expect((await refusal(guard, 'http://mapped.example/')).message).toContain('a cloud metadata address (IPv4-mapped 169.254.169.254)');
    expect((await refusal(guard, 'http://loop6.example/')).message).toContain('resolves to ::1, a loopback address');
    expect((await refusal(guard, 'http://LocalTest.ME./')).message).toContain('localtest.me resolves to 127.0.0.1');
    // A name that does not resolve is fetch's to report (a network error), not a refusal.
    await expect(guard.check(new URL('http://nxdomain.example/'))).resolves.toBeUndefined();
  });
});

describe('outbound guard: allow-list', () => {
  it('parses IPs, CIDRs, host names and wildcards; rejects anything else', () => {
    expect(parseAllowList(' 127.0.0.1, 10.0.0.0/8 ::1,[fd00::]/8 , api.internal,*.corp.example ').map((e) => [e.kind, e.text])).toEqual([
      ['cidr', '127.0.0.1'],
      ['cidr', '10.0.0.0/8'],
      ['cidr', '::1'],
      ['cidr', '[fd00::]/8'],
      ['host', 'api.internal'],
      ['suffix', '*.corp.example'],
    ]);
    expect(parseAllowList('')).toEqual([]);
    for (const bad of ['10.0.0.0/33', '10.0.0/8', '::1/129', 'http://x', 'a b/c', '10.0.0', '127.0.0.1:80', '*']) {
      expect(() => parseAllowList(bad), bad).toThrow(/is not/);
    }
  });

  it('SLUICE_OUTBOUND_ALLOW: empty means nothing is allowed; a bad entry is a config error', () => {
    expect(loadConfig({}).outboundAllow).toEqual([]);
    expect(loadConfig({ SLUICE_OUTBOUND_ALLOW: '' }).outboundAllow).toEqual([]);
    expect(loadConfig({ SLUICE_OUTBOUND_ALLOW: '127.0.0.1, 10.0.0.0/8 ::1' }).outboundAllow).toEqual(['127.0.0.1', '10.0.0.0/8', '::1']);
    let err: unknown;
    try {
      loadConfig({ SLUICE_OUTBOUND_ALLOW: '127.0.0.1,10.0.0.0/99' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(/^SLUICE_OUTBOUND_ALLOW="127\.0\.0\.1,10\.0\.0\.0\/99": "10\.0\.0\.0\/99" is not a valid CIDR/);
  });

  it('allowed IPs and CIDRs pass, in every spelling; everything else stays refused', async () => {
    const lookup = fakeDns({ 'db.internal': ['10.1.2.3'], 'mixed.internal': [['10.1.2.3', '192.168.0.1']], 'v6.internal': ['fd00::7'] });
    const guard = guardWith({ allow: '127.0.0.1, 10.0.0.0/8, ::1, fd00::/8', lookup });
    for (const url of [
      'http://127.0.0.1:8080/',
      'http://2130706433/',
      'http://127.1/',
      'http://[::ffff:127.0.0.1]/',
      'http://10.200.0.1/',
      'http://db.internal/',
      'http://[::1]/',
      'http://[fd00::1]/',
      'http://v6.internal/',
    ]) {
      await expect(guard.check(new URL(url)), url).resolves.toBeUndefined();
    }
    expect((await refusal(guard, 'http://127.0.0.2/')).message).toContain('127.0.0.2 is a loopback address');
    expect((await refusal(guard, 'http://mixed.internal/')).message).toContain('resolves to 192.168.0.1, a private address');
    expect((await refusal(guard, 'http://169.254.169.254/')).message).toContain('a cloud metadata address');
    expect((await refusal(guard, 'http://[fe80::1]/')).message).toContain('a link-local address');
    // An allowed IPv4 address does not allow its IPv4-compatible or NAT64 forms.
    expect((await refusal(guard, 'http://[64:ff9b::7f00:1]/')).message).toContain('NAT64 127.0.0.1');
    // `localhost` by name needs its own entry.
    expect((await refusal(guard, 'http://localhost/')).message).toContain('a loopback host name');
  });

  it('allowed host names skip the checks; wildcards cover subdomains only', async () => {
    const lookup = fakeDns({ 'svc.corp.example': ['10.9.9.9'], 'corp.example': ['10.9.9.8'] });
    const guard = guardWith({ allow: 'localhost, metadata.google.internal, *.corp.example', lookup });
    await expect(guard.check(new URL('http://localhost:3000/'))).resolves.toBeUndefined();
    await expect(guard.check(new URL('http://metadata.google.internal/'))).resolves.toBeUndefined();
    await expect(guard.check(new URL('http://svc.corp.example/'))).resolves.toBeUndefined();
    expect((await refusal(guard, 'http://corp.example/')).message).toContain('corp.example resolves to 10.9.9.8');
  });
});

describe('outbound guard: through the HTTP client', () => {
  it('with 127.0.0.1 allowed, a local server answers; a redirect to a blocked address is refused at the hop', async () => {
    install({ allow: '127.0.0.1', lookup: fakeDns({}) });
    const s = await server((req, res) => {
      if (req.path === '/ok') return json(res, 200, { ok: true });
      if (req.path === '/meta') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/?token=s3cr3t' }).end();
      if (req.path === '/v6') return void res.writeHead(307, { location: `http://u:pw@[::1]:${new URL(s.url).port}/x` }).end();
      if (req.path === '/name') return void res.writeHead(301, { location: '/ok' }).end();
      return json(res, 404, {});
    });
    const ok = await request(`${s.origin}/ok`);
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    const relative = await request(`${s.origin}/name`);
    expect(relative.status).toBe(200);
    await relative.body?.cancel();

    const meta = await rejection(request(`${s.origin}/meta`, {}, { maxAttempts: 3, baseDelayMs: 1, secretQueryParams: ['token'], label: 'HTTP source' }));
    expect(meta).toBeInstanceOf(DriverError);
    expect((meta as DriverError).retryable).toBe(false);
    expect(meta.message).toBe(
      'HTTP source: request to http://169.254.169.254/latest/meta-data/?token=*** refused: 169.254.169.254 is a cloud metadata address; allow it with SLUICE_OUTBOUND_ALLOW',
    );

    const v6 = await rejection(request(`${s.origin}/v6`, {}, { maxAttempts: 3, baseDelayMs: 1 }));
    expect((v6 as DriverError).retryable).toBe(false);
    expect(v6.message).toContain('::1 is a loopback address');
    expect(v6.message).not.toContain('pw');
    // Two redirect answers, one retry-free request each, nothing else.
    expect(s.requests.map((r) => r.path)).toEqual(['/ok', '/name', '/ok', '/meta', '/v6']);
  });

  it('with nothing allowed, a 127.0.0.1 server is never contacted', async () => {
    install({ allow: '', lookup: fakeDns({}) });
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(request(s.url, {}, { maxAttempts: 5, baseDelayMs: 1 }));
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).retryable).toBe(false);
    expect(e.message).toBe(`HTTP: request to ${s.url} refused: 127.0.0.1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW`);
    expect(s.requests).toHaveLength(0);
  });

  it('connects to the address it checked (the name is resolved by the guard, not again by the system)', async () => {
    const lookup = fakeDns({ 'app.sluice.test': ['127.0.0.1'] });
    install({ allow: '127.0.0.1', lookup });
    const s = await server((req, res) => json(res, 200, { host: req.headers.host }));
    const res = await request(`http://app.sluice.test:${new URL(s.url).port}/`);
    expect(await res.json()).toEqual({ host: `app.sluice.test:${new URL(s.url).port}` });
    // Once for the check, once when the socket connected.
    expect(lookup.calls).toEqual(['app.sluice.test', 'app.sluice.test']);
  });

  it('DNS rebinding: public at check time, private at connect time, is refused at connect and not retried', async () => {
    const lookup = fakeDns({ 'rebind.sluice.test': ['93.184.216.34', '127.0.0.1'] });
    install({ allow: '', lookup });
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(request(`http://rebind.sluice.test:${new URL(s.url).port}/?key=k3y`, {}, { maxAttempts: 4, baseDelayMs: 1, secretQueryParams: ['key'] }));
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).retryable).toBe(false);
    expect(e.message).toBe(
      `HTTP: request to http://rebind.sluice.test:${new URL(s.url).port}/?key=*** refused: rebind.sluice.test resolves to 127.0.0.1, a loopback address; allow it with SLUICE_OUTBOUND_ALLOW`,
    );
    expect(lookup.calls).toEqual(['rebind.sluice.test', 'rebind.sluice.test']);
    expect(s.requests).toHaveLength(0);
  });

  it('DNS rebinding from an allowed address to a blocked one is refused too', async () => {
    const lookup = fakeDns({ 'flip.sluice.test': ['127.0.0.1', ['127.0.0.1', '10.0.0.1']] });
    install({ allow: '127.0.0.1', lookup });
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(request(`http://flip.sluice.test:${new URL(s.url).port}/`, {}, { maxAttempts: 2, baseDelayMs: 1 }));
    expect(e.message).toContain('flip.sluice.test resolves to 10.0.0.1, a private address');
    expect(s.requests).toHaveLength(0);
  });

  it('a policy with its own guardUrl still connects through the installed guard', async () => {
    const lookup = fakeDns({ 'rebind2.sluice.test': ['127.0.0.1'] });
    install({ allow: '', lookup });
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(request(`http://rebind2.sluice.test:${new URL(s.url).port}/`, {}, { guardUrl: async () => undefined, maxAttempts: 2 }));
    expect(e.message).toContain('refused: rebind2.sluice.test resolves to 127.0.0.1, a loopback address');
    expect(s.requests).toHaveLength(0);
  });

  it('the dispatcher alone refuses IP literals at connect time', async () => {
    const guard = guardWith({ allow: '', lookup: fakeDns({}) });
    const s = await server((_req, res) => json(res, 200, {}));
    const e = await rejection(fetch(s.url, { dispatcher: guard.dispatcher } as RequestInit));
    const cause = (e as Error & { cause?: Error & { code?: string } }).cause;
    expect(cause?.code).toBe('ERR_OUTBOUND_REFUSED');
    expect(cause?.message).toContain('127.0.0.1 is a loopback address');
    expect(s.requests).toHaveLength(0);
  });

  it('uninstall restores the previous guard', async () => {
    const first = installOutboundGuard({ allow: '', lookup: fakeDns({}) });
    const second = installOutboundGuard({ allow: '127.0.0.1', lookup: fakeDns({}) });
    const s = await server((_req, res) => json(res, 200, {}));
    const ok = await request(s.url);
    await ok.body?.cancel();
    await second.uninstall();
    expect((await rejection(request(s.url))).message).toContain('refused');
    await first.uninstall();
    const free = await request(s.url);
    expect(free.status).toBe(200);
    await free.body?.cancel();
  });
});

describe('checkDatabase: database connections', () => {
  const state = { host: 'localhost', port: 5432, database: 'sluice' };
  const dns = () => fakeDns({ localhost: [['127.0.0.1', '::1']], 'db.example.com': ['93.184.216.34'], 'state.internal': ['10.0.0.7'], 'alias.internal': ['10.0.0.7'] });
  const refusedBy = async (guard: OutboundGuard, target: { host: string; port: number; database: string }) => {
    try {
      await guard.checkDatabase(target);
    } catch (e) {
      expect(e).toBeInstanceOf(OutboundRefusedError);
      return (e as Error).message;
    }
    return null;
  };

  it('judges the host like a URL host and answers the checked addresses', async () => {
    const guard = createOutboundGuard({ lookup: dns() });
    for (const host of ['127.0.0.1', '::1', 'localhost', '169.254.169.254', '10.1.2.3', '::ffff:127.0.0.1', '0.0.0.0']) {
      expect(await refusedBy(guard, { host, port: 5432, database: 'x' }), host).toMatch(/is an? .*; allow it with SLUICE_OUTBOUND_ALLOW$/);
    }
    expect(await refusedBy(guard, { host: '/var/run/postgresql', port: 5432, database: 'x' })).toBe('/var/run/postgresql is a Unix socket path; connectors connect over TCP only');
    expect(await guard.checkDatabase({ host: 'db.example.com', port: 5432, database: 'x' })).toEqual([{ address: '93.184.216.34', family: 4 }]);
    // A DNS failure rejects with the resolver's error (there is nothing checked to connect to).
    await expect(guard.checkDatabase({ host: 'nowhere.example.com', port: 5432, database: 'x' })).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await guard.close();
  });

  it("refuses Sluice's state database whatever the allow-list says, in every spelling of this machine", async () => {
    const lookup = dns();
    const guard = createOutboundGuard({ lookup, allow: '0.0.0.0/0, ::/0, localhost', protectedDatabases: [state] });
    const own = Object.values((await import('node:os')).networkInterfaces())
      .flatMap((l) => l ?? [])
      .map((i) => i.address.replace(/%.*$/, ''));
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost', '0.0.0.0', '::ffff:127.0.0.1', ...own]) {
      expect(await refusedBy(guard, { host, port: 5432, database: 'sluice' }), host).toMatch(/:5432\/sluice is Sluice's own state database, which no connector may use$/);
    }
    // Another database or another port of the same server is not the state database.
    expect(await refusedBy(guard, { host: '127.0.0.1', port: 5432, database: 'warehouse' })).toBeNull();
    expect(await refusedBy(guard, { host: 'localhost', port: 5433, database: 'sluice' })).toBeNull();
    await guard.close();
  });

  it('a remote state database is refused by any name resolving to its address', async () => {
    const guard = createOutboundGuard({ lookup: dns(), allow: '10.0.0.0/8', protectedDatabases: [{ host: 'state.internal', port: 5432, database: 'sluice' }] });
    expect(await refusedBy(guard, { host: 'alias.internal', port: 5432, database: 'sluice' })).toContain("is Sluice's own state database");
    expect(await refusedBy(guard, { host: '10.0.0.7', port: 5432, database: 'sluice' })).toContain("is Sluice's own state database");
    expect(await refusedBy(guard, { host: '10.0.0.8', port: 5432, database: 'sluice' })).toBeNull();
    await guard.close();
  });

  it('settings carry the allow-list and the protected databases (to install the same guard in a worker)', async () => {
    const guard = createOutboundGuard({ allow: '127.0.0.1, *.internal', protectedDatabases: [state] });
    expect(guard.settings).toEqual({ allow: ['127.0.0.1', '*.internal'], protectedDatabases: [state] });
    await guard.close();
  });
});
