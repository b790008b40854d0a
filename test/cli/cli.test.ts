/**
 * The `sluice` command as users run it: real child processes of `node bin/sluice.mjs …` (and
 * `npm start`). One server (started through `npm start`) is shared by the client commands;
 * it starts while the offline tests run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'sluice.mjs');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const MIGRATIONS = fs.readdirSync(path.join(ROOT, 'prisma', 'migrations'), { withFileTypes: true }).filter((d) => d.isDirectory() && fs.existsSync(path.join(ROOT, 'prisma', 'migrations', d.name, 'migration.sql'))).length;

const dirs: string[] = [];
const children = new Set<ChildProcess>();

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
  dirs.push(dir);
  return dir;
}

/** The environment without any Sluice setting of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'SLUICE_TEST_PGDATA_TEMPLATE' || !(/^SLUICE_/.test(k) || k === 'DATABASE_URL' || k === 'REDIS_URL')) env[k] = v;
  }
  return { ...env, SLUICE_LOG_LEVEL: 'warn', ...extra };
}

/** Puts an initialised (not migrated) embedded database in `dataDir`, copied from the run's template (test/global-setup.ts). */
function copyDatabaseTemplate(dataDir: string): void {
  const template = process.env.SLUICE_TEST_PGDATA_TEMPLATE;
  if (template) fs.cpSync(template, path.join(dataDir, 'pgdata'), { recursive: true });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sluice(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when nothing listens on the port (it can be bound again). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** True while some process of the group is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface NpmServer {
  npm: ChildProcess;
  port: number;
  url: string;
  dataDir: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** `npm start -- --port <free>` on a new data folder (its first start), in a process group of its own; resolves once it logs that it listens. */
async function startWithNpm(): Promise<NpmServer> {
  const port = await freePort();
  const dataDir = path.join(tempDir(), 'data');
  const npm = spawn('npm', ['start', '--', '--port', String(port)], {
    cwd: ROOT,
    env: cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(npm);
  let log = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Sluice is listening')) resolve();
    };
    npm.stdout!.on('data', onData);
    npm.stderr!.on('data', onData);
    void exit.then(({ code }) => reject(new Error(`npm start exited with ${code} before listening:\n${log}`)));
    setTimeout(() => reject(new Error(`npm start did not listen within 45 s:\n${log}`)), 45_000).unref();
  });
  return { npm, port, url: `http://127.0.0.1:${port}`, dataDir, exit, output: () => log };
}

afterAll(() => {
  for (const c of children) if (c.pid && groupAlive(c.pid)) process.kill(-c.pid, 'SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

// Starts now, while the offline tests below run.
const server = startWithNpm();
server.catch(() => undefined);

describe('sluice (offline)', () => {
  it('--help lists the commands; --version prints the package version', async () => {
    const help = await sluice(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['serve', 'worker', 'migrate', 'keys', 'secrets', 'export', 'apply']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    const version = await sluice(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it('worker without REDIS_URL says it needs cluster mode and exits 2', async () => {
    const r = await sluice(['worker']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('sluice worker needs cluster mode (REDIS_URL and a PostgreSQL DATABASE_URL); in embedded mode `sluice serve` runs jobs itself');
  });

  it('a port in use is one line and exit 1, before the data folder is touched', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const { port } = blocker.address() as net.AddressInfo;
    const dataDir = path.join(tempDir(), 'data');
    try {
      const r = await sluice(['serve', '--port', String(port), '--data-dir', dataDir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`port ${port} on 127.0.0.1 is in use; set SLUICE_PORT or stop the other process\n`);
      expect(fs.existsSync(dataDir)).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('migrate status / deploy on a data folder; secrets rotate on it', async () => {
    const dataDir = path.join(tempDir(), 'data');
    // Nothing there yet: every migration pending, and status creates nothing.
    const before = await sluice(['migrate', 'status', '--data-dir', dataDir]);
    expect(before.code).toBe(0);
    expect(before.stdout).toContain('not created yet');
    expect(before.stdout.match(/^ {2}pending /gm)).toHaveLength(MIGRATIONS);
    expect(fs.existsSync(dataDir)).toBe(false);

    copyDatabaseTemplate(dataDir);
    const deploy = await sluice(['migrate', 'deploy', '--data-dir', dataDir]);
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(deploy.stdout.match(/^ {2}applied /gm)).toHaveLength(MIGRATIONS);

    const after = await sluice(['migrate', '--data-dir', dataDir, '--json']);
    expect(after.code).toBe(0);
    const status = JSON.parse(after.stdout) as { exists: boolean; migrations: { state: string }[] };
    expect(status.exists).toBe(true);
    expect(status.migrations.map((m) => m.state)).toEqual(Array(MIGRATIONS).fill('applied'));

    const rotate = await sluice(['secrets', 'rotate', '--data-dir', dataDir]);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toMatch(/^secrets re-encrypted under key \S+: 0 connector\(s\)/);
  });

  it('client commands: an unreachable server is one line and exit 1; a missing file exit 2', async () => {
    const port = await freePort();
    const r = await sluice(['keys', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cannot reach Sluice at http://127.0.0.1:${port}/graphql: connection refused (is \`sluice serve\` running there?)\n`);
    const missing = await sluice(['apply', '--file', path.join(tempDir(), 'nope.yaml'), '--url', `http://127.0.0.1:${port}`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^no such file: /);
  });
});

describe('sluice against a server started by npm start', () => {
  it('the first start says it initialises the embedded database', async () => {
    const s = await server;
    expect(s.output()).toMatch(/"msg":"initialising the embedded database in \/\S+\/data \(first use, takes a few seconds\)"/);
    expect(s.output().indexOf('initialising the embedded database')).toBeLessThan(s.output().indexOf('Sluice is listening'));
  });

  it('keys create, list, revoke (keyless local access, then the created key)', async () => {
    const { url } = await server;
    const created = await sluice(['keys', 'create', 'ci', '--scope', 'WRITE', '--url', url]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^sk_[A-Za-z0-9_-]{43}\n$/);
    expect(created.stderr).toContain('created WRITE key "ci"');
    const key = created.stdout.trim();

    const listed = await sluice(['keys', 'list', '--json', '--url', url]);
    expect(listed.code, listed.stderr).toBe(0);
    const keys = JSON.parse(listed.stdout) as { id: string; name: string; scope: string; prefix: string; revoked: boolean }[];
    const ci = keys.find((k) => k.name === 'ci')!;
    expect(ci).toMatchObject({ scope: 'WRITE', revoked: false });
    expect(key.startsWith(ci.prefix)).toBe(true);

    const table = await sluice(['keys', 'list', '--url', url]);
    expect(table.stdout).toMatch(/^ID +NAME +SCOPE +PREFIX +STATUS/);
    expect(table.stdout).toMatch(new RegExp(`^${ci.id.replace(/[+=/]/g, '\\$&')} +ci +WRITE +${ci.prefix} +active`, 'm'));

    // The key works through SLUICE_API_KEY, without the local access.
    const withKey = await sluice(['keys', 'list', '--json'], { env: { SLUICE_URL: url, SLUICE_API_KEY: key } });
    expect(withKey.code, withKey.stderr).toBe(0);

    const revoked = await sluice(['keys', 'revoke', ci.id, '--url', url]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/^revoked key "ci"/);

    const refused = await sluice(['keys', 'list', '--url', url, '--api-key', key]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^Sluice at http:\/\/127\.0\.0\.1:\d+\/graphql refused the request \(401\): The API key is unknown, revoked or expired; /);

    const active = await sluice(['keys', 'list', '--no-revoked', '--json', '--url', url]);
    expect((JSON.parse(active.stdout) as { id: string }[]).map((k) => k.id)).not.toContain(ci.id);

    // A typed error of the API: its code and message, exit 1.
    const unknown = await sluice(['keys', 'revoke', 'QXBpS2V5Om5vcGU=', '--url', url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^(NOT_FOUND|VALIDATION_FAILED|[A-Z_]+): /);
  });

  it('apply plans and applies a YAML document, a second apply prints no changes, export gives it back; an unset ${NAME} names its line', async () => {
    const { url } = await server;
    const dir = tempDir();
    const file = path.join(dir, 'sluice.yaml');
    fs.writeFileSync(
      file,
      [
        'version: 1',
        'connectors:',
        '  ticks:',
        '    driver: generator',
        '    config:',
        '      count: 10',
        '  partner:',
        '    driver: http',
        '    config:',
        '      url: http://127.0.0.1:9/items',
        '      auth:',
        '        type: bearer',
        '        token: ${CLI_TEST_TOKEN}',
        '  sink:',
        '    driver: "null"',
        'pipelines:',
        '  ticks-to-sink:',
        '    source: ticks',
        '    destination: sink',
        '    batchSize: 50',
        '',
      ].join('\n'),
    );
    const unset = await sluice(['apply', '-f', file, '--url', url]);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(/sluice\.yaml:13:\d+ connectors\.partner\.config\.auth\.token/);
    expect(unset.stderr).toContain('CLI_TEST_TOKEN');

    const env = { CLI_TEST_TOKEN: 'tok-cli-Secret-93b1' };
    const dry = await sluice(['apply', '-f', file, '--dry-run', '--url', url], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^\+ connectors\.ticks/m);
    expect(dry.stdout).toMatch(/^\+ pipelines\.ticks-to-sink/m);
    expect(dry.stderr).toContain('dry run: nothing was changed');

    const applied = await sluice(['apply', '-f', file, '--url', url], { env });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toBe(dry.stdout);
    expect(applied.stderr).toContain('applied');
    const again = await sluice(['apply', '-f', file, '--url', url], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('no changes\n');

    const out = path.join(dir, 'exported.yaml');
    const exported = await sluice(['export', '--out', out, '--url', url]);
    expect(exported.code, exported.stderr).toBe(0);
    const text = fs.readFileSync(out, 'utf8');
    expect(text).toContain('ticks-to-sink:');
    expect(text).not.toContain(env.CLI_TEST_TOKEN);
    const refs = [...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    // The export applied back (its secret references given) changes nothing; stdout is the document itself without --out.
    const back = await sluice(['apply', '-f', out, '--url', url], { env: Object.fromEntries(refs.map((r) => [r, env.CLI_TEST_TOKEN])) });
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toBe('no changes\n');
    expect((await sluice(['export', '--url', url])).stdout).toBe(text);
  });

  it('SIGTERM to the npm start process stops the server cleanly: the port is free, no process is left', async () => {
    const s = await server;
    const pgid = s.npm.pid!;
    process.kill(pgid, 'SIGTERM');
    const { code } = await s.exit;
    expect(code).toBe(0);
    expect(await until(() => !groupAlive(pgid), 5000)).toBe(true);
    expect(await portFree(s.port)).toBe(true);
    expect(s.output()).toMatch(/"msg":"stopped"/);
  });

  it('SIGTERM while the embedded database initialises stops once it is up, leaving a database the next start opens', async () => {
    const port = await freePort();
    const dataDir = path.join(tempDir(), 'data');
    const run = () => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/sluice.mjs'), 'serve', '--port', String(port)], {
        cwd: ROOT,
        env: cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_LOG_LEVEL: 'info' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => void (out += d.toString()));
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, exit, output: () => out };
    };
    const first = run();
    expect(await until(() => first.output().includes('initialising the embedded database'), 30_000)).toBe(true);
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    expect(first.output()).toMatch(/signal received during start-up: stopping once started/);
    expect(first.output()).toMatch(/"msg":"stopped"/);
    // The interrupted first start left a whole database: the next start opens it without initialising again.
    const second = run();
    expect(await until(() => second.output().includes('Sluice is listening'), 45_000)).toBe(true);
    expect(second.output()).not.toContain('initialising the embedded database');
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  });
});
