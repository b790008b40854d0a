/**
 * Runs driver tasks (check, discover, preview — driver-task.ts) off the API's event loop,
 * each in a fresh worker thread with a time and a memory limit.
 *
 * Contract:
 * - The time limit runs from when the worker is ready for the task (thread start-up, which
 *   loads the drivers, is not counted) until its answer. A task past it, or past its memory
 *   limit (V8 heap, `resourceLimits`), is terminated and rejects with ResourceLimitError
 *   (`TIME` / `MEMORY`); an answer larger than `maxResultBytes` rejects with `OUTPUT`. A
 *   driver failure rejects with an Error carrying the driver's message.
 * - The config (secrets decrypted) only travels to the worker by message; every text coming
 *   back — results' messages, errors, crashes — has the given secrets scrubbed.
 * - The worker installs the outbound guard with the same allow-list as the API process.
 * - At most `maxConcurrent` tasks run at once; more wait their turn (their time limit starts
 *   when they run). One thread per task, never reused: one tenant's task never shares a heap
 *   with another's. Starting a thread costs ~0.3 s compiled and ~1.5 s under tsx (loading the
 *   drivers), so after a task one spare thread is started and waits, ready, for the next.
 */
import { Worker } from 'node:worker_threads';
import { ResourceLimitError } from '../../errors.js';
import { outboundGuard } from '../drivers/kit/outbound.js';
import { scrubberFor } from '../../security/secrets-redact.js';
import type { DriverTask, DriverTaskMessage, DriverTaskRequest, DriverTaskResult } from './driver-task.js';

export interface DriverTaskLimits {
  /** SLUICE_PREVIEW_TIMEOUT_MS */
  timeoutMs: number;
  /** SLUICE_PREVIEW_MEMORY_MB: the worker's V8 old-generation heap. */
  memoryMb: number;
}

export interface DriverTasksOptions extends DriverTaskLimits {
  /** The outbound guard's allow-list (SLUICE_OUTBOUND_ALLOW), applied inside the worker too. */
  outboundAllow: readonly string[];
  /** Largest answer accepted, in bytes of JSON (default 8 MiB). */
  maxResultBytes?: number;
  /** Tasks running at once (default 4). */
  maxConcurrent?: number;
}

export const DEFAULT_MAX_RESULT_BYTES = 8 * 1024 * 1024;
/** A worker that has not loaded its drivers by then is broken, not slow. */
const STARTUP_TIMEOUT_MS = 60_000;

const bootstrap = new URL('./worker-bootstrap.mjs', import.meta.url);
const entry = new URL(import.meta.url.endsWith('.ts') ? './driver-worker.ts' : './driver-worker.js', import.meta.url).href;

const LABEL: Record<DriverTask['kind'], string> = { check: 'check', discover: 'discovery', preview: 'preview' };

export class DriverTasks {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private readonly workers = new Set<Worker>();
  private spare: Spawned | null = null;
  private closed = false;

  constructor(private readonly options: DriverTasksOptions) {}

  /** Runs `task` in a worker under the limits; see the module contract. */
  async run<T extends DriverTask>(task: T, secrets: readonly string[] = []): Promise<DriverTaskResult<T['kind']>> {
    await this.acquire();
    try {
      return (await this.execute(task, secrets)) as DriverTaskResult<T['kind']>;
    } finally {
      this.release();
    }
  }

