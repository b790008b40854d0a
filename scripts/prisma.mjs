#!/usr/bin/env node
// Runs the Prisma CLI offline: our machines cannot download Prisma's native engines, and
// with `engineType = "client"` + the JS schema engine nothing needs them. Pointing
// PRISMA_QUERY_ENGINE_LIBRARY at any existing file stops the CLI from trying.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const env = {
  ...process.env,
  PRISMA_QUERY_ENGINE_LIBRARY: process.env.PRISMA_QUERY_ENGINE_LIBRARY ?? fileURLToPath(new URL('../package.json', import.meta.url)),
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  PRISMA_SKIP_POSTINSTALL_GENERATE: '1',
  CHECKPOINT_DISABLE: '1',
};
const cli = require.resolve('prisma/build/index.js');
const res = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { stdio: 'inherit', env, cwd: root });
process.exit(res.status ?? 1);
