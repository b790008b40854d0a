import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, ConnectorFailedError, InUseError, NotFoundError, ResourceLimitError, ValidationError } from '../../errors.js';
import { getDriver, originPaths, secretPaths } from '../../engine/drivers/index.js';
import type { Catalog, CheckResult, Driver, FieldSchema, StreamDescriptor } from '../../engine/drivers/types.js';
import { AuthenticationRef } from '../authentication/authentication.graphql.js';
import { driverSecretPaths, maskSecrets } from './secrets.js';

export const ConnectorRoleEnum = builder.enumType('ConnectorRole', { values: ['SOURCE', 'DESTINATION'] as const });
export const WriteModeEnum = builder.enumType('WriteMode', {
  description: 'How a destination applies records.',
  values: {
    APPEND: { description: 'Insert every record.' },
    OVERWRITE: { description: 'Replace all existing data, atomically at the end of the job.' },
    UPSERT: { description: 'Insert or replace by primary key.' },
    MERGE: { description: 'Insert, or update only the fields present in the record, by primary key.' },
  } as const,
});
export const SyncModeEnum = builder.enumType('SyncMode', {
  values: {
    FULL_REFRESH: { description: 'Every run reads the whole stream.' },
    INCREMENTAL: { description: 'Every run continues from the saved cursor.' },
  } as const,
});
export const FieldTypeEnum = builder.enumType('FieldType', {
  values: ['string', 'integer', 'number', 'boolean', 'datetime', 'json'] as const,
});

export const ConnectorDefinitionRef = builder.objectRef<Driver>('ConnectorDefinition');
builder.node(ConnectorDefinitionRef, {
  description: 'A built-in driver: what it connects to and the JSON Schema of its config.',
  id: { resolve: (d) => d.name },
  loadOne: (name) => getDriver(name) ?? null,
  isTypeOf: (v) => typeof v === 'object' && v !== null && 'configSchema' in v && 'check' in v,
  fields: (t) => ({
    driver: t.exposeString('name'),
    role: t.field({ type: ConnectorRoleEnum, resolve: (d) => d.role }),
    title: t.exposeString('title'),
    description: t.exposeString('description'),
    docs: t.exposeString('docs', { description: 'Markdown documentation.' }),
    configSchema: t.field({ type: 'JSON', description: 'JSON Schema of the config; secret fields carry `"secret": true`, fields deciding where requests go carry `"origin": true`.', resolve: (d) => d.configSchema }),
    secretFields: t.stringList({ description: 'Config paths that are write-only.', resolve: (d) => secretPaths(d) }),
    originFields: t.stringList({
      description:
        'Config paths that decide where requests or connections go (URL, host, port, database). Changing them to another address requires sending the secrets (and naming the authentication) again.',
      resolve: (d) => originPaths(d),
    }),
    supportedWriteModes: t.field({ type: [WriteModeEnum], resolve: (d) => (d.role === 'DESTINATION' ? d.supportedWriteModes : []) }),
  }),
});

const FieldSchemaRef = builder.objectRef<FieldSchema>('FieldSchema').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    type: t.field({ type: FieldTypeEnum, resolve: (f) => f.type }),
    nullable: t.exposeBoolean('nullable'),
  }),
});

export const StreamDescriptorRef = builder.objectRef<StreamDescriptor>('DiscoveredStream').implement({
  description: 'A stream as the source reports it (Airbyte AirbyteStream).',
  fields: (t) => ({
    name: t.exposeString('name'),
    fields: t.field({ type: [FieldSchemaRef], resolve: (s) => s.fields }),
    supportedSyncModes: t.field({ type: [SyncModeEnum], resolve: (s) => s.supportedSyncModes }),
    defaultCursorField: t.stringList({ nullable: true, resolve: (s) => s.defaultCursorField ?? null }),
    sourceDefinedPrimaryKey: t.stringList({ nullable: true, resolve: (s) => s.sourceDefinedPrimaryKey ?? null }),
  }),
});

const CatalogRef = builder.objectRef<Catalog>('Catalog').implement({
  fields: (t) => ({ streams: t.field({ type: [StreamDescriptorRef], resolve: (c) => c.streams }) }),
});

const CheckResultRef = builder.objectRef<CheckResult>('CheckResult').implement({
  fields: (t) => ({ ok: t.exposeBoolean('ok'), message: t.exposeString('message') }),
});

