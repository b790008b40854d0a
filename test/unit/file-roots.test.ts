/**
 * File roots: what a workspace's connectors may open. Every refusal of an outside path reads
 * the same whether or not something exists there.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileAccess, FileAccessError, parseExtraRoots, type FileScope } from '../../src/security/file-roots.js';

let base: string;
let dataDir: string;
let extra: string;
let extraRo: string;
let scope: FileScope;
let a: FileAccess;
let b: FileAccess;
const OUTSIDE = 'is outside the files root of this workspace';

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-roots-')));
  dataDir = path.join(base, 'data');
  extra = path.join(base, 'extra');
  extraRo = path.join(base, 'extra-ro');
  for (const d of [dataDir, extra, extraRo]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'secret-keys.json'), '{"keys":[]}');
  fs.writeFileSync(path.join(extraRo, 'ro.csv'), 'a\n1\n');
  fs.writeFileSync(path.join(base, 'outside.txt'), 'secret');
  scope = {
    root: path.join(dataDir, 'files'),
    dataDir,
    extraRoots: [
      { path: extra, readOnly: false },
      { path: extraRo, readOnly: true },
    ],
    workspaceId: '00000000-0000-4000-8000-000000000001',
    isDefault: true,
  };
  a = new FileAccess(scope);
  b = new FileAccess({ ...scope, workspaceId: 'ws-b', isDefault: false });
  fs.mkdirSync(a.ensureDir(), { recursive: true });
  fs.writeFileSync(path.join(a.dir, 'in.csv'), 'id\n1\n');
  fs.writeFileSync(path.join(b.ensureDir(), 'b.csv'), 'id\n2\n');
});

afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

async function refusal(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FileAccessError);
    return (err as Error).message;
  }
  throw new Error('expected a FileAccessError');
}

describe('file roots', () => {
  it('puts each workspace in its own folder; the default one is "default"', () => {
    expect(a.dir).toBe(path.join(dataDir, 'files', 'default'));
    expect(b.dir).toBe(path.join(dataDir, 'files', 'ws-b'));
  });

  it('resolves relative paths in the workspace folder and absolute ones inside a root', async () => {
    expect(a.resolve('in.csv', 'read')).toBe(path.join(a.dir, 'in.csv'));
    expect(a.resolve(path.join(a.dir, 'in.csv'), 'read')).toBe(path.join(a.dir, 'in.csv'));
    expect(a.resolve(path.join(extra, 'x.csv'), 'write')).toBe(path.join(extra, 'x.csv'));
    const { handle, size } = await a.openForRead('in.csv');
    expect(size).toBe(5);
    await handle.close();
  });

  it('refuses outside paths with one message, whether or not they exist', async () => {
    const probes = ['/etc/passwd', '/etc/does-not-exist', '../../outside.txt', '../../nothing-here', path.join(base, 'outside.txt'), '/'];
    for (const p of probes) expect(await refusal(() => a.openForRead(p))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForRead('/proc/self/environ'))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForRead(path.join(dataDir, 'secret-keys.json')))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForWrite(path.join(dataDir, 'secret-keys.json')))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForRead('../ws-b/b.csv'))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForRead(path.join(b.dir, 'b.csv')))).toContain(OUTSIDE);
  });

  it('gives the extra roots to the default workspace only, read-only where marked', async () => {
    expect(await refusal(() => b.openForRead(path.join(extraRo, 'ro.csv')))).toContain(OUTSIDE);
    const { handle } = await a.openForRead(path.join(extraRo, 'ro.csv'));
    await handle.close();
    expect(await refusal(() => a.openForWrite(path.join(extraRo, 'new.csv')))).toContain('read-only');
  });

  it('refuses symlinks leading outside, including one swapped in after the path was checked', async () => {
    fs.symlinkSync('/etc/passwd', path.join(a.dir, 'link.csv'));
    expect(await refusal(() => a.openForRead('link.csv'))).toContain(OUTSIDE);
    fs.symlinkSync(dataDir, path.join(a.dir, 'datalink'));
    expect(await refusal(() => a.openForRead('datalink/secret-keys.json'))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForWrite('datalink/secret-keys.json'))).toContain(OUTSIDE);
    // Checked while it was a plain file; then swapped for a link to the key file.
    fs.writeFileSync(path.join(a.dir, 'swap.csv'), 'id\n1\n');
    expect(a.resolve('swap.csv', 'read')).toBe(path.join(a.dir, 'swap.csv'));
    fs.rmSync(path.join(a.dir, 'swap.csv'));
    fs.symlinkSync(path.join(dataDir, 'secret-keys.json'), path.join(a.dir, 'swap.csv'));
    expect(await refusal(() => a.openForRead('swap.csv'))).toContain(OUTSIDE);
    expect(await refusal(() => a.openForWrite('swap.csv'))).toContain(OUTSIDE);
    // A link that stays inside the root is fine.
    fs.symlinkSync(path.join(a.dir, 'in.csv'), path.join(a.dir, 'alias.csv'));
    const { handle } = await a.openForRead('alias.csv');
    await handle.close();
  });

  it('refuses hard links, devices and folders', async () => {
    fs.writeFileSync(path.join(base, 'victim.txt'), 'x');
    fs.linkSync(path.join(base, 'victim.txt'), path.join(a.dir, 'hard.csv'));
    expect(await refusal(() => a.openForRead('hard.csv'))).toContain('hard link');
    expect(await refusal(() => a.openForWrite('hard.csv'))).toContain('hard link');
    fs.symlinkSync('/dev/zero', path.join(a.dir, 'zero.csv'));
    expect(await refusal(() => a.openForRead('zero.csv'))).toContain(OUTSIDE);
    fs.mkdirSync(path.join(a.dir, 'sub'));
    expect(await refusal(() => a.openForRead('sub'))).toContain('folder');
    expect(await refusal(() => a.openForRead('.'))).toContain('folder');
  });

  it('creates parent folders inside the root for writes, and says when a file inside is missing', async () => {
    const { handle, path: p } = await a.openForWrite('out/nested/rows.jsonl');
    await handle.write('{}\n');
    await handle.close();
    expect(p).toBe(path.join(a.dir, 'out', 'nested', 'rows.jsonl'));
    expect(await refusal(() => a.openForRead('missing.csv'))).toContain('does not exist');
    expect(await refusal(() => a.openForRead('bad\0name'))).toContain('NUL');
  });

  it('refuses a dangling link for writing, and a file swapped while a library opens it by name', async () => {
    fs.symlinkSync(path.join(base, 'not-yet.txt'), path.join(a.dir, 'dangling.jsonl'));
    expect(await refusal(() => a.prepareWrite('dangling.jsonl'))).toContain(OUTSIDE);
    expect(await refusal(() => a.inspect('dangling.jsonl', 'write'))).toContain(OUTSIDE);
    expect(fs.existsSync(path.join(base, 'not-yet.txt'))).toBe(false);
    fs.writeFileSync(path.join(a.dir, 'db.sqlite'), '');
    let closed = false;
    const message = await refusal(() =>
      a.openByName(
        'db.sqlite',
        'read',
        (abs) => {
          // The library opens by name; the path is swapped for a link meanwhile.
          fs.rmSync(abs);
          fs.symlinkSync(path.join(dataDir, 'secret-keys.json'), abs);
          return abs;
        },
        () => (closed = true),
      ),
    );
    expect(message).toContain('changed while it was being opened');
    expect(closed).toBe(true);
    expect(a.resolveFolder('.', 'write')).toBe(a.dir);
    expect(await refusal(() => a.resolveFolder('in.csv', 'write'))).toContain('not a folder');
  });

  it('parses SLUICE_FILES_EXTRA_ROOTS', () => {
    expect(parseExtraRoots('/a, /b:ro')).toEqual([
      { path: '/a', readOnly: false },
      { path: '/b', readOnly: true },
    ]);
    expect(() => parseExtraRoots('relative/dir')).toThrow(/absolute/);
  });
});
