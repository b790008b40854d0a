#!/usr/bin/env node
// Writes prisma/migrations/<timestamp>_<name>/migration.sql with the SQL that takes the
// schema committed at HEAD to the working prisma/schema.prisma (no database needed).
// Usage: npm run migration -- <name>
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run migration -- <snake_case_name>');
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const old = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mig-')), 'schema.prisma');
fs.writeFileSync(old, execFileSync('git', ['show', 'HEAD:prisma/schema.prisma'], { cwd: root }));
const res = spawnSync(
  process.execPath,
  [path.join(root, 'scripts/prisma.mjs'), 'migrate', 'diff', '--from-schema-datamodel', old, '--to-schema-datamodel', 'prisma/schema.prisma', '--script'],
  { cwd: root, encoding: 'utf8' },
);
if (res.status !== 0) {
  process.stderr.write(res.stderr);
  process.exit(res.status ?? 1);
}
if (!res.stdout.trim() || /-- This is an empty migration/.test(res.stdout)) {
  console.log('no schema change since HEAD');
  process.exit(0);
}
const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const dir = path.join(root, 'prisma/migrations', `${stamp}_${name}`);
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'migration.sql'), res.stdout);
console.log(`wrote ${path.relative(root, dir)}/migration.sql`);