export const ConnectorRef = builder.prismaNode('Connector', {
  id: { field: 'id' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'A configured source or destination.',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: ConnectorRoleEnum, resolve: (c) => c.role }),
    driver: t.exposeString('driver'),
    definition: t.field({ type: ConnectorDefinitionRef, nullable: true, resolve: (c) => getDriver(c.driver) ?? null }),
    config: t.field({
      type: 'JSON',
      description: 'The config, with secret fields replaced by a placeholder.',
      resolve: (c) => maskSecrets(driverSecretPaths(c.driver), c.config),
    }),
    authentication: t.relation('authentication', {
      nullable: true,
      description: 'Stored credentials the driver uses instead of the inline `auth` of the config.',
    }),
    paused: t.exposeBoolean('paused', { description: 'A paused connector makes every pipeline using it inactive.' }),
    lastCheckOk: t.exposeBoolean('lastCheckOk', { nullable: true }),
    lastCheckAt: t.expose('lastCheckAt', { type: 'DateTime', nullable: true }),
    lastCheckMessage: t.exposeString('lastCheckMessage', { nullable: true }),
    version: t.exposeInt('version'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ConnectorFilter = builder.inputType('ConnectorFilter', {
  fields: (t) => ({
    role: t.field({ type: ConnectorRoleEnum }),
    driver: t.string(),
    nameContains: t.string(),
    paused: t.boolean(),
  }),
});

function connectorWhere(f: { role?: 'SOURCE' | 'DESTINATION' | null; driver?: string | null; nameContains?: string | null; paused?: boolean | null } | null | undefined) {
  return {
    ...(f?.role ? { role: f.role } : {}),
    ...(f?.driver ? { driver: f.driver } : {}),
    ...(f?.nameContains ? { name: { contains: f.nameContains, mode: 'insensitive' as const } } : {}),
    ...(f?.paused != null ? { paused: f.paused } : {}),
  };
}

builder.queryFields((t) => ({
  connectorDefinitions: t.field({
    type: [ConnectorDefinitionRef],
    args: { role: t.arg({ type: ConnectorRoleEnum }) },
    resolve: (_r, args, ctx) => ctx.services.connectors.definitions(args.role),
  }),
  connectorDefinition: t.field({
    type: ConnectorDefinitionRef,
    nullable: true,
    args: { driver: t.arg.string({ required: true }) },
    resolve: (_r, args) => getDriver(args.driver) ?? null,
  }),
  connector: t.prismaField({
    type: 'Connector',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: ConnectorRef }) },
    resolve: (query, _r, args, ctx) => ctx.db.connector.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  connectors: t.prismaConnection(
    {
      type: 'Connector',
      cursor: 'id',
      ...PAGE,
      args: { filter: t.arg({ type: ConnectorFilter }) },
      resolve: (query, _r, args, ctx) => ctx.db.connector.findMany({ ...query, where: connectorWhere(args.filter), orderBy: { id: 'asc' } }),
      totalCount: (_p, args, ctx) => ctx.db.connector.count({ where: connectorWhere(args.filter) }),
    },
  ),
}));

const CreateConnectorInput = builder.inputType('CreateConnectorInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    driver: t.string({ required: true, description: 'A ConnectorDefinition driver, e.g. `csv`.' }),
    role: t.field({ type: ConnectorRoleEnum, description: 'Optional; must match the driver when given.' }),
    config: t.field({ type: 'JSON', required: true, description: "Validated against the driver's configSchema. Secret fields are stored encrypted." }),
    paused: t.boolean({ defaultValue: false }),
    authenticationId: t.globalID({ for: AuthenticationRef, description: 'Stored credentials to use instead of inline `auth` (drivers whose config has `auth`).' }),
  }),
});

const UpdateConnectorInput = builder.inputType('UpdateConnectorInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: ConnectorRef }),
    name: t.string(),
    config: t.field({
      type: 'JSON',
      description: 'Replaces the config; secret placeholders keep the stored value, unless an origin field (see ConnectorDefinition.originFields) moves to another address.',
    }),
    authenticationId: t.globalID({ for: AuthenticationRef, description: 'Stored credentials to use instead of inline `auth`; null removes the reference, absent keeps it (but must be given when the config moves to another address).' }),
    expectedVersion: t.int({ description: 'Optimistic concurrency: fail with CONFLICT unless the connector is at this version.' }),
  }),
});

const ConnectorIdInput = builder.inputType('ConnectorIdInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: ConnectorRef }) }),
});

