/**
 * The database for the offline commands (migrate, secrets rotate), opened the way the server
 * opens it. The embedded database belongs to one process at a time: while a server has it
 * open (PGlite keeps `postmaster.pid` in its folder until it is closed), these commands refuse
 * to open it a second time, which could corrupt it; `--force` overrides that after a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import { pgdataDir, shownDataDir } from '../db/paths.js';
import { CliError } from './errors.js';

/** How the database is named in messages: `embedded (./data)` or `PostgreSQL at host:port/db`. */
export function describeDatabase(config: Config): string {
  if (config.databaseUrl) {
    try {
      const u = new URL(config.databaseUrl);
      return `PostgreSQL at ${u.host}${u.pathname}`;
    } catch {
      return 'PostgreSQL (DATABASE_URL)';
    }
  }
  return `embedded (${shownDataDir(config.dataDir)})`;
}

export async function openOffline(config: Config, options: { force?: boolean } = {}): Promise<Database> {
  if (!config.databaseUrl && !options.force && fs.existsSync(path.join(pgdataDir(config.dataDir), 'postmaster.pid'))) {
    throw new CliError(
      `the embedded database in ${config.dataDir} is open in another process (is \`sluice serve\` running?); stop it first, or pass --force if no process uses it (the last one crashed)`,
      1,
    );
  }
  const { openDatabase } = await import('../db/client.js');
  return openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, notify: (message) => console.error(message) });
}
