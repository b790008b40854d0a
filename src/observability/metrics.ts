/**
 * Prometheus metrics of one Sluice process (served at `GET /metrics`, see server.ts).
 *
 * Contract:
 * - One prom-client `Registry` per instance, never the global default registry: several apps
 *   in one process (tests) each count their own. Node's default metrics (memory, event-loop
 *   lag, GC…) are collected on it.
 * - The metrics are process-wide: every workspace's jobs, subscriptions and deliveries count
 *   together; nothing here carries a workspace, pipeline or job id (label values stay bounded).
 * - Job records and bytes are counted once: `jobEnded` gets the delta of the attempt that just
 *   ended (its runner totals minus those it started from), never the job's cumulative totals.
 * - `sluice_queue_jobs{state}` is read on each scrape through `queueCounts` (the database);
 *   a failing read keeps the last values.
 * - GraphQL operation names are label values only up to `maxOperationNames` distinct ones (then
 *   `other`); an operation without a name is `anonymous`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Job statuses as the metrics see an attempt end (RETRYING: failed, queued again after its backoff). */
export type JobEndStatus = 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'PAUSED' | 'RETRYING' | 'INTERRUPTED';

/** Per-attempt record and byte counts (the subset of the runner's counters that is exported). */
export interface RecordDelta {
  recordsRead: number;
  recordsWritten: number;
  recordsFailed: number;
  bytesWritten: number;
}

/** What one webhook delivery attempt led to. */
export type WebhookOutcome = 'delivered' | 'retrying' | 'failed' | 'disabled';

export interface QueueCounts {
  queued: number;
  running: number;
  paused: number;
}

export interface MetricsOptions {
  /** Jobs by state, read at scrape time (the database's count of job rows by status). */
  queueCounts?: () => Promise<QueueCounts>;
  /** Distinct GraphQL operation names kept as label values (default 200). */
  maxOperationNames?: number;
  /** collectDefaultMetrics on this registry (default true). */
  defaultMetrics?: boolean;
}

/** 0.1 s … 6 h: a tiny push batch up to a long initial load. */
export const JOB_DURATION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 21_600];
/** 1 ms … 30 s for GraphQL operations. */
export const GRAPHQL_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const OPERATION_NAME_MAX_LENGTH = 100;

export class Metrics {
  readonly registry = new Registry();
  private readonly jobs: Counter<'kind' | 'status'>;
  private readonly recordsRead: Counter;
  private readonly recordsWritten: Counter;
  private readonly recordsFailed: Counter;
  private readonly bytesWritten: Counter;
  private readonly jobDuration: Histogram<'kind' | 'status'>;
  private readonly subscriptions: Gauge;
  private readonly webhookDeliveries: Counter<'outcome'>;
  private readonly graphqlDuration: Histogram<'operation_type' | 'operation_name'>;
  private readonly operationNames = new Set<string>();
  private readonly maxOperationNames: number;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.maxOperationNames = options.maxOperationNames ?? 200;
    this.jobs = new Counter({ name: 'sluice_jobs_total', help: 'Job attempts ended, by job kind and status (RETRYING: failed and queued again).', labelNames: ['kind', 'status'], registers });
    this.recordsRead = new Counter({ name: 'sluice_records_read_total', help: 'Records read from sources by jobs (each record once, across retries).', registers });
    this.recordsWritten = new Counter({ name: 'sluice_records_written_total', help: 'Records written to destinations by jobs.', registers });
    this.recordsFailed = new Counter({ name: 'sluice_records_failed_total', help: 'Records dead-lettered by jobs.', registers });
    this.bytesWritten = new Counter({ name: 'sluice_bytes_written_total', help: 'Bytes written to destinations by jobs.', registers });
    this.jobDuration = new Histogram({
      name: 'sluice_job_duration_seconds',
      help: 'Run time of job attempts, by job kind and the status the attempt ended with.',
      labelNames: ['kind', 'status'],
      buckets: JOB_DURATION_BUCKETS,
      registers,
    });
    const queueCounts = options.queueCounts;
    let last: QueueCounts = { queued: 0, running: 0, paused: 0 };
    new Gauge({
      name: 'sluice_queue_jobs',
      help: 'Jobs by state (queued, running, paused), every workspace, read from the database at scrape time.',
      labelNames: ['state'],
      registers,
      async collect() {
        if (queueCounts) last = await queueCounts().catch(() => last);
        for (const [state, n] of Object.entries(last)) this.set({ state }, n);
      },
    });
    this.subscriptions = new Gauge({ name: 'sluice_subscriptions_active', help: 'Open GraphQL subscriptions (graphql-ws and SSE).', registers });
    this.webhookDeliveries = new Counter({
      name: 'sluice_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered (2xx), retrying (failed, tried again later), failed (failed, older than the max age: given up), disabled (failed and the endpoint was disabled: 410 Gone or failing too long).',
      labelNames: ['outcome'],
      registers,
    });
    this.graphqlDuration = new Histogram({
      name: 'sluice_graphql_request_duration_seconds',
      help: 'GraphQL queries and mutations, from parse to result, by operation type and name (anonymous; other past the name cap).',
      labelNames: ['operation_type', 'operation_name'],
      buckets: GRAPHQL_DURATION_BUCKETS,
      registers,
    });
    for (const outcome of ['delivered', 'retrying', 'failed', 'disabled'] as const) this.webhookDeliveries.inc({ outcome }, 0);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (runs the scrape-time collectors). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /** One job attempt ended; `delta` is what this attempt contributed (absent: counted elsewhere or unknown). */
  jobEnded(kind: string, status: JobEndStatus, durationMs: number, delta?: RecordDelta): void {
    this.jobs.inc({ kind, status });
    this.jobDuration.observe({ kind, status }, Math.max(0, durationMs) / 1000);
    if (!delta) return;
    const add = (c: Counter, n: number) => {
      if (Number.isFinite(n) && n > 0) c.inc(n);
    };
    add(this.recordsRead, delta.recordsRead);
    add(this.recordsWritten, delta.recordsWritten);
    add(this.recordsFailed, delta.recordsFailed);
    add(this.bytesWritten, delta.bytesWritten);
  }

  webhookDelivery(outcome: WebhookOutcome): void {
    this.webhookDeliveries.inc({ outcome });
  }

  subscriptionOpened(): void {
    this.subscriptions.inc();
  }

  subscriptionClosed(): void {
    this.subscriptions.dec();
  }

  /** A label value for an operation name: its name while under the cap, else `other`; `anonymous` without one. */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (this.operationNames.has(name)) return name;
    if (name.length > OPERATION_NAME_MAX_LENGTH || this.operationNames.size >= this.maxOperationNames) return 'other';
    this.operationNames.add(name);
    return name;
  }

  graphqlOperation(type: string, name: string | null | undefined, seconds: number): void {
    this.graphqlDuration.observe({ operation_type: type, operation_name: this.operationLabel(name) }, seconds);
  }
}
