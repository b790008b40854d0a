/** The service container: one instance of each domain service, wired to the seams. */
import type { RetentionConfig, WebhookConfig } from './config.js';
import type { FileRootsOptions } from './security/file-roots.js';
import type { Database } from './db/client.js';
import type { JobQueue } from './engine/queue/queue.js';
import { Runner } from './engine/runner/runner.js';
import { DriverTasks, type DriverTaskLimits } from './engine/runner/driver-tasks.js';
import type { Logger } from './logger.js';
import { AuthenticationService } from './modules/authentication/authentication.service.js';
import { ConnectorService } from './modules/connector/connector.service.js';
import { FileService } from './modules/file/file.service.js';
import { EventService } from './modules/event/event.service.js';
import { RetentionService } from './modules/event/retention.service.js';
import { JobService } from './modules/job/job.service.js';
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
  /** Previews, discovery and checks: each in a worker thread with time and memory limits. */
  driverTasks: DriverTasks;
  events: EventService;
  connectors: ConnectorService;
  mappings: MappingService;
  pipelines: PipelineService;
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
  const events = new EventService(db, deps.pubsub);
  const webhooks = new WebhookService(db, events, deps.log, deps.keyring);
  // The outbox: every event queues its webhook deliveries in its own transaction.
  events.hooks.push(webhooks.outboxHook);
  const jobs = new JobService(db, events, deps.pubsub, deps.queue, deps.log);
  const runner = new Runner(jobs, { progressIntervalMs: deps.progressIntervalMs, log: deps.log });
  jobs.attach(runner);
  // Jobs run in system scope: the queue may first be reached from a request.
  deps.queue.process((item) => runAsSystem(() => jobs.handle(item.jobId)));
  const pipelines = new PipelineService(db, events, deps.pubsub, jobs);
  const triggers = new TriggerService(db, events, jobs, deps.log);
  pipelines.triggers = triggers;
  jobs.onPipelineChanged = (id) => void triggers.refresh(id).catch((err: unknown) => deps.log.error({ err, pipelineId: id }, 'schedule refresh failed'));
  const authentications = new AuthenticationService(db, deps.keyring);
  authentications.events = events;
  const connectors = new ConnectorService(db, events, jobs, deps.keyring, authentications, deps.files);
  const mappings = new MappingService(db, events);
  const workspaces = new WorkspaceService(db, events, deps.pubsub);
  // Drivers get connector configs with their secrets decrypted, only from here.
  jobs.driverConfig = pipelines.driverConfig = mappings.driverConfig = (c, tx) => connectors.driverConfig(c, tx);
  // Requests' driver calls (check, discover, preview) run off the event loop, under limits.
  const driverTasks = new DriverTasks({ ...deps.preview, outboundAllow: deps.outboundAllow });
  connectors.driverTasks = pipelines.driverTasks = mappings.driverTasks = driverTasks;
  return {
    database: deps.database,
    pubsub: deps.pubsub,
    queue: deps.queue,
    runner,
    driverTasks,
    events,
    connectors,
    mappings,
    pipelines,
    jobs,
    triggers,
    webhooks,
    deliveries: new DeliveryService(db, webhooks, deps.pubsub, deps.webhooks, deps.log),
    retention: new RetentionService(db, deps.retention, deps.log),
    workspaces,
    liveConnections: new LiveConnections(deps.pubsub, (id) => workspaces.forget(id)),
    keyring: deps.keyring,
    authentications,
    secrets: new SecretsRotationService(db, deps.keyring, deps.log),
    files: new FileService(events, deps.files),
  };
}
