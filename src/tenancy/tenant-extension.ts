/**
 * The tenant guard on the database client (defence in depth under every service).
 *
 * Contract: inside a workspace scope (see scope.ts), every Prisma operation on a
 * tenant-owned model is restricted to the caller's workspace — reads and bulk writes get the
 * workspace added to their `where` (so another workspace's row is simply not found), single
 * `update` / `delete` / `upsert` only match the caller's rows, and creates are stamped with the
 * caller's workspace (a create naming another workspace is refused). Child models without a
 * `workspaceId` column are restricted through their parent relation. In system scope, or with
 * no scope, operations pass through unchanged. Raw SQL is never rewritten.
 */
import { Prisma } from '../generated/prisma/client.js';
import { currentWorkspaceId } from './scope.js';

type Where = Record<string, unknown>;

/** How each tenant-owned model is restricted to a workspace. */
const SCOPES: Record<string, (ws: string) => Where> = {
  Workspace: (ws) => ({ id: ws }),
  ApiKey: (ws) => ({ workspaceId: ws }),
  Connector: (ws) => ({ workspaceId: ws }),
  Authentication: (ws) => ({ workspaceId: ws }),
  Mapping: (ws) => ({ workspaceId: ws }),
  Pipeline: (ws) => ({ workspaceId: ws }),
  Job: (ws) => ({ workspaceId: ws }),
  Event: (ws) => ({ workspaceId: ws }),
  WebhookEndpoint: (ws) => ({ workspaceId: ws }),
  MappingVersion: (ws) => ({ mapping: { workspaceId: ws } }),
  JobAttempt: (ws) => ({ job: { workspaceId: ws } }),
  JobLog: (ws) => ({ job: { workspaceId: ws } }),
  DeadLetter: (ws) => ({ pipeline: { workspaceId: ws } }),
  PushBatch: (ws) => ({ pipeline: { workspaceId: ws } }),
  WebhookDelivery: (ws) => ({ endpoint: { workspaceId: ws } }),
  WebhookAttempt: (ws) => ({ delivery: { endpoint: { workspaceId: ws } } }),
};

/** Models whose rows carry `workspaceId` and get it stamped on create. */
const STAMPED = new Set(['ApiKey', 'Connector', 'Authentication', 'Mapping', 'Pipeline', 'Job', 'Event', 'WebhookEndpoint']);

const FILTERED = new Set([
  'findUnique',
  'findUniqueOrThrow',
  'findFirst',
  'findFirstOrThrow',
  'findMany',
  'count',
  'aggregate',
  'groupBy',
  'update',
  'updateMany',
  'updateManyAndReturn',
  'delete',
  'deleteMany',
  'upsert',
]);

const CREATES = new Set(['create', 'createMany', 'createManyAndReturn', 'upsert']);

function restrict(where: Where | undefined, scope: Where): Where {
  const base = where ?? {};
  const and = base.AND === undefined ? [] : Array.isArray(base.AND) ? base.AND : [base.AND];
  return { ...base, AND: [...and, scope] };
}

function stamp(data: unknown, ws: string, model: string): unknown {
  if (Array.isArray(data)) return data.map((d) => stamp(d, ws, model));
  const row = (data ?? {}) as Record<string, unknown>;
  if (row.workspaceId !== undefined && row.workspaceId !== ws) {
    throw new Error(`refused: a ${model} cannot be created in another workspace`);
  }
  return { ...row, workspaceId: ws };
}

export const tenantExtension = Prisma.defineExtension({
  name: 'sluice-tenant',
  query: {
    $allModels: {
      async $allOperations({ model, operation, args, query }) {
        const ws = currentWorkspaceId();
        const scope = ws ? SCOPES[model] : undefined;
        if (!ws || !scope) return query(args);
        const a = { ...(args as Record<string, unknown>) };
        if (FILTERED.has(operation)) a.where = restrict(a.where as Where | undefined, scope(ws));
        if (CREATES.has(operation) && STAMPED.has(model)) {
          if (operation === 'upsert') a.create = stamp(a.create, ws, model);
          else a.data = stamp(a.data, ws, model);
        }
        return query(a as typeof args);
      },
    },
  },
});
