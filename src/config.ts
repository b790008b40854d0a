/**
 * Configuration from environment variables, validated once at start. Every bad value is
 * reported with the variable's name and what is expected; nothing starts on a bad config.
 */
import path from 'node:path';
import { z } from 'zod';
import { ConfiguredKeys, parseKeyList } from './security/keyring.js';
import { parseExtraRoots, type FileRootsOptions } from './security/file-roots.js';
import { parseAllowList, splitList } from './security/outbound-guard.js';
import type { DriverTaskLimits } from './engine/runner/driver-tasks.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: 'expected a whole number' })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `must be at least ${min}` }).max(max, { message: `must be at most ${max}` }));

/** Comma- or whitespace-separated items; unset or empty: none. */
const list = z.string().default('').transform(splitList);

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
  // Access (src/modules/workspace/credentials.ts): keyless local access, and an operator key.
  SLUICE_LOCAL_ACCESS: bool.default('true'),
  SLUICE_BOOTSTRAP_API_KEY: z
    .string()
    .regex(/^sk_[A-Za-z0-9_-]{43}$/, { message: 'expected sk_ followed by 43 base64url characters' })
    .optional(),
  // GraphQL hardening (src/server/hardening.ts); 0 turns a count limit or the rate limit off.
  SLUICE_INTROSPECTION: bool.default('true'),
  SLUICE_MAX_DEPTH: int(0, 1000).default('10'),
  SLUICE_MAX_ALIASES: int(0, 100_000).default('15'),
  SLUICE_MAX_TOKENS: int(0, 1_000_000).default('2000'),
  SLUICE_MAX_DIRECTIVES: int(0, 100_000).default('50'),
  SLUICE_MAX_COST: int(0, Number.MAX_SAFE_INTEGER).default('100000'),
  SLUICE_MAX_BODY_BYTES: int(1024, 1024 * 1024 * 1024).default('1048576'),
  SLUICE_RATE_LIMIT: int(0, 1_000_000_000).default('600'),
  SLUICE_RATE_LIMIT_WINDOW_MS: int(1000, 86_400_000).default('60000'),
  SLUICE_CORS_ORIGINS: list.pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, { message: 'expected comma-separated origins like https://app.example.com' }))),
  SLUICE_WS_INIT_TIMEOUT_MS: int(1, 600_000).default('10000'),
  SLUICE_WS_MAX_SUBSCRIPTIONS: int(1, 100_000).default('100'),
  SLUICE_WS_MAX_MESSAGE_BYTES: int(1024, 1024 * 1024 * 1024).default('1048576'),
  SLUICE_MAX_CONCURRENT_JOBS: int(1, 256).default('4'),
  SLUICE_PROGRESS_INTERVAL_MS: int(50, 60_000).default('250'),
  SLUICE_SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default('15000'),
  SLUICE_WEBHOOK_TIMEOUT_MS: int(1, 300_000).default('15000'),
  SLUICE_WEBHOOK_RETRY_BASE_MS: int(1, 3_600_000).default('5000'),
  SLUICE_WEBHOOK_MAX_AGE_MS: int(1, 30 * 86_400_000).default('86400000'),
  SLUICE_WEBHOOK_DISABLE_AFTER_MS: int(1, 365 * 86_400_000).default('432000000'),
  SLUICE_WEBHOOK_POLL_MS: int(10, 600_000).default('1000'),
  SLUICE_WEBHOOK_LEASE_MS: int(500, 600_000).default('30000'),
  SLUICE_WEBHOOK_HEARTBEAT_MS: int(100, 600_000).optional(),
  SLUICE_EVENT_RETENTION_DAYS: int(0, 36_500).default('30'),
  SLUICE_EVENT_RETENTION_COUNT: int(0, Number.MAX_SAFE_INTEGER).default('0'),
  SLUICE_RETENTION_INTERVAL_MS: int(10, 86_400_000).default('3600000'),
  // Lines of a job's log kept from its drivers (src/modules/job/job.logs.ts); the runner's own lines are always kept.
  SLUICE_JOB_LOG_MAX_LINES: int(1, 10_000_000).default('10000'),
  // Previews, discovery and checks run in a worker with these limits (src/engine/runner/driver-tasks.ts).
  SLUICE_PREVIEW_TIMEOUT_MS: int(100, 3_600_000).default('30000'),
  SLUICE_PREVIEW_MEMORY_MB: int(16, 65_536).default('256'),
  SLUICE_SECRET_KEYS: z
    .string()
    .transform((v, ctx) => {
      try {
        return new ConfiguredKeys(parseKeyList(v));
      } catch (err) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  SLUICE_FILES_ROOT: z.string().min(1).optional(),
  SLUICE_MAX_UPLOAD_BYTES: int(1, Number.MAX_SAFE_INTEGER).default('1073741824'),
  SLUICE_FILES_EXTRA_ROOTS: z
    .string()
    .optional()
    .superRefine((spec, ctx) => {
      try {
        parseExtraRoots(spec);
      } catch (e) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${(e as Error).message}; expected comma-separated absolute folders, each optionally ending in :ro` });
      }
    }),
  SLUICE_OUTBOUND_ALLOW: list.superRefine((items, ctx) => {
    try {
      parseAllowList(items);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${(e as Error).message}; expected comma-separated IPs, CIDRs or host names` });
    }
  }),
});

