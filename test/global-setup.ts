/**
 * Creates one initialised embedded database for the whole run; test servers copy it instead
 * of running PGlite's initdb (seconds of CPU) once per test file.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pgdata-template-'));
  const pgdata = path.join(dir, 'pgdata');
  const res = spawnSync(process.execPath, ['src/db/pglite-init.mjs', pgdata], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`could not create the database template: ${res.stderr}`);
  process.env.SLUICE_TEST_PGDATA_TEMPLATE = pgdata;
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
