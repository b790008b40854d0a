/**
 * The layering rule, read from the import graph: primitives → engine → modules → server.
 * A file may import (at run time) only from its own layer or a lower one; type-only imports
 * are free. A new upward import fails this test, naming the edge.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve('src');

/** Lower number = lower floor. The first matching prefix wins. */
const LAYERS: [prefix: string, layer: number, name: string][] = [
  ['generated/', 0, 'primitives'],
  ['db/', 0, 'primitives'],
  ['tenancy/', 0, 'primitives'],
  ['security/', 0, 'primitives'],
  ['pubsub/', 0, 'primitives'],
  ['observability/', 0, 'primitives'],
  ['errors.ts', 0, 'primitives'],
  ['ids.ts', 0, 'primitives'],
  ['logger.ts', 0, 'primitives'],
  ['config.ts', 0, 'primitives'],
  ['version.ts', 0, 'primitives'],
  ['engine/', 1, 'engine'],
  ['graphql/', 2, 'modules'],
  ['modules/', 2, 'modules'],
  ['server/', 3, 'server'],
  ['cli/', 3, 'server'],
  ['services.ts', 3, 'server'],
  ['app.ts', 3, 'server'],
  ['main.ts', 3, 'server'],
];

function layerOf(rel: string): [number, string] {
  for (const [prefix, layer, name] of LAYERS) if (rel === prefix || rel.startsWith(prefix)) return [layer, name];
  throw new Error(`src/${rel} is on no layer: add it to LAYERS`);
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return d.name === 'generated' ? [] : sources(p);
    return /\.(ts|mts|mjs)$/.test(d.name) && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Run-time imports of one file (import/export … from, dynamic import()); `import type` is skipped. */
export function runtimeImports(file: string): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      const typeOnly = c?.isTypeOnly || (c && !c.name && c.namedBindings && ts.isNamedImports(c.namedBindings) && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly));
      if (!typeOnly) out.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) && !node.isTypeOnly) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out.filter((s) => s.startsWith('.'));
}

describe('layering', () => {
  it('no file imports from a higher layer', () => {
    const violations: string[] = [];
    for (const file of sources(SRC)) {
      const rel = path.relative(SRC, file);
      const [from, fromName] = layerOf(rel);
      for (const spec of runtimeImports(file)) {
        const target = path.relative(SRC, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts');
        if (target.startsWith('..')) continue;
        const [to, toName] = layerOf(target);
        if (to > from) violations.push(`src/${rel} (${fromName}) imports src/${target} (${toName})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('reads type-only imports as free and value imports as edges (the checker itself can fail)', () => {
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'layer-')), 'x.ts');
    fs.writeFileSync(tmp, "import type { A } from './a.js';\nimport { type B } from './b.js';\nimport { C } from './c.js';\nexport { D } from './d.js';\nawait import('./e.js');\n");
    expect(runtimeImports(tmp)).toEqual(['./c.js', './d.js', './e.js']);
  });
});