export interface Config {
  host: string;
  port: number;
  /** Serve requests without a key when they come from this machine to a loopback host (default workspace, ADMIN). */
  localAccess: boolean;
  /** An ADMIN key of the default workspace ensured at start (for servers reached only from other hosts). */
  bootstrapApiKey: string | undefined;
  /** GraphQL hardening limits (src/server/hardening.ts). */
  hardening: HardeningConfig;
  dataDir: string;
  databaseUrl: string | undefined;
  logLevel: z.infer<typeof EnvSchema>['SLUICE_LOG_LEVEL'];
  graphiql: boolean;
  maxConcurrentJobs: number;
  progressIntervalMs: number;
  shutdownTimeoutMs: number;
  webhooks: WebhookConfig;
  retention: RetentionConfig;
  /** Where connectors' local files live: one folder per workspace, plus the default workspace's extra roots. */
  files: FileRootsOptions;
  /** `POST /files/<name>` bodies above this are refused with 413 (SLUICE_MAX_UPLOAD_BYTES). */
  maxUploadBytes: number;
  /** Private/loopback/link-local addresses outbound requests may reach anyway (IPs, CIDRs, host names); empty: none. */
  outboundAllow: string[];
  /** Limits of previews, discovery and checks, each run in its own worker thread. */
  preview: DriverTaskLimits;
  /**
   * Keys encrypting secrets at rest (SLUICE_SECRET_KEYS, first = primary); null: the key file
   * `<dataDir>/secret-keys.json`, generated on first start (see src/security/keyring.ts).
   */
  secretKeys: ConfiguredKeys | null;
}

/** Limits of the GraphQL API; each comes from a SLUICE_* variable (0 turns a count limit off). */
export interface HardeningConfig {
  introspection: boolean;
  maxDepth: number;
  maxAliases: number;
  maxTokens: number;
  maxDirectives: number;
  maxCost: number;
  /** HTTP request bodies above this are refused with 413. */
  maxBodyBytes: number;
  /** Operations per window per caller (API key, or remote address without one); 0: no limit. */
  rateLimit: number;
  rateLimitWindowMs: number;
  /** Browser origins besides the server's own that may call the API (CORS, WebSocket Origin). */
  corsOrigins: string[];
  /** graphql-ws: a socket without connection_init by then is closed with 4408. */
  wsInitTimeoutMs: number;
  /** graphql-ws: concurrent operations per socket. */
  wsMaxSubscriptions: number;
  /** graphql-ws: a bigger message closes the socket with 1009. */
  wsMaxMessageBytes: number;
}

export interface WebhookConfig {
  /** Per-attempt timeout. */
  timeoutMs: number;
  /** First retry delay; the schedule grows from it (×1, ×6, ×24, ×120, ×720 …) with jitter. */
  retryBaseMs: number;
  /** A delivery still failing this long after it was queued is FAILED. */
  maxAgeMs: number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterMs: number;
  /** How often the delivery loop looks for due deliveries. */
  pollMs: number;
  /** A claimed delivery is held this long past the last heartbeat; a dead process's claim is free again after it. */
  leaseMs: number;
  /** How often a live process renews the leases of the deliveries it holds (less than `leaseMs`). */
  heartbeatMs: number;
}

export interface RetentionConfig {
  /** Events older than this are pruned (0: no age limit). */
  days: number;
  /** Only the newest N events are kept (0: no count limit). */
  count: number;
  intervalMs: number;
  /**
   * Lines of one job's log kept from its drivers and their HTTP requests (SLUICE_JOB_LOG_MAX_LINES);
   * beyond it one "log capped" line is stored and the rest are counted, not kept. The runner's
   * own lines (start, finish, failures, retries) are always kept. Job logs are pruned with the
   * events of their job.
   */
  jobLogMaxLines: number;
}

