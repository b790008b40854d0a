/**
 * The job runner: runs each job in its own worker thread and owns everything the worker
 * reports. The API's event loop never touches records.
 *
 * Promises: a job's state is persisted only from worker checkpoints (never ahead of the
 * destination); persistence is coalesced — the latest confirmed state always wins and at
 * most one write is in flight per job; progress is published at most once per interval
 * plus a final message; `requestStop` ends the job at the next batch boundary.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../logger.js';
import { outboundGuard } from '../drivers/kit/outbound.js';
import type { StreamStates } from '../drivers/types.js';
import { addCounters, STOP_FLAG, zeroCounters, type Counters, type DeadLetterRecord, type JobPlan, type LogExtra, type LogLevel, type WorkerMessage } from './protocol.js';

export type StopReason = 'PAUSED' | 'CANCELLED' | 'INTERRUPTED' | 'TIMEOUT';

export type JobOutcome =
  | { status: 'SUCCEEDED' }
  | { status: 'FAILED'; error: string; retryable: boolean; stack?: string }
  | { status: StopReason; error?: string };

export interface CheckpointData {
  /** Partial per-stream state to merge into the pipeline cursor (null: counters only). */
  state: StreamStates | null;
  totals: Counters;
  streamTotals: Record<string, Counters>;
  deadLetters: DeadLetterRecord[];
}

/** What the runner needs from the control plane (implemented by the job service). */
export interface RunnerHost {
  /** Marks the job RUNNING with a new attempt and returns what to run; null when it must not run. */
  begin(jobId: string): Promise<JobPlan | null>;
  checkpoint(jobId: string, data: CheckpointData): Promise<void>;
  progress(jobId: string, pipelineId: string, totals: Counters, status: string, final: boolean): void;
  /** One line of the job's log (`extra.stage` defaults to RUNNER). Must not block: the host buffers. */
  log(jobId: string, level: LogLevel, message: string, extra?: LogExtra): void;
  /** Driver log lines the worker dropped beyond the job's log cap (JobPlan.logBudget). */
  logsDropped?(jobId: string, count: number): void;
  finish(jobId: string, outcome: JobOutcome, totals: Counters, streamTotals: Record<string, Counters>): Promise<void>;
}

export interface RunnerOptions {
  progressIntervalMs: number;
  log: Logger;
}

interface Active {
  jobId: string;
  pipelineId: string;
  control: Int32Array;
  stopReason: StopReason | null;
  done: Promise<void>;
}

const bootstrap = new URL('./worker-bootstrap.mjs', import.meta.url);
const workerEntry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url).href;

export class Runner {
  private readonly active = new Map<string, Active>();

  constructor(
    private readonly host: RunnerHost,
    private readonly options: RunnerOptions,
  ) {}

  isRunning(jobId: string): boolean {
    return this.active.has(jobId);
  }

  runningJobs(): string[] {
    return [...this.active.keys()];
  }

  /** Asks a running job to stop at its next batch boundary; false if it is not running here. */
  requestStop(jobId: string, reason: StopReason): boolean {
    const a = this.active.get(jobId);
    if (!a) return false;
    // A cancel or a timeout overrides a pause; nothing overrides a cancel.
    if (!a.stopReason || (a.stopReason !== 'CANCELLED' && (reason === 'CANCELLED' || reason === 'TIMEOUT'))) a.stopReason = reason;
    Atomics.store(a.control, STOP_FLAG, 1);
    return true;
  }

  /** Waits until the job's worker has exited (resolves at once if it is not running). */
  async waitFor(jobId: string): Promise<void> {
    await this.active.get(jobId)?.done;
  }

