/**
 * `sluice worker`: a process that only runs jobs, next to `sluice serve` processes sharing one
 * PostgreSQL database and a Redis job queue (cluster mode). Embedded mode has one process per
 * data folder, and `sluice serve` runs the jobs itself.
 */
import type { Command } from 'commander';
import { CliError } from '../errors.js';

export const NEEDS_CLUSTER =
  'sluice worker needs cluster mode (REDIS_URL and a PostgreSQL DATABASE_URL); in embedded mode `sluice serve` runs jobs itself';

export function worker(env: NodeJS.ProcessEnv = process.env): never {
  const postgres = /^postgres(ql)?:\/\//.test(env.DATABASE_URL ?? '');
  if (!env.REDIS_URL || !postgres) throw new CliError(NEEDS_CLUSTER, 2);
  // Cluster mode's shared queue is not part of this version: say so instead of starting a worker that would never get a job.
  throw new CliError('sluice worker: this version has no cluster job queue yet, so a separate worker would never receive a job; run `sluice serve`, which runs jobs itself', 1);
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('run jobs only (cluster mode: REDIS_URL and PostgreSQL)')
    .action(() => worker());
}
