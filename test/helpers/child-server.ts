/**
 * The real server as a child process (`tsx src/main.ts`), for tests that kill it (SIGKILL) or
 * run several processes on one database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Gql } from './graphql.js';
import { eventually } from './server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type { Gql };

export interface ChildServer {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** The GraphQL endpoint. */
  url: string;
  q: Gql;
  exited: Promise<void>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
}

const children = new Set<ChildProcess>();

/** Signals the process group of a child (tsx runs the program in a node process of its own). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

/** SIGKILLs every child still running (for afterAll). */
export function killChildren(): void {
  for (const c of children) killGroup(c, 'SIGKILL');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `tsx src/main.ts` on `dataDir` (plus `env`) and waits until it answers. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const port = await freePort();
  const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, SLUICE_PORT: String(port), SLUICE_DATA_DIR: dataDir, SLUICE_LOG_LEVEL: 'warn', SLUICE_PROGRESS_INTERVAL_MS: '200', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  const url = `${base}/graphql`;
  const q: Gql = async (query, variables) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log}`);
      return (await q(`{ health { status } }`)).health.status === 'ok';
    },
    60_000,
    100,
  );
  return { child, base, url, q, exited, output: () => log };
}
