/**
 * The runner host must run in a worker process without GraphQL or the HTTP server: nothing it
 * loads (following value imports, not type-only ones) comes from src/graphql, src/server, a
 * *.graphql.ts file or a GraphQL package.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const FORBIDDEN_FILE = /^src\/(graphql|server)\/|\.graphql\.ts$/;
const FORBIDDEN_PACKAGE = /^(graphql|graphql-yoga|graphql-ws|graphql-scalars|@pothos\/|@graphql-yoga\/|@escape\.tech\/|@envelop\/)/;

/** Value imports of a TypeScript file (`import type` and `export type` are erased and skipped). */
function valueImports(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(src); m; m = re.exec(src)) if (!m[1]) out.push(m[2]!);
  for (const m of src.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

function loadedBy(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    const rel = path.relative(root, file);
    if (files.has(rel)) return;
    files.add(rel);
    for (const spec of valueImports(file)) {
      if (!spec.startsWith('.')) {
        packages.add(spec);
        continue;
      }
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      if (fs.existsSync(target) && target.endsWith('.ts')) visit(target);
    }
  };
  visit(path.join(root, entry));
  return { files: [...files], packages: [...packages] };
}

describe('the runner host stands without GraphQL and the HTTP server', () => {
  for (const entry of ['src/modules/job/job.host.ts', 'src/modules/job/job.dispatch.ts', 'src/engine/runner/runner.ts']) {
    it(entry, () => {
      const { files, packages } = loadedBy(entry);
      expect(files.filter((f) => FORBIDDEN_FILE.test(f))).toEqual([]);
      expect(packages.filter((p) => FORBIDDEN_PACKAGE.test(p))).toEqual([]);
    });
  }

  it('the check sees what the server side loads', () => {
    const { files, packages } = loadedBy('src/app.ts');
    expect(files.filter((f) => FORBIDDEN_FILE.test(f)).length).toBeGreaterThan(0);
    expect(packages.filter((p) => FORBIDDEN_PACKAGE.test(p)).length).toBeGreaterThan(0);
    expect(loadedBy('src/modules/job/job.host.ts').files).toContain('src/modules/job/job.rows.ts');
  });
});
