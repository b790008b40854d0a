/**
 * The service tier: Sluice's services (src/services.ts) on a fresh embedded PGlite database,
 * with no HTTP server, no sockets and no schedulers started. GraphQL operations run in
 * process against the schema, as the default workspace's local ADMIN caller, so rules that
 * do not depend on a transport are tested without one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config.js';
import { openDatabase } from '../../src/db/client.js';
import { MemoryQueue } from '../../src/engine/queue/queue.js';
import { graphqlCjs } from '../../src/graphql/graphql-cjs.js';
import { getSchema } from '../../src/server/schema.js';
import type { GraphQLContext } from '../../src/graphql/context.js';
import { createLogger } from '../../src/logger.js';
import { DEFAULT_WORKSPACE_ID, runAsSystem, runInWorkspace, type AuthContext } from '../../src/tenancy/scope.js';
import { createSluicePubSub } from '../../src/pubsub/pubsub.js';
import { KeyRing } from '../../src/security/keyring.js';
import { createServices, type Services } from '../../src/services.js';
import { tempDir } from './server.js';

export interface TestServices {
  services: Services;
  dataDir: string;
  /** The default workspace's files folder (created). */
  filesDir: string;
  config: Config;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<{ data?: T; errors?: readonly any[] }>;
  /** Runs an operation and fails the test on GraphQL errors. */
  q<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  stop(): Promise<void>;
}

const LOCAL: AuthContext = { workspaceId: DEFAULT_WORKSPACE_ID, apiKeyId: null, keyPrefix: 'local', scope: 'ADMIN' };

export async function startTestServices(options: { dataDir?: string; env?: Record<string, string> } = {}): Promise<TestServices> {
  const dataDir = options.dataDir ?? tempDir('sluice-svc-');
  const template = process.env.SLUICE_TEST_PGDATA_TEMPLATE;
  if (template && !fs.existsSync(path.join(dataDir, 'pgdata'))) fs.cpSync(template, path.join(dataDir, 'pgdata'), { recursive: true });
  const config = loadConfig({
    SLUICE_DATA_DIR: dataDir,
    SLUICE_LOG_LEVEL: process.env.SLUICE_TEST_LOG_LEVEL ?? 'silent',
    SLUICE_PROGRESS_INTERVAL_MS: '200',
    SLUICE_OUTBOUND_ALLOW: '127.0.0.1',
    ...options.env,
  });
  const log = createLogger(config.logLevel);
  fs.mkdirSync(config.files.root, { recursive: true, mode: 0o700 });
  const keyring = KeyRing.open({ keys: config.secretKeys, dataDir: config.dataDir });
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  await database.migrate();
  const queue = new MemoryQueue(config.maxConcurrentJobs);
  const services = createServices({
    database,
    pubsub: createSluicePubSub(),
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
  runAsSystem(() => services.files.ensureDefaultFolder());
  const filesDir = path.join(config.files.root, 'default');
  fs.mkdirSync(filesDir, { recursive: true });
  const schema = getSchema();

  const gql: TestServices['gql'] = async (query, variables) => {
    const requestId = randomUUID();
    const contextValue: GraphQLContext = { requestId, log: log.child({ requestId }), db: database.prisma, services, auth: LOCAL };
    const result = await runInWorkspace(LOCAL, () =>
      graphqlCjs.execute({ schema, document: graphqlCjs.parse(query), variableValues: variables, contextValue }),
    );
    // As a client receives it: serialised scalars (dates) in their JSON form.
    return JSON.parse(JSON.stringify(result)) as { data?: any; errors?: readonly any[] };
  };

  return {
    services,
    dataDir,
    filesDir,
    config,
    gql,
    q: async (query, variables) => {
      const res = await gql(query, variables);
      if (res.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
      return res.data as never;
    },
    stop: async () => {
      await services.driverTasks.close();
      services.jobDispatch.close();
      services.jobHost.close();
      await services.runner.shutdown(config.shutdownTimeoutMs);
      await queue.close();
      await database.close();
    },
  };
}