const CheckConnectorConfigInput = builder.inputType('CheckConnectorConfigInput', {
  fields: (t) => ({
    driver: t.string({ required: true }),
    config: t.field({ type: 'JSON', required: true }),
    authenticationId: t.globalID({ for: AuthenticationRef, description: 'Stored credentials to check with instead of inline `auth`.' }),
  }),
});

const CheckConnectorPayload = builder.objectRef<{ connector: { id: string }; result: CheckResult; jobId: string }>('CheckConnectorPayload');
const DiscoverConnectorPayload = builder.objectRef<{ connectorId: string; catalog: Catalog; jobId: string }>('DiscoverConnectorPayload');

builder.mutationFields((t) => ({
  createConnector: t.prismaField({
    type: 'Connector',
    args: { input: t.arg({ type: CreateConnectorInput, required: true }) },
    errors: { types: [ValidationError], dataField: { name: 'connector' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.create({ ...input, config: input.config, authenticationId: input.authenticationId?.id ?? null }),
  }),
  updateConnector: t.prismaField({
    type: 'Connector',
    args: { input: t.arg({ type: UpdateConnectorInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'connector' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.connectors.update({
        ...input,
        id: input.id.id,
        authenticationId: input.authenticationId === undefined ? undefined : (input.authenticationId?.id ?? null),
      }),
  }),
  deleteConnector: t.prismaField({
    type: 'Connector',
    args: { input: t.arg({ type: ConnectorIdInput, required: true }) },
    errors: { types: [NotFoundError, InUseError], dataField: { name: 'connector' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.delete(input.id.id),
  }),
  pauseConnector: t.prismaField({
    type: 'Connector',
    description: 'Feldera-style pause: every pipeline using the connector becomes inactive; running jobs stop at a checkpoint.',
    args: { input: t.arg({ type: ConnectorIdInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'connector' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.setPaused(input.id.id, true),
  }),
  resumeConnector: t.prismaField({
    type: 'Connector',
    args: { input: t.arg({ type: ConnectorIdInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'connector' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.setPaused(input.id.id, false),
  }),
  checkConnector: t.field({
    type: CheckConnectorPayload,
    description: "Runs the driver's real check (file readable, database reachable …) and records it.",
    args: { input: t.arg({ type: ConnectorIdInput, required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'CheckConnectorResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.connectors.check(input.id.id),
  }),
  checkConnectorConfig: t.field({
    type: CheckResultRef,
    description: 'Checks a config before saving it.',
    args: { input: t.arg({ type: CheckConnectorConfigInput, required: true }) },
    errors: { types: [ValidationError], dataField: { name: 'result' } },
    resolve: (_r, { input }, ctx) => ctx.services.connectors.checkConfig(input.driver, input.config, input.authenticationId?.id ?? null),
  }),
  discoverConnector: t.field({
    type: DiscoverConnectorPayload,
    description: 'Reads the streams, fields and types the connector offers. Runs in a worker with time and memory limits (RESOURCE_LIMIT).',
    args: { input: t.arg({ type: ConnectorIdInput, required: true }) },
    errors: { types: [NotFoundError, ConnectorFailedError, ResourceLimitError], directResult: true, union: { name: 'DiscoverConnectorResult' } },
    resolve: async (_r, { input }, ctx) => ({ connectorId: input.id.id, ...(await ctx.services.connectors.discover(input.id.id)) }),
  }),
}));

CheckConnectorPayload.implement({
  fields: (t) => ({
    connector: t.prismaField({ type: 'Connector', resolve: (q, p, _a, ctx) => ctx.db.connector.findUniqueOrThrow({ ...q, where: { id: p.connector.id } }) }),
    result: t.field({ type: CheckResultRef, resolve: (p) => p.result }),
    job: t.prismaField({ type: 'Job', description: 'The CHECK job that recorded this check.', resolve: (q, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...q, where: { id: p.jobId } }) }),
  }),
});

DiscoverConnectorPayload.implement({
  fields: (t) => ({
    connector: t.prismaField({ type: 'Connector', resolve: (q, p, _a, ctx) => ctx.db.connector.findUniqueOrThrow({ ...q, where: { id: p.connectorId } }) }),
    catalog: t.field({ type: CatalogRef, resolve: (p) => p.catalog }),
    job: t.prismaField({ type: 'Job', description: 'The DISCOVER job.', resolve: (q, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...q, where: { id: p.jobId } }) }),
  }),
});

