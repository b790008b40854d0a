import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, InUseError, NotFoundError, ValidationError } from '../../errors.js';
import type { AuthenticationType, StoredParams } from './authentication.service.js';

export const AuthenticationTypeEnum = builder.enumType('AuthenticationType', {
  description: 'The kind of credentials an authentication holds; it decides which params object it has.',
  values: {
    BASIC: { description: 'HTTP Basic: username and password.' },
    API_KEY: { description: 'An API key in a header or a query parameter.' },
    BEARER: { description: '`Authorization: Bearer <token>`.' },
    OAUTH2_CLIENT_CREDENTIALS: { description: 'OAuth 2.0 client credentials grant: a bearer token fetched from the token URL and cached until it expires.' },
  } as const,
});

const ApiKeyLocationEnum = builder.enumType('ApiKeyLocation', {
  description: 'Where an API key is sent in each request.',
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
  description: 'Parameters of a BASIC authentication.',
  isTypeOf: (p) => (p as ParamsOf).type === 'BASIC',
  fields: (t) => ({
    username: t.string({ description: 'The user name (sent in clear in the Basic header; not secret).', resolve: (p) => str(p, 'username') }),
    password: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'password') }),
  }),
});

const ApiKeyParamsRef = builder.objectRef<ParamsOf>('ApiKeyAuthParams').implement({
  description: 'Parameters of an API_KEY authentication.',
  isTypeOf: (p) => (p as ParamsOf).type === 'API_KEY',
  fields: (t) => ({
    name: t.string({ description: 'Header or query parameter name.', resolve: (p) => str(p, 'name') }),
    in: t.field({ type: ApiKeyLocationEnum, description: 'Whether the key goes in a header or a query parameter.', resolve: (p) => (p.params.in === 'QUERY' ? 'QUERY' : 'HEADER') }),
    key: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'key') }),
  }),
});

const BearerParamsRef = builder.objectRef<ParamsOf>('BearerAuthParams').implement({
  description: 'Parameters of a BEARER authentication.',
  isTypeOf: (p) => (p as ParamsOf).type === 'BEARER',
  fields: (t) => ({
    token: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'token') }),
  }),
});

const OAuth2ParamsRef = builder.objectRef<ParamsOf>('OAuth2ClientCredentialsAuthParams').implement({
  description: 'Parameters of an OAUTH2_CLIENT_CREDENTIALS authentication.',
  isTypeOf: (p) => (p as ParamsOf).type === 'OAUTH2_CLIENT_CREDENTIALS',
  fields: (t) => ({
    tokenUrl: t.string({ description: 'The token endpoint the access token is requested from.', resolve: (p) => str(p, 'tokenUrl') }),
    clientId: t.string({ description: 'The OAuth 2.0 client id (not secret).', resolve: (p) => str(p, 'clientId') }),
    clientSecret: t.string({ description: SECRET_NOTE, resolve: (p) => str(p, 'clientSecret') }),
    scope: t.string({ nullable: true, description: 'Space-separated scopes requested; null: none sent.', resolve: (p) => opt(p, 'scope') }),
    audience: t.string({ nullable: true, description: 'The `audience` sent with the token request; null: none sent.', resolve: (p) => opt(p, 'audience') }),
    clientAuthentication: t.field({ type: OAuth2ClientAuthenticationEnum, description: 'How the client id and secret are sent to the token endpoint.', resolve: (p) => (p.params.clientAuthentication === 'BODY' ? 'BODY' : 'BASIC') }),
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
  id: { field: 'id', description: 'Global id (Relay).' },
  nullable: true,
  description: 'Reusable credentials (Algolia authentications) that connectors reference. Secrets are write-only and stored encrypted.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name (1–200 characters; not unique).' }),
    type: t.field({ type: AuthenticationTypeEnum, description: 'The kind of credentials; decides the type of `params`.', resolve: (a) => a.type }),
    params: t.field({
      type: AuthenticationParamsUnion,
      description: 'The parameters, typed by `type`. Secret values (password, key, token, client secret) are write-only: always the placeholder `**********`, never the stored value.',
      resolve: (a, _args, ctx) => ({ type: a.type, params: ctx.services.authentications.masked(a) }),
    }),
    connectors: t.relatedConnection('connectors', {
      cursor: 'id',
      ...PAGE,
      totalCount: true,
      description: 'Connectors using this authentication.',
      query: () => ({ orderBy: { id: 'asc' } }),
    }),
    version: t.exposeInt('version', {
      description: 'Incremented by every update; send it as `expectedVersion` to updateAuthentication to detect concurrent changes.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the authentication was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the authentication last changed.' }),
  }),
});