  /** Terminates running tasks (shutdown); later calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.spare = null;
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }

  private acquire(): Promise<void> {
    if (this.running < (this.options.maxConcurrent ?? 4)) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.running--;
  }

  /** A worker loading its drivers; `ready` settles when it can take a task (or failed to start). */
  private spawn(): Spawned {
    const maxResultBytes = this.options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    const { memoryMb } = this.options;
    const worker = new Worker(bootstrap, {
      workerData: { entry, driverTask: { outbound: outboundGuard()?.settings ?? { allow: [...this.options.outboundAllow], protectedDatabases: [] }, maxResultBytes } },
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(memoryMb / 8))) },
    });
    // An idle worker never keeps the process alive; close() terminates it.
    worker.unref();
    this.workers.add(worker);
    const spawned: Spawned = { worker, ready: Promise.resolve(), handlers: null };
    spawned.ready = new Promise<void>((resolve, reject) => {
      const startup = setTimeout(() => {
        reject(new Error(`the driver worker did not start within ${STARTUP_TIMEOUT_MS / 1000} s`));
        void worker.terminate();
      }, STARTUP_TIMEOUT_MS);
      worker.on('message', (msg: DriverTaskMessage) => {
        if (msg.type === 'ready') {
          clearTimeout(startup);
          resolve();
        } else spawned.handlers?.message(msg);
      });
      worker.on('error', (err: Error & { code?: string }) => {
        clearTimeout(startup);
        reject(err);
        spawned.handlers?.error(err);
      });
      worker.on('exit', (code) => {
        clearTimeout(startup);
        this.workers.delete(worker);
        reject(new Error(`the driver worker exited (code ${code}) while starting`));
        spawned.handlers?.exit(code);
      });
    });
    spawned.ready.catch(() => undefined); // observed by whoever takes the worker
    return spawned;
  }

  /** A started worker: the pre-warmed spare when there is one (else a new one), never reused. */
  private async take(): Promise<Spawned> {
    const spare = this.spare;
    this.spare = null;
    if (spare) {
      try {
        await spare.ready;
        return spare;
      } catch {
        // it died while idle: start another
      }
    }
    const fresh = this.spawn();
    await fresh.ready;
    return fresh;
  }

  private async execute(task: DriverTask, secrets: readonly string[]): Promise<unknown> {
    if (this.closed) throw new Error('the server is shutting down');
    const { timeoutMs, memoryMb } = this.options;
    const maxResultBytes = this.options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    const scrub = scrubberFor(secrets);
    const label = LABEL[task.kind];
    let w: Spawned;
    try {
      w = await this.take();
    } catch (err) {
      throw new Error(scrub((err as Error).message));
    }
    try {
      return await new Promise((resolve, reject) => {
        let settled = false;
        const timer = setTimeout(
          () => fail(new ResourceLimitError(`the ${label} was stopped at its time limit of ${timeoutMs} ms (SLUICE_PREVIEW_TIMEOUT_MS)`, 'TIME')),
          timeoutMs,
        );
        const done = () => {
          settled = true;
          clearTimeout(timer);
        };
        const fail = (err: Error) => {
          if (settled) return;
          done();
          reject(err);
        };
        w.handlers = {
          message: (msg) => {
            if (settled) return;
            if (msg.type === 'result') {
              done();
              try {
                resolve(JSON.parse(msg.json));
              } catch (err) {
                reject(err as Error);
              }
            } else if (msg.type === 'too-large') {
              fail(new ResourceLimitError(`the ${label} answer is ${msg.bytes} bytes, more than the ${maxResultBytes} the API returns; ask for fewer records`, 'OUTPUT'));
            } else if (msg.type === 'failed') fail(new Error(scrub(msg.error)));
          },
          error: (err) => {
            if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
              fail(new ResourceLimitError(`the ${label} was stopped at its memory limit of ${memoryMb} MB (SLUICE_PREVIEW_MEMORY_MB)`, 'MEMORY'));
            } else fail(new Error(scrub(err.message ?? String(err))));
          },
          exit: (code) => fail(new Error(`the ${label} worker exited (code ${code}) before answering`)),
        };
        const request: DriverTaskRequest = { task, secrets: [...secrets] };
        w.worker.postMessage(request);
      });
    } finally {
      // One task per thread: whatever it loaded or leaked goes with it.
      void w.worker.terminate();
      // The next task finds a worker that has already loaded its drivers.
      if (!this.closed && !this.spare) this.spare = this.spawn();
    }
  }
}

interface Spawned {
  worker: Worker;
  ready: Promise<void>;
  handlers: {
    message(msg: DriverTaskMessage): void;
    error(err: Error & { code?: string }): void;
    exit(code: number): void;
  } | null;
}
