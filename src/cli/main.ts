/**
 * The `sluice` command (bin/sluice.mjs runs this file, built or through tsx). Each command
 * lives in commands/<name>.ts and loads what it needs when it runs, so `sluice --help` and
 * the client commands start without loading the server.
 *
 * Exit codes: 0 success; 1 the operation failed (server unreachable, key refused, typed
 * error, port in use); 2 bad usage or configuration.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { EXIT, report } from './errors.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerWorker } from './commands/worker.js';
import { register as registerMigrate } from './commands/migrate.js';
import { register as registerKeys } from './commands/keys.js';
import { register as registerSecrets } from './commands/secrets.js';
import { register as registerConfig } from './commands/config.js';

/** package.json's version (two folders up from src/cli and from dist/cli alike). */

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Sluice: a data-ingestion server with a GraphQL API')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    // Errors become CommanderErrors (handled in main), inherited by every command below.
    .exitOverride()
    .showHelpAfterError('(see `sluice --help`)')
    .addHelpText(
      'after',
      `
Server commands read the SLUICE_* environment variables (SLUICE_PORT, SLUICE_DATA_DIR,
DATABASE_URL …). Client commands (keys, export, apply) talk to a running server:
--url / SLUICE_URL (default http://127.0.0.1:4000), --api-key / SLUICE_API_KEY.`,
    );
  registerServe(program);
  registerWorker(program);
  registerMigrate(program);
  registerKeys(program);
  registerSecrets(program);
  registerConfig(program);
  return program;
}

/** Ends a finished command: at once when nothing is left running, otherwise shortly (a keep-alive socket must not hold the shell). */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 200).unref();
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  let serving = false;
  program.hook('preAction', (_program, command) => {
    serving = command.name() === 'serve';
  });
  try {
    await program.parseAsync(argv);
    // `serve` keeps running until a signal stops it.
    if (!serving) finish(EXIT.ok);
  } catch (err) {
    // Help and --version are CommanderErrors with exit code 0; the rest are usage errors, already printed.
    if (err instanceof CommanderError) return finish(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    finish(report(err));
  }
}

await main();
