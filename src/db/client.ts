/**
 * The database seam. Embedded mode: PGlite (PostgreSQL in Wasm, in-process) in
 * `<dataDir>/pgdata`. Cluster mode: a PostgreSQL server at DATABASE_URL. Both run the same
 * Prisma schema and migrations; the rest of the code only sees `Database`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { PrismaClient } from '../generated/prisma/client.js';
import { applyMigrations, type SqlExecutor } from './migrate.js';
import { embeddedExists, pgdataDir, shownDataDir } from './paths.js';
import { tenantExtension } from '../tenancy/tenant-extension.js';

export type { PrismaClient };

export interface Database {
  kind: 'pglite' | 'postgres';
  prisma: PrismaClient;
  /** Runs a trivial query; throws when the database is unreachable. */
  ping(): Promise<void>;
  /** Applies pending migrations (idempotent, safe to call from several processes). */
  migrate(): Promise<{ applied: string[] }>;
  /** True when every migration in prisma/migrations is applied. */
  migrationsApplied(): Promise<boolean>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  migrationsDir?: string;
  /** Told what is happening when a step takes a while (the embedded database's first start). */
  notify?: (message: string) => void;
}

const defaultMigrationsDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../prisma/migrations');

/**
 * Every client handed out is tenant-guarded (see tenant-extension.ts). Query extensions do not
 * change the client's types, so it keeps the PrismaClient type.
 */
function withTenantGuard(client: PrismaClient): PrismaClient {
  return client.$extends(tenantExtension) as unknown as PrismaClient;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const migrationsDir = options.migrationsDir ?? defaultMigrationsDir;
  if (options.databaseUrl) return openPostgres(options.databaseUrl, migrationsDir);
  return openPglite(options.dataDir, migrationsDir, options.notify);
}

/**
 * PGlite runs every query synchronously on this thread, and queued queries hand over to each
 * other in microtasks: a backlog (a push flood, many sockets authenticating) would run to its
 * end before any socket is read, so `/health` and every other request would wait for all of
 * it. Through this wrapper each query (in transactions too) starts on a later event-loop turn,
 * so I/O is served between two queries instead of after the whole backlog.
 */
function yieldingPglite<T extends object>(client: T): T {
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  return new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (prop === 'query' || prop === 'exec') {
        return async (...args: unknown[]) => {
          await nextTurn();
          return fn.apply(target, args);
        };
      }
      if (prop === 'transaction') {
        return async (body: (tx: object) => unknown) => {
          await nextTurn();
          return fn.call(target, (tx: object) => body(yieldingPglite(tx)));
        };
      }
      return fn.bind(target);
    },
  });
}

async function openPglite(dataDir: string, migrationsDir: string, notify?: (message: string) => void): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  const dir = pgdataDir(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  if (!embeddedExists(dataDir)) {
    notify?.(`initialising the embedded database in ${shownDataDir(dataDir)} (first use, takes a few seconds)`);
    const init = spawnSync(process.execPath, [fileURLToPath(new URL('./pglite-init.mjs', import.meta.url)), dir], { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`could not create the embedded database in ${dir}: ${init.stderr || init.error?.message}`);
  }
  const pglite = await PGlite.create(dir);
  const prisma = withTenantGuard(new PrismaClient({ adapter: new PrismaPGlite(yieldingPglite(pglite)) as never }));
  const exec: SqlExecutor = {
    exec: async (sql) => {
      await pglite.exec(sql);
    },
    query: async (sql, params) => (await pglite.query<Record<string, unknown>>(sql, params)).rows,
  };
  return {
    kind: 'pglite',
    prisma,
    ping: async () => {
      await pglite.query('select 1');
    },
    migrate: () => applyMigrations(exec, migrationsDir),
    migrationsApplied: async () => (await applyMigrations(exec, migrationsDir, { dryRun: true })).applied.length === 0,
    close: async () => {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}

async function openPostgres(url: string, migrationsDir: string): Promise<Database> {
  const pg = await import('pg');
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const pool = new pg.default.Pool({ connectionString: url, max: 10 });
  const prisma = withTenantGuard(new PrismaClient({ adapter: new PrismaPg(pool) }));
  const exec: SqlExecutor = {
    exec: async (sql) => {
      await pool.query(sql);
    },
    query: async (sql, params) => (await pool.query(sql, params as unknown[])).rows,
    withLock: async (fn) => {
      // A session-level advisory lock on one pooled connection serialises migrations across replicas.
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock(727274)');
        return await fn({
          exec: async (sql) => {
            await client.query(sql);
          },
          query: async (sql, params) => (await client.query(sql, params as unknown[])).rows,
        });
      } finally {
        await client.query('select pg_advisory_unlock(727274)').catch(() => undefined);
        client.release();
      }
    },
  };
  return {
    kind: 'postgres',
    prisma,
    ping: async () => {
      await pool.query('select 1');
    },
    migrate: () => applyMigrations(exec, migrationsDir),
    migrationsApplied: async () => (await applyMigrations(exec, migrationsDir, { dryRun: true })).applied.length === 0,
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