const AuthenticationFilter = builder.inputType('AuthenticationFilter', {
  description: 'Narrows an authentication list; every field given must match.',
  fields: (t) => ({
    type: t.field({ type: AuthenticationTypeEnum, description: 'Only authentications of this type.' }),
    nameContains: t.string({ description: 'Only authentications whose name contains this text (case-insensitive).' }),
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
    description: 'One authentication of your workspace; null when it does not exist (or belongs to another workspace).',
    args: { id: t.arg.globalID({ required: true, for: AuthenticationRef, description: 'Global id of the authentication.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.authentication.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  authentications: t.prismaConnection({
    type: 'Authentication',
    cursor: 'id',
    ...PAGE,
    description: `The authentications of your workspace, oldest first; ${PAGE.defaultSize} per page unless \`first\`/\`last\` say otherwise (at most ${PAGE.maxSize}).`,
    args: { filter: t.arg({ type: AuthenticationFilter, description: 'Only authentications matching every given criterion.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.authentication.findMany({ ...query, where: authenticationWhere(args.filter), orderBy: { id: 'asc' } }),
    totalCount: (_p, args, ctx) => ctx.db.authentication.count({ where: authenticationWhere(args.filter) }),
  }),
}));

const placeholderNote = (field: string) => `Write-only. On update, the placeholder \`**********\` keeps the stored ${field}.`;

const BasicAuthInput = builder.inputType('BasicAuthInput', {
  description: 'HTTP Basic credentials.',
  fields: (t) => ({
    username: t.string({ required: true, description: 'The user name: up to 512 characters, no `:` and no control characters.' }),
    password: t.string({ required: true, description: placeholderNote('password') }),
  }),
});

const ApiKeyAuthInput = builder.inputType('ApiKeyAuthInput', {
  description: 'An API key sent in a header or a query parameter.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Header name (e.g. X-API-Key) or query parameter name (e.g. api_key).' }),
    in: t.field({ type: ApiKeyLocationEnum, defaultValue: 'HEADER', description: 'Where the key is sent; default HEADER (then `name` must be a valid header name).' }),
    key: t.string({ required: true, description: placeholderNote('key') }),
  }),
});

const BearerAuthInput = builder.inputType('BearerAuthInput', {
  description: 'A bearer token sent as `Authorization: Bearer <token>`.',
  fields: (t) => ({
    token: t.string({ required: true, description: placeholderNote('token') }),
  }),
});

const OAuth2ClientCredentialsInput = builder.inputType('OAuth2ClientCredentialsInput', {
  description: 'OAuth 2.0 client credentials: a token is fetched from `tokenUrl` and cached until it expires.',
  fields: (t) => ({
    tokenUrl: t.string({ required: true, description: 'The token endpoint (http or https).' }),
    clientId: t.string({ required: true, description: 'The OAuth 2.0 client id (up to 1024 characters).' }),
    clientSecret: t.string({ required: true, description: placeholderNote('client secret') }),
    scope: t.string({ description: 'Space-separated scopes to request.' }),
    audience: t.string({ description: 'Sent as `audience` (Auth0 and similar).' }),
    clientAuthentication: t.field({
      type: OAuth2ClientAuthenticationEnum,
      defaultValue: 'BASIC',
      description: 'How the client id and secret are sent to the token endpoint; default BASIC.',
    }),
  }),
});

const CreateAuthenticationInput = builder.inputType('CreateAuthenticationInput', {
  description: 'A name and exactly one of the typed parameter objects (which one sets the type).',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–200 characters after trimming.' }),
    basic: t.field({ type: BasicAuthInput, description: 'Give to create a BASIC authentication.' }),
    apiKey: t.field({ type: ApiKeyAuthInput, description: 'Give to create an API_KEY authentication.' }),
    bearer: t.field({ type: BearerAuthInput, description: 'Give to create a BEARER authentication.' }),
    oauth2ClientCredentials: t.field({ type: OAuth2ClientCredentialsInput, description: 'Give to create an OAUTH2_CLIENT_CREDENTIALS authentication.' }),
  }),
});

