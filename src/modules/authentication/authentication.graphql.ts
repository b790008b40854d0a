import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, InUseError, NotFoundError, ValidationError } from '../../errors.js';
import type { AuthenticationType, StoredParams } from './authentication.service.js';

export const AuthenticationTypeEnum = builder.enumType('AuthenticationType', {
  values: {
    BASIC: { description: 'HTTP Basic: username and password.' },
    API_KEY: { description: 'An API key in a header or a query parameter.' },
    BEARER: { description: '`Authorization: Bearer <token>`.' },
    OAUTH2_CLIENT_CREDENTIALS: { description: 'OAuth 2.0 client credentials grant: a bearer token fetched from the token URL and cached until it expires.' },
  } as const,
});

const ApiKeyLocationEnum = builder.enumType('ApiKeyLocation', {
  values: { HEADER: { description: 'A request header named `name`.' }, QUERY: { description: 'A query parameter named `name`.' } } as const,
});

const OAuth2ClientAuthenticationEnum = builder.enumType('OAuth2ClientAuthentication', {
  description: 'How the client authenticates to the token endpoint.',
  values: {
    BASIC: { description: 'HTTP Basic with the client id and secret (client_secret_basic).' },
    BODY: { description: 'client_id and client_secret in the form body (client_secret_post).' },
  } as const,
});

const SECRET_NOTE = 'Write-only: always the placeholder `**********`.';

interface ParamsOf {
  type: AuthenticationType;
  params: StoredParams;
}

const str = (p: ParamsOf, k: string) => p.params[k] ?? '';
const opt = (p: ParamsOf, k: string) => p.params[k] ?? null;

const BasicParamsRef = builder.objectRef<ParamsOf>('BasicAuthParams').implement({
  isTypeOf: (p) => (p as ParamsOf).type === 'BASIC',
  fields: (t) => ({
    username: t.string({ resolve: (p) => str(p, 'username') }),
    password: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'password') }),
  }),
});

const ApiKeyParamsRef = builder.objectRef<ParamsOf>('ApiKeyAuthParams').implement({
  isTypeOf: (p) => (p as ParamsOf).type === 'API_KEY',
  fields: (t) => ({
    name: t.string({ description: 'Header or query parameter name.', resolve: (p) => str(p, 'name') }),
    in: t.field({ type: ApiKeyLocationEnum, resolve: (p) => (p.params.in === 'QUERY' ? 'QUERY' : 'HEADER') }),
    key: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'key') }),
  }),
});

const BearerParamsRef = builder.objectRef<ParamsOf>('BearerAuthParams').implement({
  isTypeOf: (p) => (p as ParamsOf).type === 'BEARER',
  fields: (t) => ({
    token: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'token') }),
  }),
});

const OAuth2ParamsRef = builder.objectRef<ParamsOf>('OAuth2ClientCredentialsAuthParams').implement({
  isTypeOf: (p) => (p as ParamsOf).type === 'OAUTH2_CLIENT_CREDENTIALS',
  fields: (t) => ({
    tokenUrl: t.string({ resolve: (p) => str(p, 'tokenUrl') }),
    clientId: t.string({ resolve: (p) => str(p, 'clientId') }),
    clientSecret: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'clientSecret') }),
    scope: t.string({ nullable: true, resolve: (p) => opt(p, 'scope') }),
    audience: t.string({ nullable: true, resolve: (p) => opt(p, 'audience') }),
    clientAuthentication: t.field({ type: OAuth2ClientAuthenticationEnum, resolve: (p) => (p.params.clientAuthentication === 'BODY' ? 'BODY' : 'BASIC') }),
  }),
});

const AuthenticationParamsUnion = builder.unionType('AuthenticationParams', {
  description: 'The parameters of an authentication, by type; secrets are shown as the placeholder.',
  types: [BasicParamsRef, ApiKeyParamsRef, BearerParamsRef, OAuth2ParamsRef],
  resolveType: (p) => {
    switch (p.type) {
      case 'BASIC':
        return BasicParamsRef;
      case 'API_KEY':
        return ApiKeyParamsRef;
      case 'BEARER':
        return BearerParamsRef;
      default:
        return OAuth2ParamsRef;
    }
  },
});

