import { VERSION } from '../../version.js';
import { builder } from '../../graphql/builder.js';

interface Health {
  status: 'ok' | 'degraded';
  database: string;
  databaseOk: boolean;
  runningJobs: number;
  queuedJobs: number;
  uptimeSeconds: number;
  version: string;
}

const HealthRef = builder.objectRef<Health>('Health').implement({
  description: 'The state of the Sluice server process answering the request (not only your workspace).',
  fields: (t) => ({
    status: t.exposeString('status', { description: '`ok`, or `degraded` when the database does not answer a ping.' }),
    database: t.exposeString('database', { description: 'pglite (embedded) or postgres.' }),
    databaseOk: t.exposeBoolean('databaseOk', { description: 'Whether the database answered a ping just now.' }),
    runningJobs: t.exposeInt('runningJobs', { description: 'Jobs running in this process now, across all workspaces.' }),
    queuedJobs: t.exposeInt('queuedJobs', {
      description:
        "Jobs waiting in this process's queue for a runner slot or for their pipeline's earlier job, across all workspaces " +
        '(paused jobs and retries still in their backoff are not counted).',
    }),
    uptimeSeconds: t.exposeInt('uptimeSeconds', { description: 'Seconds since the server process started (rounded).' }),
    version: t.exposeString('version', { description: "The Sluice server version (package.json's `version`, e.g. `0.1.0`)." }),
  }),
});

const started = Date.now();

builder.queryFields((t) => ({
  health: t.field({
    type: HealthRef,
    description: 'Whether this server and its database work, with its job load. A database outage does not fail the query: it shows as `status: degraded`.',
    resolve: async (_r, _a, ctx) => {
      const ok = await ctx.services.database.ping().then(
        () => true,
        () => false,
      );
      const q = ctx.services.queue.stats();
      return {
        status: ok ? ('ok' as const) : ('degraded' as const),
        database: ctx.services.database.kind,
        databaseOk: ok,
        runningJobs: ctx.services.runner.runningJobs().length,
        queuedJobs: q.waiting,
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        version: VERSION,
      };
    },
  }),
}));
