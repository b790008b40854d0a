/**
 * `sluice serve` (what `npm start` runs): the API, the job runner, schedules and deliveries in
 * this process. SIGINT / SIGTERM stop it gracefully (sockets closed, running jobs checkpointed,
 * the database closed) and it exits 0; a second signal exits at once.
 */
import type { Command } from 'commander';
import type { App } from '../../app.js';
import type { Logger } from '../../logger.js';
import { CliError } from '../errors.js';
import { parsePort, readConfig } from '../env.js';

export interface ServeOptions {
  host?: string | undefined;
  port?: number | undefined;
  dataDir?: string | undefined;
}

/** A repeat of the signal within this window is the same stop request delivered twice (Ctrl-C reaches npm and this process; npm forwards it). */
const SAME_SIGNAL_MS = 500;

export async function serve(options: ServeOptions = {}): Promise<App> {
  const config = readConfig({ SLUICE_HOST: options.host, SLUICE_PORT: options.port, SLUICE_DATA_DIR: options.dataDir });
  const [{ startApp, ListenError, listenProblem }, { createLogger }] = await Promise.all([import('../../app.js'), import('../../logger.js')]);
  const log = createLogger(config.logLevel);
  // Armed before start-up: a signal while the database initialises stops the server as soon as it is up.
  const signals = stopOnSignals(log);
  let app: App;
  try {
    app = await startApp(config, log);
  } catch (err) {
    if (err instanceof ListenError) throw new CliError(err.message, 1);
    // Taken between the probe and the real listen.
    const e = err as NodeJS.ErrnoException;
    if (e.syscall === 'listen' && e.code) throw new CliError(listenProblem(e, config.host, config.port), 1);
    throw err;
  }
  signals.started(app);
  return app;
}

/** Graceful stop on the first SIGINT / SIGTERM (deferred until start-up finished); exit at once on a second. */
function stopOnSignals(log: Logger): { started(app: App): void } {
  let firstAt = 0;
  let running: App | null = null;
  const stop = (app: App) =>
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt) {
      if (Date.now() - firstAt < SAME_SIGNAL_MS) return;
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    firstAt = Date.now();
    if (running) {
      log.info({ signal }, 'signal received');
      void stop(running);
    } else log.info({ signal }, 'signal received during start-up: stopping once started');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    started(app) {
      running = app;
      if (firstAt) void stop(app);
    },
  };
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the server: GraphQL API, jobs, schedules, webhooks')
    .option('--host <host>', 'address to listen on (SLUICE_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (SLUICE_PORT, default 4000)', parsePort)
    .option('--data-dir <dir>', 'data folder of the embedded database, key file and files (SLUICE_DATA_DIR, default ./data)')
    .addHelpText(
      'after',
      '\nEvery other setting comes from the SLUICE_* environment variables (see the README).\nSIGINT or SIGTERM stops the server gracefully.',
    )
    .action(async (options: ServeOptions) => {
      // The process lives on with the server; a signal ends it.
      await serve(options);
    });
}
