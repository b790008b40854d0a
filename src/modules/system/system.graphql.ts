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
  fields: (t) => ({
    status: t.exposeString('status'),
    database: t.exposeString('database', { description: 'pglite (embedded) or postgres.' }),
    databaseOk: t.exposeBoolean('databaseOk'),
    runningJobs: t.exposeInt('runningJobs'),
    queuedJobs: t.exposeInt('queuedJobs'),
    uptimeSeconds: t.exposeInt('uptimeSeconds'),
    version: t.exposeString('version'),
  }),
});

export const VERSION = '0.1.0';
const started = Date.now();

builder.queryFields((t) => ({
  health: t.field({
    type: HealthRef,
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