export const AuthenticationRef = builder.prismaNode('Authentication', {
  id: { field: 'id' },
  nullable: true,
  description: 'Reusable credentials (Algolia authentications) that connectors reference. Secrets are write-only and stored encrypted.',
  fields: (t) => ({
    name: t.exposeString('name'),
    type: t.field({ type: AuthenticationTypeEnum, resolve: (a) => a.type }),
    params: t.field({
      type: AuthenticationParamsUnion,
      resolve: (a, _args, ctx) => ({ type: a.type, params: ctx.services.authentications.masked(a) }),
    }),
    connectors: t.relatedConnection('connectors', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description: 'Connectors using this authentication.',
      query: () => ({ orderBy: { id: 'asc' } }),
    }),
    version: t.exposeInt('version'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const AuthenticationFilter = builder.inputType('AuthenticationFilter', {
  fields: (t) => ({
    type: t.field({ type: AuthenticationTypeEnum }),
    nameContains: t.string(),
  }),
});

function authenticationWhere(f: { type?: AuthenticationType | null; nameContains?: string | null } | null | undefined) {
  return {
    ...(f?.type ? { type: f.type } : {}),
    ...(f?.nameContains ? { name: { contains: f.nameContains, mode: 'insensitive' as const } } : {}),
  };
}

builder.queryFields((t) => ({
  authentication: t.prismaField({
    type: 'Authentication',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: AuthenticationRef }) },
    resolve: (query, _r, args, ctx) => ctx.db.authentication.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  authentications: t.prismaConnection({
    type: 'Authentication',
    cursor: 'id',
    ...PAGE,
    args: { filter: t.arg({ type: AuthenticationFilter }) },
    resolve: (query, _r, args, ctx) => ctx.db.authentication.findMany({ ...query, where: authenticationWhere(args.filter), orderBy: { id: 'asc' } }),
    totalCount: (_p, args, ctx) => ctx.db.authentication.count({ where: authenticationWhere(args.filter) }),
  }),
}));

const placeholderNote = (field: string) => `Write-only. On update, the placeholder \`**********\` keeps the stored ${field}.`;

const BasicAuthInput = builder.inputType('BasicAuthInput', {
  fields: (t) => ({
    username: t.string({ required: true }),
    password: t.string({ required: true, description: placeholderNote('password') }),
  }),
});

const ApiKeyAuthInput = builder.inputType('ApiKeyAuthInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'Header name (e.g. X-API-Key) or query parameter name (e.g. api_key).' }),
    in: t.field({ type: ApiKeyLocationEnum, defaultValue: 'HEADER' }),
    key: t.string({ required: true, description: placeholderNote('key') }),
  }),
});

const BearerAuthInput = builder.inputType('BearerAuthInput', {
  fields: (t) => ({
    token: t.string({ required: true, description: placeholderNote('token') }),
  }),
});

const OAuth2ClientCredentialsInput = builder.inputType('OAuth2ClientCredentialsInput', {
  fields: (t) => ({
    tokenUrl: t.string({ required: true, description: 'The token endpoint (http or https).' }),
    clientId: t.string({ required: true }),
    clientSecret: t.string({ required: true, description: placeholderNote('client secret') }),
    scope: t.string({ description: 'Space-separated scopes to request.' }),
    audience: t.string({ description: 'Sent as `audience` (Auth0 and similar).' }),
    clientAuthentication: t.field({ type: OAuth2ClientAuthenticationEnum, defaultValue: 'BASIC' }),
  }),
});

const CreateAuthenticationInput = builder.inputType('CreateAuthenticationInput', {
  description: 'A name and exactly one of the typed parameter objects (which one sets the type).',
  fields: (t) => ({
    name: t.string({ required: true }),
    basic: t.field({ type: BasicAuthInput }),
    apiKey: t.field({ type: ApiKeyAuthInput }),
    bearer: t.field({ type: BearerAuthInput }),
    oauth2ClientCredentials: t.field({ type: OAuth2ClientCredentialsInput }),
  }),
});

const UpdateAuthenticationInput = builder.inputType('UpdateAuthenticationInput', {
  description: 'At most one typed parameter object: it replaces the parameters (and may change the type; then every secret must be sent).',
  fields: (t) => ({
    id: t.globalID({ required: true, for: AuthenticationRef }),
    name: t.string(),
    basic: t.field({ type: BasicAuthInput }),
    apiKey: t.field({ type: ApiKeyAuthInput }),
    bearer: t.field({ type: BearerAuthInput }),
    oauth2ClientCredentials: t.field({ type: OAuth2ClientCredentialsInput }),
    expectedVersion: t.int({ description: 'Optimistic concurrency: fail with CONFLICT unless the authentication is at this version.' }),
  }),
});

const AuthenticationIdInput = builder.inputType('AuthenticationIdInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: AuthenticationRef }) }),
});

builder.mutationFields((t) => ({
  createAuthentication: t.prismaField({
    type: 'Authentication',
    args: { input: t.arg({ type: CreateAuthenticationInput, required: true }) },
    errors: { types: [ValidationError], dataField: { name: 'authentication' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.authentications.create(input),
  }),
  updateAuthentication: t.prismaField({
    type: 'Authentication',
    args: { input: t.arg({ type: UpdateAuthenticationInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'authentication' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.authentications.update({ ...input, id: input.id.id }),
  }),
  deleteAuthentication: t.prismaField({
    type: 'Authentication',
    description: 'Deletes an authentication no connector uses (IN_USE otherwise).',
    args: { input: t.arg({ type: AuthenticationIdInput, required: true }) },
    errors: { types: [NotFoundError, InUseError], dataField: { name: 'authentication' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.authentications.delete(input.id.id),
  }),
}));
