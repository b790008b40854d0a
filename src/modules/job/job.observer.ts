/**
 * The job host's observer port: what metrics and server logs hear of job attempts.
 *
 * Contract:
 * - `jobStarted` is called once per attempt, after the transaction that made the job RUNNING
 *   committed with a plan (a job begin refused — pipeline paused or stopped — is not an attempt).
 * - `jobEnded` is called once per attempt the host began and finished, after finish's
 *   transaction committed, with the attempt's status as the host sees it: SUCCEEDED, FAILED,
 *   CANCELLED (also: the attempt was discarded by a reset or a cancel), PAUSED (also: paused,
 *   then queued again because its pipeline runs again), RETRYING (failed, queued again after
 *   its backoff), INTERRUPTED (shutdown; resumes at the next start).
 * - `totals` are the job's cumulative counters across attempts; `attemptDelta` is what this
 *   attempt added (absent when the attempt was begun by another process). Count records from
 *   `attemptDelta` only, or a retried job counts its records twice.
 * - `durationMs` is this attempt's run time (from the job's first start when the attempt was
 *   begun elsewhere).
 * - An observer must not throw into the host and must not block it: calls are synchronous and
 *   their exceptions are swallowed by the host.
 */
import type { Counters } from '../../engine/runner/protocol.js';
import type { JobEndStatus, Metrics } from '../../observability/metrics.js';

export type { JobEndStatus };

export interface JobStarted {
  jobId: string;
  pipelineId: string | null;
  workspaceId: string;
  kind: string;
  /** 1 for the first attempt. */
  attempt: number;
  trigger: string;
}

export interface JobEnded {
  jobId: string;
  pipelineId: string | null;
  workspaceId: string;
  kind: string;
  status: JobEndStatus;
  attempt: number;
  durationMs: number;
  /** Cumulative across the job's attempts. */
  totals: Counters;
  /** What this attempt added to `totals`. */
  attemptDelta?: Counters;
  error: string | null;
}

export interface JobObserver {
  jobStarted(e: JobStarted): void;
  jobEnded(e: JobEnded): void;
}

/** One observer calling each of `observers` in turn; one that throws does not stop the others. */
export function fanOut(...observers: JobObserver[]): JobObserver {
  const each = (fn: (o: JobObserver) => void) => {
    for (const o of observers) {
      try {
        fn(o);
      } catch {
        // An observer's failure is its own; the job and the other observers go on.
      }
    }
  };
  return {
    jobStarted: (e) => each((o) => o.jobStarted(e)),
    jobEnded: (e) => each((o) => o.jobEnded(e)),
  };
}

/** The metrics side: counts attempts, their durations and the records each attempt added. */
export function metricsJobObserver(metrics: Pick<Metrics, 'jobEnded'>): JobObserver {
  return {
    jobStarted: () => undefined,
    jobEnded: (e) => metrics.jobEnded(e.kind, e.status, e.durationMs, e.attemptDelta),
  };
}
