/**
 * The service container: one instance of each domain service, wired to the seams.
 *
 * Contract: every service gets what it needs as constructor arguments, built in this order,
 * and nothing is assigned after construction. Where two services need each other, the
 * earlier one gets a callback (or a small port) that reaches the later one only when it is
 * called, never during construction:
 * - events ← outbox hook (webhooks); webhooks ← delivery wake-up (deliveries).
 * - The job service has two roles. The runner host (JobHost: begin / checkpoint / progress /
 *   log / finish / retry / recover; db, events, pubsub, log, connectors' driver configs, the
 *   dispatch port, a pipeline-changed callback for triggers) is all a worker process needs
 *   with the runner and the queue. The runner gets the host; the queue's handler runs jobs on
 *   the runner. The command side (JobService: create, start runs, dispatch, stop, cancel,
 *   streams; db, events, pubsub, the runner's stop controls, the dispatch port) is what
 *   resolvers, pipelines, connectors and triggers call.
 * - connectors ← jobs' command side, authentications, driver tasks; mappings and pipelines
 *   ← connectors' driver configs and driver tasks; pipelines ← triggers (schedule refresh).
 * - metrics come first (they need only the database): the job host's observer (metrics and
 *   log lines of each attempt, job.observer.ts), webhook deliveries and the server report to them.
 */
import type { RetentionConfig, WebhookConfig } from './config.js';
import type { FileRootsOptions } from './security/file-roots.js';
import type { Database } from './db/client.js';
import type { JobQueue } from './engine/queue/queue.js';
import { Runner } from './engine/runner/runner.js';
import { DriverTasks, type DriverTaskLimits } from './engine/runner/driver-tasks.js';
import type { Logger } from './logger.js';
import type { DriverConfigResolver } from './modules/connector/connector.service.js';
import { AuthenticationService } from './modules/authentication/authentication.service.js';
import { ConnectorService } from './modules/connector/connector.service.js';
import { FileService } from './modules/file/file.service.js';
import { ConfigService } from './modules/config/config.service.js';
import { EventService } from './modules/event/event.service.js';
import { RetentionService } from './modules/event/retention.service.js';
import { JobService } from './modules/job/job.service.js';
import { JobHost } from './modules/job/job.host.js';
import { JobLogService } from './modules/job/job.logs.js';
import { fanOut, metricsJobObserver } from './modules/job/job.observer.js';
import { jobLogObserver } from './modules/job/job.log-observer.js';
import { Metrics } from './observability/metrics.js';
import { QueueDispatch } from './modules/job/job.dispatch.js';
import { MappingService } from './modules/mapping/mapping.service.js';
import { PipelineService } from './modules/pipeline/pipeline.service.js';
import { TriggerService } from './modules/pipeline/trigger.service.js';
import { DeliveryService } from './modules/webhook/delivery.service.js';
import { WebhookService } from './modules/webhook/webhook.service.js';
import { WorkspaceService } from './modules/workspace/workspace.service.js';
import { LiveConnections } from './modules/workspace/live-connections.js';
import type { PubSub } from './pubsub/pubsub.js';
import type { KeyRing } from './security/keyring.js';
import { SecretsRotationService } from './modules/secrets/secrets.service.js';
import { runAsSystem } from './tenancy/scope.js';

export interface Services {
  database: Database;
  pubsub: PubSub;
  queue: JobQueue;
  runner: Runner;
  /** The runner's host: begin / checkpoint / finish, retries, recovery at start. */
  jobHost: JobHost;
  /** The jobs' logs (Job.logs, jobLogs): buffered, capped, secrets removed. */
  jobLogs: JobLogService;
  /** Hands QUEUED jobs to the queue; closed at shutdown. */
  jobDispatch: QueueDispatch;
  /** Previews, discovery and checks: each in a worker thread with time and memory limits. */
  driverTasks: DriverTasks;
  events: EventService;
  connectors: ConnectorService;
  mappings: MappingService;
  pipelines: PipelineService;
  /** Jobs, the command side (what resolvers and triggers call). */
  jobs: JobService;
  triggers: TriggerService;
  webhooks: WebhookService;
  deliveries: DeliveryService;
  retention: RetentionService;
  workspaces: WorkspaceService;
  /** Open sockets and streams by API key: revocation and expiry end them. */
  liveConnections: LiveConnections;
  /** Encryption of secrets at rest. */
  keyring: KeyRing;
  authentications: AuthenticationService;
  /** Key rotation (rotateEncryptionKey, npm run secrets:rotate) and the start-up binding of older secrets to their rows. */
  secrets: SecretsRotationService;
  /** The workspaces' own files (upload, list, delete). */
  files: FileService;
  /** Config as code: export, plan and apply a workspace's YAML document through the services above. */
  config: ConfigService;
  /** This process's Prometheus metrics (GET /metrics): jobs, records, queue, subscriptions, webhooks, GraphQL. */
  metrics: Metrics;
}

