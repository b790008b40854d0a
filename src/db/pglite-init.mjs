// Creates a new PGlite data directory and exits. Run as a child process on the first start:
// PGlite's initdb leaves ~600 MB of WebAssembly memory behind in the process that ran it,
// which a long-running server should not carry.
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: pglite-init.mjs <data dir>');
  process.exit(2);
}
const db = await PGlite.create(dir);
await db.query('select 1');
await db.close();
