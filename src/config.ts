/**
 * Configuration from environment variables, validated once at start. Every bad value is
 * reported with the variable's name and what is expected; nothing starts on a bad config.
 */
import path from 'node:path';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: 'expected a whole number' })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `must be at least ${min}` }).max(max, { message: `must be at most ${max}` }));

const EnvSchema = z.object({
  SLUICE_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_PORT: int(0, 65535).default('4000'),
  SLUICE_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { message: 'expected a postgresql:// URL (leave unset for the embedded database)' })
    .optional(),
  SLUICE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SLUICE_GRAPHIQL: bool.default('true'),
  SLUICE_MAX_CONCURRENT_JOBS: int(1, 256).default('4'),
  SLUICE_PROGRESS_INTERVAL_MS: int(50, 60_000).default('250'),
  SLUICE_SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default('15000'),
});

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  logLevel: z.infer<typeof EnvSchema>['SLUICE_LOG_LEVEL'];
  graphiql: boolean;
  maxConcurrentJobs: number;
  progressIntervalMs: number;
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration from `env`; throws ConfigError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset so `FOO= npm start` falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '?');
        return `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  return {
    host: e.SLUICE_HOST,
    port: e.SLUICE_PORT,
    dataDir: path.resolve(e.SLUICE_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    logLevel: e.SLUICE_LOG_LEVEL,
    graphiql: e.SLUICE_GRAPHIQL,
    maxConcurrentJobs: e.SLUICE_MAX_CONCURRENT_JOBS,
    progressIntervalMs: e.SLUICE_PROGRESS_INTERVAL_MS,
    shutdownTimeoutMs: e.SLUICE_SHUTDOWN_TIMEOUT_MS,
  };
}