export function createServices(deps: {
  database: Database;
  pubsub: PubSub;
  queue: JobQueue;
  log: Logger;
  progressIntervalMs: number;
  webhooks: WebhookConfig;
  retention: RetentionConfig;
  keyring: KeyRing;
  /** Where connectors' local files live (config.files). */
  files: FileRootsOptions;
  preview: DriverTaskLimits;
  /** SLUICE_OUTBOUND_ALLOW, for the guard inside driver-task workers. */
  outboundAllow: readonly string[];
}): Services {
  const db = deps.database.prisma;
  // Process-wide metrics: the queue gauge counts every workspace's jobs at scrape time.
  const metrics = new Metrics({
    queueCounts: () =>
      runAsSystem(async () => {
        const rows = await db.job.groupBy({ by: ['status'], where: { status: { in: ['QUEUED', 'RUNNING', 'PAUSED'] } }, _count: { _all: true } });
        const n = (s: string) => rows.find((r) => r.status === s)?._count._all ?? 0;
        return { queued: n('QUEUED'), running: n('RUNNING'), paused: n('PAUSED') };
      }),
  });
  // The outbox: every event queues its webhook deliveries in its own transaction.
  const events: EventService = new EventService(db, deps.pubsub, [(tx, row) => webhooks.outboxHook(tx, row)]);
  const webhooks = new WebhookService(db, events, deps.log, deps.keyring, () => deliveries.wake());
  const deliveries = new DeliveryService(db, webhooks, deps.pubsub, deps.webhooks, deps.log, metrics);
  const authentications = new AuthenticationService(db, deps.keyring, events);
  // Requests' driver calls (check, discover, preview) run off the event loop, under limits.
  const driverTasks = new DriverTasks({ ...deps.preview, outboundAllow: deps.outboundAllow });
  // Drivers get connector configs with their secrets decrypted, only from the connector service.
  const driverConfig: DriverConfigResolver = (c, tx) => connectors.driverConfig(c, tx);

  const jobDispatch = new QueueDispatch(deps.queue);
  const jobLogs = new JobLogService(db, deps.pubsub, deps.log, { maxLines: deps.retention.jobLogMaxLines });
  const jobHost = new JobHost({
    logs: jobLogs,
    db,
    events,
    pubsub: deps.pubsub,
    log: deps.log,
    driverConfig,
    dispatch: jobDispatch.dispatch,
    onPipelineChanged: (id) => void triggers.refresh(id).catch((err: unknown) => deps.log.error({ err, pipelineId: id }, 'schedule refresh failed')),
    // Attempt starts and ends: counted (metrics) and logged (one line each).
    observer: fanOut(metricsJobObserver(metrics), jobLogObserver(deps.log)),
  });
  const runner = new Runner(jobHost, { progressIntervalMs: deps.progressIntervalMs, log: deps.log });
  // Jobs run in system scope: the queue may first be reached from a request.
  deps.queue.process((item) => runAsSystem(() => runner.run(item.jobId)));
  const jobs = new JobService(db, events, deps.pubsub, runner, jobDispatch.dispatch, jobLogs);

  const connectors = new ConnectorService(db, events, jobs, deps.keyring, authentications, deps.files, driverTasks);
  const mappings = new MappingService(db, events, driverConfig, driverTasks);
  const triggers = new TriggerService(db, events, jobs, deps.log);
  const pipelines = new PipelineService(db, events, deps.pubsub, jobs, triggers, driverConfig, driverTasks);
  const workspaces = new WorkspaceService(db, events, deps.pubsub);
  const config = new ConfigService({ db, authentications, connectors, mappings, pipelines, webhooks });
  return {
    config,
    database: deps.database,
    pubsub: deps.pubsub,
    queue: deps.queue,
    runner,
    jobHost,
    jobLogs,
    jobDispatch,
    driverTasks,
    events,
    connectors,
    mappings,
    pipelines,
    jobs,
    triggers,
    webhooks,
    deliveries,
    retention: new RetentionService(db, deps.retention, deps.log),
    workspaces,
    liveConnections: new LiveConnections(deps.pubsub, (id) => workspaces.forget(id)),
    keyring: deps.keyring,
    authentications,
    secrets: new SecretsRotationService(db, deps.keyring, deps.log),
    files: new FileService(events, deps.files),
    metrics,
  };
}
