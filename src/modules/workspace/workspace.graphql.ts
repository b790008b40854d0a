import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { ApiKey, Workspace } from '../../generated/prisma/client.js';

export const ApiKeyScopeEnum = builder.enumType('ApiKeyScope', {
  description: 'What a key may do. Each scope includes the ones before it.',
  values: {
    READ: { description: 'Queries and subscriptions.' },
    WRITE: { description: 'Also mutations (create, change, run, delete).' },
    ADMIN: { description: 'Also key management beyond its own keys; in the default workspace, creating workspaces and rotating the encryption key.' },
  } as const,
});

export const WorkspaceRef = builder.prismaNode('Workspace', {
  id: { field: 'id', description: 'Global id (Relay).' },
  nullable: true,
  description: 'A tenant: every connector, authentication, mapping, pipeline, job, event and webhook belongs to exactly one.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name (1–200 characters); changed with renameWorkspace.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the workspace was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the workspace was last renamed (or created).' }),
  }),
});

export const ApiKeyRef = builder.prismaNode('ApiKey', {
  id: { field: 'id', description: 'Global id (Relay); what revokeApiKey takes.' },
  nullable: true,
  description: 'A workspace API key. The key itself is shown once, at creation; only its hash is kept.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name given at creation (1–200 characters).' }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to recognise it.' }),
    scope: t.expose('scope', { type: ApiKeyScopeEnum, description: 'What the key may do; fixed at creation.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the key was created.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'Updated at most once a minute.' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'From this moment the key is refused; null: it never expires.' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'When the key was revoked; null while it is not.' }),
    revoked: t.boolean({ description: 'True once revoked (an expired key is not revoked; compare `expiresAt`).', resolve: (k) => k.revokedAt !== null }),
  }),
});

const ViewerRef = builder.objectRef<{ workspace: Workspace; apiKeyId: string | null; keyPrefix: string; scope: 'READ' | 'WRITE' | 'ADMIN' }>('Viewer').implement({
  description: 'Who is calling: the workspace and the key (absent for trusted local access).',
  fields: (t) => ({
    workspace: t.field({ type: WorkspaceRef, nullable: false, description: 'The workspace every query and mutation of this caller acts in.', resolve: (v) => v.workspace }),
    apiKey: t.prismaField({
      type: 'ApiKey',
      nullable: true,
      description: 'The API key used for this request; null for trusted local access without a key.',
      resolve: (q, v, _a, ctx) => (v.apiKeyId ? ctx.db.apiKey.findUnique({ ...q, where: { id: v.apiKeyId } }) : null),
    }),
    keyPrefix: t.exposeString('keyPrefix', { description: '`local` for trusted local access without a key.' }),
    scope: t.field({ type: ApiKeyScopeEnum, description: "The caller's scope (ADMIN for trusted local access).", resolve: (v) => v.scope }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    type: ViewerRef,
    description: 'The caller: its workspace, key and scope.',
    resolve: async (_r, _a, ctx) => ({ ...ctx.auth, workspace: await ctx.services.workspaces.current() }),
  }),
  apiKeys: t.prismaConnection({
    type: 'ApiKey',
    cursor: 'id',
    ...PAGE,
    description: "The workspace's API keys, newest first (revoked ones included unless `includeRevoked` is false).",
    args: { includeRevoked: t.arg.boolean({ defaultValue: true, description: 'False leaves out revoked keys (expired keys are always listed).' }) },
    resolve: (query, _r, args, ctx) =>
      ctx.db.apiKey.findMany({ ...query, where: args.includeRevoked === false ? { revokedAt: null } : {}, orderBy: { id: 'desc' } }),
    totalCount: (_p, args, ctx) => ctx.db.apiKey.count({ where: args.includeRevoked === false ? { revokedAt: null } : {} }),
  }),
}));

interface CreatedKey {
  apiKey: ApiKey;
  key: string;
}

