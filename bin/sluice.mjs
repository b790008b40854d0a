#!/usr/bin/env node
// The `sluice` command. Runs the built CLI (dist/, from `npm run build`) when it is there and
// not older than the sources; otherwise the TypeScript sources, with tsx registered in this
// very process. Either way Sluice runs in this one process: a signal sent to it (or to
// `npm start`, which forwards it) reaches the server itself, and no child is left behind.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = path.join(root, 'dist', 'cli', 'main.js');
const source = path.join(root, 'src', 'cli', 'main.ts');

/** Newest modification time of the files under `dir` (0 when it does not exist). */
function newest(dir) {
  let max = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) max = Math.max(max, newest(p));
    else if (e.isFile()) max = Math.max(max, fs.statSync(p).mtimeMs);
  }
  return max;
}

function useBuilt() {
  if (process.env.SLUICE_FROM_SOURCE === '1' || !fs.existsSync(built)) return false;
  // A package without its sources runs the build.
  if (!fs.existsSync(source)) return true;
  // In a checkout, a build older than any source file would run stale code.
  if (newest(path.join(root, 'src')) > fs.statSync(built).mtimeMs) {
    process.stderr.write('sluice: dist/ is older than src/, running from source (`npm run build` updates it)\n');
    return false;
  }
  return true;
}

if (useBuilt()) {
  // Stack traces name the TypeScript sources (the build writes source maps).
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
}
