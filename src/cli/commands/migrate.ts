/**
 * `sluice migrate status | deploy`: the committed migrations (prisma/migrations) against the
 * database the server would use (SLUICE_DATA_DIR / DATABASE_URL). `sluice serve` applies
 * pending migrations itself at start; `deploy` does it ahead of time (a release step in
 * cluster mode). `status` never creates an embedded database that does not exist yet.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Config } from '../../config.js';
import { readConfig } from '../env.js';
import { describeDatabase, openOffline } from '../offline.js';
import { embeddedExists } from '../../db/paths.js';

/** prisma/migrations, from src/cli/commands (tsx) and dist/cli/commands (built) alike. */
const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../prisma/migrations');

interface CommonOptions {
  dataDir?: string;
  force?: boolean;
}

interface MigrationState {
  name: string;
  state: 'applied' | 'pending' | 'changed' | 'unknown';
  appliedAt: string | null;
}

async function migrationStates(config: Config, force: boolean | undefined): Promise<{ exists: boolean; migrations: MigrationState[] }> {
  const { listMigrations } = await import('../../db/migrate.js');
  const committed = listMigrations(MIGRATIONS_DIR);
  if (!config.databaseUrl && !embeddedExists(config.dataDir)) {
    return { exists: false, migrations: committed.map((m) => ({ name: m.name, state: 'pending', appliedAt: null })) };
  }
  const database = await openOffline(config, { force });
  try {
    const found = await database.prisma.$queryRawUnsafe<{ table: string | null }[]>(`select to_regclass('"_prisma_migrations"')::text as "table"`);
    const rows = found[0]?.table
      ? await database.prisma.$queryRawUnsafe<{ migration_name: string; checksum: string; finished_at: Date }[]>(
          'select migration_name, checksum, finished_at from "_prisma_migrations" where finished_at is not null and rolled_back_at is null order by migration_name',
        )
      : [];
    const applied = new Map(rows.map((r) => [r.migration_name, r]));
    const out: MigrationState[] = committed.map((m) => {
      const row = applied.get(m.name);
      if (!row) return { name: m.name, state: 'pending', appliedAt: null };
      return { name: m.name, state: row.checksum === m.checksum ? 'applied' : 'changed', appliedAt: new Date(row.finished_at).toISOString() };
    });
    const known = new Set(committed.map((m) => m.name));
    for (const r of rows) if (!known.has(r.migration_name)) out.push({ name: r.migration_name, state: 'unknown', appliedAt: new Date(r.finished_at).toISOString() });
    return { exists: true, migrations: out.sort((a, b) => a.name.localeCompare(b.name)) };
  } finally {
    await database.close();
  }
}

const NOTES: Record<MigrationState['state'], string> = {
  applied: '',
  pending: '',
  changed: '  (its migration.sql changed after it was applied)',
  unknown: '  (applied, but not in prisma/migrations: a newer version of Sluice?)',
};

async function status(options: CommonOptions & { json?: boolean }): Promise<void> {
  const config = readConfig({ SLUICE_DATA_DIR: options.dataDir });
  const { exists, migrations } = await migrationStates(config, options.force);
  const pending = migrations.filter((m) => m.state === 'pending');
  if (options.json) {
    console.log(JSON.stringify({ database: describeDatabase(config), exists, migrations }, null, 2));
    return;
  }
  console.log(`database: ${describeDatabase(config)}${exists ? '' : ' — not created yet'}`);
  const width = Math.max(0, ...migrations.map((m) => m.name.length));
  for (const m of migrations) {
    const when = m.appliedAt ? m.appliedAt.slice(0, 19).replace('T', ' ') + ' UTC' : '';
    console.log(`  ${m.state.padEnd(8)} ${m.name.padEnd(width)}  ${when}${NOTES[m.state]}`.trimEnd());
  }
  const appliedCount = migrations.length - pending.length;
  console.log(
    pending.length
      ? `${appliedCount} applied, ${pending.length} pending: \`sluice migrate deploy\` applies them (\`sluice serve\` does at start)`
      : `${appliedCount} applied, none pending: the database is up to date`,
  );
}

async function deploy(options: CommonOptions): Promise<void> {
  const config = readConfig({ SLUICE_DATA_DIR: options.dataDir });
  const database = await openOffline(config, { force: options.force });
  try {
    const { applied } = await database.migrate();
    if (!applied.length) {
      console.log(`database ${describeDatabase(config)} is up to date; no migration to apply`);
      return;
    }
    for (const name of applied) console.log(`  applied  ${name}`);
    console.log(`${applied.length} migration(s) applied to ${describeDatabase(config)}`);
  } finally {
    await database.close();
  }
}

export function register(program: Command): void {
  const migrate = program
    .command('migrate')
    .description('list or apply database migrations')
    .addHelpText('after', '\nWith the embedded database, stop `sluice serve` first: one process at a time opens a data folder.');
  const common = (cmd: Command) =>
    cmd
      .option('--data-dir <dir>', 'data folder of the embedded database (SLUICE_DATA_DIR, default ./data); DATABASE_URL selects PostgreSQL')
      .option('--force', 'open the embedded database even though it looks open in another process (after a crash)');
  common(migrate.command('status', { isDefault: true }).description('list applied and pending migrations (the default)'))
    .option('--json', 'machine-readable output')
    .action(status);
  common(migrate.command('deploy').description('apply pending migrations')).action(deploy);
}
