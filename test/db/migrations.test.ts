/**
 * The committed migrations produce exactly the schema in prisma/schema.prisma: a database
 * migrated step by step and one created from the datamodel in one go have the same tables,
 * columns, types, defaults, enums and indexes. Catches a schema edit without its migration.
 */
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import { createTestDatabase, PG_URL } from '../helpers/postgres.js';

async function shape(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const q = async (sql: string) => (await c.query(sql)).rows.map((r) => JSON.stringify(r)).sort();
  const out = {
    columns: await q(`select table_name, column_name, data_type, udt_name, is_nullable, column_default
                      from information_schema.columns where table_schema = 'public' and table_name <> '_prisma_migrations'`),
    enums: await q(`select t.typname, e.enumlabel from pg_type t join pg_enum e on e.enumtypid = t.oid`),
    indexes: await q(`select tablename, indexdef from pg_indexes where schemaname = 'public' and tablename <> '_prisma_migrations'`),
    constraints: await q(`select conname, pg_get_constraintdef(oid) as def from pg_constraint where connamespace = 'public'::regnamespace and conname <> '_prisma_migrations_pkey'`),
  };
  await c.end();
  return out;
}

describe.skipIf(!PG_URL)('migrations', () => {
  let migrated: Awaited<ReturnType<typeof createTestDatabase>>;
  let direct: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    [migrated, direct] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });
  afterAll(async () => {
    await Promise.all([migrated?.drop(), direct?.drop()]);
  });

  it('migrated step by step equals the datamodel created in one go', async () => {
    const db = await openDatabase({ databaseUrl: migrated.url, dataDir: '/tmp' });
    await db.migrate();
    expect(await db.migrationsApplied()).toBe(true);
    await db.close();

    const diff = spawnSync(process.execPath, ['scripts/prisma.mjs', 'migrate', 'diff', '--from-empty', '--to-schema-datamodel', 'prisma/schema.prisma', '--script'], {
      encoding: 'utf8',
    });
    expect(diff.status, diff.stderr).toBe(0);
    const c = new pg.Client({ connectionString: direct.url });
    await c.connect();
    await c.query(diff.stdout);
    await c.end();

    expect(await shape(migrated.url)).toEqual(await shape(direct.url));
  });
});