const UpdateAuthenticationInput = builder.inputType('UpdateAuthenticationInput', {
  description: 'At most one typed parameter object: it replaces the parameters (and may change the type; then every secret must be sent).',
  fields: (t) => ({
    id: t.globalID({ required: true, for: AuthenticationRef, description: 'Global id of the authentication to change.' }),
    name: t.string({ description: 'New display name, 1–200 characters after trimming; absent: unchanged.' }),
    basic: t.field({ type: BasicAuthInput, description: 'New parameters; makes it a BASIC authentication.' }),
    apiKey: t.field({ type: ApiKeyAuthInput, description: 'New parameters; makes it an API_KEY authentication.' }),
    bearer: t.field({ type: BearerAuthInput, description: 'New parameters; makes it a BEARER authentication.' }),
    oauth2ClientCredentials: t.field({ type: OAuth2ClientCredentialsInput, description: 'New parameters; makes it an OAUTH2_CLIENT_CREDENTIALS authentication.' }),
    expectedVersion: t.int({ description: 'Optimistic concurrency: fail with CONFLICT unless the authentication is at this version.' }),
  }),
});

const AuthenticationIdInput = builder.inputType('AuthenticationIdInput', {
  description: 'Names one authentication.',
  fields: (t) => ({ id: t.globalID({ required: true, for: AuthenticationRef, description: 'Global id of the authentication.' }) }),
});

builder.mutationFields((t) => ({
  createAuthentication: t.prismaField({
    type: 'Authentication',
    description:
      'Stores reusable credentials; secrets are encrypted at rest and never returned. VALIDATION_FAILED when not exactly one params object is given, a required value is missing, or a value is malformed (placeholder, bad URL, control characters).',
    args: { input: t.arg({ type: CreateAuthenticationInput, required: true, description: 'The new authentication.' }) },
    errors: { types: [ValidationError], dataField: { name: 'authentication', description: 'The created authentication (secrets masked).' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.authentications.create(input),
  }),
  updateAuthentication: t.prismaField({
    type: 'Authentication',
    description:
      'Renames an authentication and/or replaces its parameters; connectors using it get the new credentials at their next job start, check, discover or preview. VALIDATION_FAILED for bad params, NOT_FOUND, CONFLICT when `expectedVersion` is not the current version.',
    args: { input: t.arg({ type: UpdateAuthenticationInput, required: true, description: 'The authentication and its changes.' }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'authentication', description: 'The authentication after the change (secrets masked).' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.authentications.update({ ...input, id: input.id.id }),
  }),
  deleteAuthentication: t.prismaField({
    type: 'Authentication',
    description: 'Deletes an authentication no connector uses (IN_USE otherwise).',
    args: { input: t.arg({ type: AuthenticationIdInput, required: true, description: 'The authentication to delete.' }) },
    errors: { types: [NotFoundError, InUseError], dataField: { name: 'authentication', description: 'The authentication as it was before deletion.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.authentications.delete(input.id.id),
  }),
}));