/** Variables whose values are never printed (error messages included). */
const SECRET_VARS = new Set(['SLUICE_SECRET_KEYS', 'SLUICE_BOOTSTRAP_API_KEY']);

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
        // Never echo a secret variable's value.
        // A URL's password is masked too (DATABASE_URL).
        const shown = SECRET_VARS.has(name) ? '<redacted>' : JSON.stringify((env[name] ?? '').replace(/(\/\/[^/:@]*:)[^/@]*@/, '$1***@'));
        return `${name}=${shown}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  const heartbeatMs = e.SLUICE_WEBHOOK_HEARTBEAT_MS ?? Math.max(100, Math.floor(e.SLUICE_WEBHOOK_LEASE_MS / 3));
  if (heartbeatMs >= e.SLUICE_WEBHOOK_LEASE_MS) {
    throw new ConfigError([`SLUICE_WEBHOOK_HEARTBEAT_MS=${JSON.stringify(String(heartbeatMs))}: must be less than SLUICE_WEBHOOK_LEASE_MS (${e.SLUICE_WEBHOOK_LEASE_MS})`]);
  }
  return {
    host: e.SLUICE_HOST,
    port: e.SLUICE_PORT,
    localAccess: e.SLUICE_LOCAL_ACCESS,
    bootstrapApiKey: e.SLUICE_BOOTSTRAP_API_KEY,
    dataDir: path.resolve(e.SLUICE_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    logLevel: e.SLUICE_LOG_LEVEL,
    graphiql: e.SLUICE_GRAPHIQL,
    hardening: {
      introspection: e.SLUICE_INTROSPECTION,
      maxDepth: e.SLUICE_MAX_DEPTH,
      maxAliases: e.SLUICE_MAX_ALIASES,
      maxTokens: e.SLUICE_MAX_TOKENS,
      maxDirectives: e.SLUICE_MAX_DIRECTIVES,
      maxCost: e.SLUICE_MAX_COST,
      maxBodyBytes: e.SLUICE_MAX_BODY_BYTES,
      rateLimit: e.SLUICE_RATE_LIMIT,
      rateLimitWindowMs: e.SLUICE_RATE_LIMIT_WINDOW_MS,
      corsOrigins: e.SLUICE_CORS_ORIGINS,
      wsInitTimeoutMs: e.SLUICE_WS_INIT_TIMEOUT_MS,
      wsMaxSubscriptions: e.SLUICE_WS_MAX_SUBSCRIPTIONS,
      wsMaxMessageBytes: e.SLUICE_WS_MAX_MESSAGE_BYTES,
    },
    maxConcurrentJobs: e.SLUICE_MAX_CONCURRENT_JOBS,
    progressIntervalMs: e.SLUICE_PROGRESS_INTERVAL_MS,
    shutdownTimeoutMs: e.SLUICE_SHUTDOWN_TIMEOUT_MS,
    webhooks: {
      timeoutMs: e.SLUICE_WEBHOOK_TIMEOUT_MS,
      retryBaseMs: e.SLUICE_WEBHOOK_RETRY_BASE_MS,
      maxAgeMs: e.SLUICE_WEBHOOK_MAX_AGE_MS,
      disableAfterMs: e.SLUICE_WEBHOOK_DISABLE_AFTER_MS,
      pollMs: e.SLUICE_WEBHOOK_POLL_MS,
      leaseMs: e.SLUICE_WEBHOOK_LEASE_MS,
      heartbeatMs,
    },
    retention: {
      days: e.SLUICE_EVENT_RETENTION_DAYS,
      count: e.SLUICE_EVENT_RETENTION_COUNT,
      intervalMs: e.SLUICE_RETENTION_INTERVAL_MS,
      jobLogMaxLines: e.SLUICE_JOB_LOG_MAX_LINES,
    },
    secretKeys: e.SLUICE_SECRET_KEYS ?? null,
    outboundAllow: e.SLUICE_OUTBOUND_ALLOW,
    files: filesConfig(path.resolve(e.SLUICE_DATA_DIR), e.SLUICE_FILES_ROOT, e.SLUICE_FILES_EXTRA_ROOTS),
    maxUploadBytes: e.SLUICE_MAX_UPLOAD_BYTES,
    preview: { timeoutMs: e.SLUICE_PREVIEW_TIMEOUT_MS, memoryMb: e.SLUICE_PREVIEW_MEMORY_MB },
  };
}

/** The files roots; a root that is the data folder or holds it would expose Sluice's own files. */
function filesConfig(dataDir: string, root: string | undefined, extra: string | undefined): FileRootsOptions {
  const files = path.resolve(root ?? path.join(dataDir, 'files'));
  const extraRoots = parseExtraRoots(extra);
  const holdsData = (p: string) => {
    const rel = path.relative(p, dataDir);
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  };
  const bad = [files].filter(holdsData);
  if (bad.length) throw new ConfigError(bad.map((p) => `files root ${JSON.stringify(p)} is or contains the data folder ${JSON.stringify(dataDir)}; choose a folder inside or beside it`));
  return { root: files, dataDir, extraRoots };
}
