/**
 * Throwaway PostgreSQL databases for the postgres driver tests.
 *
 * The suites run only when SLUICE_TEST_DATABASE_URL points at a server where that role may
 * CREATE DATABASE (e.g. postgresql://postgres@127.0.0.1:5432/postgres). Every suite creates its
 * own `sluice_t_<random>` database and drops it afterwards, so parallel runs never collide.
 */
import crypto from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.SLUICE_TEST_DATABASE_URL ?? '';

export function skipNote(suite: string): void {
  if (!PG_URL) {
    console.log(`[${suite}] skipped: set SLUICE_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres) to run the PostgreSQL driver tests`);
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  /** A client on the test database (closed by drop()). */
  client: pg.Client;
  drop(): Promise<void>;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `sluice_t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client(PG_URL);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(PG_URL, name);
  const client = new pg.Client(url);
  await client.connect();
  await client.query(`SET TimeZone = 'UTC'`);
  return {
    name,
    url,
    client,
    async drop() {
      await client.end().catch(() => undefined);
      const a = new pg.Client(PG_URL);
      await a.connect();
      try {
        await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
        await a.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await a.end();
      }
    },
  };
}

/** A second, independent connection (for visibility checks). */
export async function connectTo(url: string): Promise<pg.Client> {
  const c = new pg.Client(url);
  await c.connect();
  await c.query(`SET TimeZone = 'UTC'`);
  return c;
}