const CreateApiKeyPayload = builder.objectRef<CreatedKey>('CreateApiKeyPayload').implement({
  fields: (t) => ({
    apiKey: t.prismaField({ type: 'ApiKey', description: 'The created key (without its secret value).', resolve: (q, p, _a, ctx) => ctx.db.apiKey.findUniqueOrThrow({ ...q, where: { id: p.apiKey.id } }) }),
    key: t.exposeString('key', {
      description: 'The key: send it as `Authorization: Bearer <key>` (HTTP) or `{ "authorization": "Bearer <key>" }` (graphql-ws connection params). Shown only now.',
    }),
  }),
});

const CreateWorkspacePayload = builder.objectRef<CreatedKey & { workspace: Workspace }>('CreateWorkspacePayload').implement({
  fields: (t) => ({
    workspace: t.field({ type: WorkspaceRef, nullable: false, description: 'The created workspace.', resolve: (p) => p.workspace }),
    apiKey: t.field({ type: ApiKeyRef, nullable: false, description: "The new workspace's first key (ADMIN, named `admin`), without its secret value.", resolve: (p) => p.apiKey }),
    key: t.exposeString('key', { description: "The new workspace's first ADMIN key. Shown only now." }),
  }),
});

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  description: 'A new API key for your workspace.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–200 characters after trimming.' }),
    scope: t.field({ type: ApiKeyScopeEnum, required: true, description: 'At most the scope of the key creating it.' }),
    expiresAt: t.field({ type: 'DateTime', description: 'Optional expiry; must be in the future. Absent: the key never expires.' }),
  }),
});

const ApiKeyIdInput = builder.inputType('RevokeApiKeyInput', {
  description: 'Names one API key to revoke.',
  fields: (t) => ({ id: t.globalID({ required: true, for: ApiKeyRef, description: 'Global id of the ApiKey (not the key itself).' }) }),
});

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreateApiKeyPayload,
    description: 'Creates a key in your workspace with at most your own scope. The answer carries the key, shown only once.',
    args: { input: t.arg({ type: CreateApiKeyInput, required: true, description: 'The new key.' }) },
    errors: { types: [ValidationError, ForbiddenError], directResult: true, union: { name: 'CreateApiKeyResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.workspaces.createApiKey(input),
  }),
  revokeApiKey: t.prismaField({
    type: 'ApiKey',
    description: 'Revokes a key at once. ADMIN keys revoke any key of the workspace; others only keys they created, or themselves.',
    args: { input: t.arg({ type: ApiKeyIdInput, required: true, description: 'The key to revoke.' }) },
    errors: { types: [NotFoundError, ForbiddenError], dataField: { name: 'apiKey', description: 'The revoked key (unchanged if it was already revoked).' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.workspaces.revokeApiKey(input.id.id),
  }),
  createWorkspace: t.field({
    type: CreateWorkspacePayload,
    description: 'Creates a workspace and its first ADMIN key (shown once). Needs an ADMIN key of the default workspace.',
    args: {
      input: t.arg({
        type: builder.inputType('CreateWorkspaceInput', {
          description: 'A new workspace.',
          fields: (f) => ({ name: f.string({ required: true, description: 'Display name, 1–200 characters after trimming.' }) }),
        }),
        required: true,
        description: 'The new workspace.',
      }),
    },
    errors: { types: [ValidationError, ForbiddenError], directResult: true, union: { name: 'CreateWorkspaceResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.workspaces.createWorkspace(input.name),
  }),
  renameWorkspace: t.field({
    type: WorkspaceRef,
    description: 'Renames your workspace (ADMIN).',
    args: {
      input: t.arg({
        type: builder.inputType('RenameWorkspaceInput', {
          description: "Your workspace's new name.",
          fields: (f) => ({ name: f.string({ required: true, description: 'New display name, 1–200 characters after trimming.' }) }),
        }),
        required: true,
        description: 'The new name.',
      }),
    },
    errors: { types: [ValidationError], dataField: { name: 'workspace', description: 'The renamed workspace.' } },
    resolve: (_r, { input }, ctx) => ctx.services.workspaces.rename(input.name),
  }),
}));