  /** Stops every running job at a checkpoint (status INTERRUPTED → resumed at next start). */
  async shutdown(timeoutMs: number): Promise<void> {
    for (const id of this.active.keys()) this.requestStop(id, 'INTERRUPTED');
    const all = Promise.all([...this.active.values()].map((a) => a.done));
    await Promise.race([all, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** Runs one job to the end (success, failure or stop). Never throws. */
  async run(jobId: string): Promise<void> {
    const log = this.options.log.child({ jobId });
    let plan: JobPlan | null;
    try {
      plan = await this.host.begin(jobId);
    } catch (err) {
      log.error({ err }, 'could not start job');
      return;
    }
    if (!plan) return;
    const control = new Int32Array(new SharedArrayBuffer(4));
    let resolveDone!: () => void;
    const active: Active = { jobId, pipelineId: plan.pipelineId, control, stopReason: null, done: new Promise((r) => (resolveDone = r)) };
    this.active.set(jobId, active);
    const timeout = plan.executionTimeoutMs ? setTimeout(() => this.requestStop(jobId, 'TIMEOUT'), plan.executionTimeoutMs) : null;
    try {
      await this.execute(plan, active, log);
    } finally {
      if (timeout) clearTimeout(timeout);
      this.active.delete(jobId);
      resolveDone();
    }
  }

  private async execute(plan: JobPlan, active: Active, log: Logger): Promise<void> {
    let totals: Counters = { ...plan.totals };
    const streamTotals: Record<string, Counters> = structuredClone(plan.streamTotals);
    let pendingState: StreamStates | null = null;
    let pendingDead: DeadLetterRecord[] = [];
    let dirty = false;
    let persisting: Promise<void> | null = null;
    let lastProgress = 0;
    let progressTimer: NodeJS.Timeout | null = null;

    let lastPersistAt = 0;
    const persist = (): Promise<void> => {
      if (persisting) return persisting;
      if (!dirty) return Promise.resolve();
      lastPersistAt = Date.now();
      const data: CheckpointData = { state: pendingState, totals: { ...totals }, streamTotals: structuredClone(streamTotals), deadLetters: pendingDead };
      pendingState = null;
      pendingDead = [];
      dirty = false;
      persisting = this.host
        .checkpoint(plan.jobId, data)
        .catch((err: unknown) => {
          log.error({ err }, 'checkpoint failed');
          this.host.log(plan.jobId, 'warn', `checkpoint failed: ${(err as Error).message ?? String(err)}`);
        })
        .finally(() => {
          persisting = null;
        })
        .then(() => (dirty ? schedulePersist() : undefined));
      return persisting;
    };
    // Worker messages are handled in bursts (Node drains up to 1000 per turn) and the embedded
    // database runs on this thread: persisting from the message handler would chain every
    // checkpoint write in one turn and stall the API. Persist on a later turn instead, and at
    // most every PERSIST_INTERVAL_MS: the latest confirmed state wins, so nothing is lost.
    let persistQueued = false;
    const schedulePersist = () => {
      if (persistQueued) return;
      persistQueued = true;
      const run = () => {
        persistQueued = false;
        void persist();
      };
      const wait = lastPersistAt + PERSIST_INTERVAL_MS - Date.now();
      if (wait > 0) setTimeout(run, wait);
      else setImmediate(run);
    };

    const publish = () => {
      progressTimer = null;
      lastProgress = Date.now();
      this.host.progress(plan.jobId, plan.pipelineId, totals, 'RUNNING', false);
    };

    const onMessage = (msg: WorkerMessage) => {
      if (msg.type === 'checkpoint') {
        totals = addCounters(totals, msg.delta);
        for (const [name, d] of Object.entries(msg.streams)) streamTotals[name] = addCounters(streamTotals[name] ?? zeroCounters(), d);
        if (msg.state) pendingState = { ...(pendingState ?? {}), ...msg.state };
        if (msg.deadLetters.length) pendingDead = pendingDead.concat(msg.deadLetters);
        dirty = true;
        schedulePersist();
        const wait = this.options.progressIntervalMs - (Date.now() - lastProgress);
        if (wait <= 0) publish();
        else progressTimer ??= setTimeout(publish, wait);
      } else if (msg.type === 'log') {
        this.host.log(plan.jobId, msg.level, msg.message, { stage: msg.stage, ...(msg.data ? { data: msg.data } : {}), ...(msg.at ? { at: msg.at } : {}) });
      } else if (msg.type === 'logsDropped') {
        this.host.logsDropped?.(plan.jobId, msg.count);
      }
    };

    const outcome = await new Promise<JobOutcome>((resolve) => {
      let settled: JobOutcome | null = null;
      const worker = new Worker(bootstrap, {
        // The worker is another isolate: it installs the same outbound guard as this thread.
        workerData: { entry: workerEntry, plan, control: active.control.buffer, outbound: outboundGuard()?.settings ?? null },
        resourceLimits: { maxOldGenerationSizeMb: 512 },
      });
      worker.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'done') settled = msg.stopped ? { status: active.stopReason ?? 'INTERRUPTED' } : { status: 'SUCCEEDED' };
        else if (msg.type === 'failed') settled = { status: 'FAILED', error: msg.error, retryable: msg.retryable, ...(msg.stack ? { stack: msg.stack } : {}) };
        else onMessage(msg);
      });
      worker.on('error', (err) => {
        log.error({ err }, 'job worker crashed');
        settled ??= { status: 'FAILED', error: `worker crashed: ${err.message}`, retryable: true, ...(err.stack ? { stack: err.stack } : {}) };
      });
      worker.on('exit', (code) => {
        resolve(settled ?? { status: 'FAILED', error: `worker exited with code ${code}`, retryable: true });
      });
    });

    if (progressTimer) clearTimeout(progressTimer);
    dirty = dirty || pendingState !== null || pendingDead.length > 0;
    // Flush everything the worker confirmed before recording the outcome.
    while (dirty || persisting) {
      if (persisting) await persisting;
      else await persist();
    }
    // A failure after a stop request is still a stop (e.g. the source closed under us).
    const final: JobOutcome = outcome.status === 'FAILED' && active.stopReason ? { status: active.stopReason, error: outcome.error } : outcome;
    try {
      await this.host.finish(plan.jobId, final, totals, streamTotals);
    } catch (err) {
      log.error({ err }, 'could not record job outcome');
    }
  }
}

/** Minimum time between two checkpoint writes of one job. */
const PERSIST_INTERVAL_MS = 200;

export { zeroCounters };
