/**
 * Where the embedded database lives in a data folder, without loading the database code (the
 * CLI's offline commands check these before they open anything).
 */
import fs from 'node:fs';
import path from 'node:path';

/** `<dataDir>/pgdata`, the embedded database's folder. */
export function pgdataDir(dataDir: string): string {
  return path.join(dataDir, 'pgdata');
}

/** True when the embedded database in `dataDir` has been created (its first start is behind it). */
export function embeddedExists(dataDir: string): boolean {
  return fs.existsSync(path.join(pgdataDir(dataDir), 'PG_VERSION'));
}

/** `dataDir` as messages show it: `./data` below the working directory, else absolute. */
export function shownDataDir(dataDir: string): string {
  const rel = path.relative(process.cwd(), dataDir);
  return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? dataDir : `./${rel}`;
}
