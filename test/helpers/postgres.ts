/**
 * PostgreSQL-backed suites run when SLUICE_TEST_DATABASE_URL points at a server (CI sets
 * it); each test file gets a database of its own, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.SLUICE_TEST_DATABASE_URL ?? '';

if (!PG_URL) console.log('[postgres] SLUICE_TEST_DATABASE_URL is not set: PostgreSQL suites are skipped');

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `sluice_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [name]);
      await c.query(`drop database if exists ${name}`);
      await c.end();
    },
  };
}
