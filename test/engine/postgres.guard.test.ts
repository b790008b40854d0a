/**
 * The PostgreSQL drivers under an installed outbound guard (real sockets, fake DNS answers):
 * a connection goes only to the address the guard checked (a name no real resolver knows
 * works, a rebinding answer is never asked for), the TLS handshake still names the configured
 * host (SNI, hence certificate host name verification), refusals are non-retryable
 * DriverErrors naming the host and the reason. Without a guard (the other driver suites)
 * nothing is checked.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresDestination } from '../../src/engine/drivers/postgres/postgres.destination.js';
import { postgresSource } from '../../src/engine/drivers/postgres/postgres.source.js';
import { DriverError } from '../../src/engine/drivers/types.js';
import { installOutboundGuard } from '../../src/engine/drivers/kit/outbound.js';
import type { LookupAll, ResolvedAddress } from '../../src/security/outbound-guard.js';
import { PG_URL, createTestDatabase, skipNote, type TestDatabase } from './pg-test-db.js';
import { testFiles } from '../helpers/files.js';

const files = testFiles('sluice-pg-guard-');

skipNote('postgres.guard');

/** Fake DNS answering each name's list in turn (the last one repeats); records the calls. */
function fakeDns(table: Record<string, string[]>): LookupAll & { calls: string[] } {
  const calls: string[] = [];
  const fn = (async (name: string): Promise<ResolvedAddress[]> => {
    const n = calls.filter((c) => c === name).length;
    calls.push(name);
    const answers = table[name];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    const a = answers[Math.min(n, answers.length - 1)]!;
    return [{ address: a, family: net.isIP(a) }];
  }) as LookupAll & { calls: string[] };
  fn.calls = calls;
  return fn;
}

describe.skipIf(!PG_URL)('PostgreSQL connections through the outbound guard', () => {
  let db: TestDatabase;
  const server = new URL(PG_URL || 'postgresql://x');
  const port = Number(server.port || 5432);
  const user = decodeURIComponent(server.username || 'postgres');

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.client.query('CREATE TABLE things (id int PRIMARY KEY)');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('connects to the checked address: a name only the guard resolved works, and it is resolved once per connection', async () => {
    // The second answer (a private address) would be a rebinding: it is never asked for by the socket.
    const lookup = fakeDns({ 'pg.guard.test': ['127.0.0.1', '10.9.9.9'] });
    const g = installOutboundGuard({ allow: '127.0.0.1', lookup });
    try {
      const r = await postgresSource.check({ host: 'pg.guard.test', port, database: db.name, user } as never, files.ctx);
      expect(r, r.message).toMatchObject({ ok: true });
      expect(lookup.calls).toEqual(['pg.guard.test']);
      // The next connection resolves again, gets the private address and is refused before connecting.
      const again = await postgresSource.check({ host: 'pg.guard.test', port, database: db.name, user } as never, files.ctx);
      expect(again.ok).toBe(false);
      expect(again.message).toBe(`Connection to pg.guard.test:${port}/${db.name} refused: pg.guard.test resolves to 10.9.9.9, a private address; allow it with SLUICE_OUTBOUND_ALLOW`);
    } finally {
      await g.uninstall();
    }
  });

  it('refusals are non-retryable DriverErrors naming the host and the reason, for discover and write', async () => {
    const g = installOutboundGuard({ allow: '', protectedDatabases: [] });
    try {
      const err = await postgresSource.discover({ connectionString: `postgresql://${user}@127.0.0.1:${port}/${db.name}` } as never, files.ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DriverError);
      expect((err as DriverError).retryable).toBe(false);
      expect((err as Error).message).toBe(`PostgreSQL source: Connection to 127.0.0.1:${port}/${db.name} refused: 127.0.0.1 is a loopback address; allow it with SLUICE_OUTBOUND_ALLOW`);
      const w = await postgresDestination
        .openWriter({ host: 'localhost', port, database: db.name, user } as never, { writeMode: 'APPEND', stream: { name: 'x', syncMode: 'FULL_REFRESH' } as never, ctx: files.ctx })
        .catch((e: unknown) => e);
      expect(w).toBeInstanceOf(DriverError);
      expect((w as DriverError).retryable).toBe(false);
      expect((w as Error).message).toContain('refused: localhost is a loopback host name');
    } finally {
      await g.uninstall();
    }
  });

  it('the state database is refused even when allow-listed', async () => {
    const g = installOutboundGuard({ allow: '127.0.0.1', protectedDatabases: [{ host: '127.0.0.1', port, database: db.name }] });
    try {
      const r = await postgresDestination.check({ host: '127.0.0.1', port, database: db.name, user } as never, files.ctx);
      expect(r.message).toBe(`Connection to 127.0.0.1:${port}/${db.name} refused: 127.0.0.1:${port}/${db.name} is Sluice's own state database, which no connector may use`);
      // The server's maintenance database is another database: allowed.
      expect((await postgresDestination.check({ host: '127.0.0.1', port, database: 'postgres', user } as never, files.ctx)).ok).toBe(true);
    } finally {
      await g.uninstall();
    }
  });
});

describe('TLS by a checked address still names the configured host', () => {
  let dir: string;
  let key: Buffer;
  let cert: Buffer;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pgtls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=pg.guard.test', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
    key = fs.readFileSync(path.join(dir, 'k.pem'));
    cert = fs.readFileSync(path.join(dir, 'c.pem'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('sends the host name as SNI when connecting to the resolved 127.0.0.1', async () => {
    // A stand-in server: accepts PostgreSQL's SSLRequest, records the TLS server name, then hangs up.
    const names: string[] = [];
    const srv = net.createServer((sock) => {
      sock.once('data', () => {
        sock.write('S');
        const t = new tls.TLSSocket(sock, {
          isServer: true,
          secureContext: tls.createSecureContext({ key, cert }),
          SNICallback: (name, cb) => {
            names.push(name);
            cb(null, tls.createSecureContext({ key, cert }));
          },
        });
        t.on('secure', () => t.destroy());
        t.on('error', () => undefined);
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const g = installOutboundGuard({ allow: '127.0.0.1', lookup: fakeDns({ 'pg.guard.test': ['127.0.0.1'] }) });
    try {
      const r = await postgresSource.check({ host: 'pg.guard.test', port: (srv.address() as AddressInfo).port, database: 'd', user: 'u', ssl: 'require' } as never, files.ctx);
      expect(r.ok).toBe(false);
      expect(names).toEqual(['pg.guard.test']);
    } finally {
      await g.uninstall();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
