/**
 * Wires Sluice together: database (migrated), pub/sub, queue, services, runner, server.
 * `stop()` is the graceful shutdown: stop accepting, close sockets with 1001, let running
 * jobs reach a checkpoint, close the queue and the database.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { pgTarget } from './engine/drivers/postgres/common.js';
import { MemoryQueue } from './engine/queue/queue.js';
import { createLogger, type Logger } from './logger.js';
import { createSluicePubSub } from './pubsub/pubsub.js';
import { KeyRing } from './security/keyring.js';
import { installOutboundGuard } from './engine/drivers/kit/outbound.js';
import { startServer, type RunningServer } from './server/server.js';
import { createServices, type Services } from './services.js';
import { runAsSystem } from './tenancy/scope.js';

export interface App {
  url: string;
  port: number;
  services: Services;
  log: Logger;
  stop(): Promise<void>;
}

/** Starts Sluice. Start-up and everything it arms run in system scope (every workspace). */
export function startApp(config: Config, log: Logger = createLogger(config.logLevel)): Promise<App> {
  return runAsSystem(() => start(config, log));
}

/** The address cannot be listened on; `message` is one line saying what to change. */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

/** One line for a failed listen (`err` from net/http `listen`). */
export function listenProblem(err: NodeJS.ErrnoException, host: string, port: number): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} on ${host} is in use; set SLUICE_PORT or stop the other process`;
    case 'EACCES':
      return `port ${port} on ${host} needs privileges this process does not have; set SLUICE_PORT to a port above 1023`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine; set SLUICE_HOST`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host name ${host} does not resolve; set SLUICE_HOST`;
    default:
      return `cannot listen on ${host}:${port}: ${err.message}`;
  }
}

/** Probes the address before anything else (no data folder, no database work when it is taken). */
function assertCanListen(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(listenProblem(err, host, port), err.code ?? 'LISTEN_FAILED')));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

async function start(config: Config, log: Logger): Promise<App> {
  await assertCanListen(config.host, config.port);
  fs.mkdirSync(config.dataDir, { recursive: true });
  // The files root (one folder per workspace inside, created on first use).
  fs.mkdirSync(config.files.root, { recursive: true, mode: 0o700 });
  // Secrets at rest: fail before anything starts when the keys are unusable.
  const keyring = KeyRing.open({ keys: config.secretKeys, dataDir: config.dataDir });
  const database: Database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, notify: (message) => log.info(message) });
  let server: RunningServer | null = null;
  // Every outbound connection (drivers, webhooks) goes through the guard from here on; the
  // state database (PostgreSQL mode) is never a connector target.
  const outbound = installOutboundGuard({
    allow: config.outboundAllow,
    protectedDatabases: config.databaseUrl ? [pgTarget({ connectionString: config.databaseUrl })] : [],
  });
  try {
    const { applied } = await database.migrate();
    if (applied.length) log.info({ applied }, 'migrations applied');
    const pubsub = createSluicePubSub();
    const queue = new MemoryQueue(config.maxConcurrentJobs);
    const services = createServices({
      database,
      pubsub,
      queue,
      log,
      progressIntervalMs: config.progressIntervalMs,
      webhooks: config.webhooks,
      retention: config.retention,
      keyring,
      files: config.files,
      preview: config.preview,
      outboundAllow: config.outboundAllow,
    });
    services.files.ensureDefaultFolder();
    if (config.bootstrapApiKey) await services.workspaces.ensureBootstrapKey(config.bootstrapApiKey);
    // Data migration after the SQL ones: secrets stored before ciphertexts were bound to their rows get bound (idempotent).
    await services.secrets.bindUnbound();
    server = await startServer({ host: config.host, port: config.port, graphiql: config.graphiql, hardening: config.hardening, localAccess: config.localAccess, maxUploadBytes: config.maxUploadBytes, log, services });
    const recovered = await services.jobHost.recover();
    if (recovered.recovered || recovered.queued) log.info(recovered, 'jobs recovered after restart');
    const schedules = await services.triggers.start();
    if (schedules.armed || schedules.caughtUp || schedules.skipped) log.info(schedules, 'schedules armed');
    services.deliveries.start();
    services.retention.start();
    log.info({ url: server.url, database: database.kind, dataDir: config.databaseUrl ? undefined : config.dataDir }, 'Sluice is listening');

    let stopping: Promise<void> | null = null;
    const running = server;
    return {
      url: server.url,
      port: server.port,
      services,
      log,
      stop: () =>
        (stopping ??= (async () => {
          log.info('shutting down');
          await running.close();
          services.liveConnections.close();
          await services.driverTasks.close();
          // Attempts in flight are aborted; their outbox rows stay PENDING for the next start.
          await services.deliveries.stop();
          await services.retention.stop();
          services.triggers.close();
          services.jobDispatch.close();
          services.jobHost.close();
          await services.runner.shutdown(config.shutdownTimeoutMs);
          await queue.close();
          await outbound.uninstall();
          await database.close();
          log.info('stopped');
        })()),
    };
  } catch (err) {
    await server?.close().catch(() => undefined);
    await outbound.uninstall();
    await database.close().catch(() => undefined);
    throw err;
  }
}
