/**
 * A files root for engine tests that call drivers directly: a fresh data folder with its
 * `files/default/` folder (the default workspace's), and the DriverContext drivers get.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { driverContext } from '../../src/engine/drivers/context.js';
import type { DriverContext } from '../../src/engine/drivers/types.js';
import type { FileScope } from '../../src/security/file-roots.js';
import { DEFAULT_WORKSPACE_ID } from '../../src/tenancy/scope.js';

export interface TestFiles {
  /** The driver context (default workspace). */
  ctx: DriverContext;
  /** The workspace's files folder (created): write test files here. */
  dir: string;
  /** The data folder holding the files root. */
  dataDir: string;
  scope: FileScope;
  cleanup(): void;
}

export function testFiles(prefix = 'sluice-files-'): TestFiles {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  const dataDir = path.join(base, 'data');
  const scope: FileScope = { root: path.join(dataDir, 'files'), dataDir, extraRoots: [], workspaceId: DEFAULT_WORKSPACE_ID, isDefault: true };
  const ctx = driverContext(scope);
  return { ctx, dir: ctx.files.ensureDir(), dataDir, scope, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}
