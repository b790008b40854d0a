/**
 * Applies prisma/migrations/<name>/migration.sql in name order, recording each in Prisma's
 * own `_prisma_migrations` table (same columns and checksum), so `prisma migrate status`
 * and `migrate deploy` agree with what Sluice applied. Each migration runs in one
 * transaction: a failed migration leaves nothing half-applied.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface SqlExecutor {
  exec(sql: string): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Runs `fn` holding a cross-process lock, when the engine has one. */
  withLock?<T>(fn: (exec: SqlExecutor) => Promise<T>): Promise<T>;
}

const TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export function listMigrations(dir: string): { name: string; sql: string; checksum: string }[] {
  if (!fs.existsSync(dir)) throw new Error(`migrations folder not found: ${dir}`);
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = fs.readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: crypto.createHash('sha256').update(sql).digest('hex') };
    });
}

export async function applyMigrations(
  executor: SqlExecutor,
  dir: string,
  options: { dryRun?: boolean } = {},
): Promise<{ applied: string[] }> {
  const run = async (exec: SqlExecutor) => {
    await exec.exec(TABLE);
    const rows = await exec.query(
      'select migration_name, checksum from "_prisma_migrations" where finished_at is not null and rolled_back_at is null',
    );
    const done = new Map(rows.map((r) => [String(r.migration_name), String(r.checksum)]));
    const pending = listMigrations(dir).filter((m) => !done.has(m.name));
    if (options.dryRun) return { applied: pending.map((m) => m.name) };
    for (const m of pending) {
      await exec.exec(
        `BEGIN;\n${m.sql}\n;INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('${crypto.randomUUID()}', '${m.checksum}', now(), '${m.name.replace(/'/g, "''")}', 1);\nCOMMIT;`,
      ).catch(async (err: unknown) => {
        await exec.exec('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
      });
    }
    return { applied: pending.map((m) => m.name) };
  };
  return executor.withLock && !options.dryRun ? executor.withLock(run) : run(executor);
}
