import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, ConnectorFailedError, InUseError, NotFoundError, ResourceLimitError, ValidationError } from '../../errors.js';
import { getDriver, originPaths, secretPaths } from '../../engine/drivers/index.js';
import type { Catalog, CheckResult, Driver, FieldSchema, StreamDescriptor } from '../../engine/drivers/types.js';
import { AuthenticationRef } from '../authentication/authentication.graphql.js';
import { driverSecretPaths, maskSecrets } from './secrets.js';

export const ConnectorRoleEnum = builder.enumType('ConnectorRole', {
  description: 'Which side of a pipeline a connector or driver is on.',
  values: {
    SOURCE: { value: 'SOURCE', description: 'Reads records from an external system (file, database, HTTP API).' },
    DESTINATION: { value: 'DESTINATION', description: 'Writes records into an external system.' },
  } as const,
});
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
  description: 'How a source reads a stream on each run.',
  values: {
    FULL_REFRESH: { description: 'Every run reads the whole stream.' },
    INCREMENTAL: { description: 'Every run continues from the saved cursor.' },
  } as const,
});
export const FieldTypeEnum = builder.enumType('FieldType', {
  description: 'Logical type of a field, as a source reports it and a destination maps it to a column type.',
  values: {
    string: { value: 'string', description: 'Text.' },
    integer: { value: 'integer', description: 'A whole number.' },
    number: { value: 'number', description: 'A number, possibly with a fraction.' },
    boolean: { value: 'boolean', description: 'true or false.' },
    datetime: { value: 'datetime', description: 'A point in time (ISO 8601 text in records).' },
    json: { value: 'json', description: 'Any JSON value (object, array or scalar).' },
  } as const,
});

export const ConnectorDefinitionRef = builder.objectRef<Driver>('ConnectorDefinition');
builder.node(ConnectorDefinitionRef, {
  description: 'A built-in driver: what it connects to and the JSON Schema of its config.',
  id: { description: 'Global id (Relay), derived from the driver name.', resolve: (d) => d.name },
  loadOne: (name) => getDriver(name) ?? null,
  isTypeOf: (v) => typeof v === 'object' && v !== null && 'configSchema' in v && 'check' in v,
  fields: (t) => ({
    driver: t.exposeString('name', { description: 'The driver name, e.g. `csv`: what CreateConnectorInput.driver takes.' }),
    role: t.field({ type: ConnectorRoleEnum, description: 'Whether connectors of this driver are sources or destinations.', resolve: (d) => d.role }),
    title: t.exposeString('title', { description: 'Human-readable name of the driver.' }),
    description: t.exposeString('description', { description: 'One-line summary of what the driver connects to.' }),
    docs: t.exposeString('docs', { description: 'Markdown documentation.' }),
    configSchema: t.field({ type: 'JSON', description: 'JSON Schema of the config; secret fields carry `"secret": true`, fields deciding where requests go carry `"origin": true`.', resolve: (d) => d.configSchema }),
    secretFields: t.stringList({ description: 'Config paths that are write-only.', resolve: (d) => secretPaths(d) }),
    originFields: t.stringList({
      description:
        'Config paths that decide where requests or connections go (URL, host, port, database). Changing them to another address requires sending the secrets (and naming the authentication) again.',
      resolve: (d) => originPaths(d),
    }),
    supportedWriteModes: t.field({ type: [WriteModeEnum], description: 'Write modes a destination driver supports; empty for sources.', resolve: (d) => (d.role === 'DESTINATION' ? d.supportedWriteModes : []) }),
  }),
});

const FieldSchemaRef = builder.objectRef<FieldSchema>('FieldSchema').implement({
  description: 'One field of a discovered stream.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The field name, as it appears in records.' }),
    type: t.field({ type: FieldTypeEnum, description: 'Logical type of the values.', resolve: (f) => f.type }),
    nullable: t.exposeBoolean('nullable', { description: 'Whether the value may be null or missing.' }),
  }),
});

export const StreamDescriptorRef = builder.objectRef<StreamDescriptor>('DiscoveredStream').implement({
  description: 'A stream as the source reports it (Airbyte AirbyteStream).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The stream name (table, file, endpoint): what a pipeline stream selects.' }),
    fields: t.field({ type: [FieldSchemaRef], description: 'The fields of its records, in source order.', resolve: (s) => s.fields }),
    supportedSyncModes: t.field({ type: [SyncModeEnum], description: 'Sync modes a pipeline may use for this stream.', resolve: (s) => s.supportedSyncModes }),
    defaultCursorField: t.stringList({
      nullable: true,
      description: 'Field path the source itself uses as the incremental cursor; null when it has none (the pipeline must choose one for INCREMENTAL).',
      resolve: (s) => s.defaultCursorField ?? null }),
    sourceDefinedPrimaryKey: t.stringList({ nullable: true, description: 'Primary key field names the source knows of; null when it knows none.', resolve: (s) => s.sourceDefinedPrimaryKey ?? null }),
  }),
});

const CatalogRef = builder.objectRef<Catalog>('Catalog').implement({
  description: 'What a source offers, as found by discoverConnector.',
  fields: (t) => ({ streams: t.field({ type: [StreamDescriptorRef], description: 'Every stream the source can read.', resolve: (c) => c.streams }) }),
});

const CheckResultRef = builder.objectRef<CheckResult>('CheckResult').implement({
  description: "The outcome of a driver's connection check.",
  fields: (t) => ({
    ok: t.exposeBoolean('ok', { description: 'True when the driver could reach and use the external system with this config.' }),
    message: t.exposeString('message', { description: "The driver's explanation (why it failed, or what it found), with secret values removed." }),
  }),
});

export const ConnectorRef = builder.prismaNode('Connector', {
  id: { field: 'id', description: 'Global id (Relay).' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'A configured source or destination.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name (1–200 characters; not unique).' }),
    role: t.field({ type: ConnectorRoleEnum, description: "Source or destination; always the driver's role.", resolve: (c) => c.role }),
    driver: t.exposeString('driver', { description: 'The driver name, e.g. `csv`; fixed at creation.' }),
    definition: t.field({
      type: ConnectorDefinitionRef,
      nullable: true,
      description: 'The driver definition; null when this server no longer has the driver.',
      resolve: (c) => getDriver(c.driver) ?? null }),
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
    lastCheckOk: t.exposeBoolean('lastCheckOk', { nullable: true, description: 'Whether the last checkConnector succeeded; null until the connector was checked.' }),
    lastCheckAt: t.expose('lastCheckAt', { type: 'DateTime', nullable: true, description: 'When checkConnector last ran; null until then.' }),
    lastCheckMessage: t.exposeString('lastCheckMessage', { nullable: true, description: "The driver's message from the last check, with secret values removed; null until checked." }),
    version: t.exposeInt('version', {
      description: 'Incremented by every update, pause and resume; send it as `expectedVersion` to updateConnector to detect concurrent changes.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the connector was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the connector row last changed (including recorded checks).' }),
  }),
});

const ConnectorFilter = builder.inputType('ConnectorFilter', {
  description: 'Narrows a connector list; every field given must match (absent or null fields do not filter).',
  fields: (t) => ({
    role: t.field({ type: ConnectorRoleEnum, description: 'Only sources or only destinations.' }),
    driver: t.string({ description: 'Only connectors of this driver name (exact match).' }),
    nameContains: t.string({ description: 'Only connectors whose name contains this text (case-insensitive).' }),
    paused: t.boolean({ description: 'Only paused (true) or only unpaused (false) connectors.' }),
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
    description: 'The drivers built into this server.',
    args: { role: t.arg({ type: ConnectorRoleEnum, description: 'Only source or only destination drivers; absent: all.' }) },
    resolve: (_r, args, ctx) => ctx.services.connectors.definitions(args.role),
  }),
  connectorDefinition: t.field({
    type: ConnectorDefinitionRef,
    nullable: true,
    description: 'One built-in driver by name; null when there is no such driver.',
    args: { driver: t.arg.string({ required: true, description: 'The driver name, e.g. `csv`.' }) },
    resolve: (_r, args) => getDriver(args.driver) ?? null,
  }),
  connector: t.prismaField({
    type: 'Connector',
    nullable: true,
    description: 'One connector of your workspace; null when it does not exist (or belongs to another workspace).',
    args: { id: t.arg.globalID({ required: true, for: ConnectorRef, description: 'Global id of the connector.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.connector.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  connectors: t.prismaConnection(
    {
      type: 'Connector',
      cursor: 'id',
      ...PAGE,
      description: `The connectors of your workspace, oldest first; ${PAGE.defaultSize} per page unless \`first\`/\`last\` say otherwise (at most ${PAGE.maxSize}).`,
      args: { filter: t.arg({ type: ConnectorFilter, description: 'Only connectors matching every given criterion.' }) },
      resolve: (query, _r, args, ctx) => ctx.db.connector.findMany({ ...query, where: connectorWhere(args.filter), orderBy: { id: 'asc' } }),
      totalCount: (_p, args, ctx) => ctx.db.connector.count({ where: connectorWhere(args.filter) }),
    },
  ),
}));

const CreateConnectorInput = builder.inputType('CreateConnectorInput', {
  description: 'A new connector: a driver and its config.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–200 characters after trimming.' }),
    driver: t.string({ required: true, description: 'A ConnectorDefinition driver, e.g. `csv`.' }),
    role: t.field({ type: ConnectorRoleEnum, description: 'Optional; must match the driver when given.' }),
    config: t.field({ type: 'JSON', required: true, description: "Validated against the driver's configSchema. Secret fields are stored encrypted." }),
    paused: t.boolean({ defaultValue: false, description: 'Create it paused: pipelines using it stay inactive until resumeConnector.' }),
    authenticationId: t.globalID({ for: AuthenticationRef, description: 'Stored credentials to use instead of inline `auth` (drivers whose config has `auth`).' }),
  }),
});

const UpdateConnectorInput = builder.inputType('UpdateConnectorInput', {
  description: 'Changes to a connector; absent or null fields keep their value. The driver and role cannot change.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: ConnectorRef, description: 'Global id of the connector to change.' }),
    name: t.string({ description: 'New display name, 1–200 characters after trimming.' }),
    config: t.field({
      type: 'JSON',
      description: 'Replaces the config; secret placeholders keep the stored value, unless an origin field (see ConnectorDefinition.originFields) moves to another address.',
    }),
    authenticationId: t.globalID({ for: AuthenticationRef, description: 'Stored credentials to use instead of inline `auth`; null removes the reference, absent keeps it (but must be given when the config moves to another address).' }),
    expectedVersion: t.int({ description: 'Optimistic concurrency: fail with CONFLICT unless the connector is at this version.' }),
  }),
});

const ConnectorIdInput = builder.inputType('ConnectorIdInput', {
  description: 'Names one connector.',
  fields: (t) => ({ id: t.globalID({ required: true, for: ConnectorRef, description: 'Global id of the connector.' }) }),
});

const CheckConnectorConfigInput = builder.inputType('CheckConnectorConfigInput', {
  description: 'A driver and a config to check without saving anything.',
  fields: (t) => ({
    driver: t.string({ required: true, description: 'A ConnectorDefinition driver name, e.g. `csv`.' }),
    config: t.field({
      type: 'JSON',
      required: true,
      description: "Validated against the driver's configSchema; secrets are given in clear (placeholders are refused, as nothing is stored).",
    }),
    authenticationId: t.globalID({ for: AuthenticationRef, description: 'Stored credentials to check with instead of inline `auth`.' }),
  }),
});

const CheckConnectorPayload = builder.objectRef<{ connector: { id: string }; result: CheckResult; jobId: string }>('CheckConnectorPayload');
const DiscoverConnectorPayload = builder.objectRef<{ connectorId: string; catalog: Catalog; jobId: string }>('DiscoverConnectorPayload');

builder.mutationFields((t) => ({
  createConnector: t.prismaField({
    type: 'Connector',
    description:
      "Creates a connector. VALIDATION_FAILED when the driver is unknown, the role does not match it, the config does not fit the driver's configSchema, or the authentication is unknown or not supported by the driver.",
    args: { input: t.arg({ type: CreateConnectorInput, required: true, description: 'The new connector.' }) },
    errors: { types: [ValidationError], dataField: { name: 'connector', description: 'The created connector (secret config fields masked).' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.create({ ...input, config: input.config, authenticationId: input.authenticationId?.id ?? null }),
  }),
  updateConnector: t.prismaField({
    type: 'Connector',
    description:
      'Changes a connector. VALIDATION_FAILED for a bad config or authentication, or when an origin field moves to another address without the secrets (and authentication) sent again; NOT_FOUND; CONFLICT when `expectedVersion` is not the current version.',
    args: { input: t.arg({ type: UpdateConnectorInput, required: true, description: 'The connector and its changes.' }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'connector', description: 'The connector after the change.' } },
    resolve: (_q, _r, { input }, ctx) =>
      ctx.services.connectors.update({
        ...input,
        id: input.id.id,
        authenticationId: input.authenticationId === undefined ? undefined : (input.authenticationId?.id ?? null),
      }),
  }),
  deleteConnector: t.prismaField({
    type: 'Connector',
    description: 'Deletes a connector. IN_USE (with the pipelines in `usedBy`) while any pipeline uses it as source or destination.',
    args: { input: t.arg({ type: ConnectorIdInput, required: true, description: 'The connector to delete.' }) },
    errors: { types: [NotFoundError, InUseError], dataField: { name: 'connector', description: 'The connector as it was before deletion.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.delete(input.id.id),
  }),
  pauseConnector: t.prismaField({
    type: 'Connector',
    description: 'Feldera-style pause: every pipeline using the connector becomes inactive; running jobs stop at a checkpoint.',
    args: { input: t.arg({ type: ConnectorIdInput, required: true, description: 'The connector to pause.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'connector', description: 'The paused connector (unchanged if it was already paused).' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.setPaused(input.id.id, true),
  }),
  resumeConnector: t.prismaField({
    type: 'Connector',
    description: 'Undoes pauseConnector: pipelines using the connector become active again and jobs stopped by the pause continue from their checkpoint. A no-op when it is not paused.',
    args: { input: t.arg({ type: ConnectorIdInput, required: true, description: 'The connector to resume.' }) },
    errors: { types: [NotFoundError], dataField: { name: 'connector', description: 'The resumed connector.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.connectors.setPaused(input.id.id, false),
  }),
  checkConnector: t.field({
    type: CheckConnectorPayload,
    description: "Runs the driver's real check (file readable, database reachable …) and records it.",
    args: { input: t.arg({ type: ConnectorIdInput, required: true, description: 'The connector to check.' }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'CheckConnectorResult' } },
    resolve: (_r, { input }, ctx) => ctx.services.connectors.check(input.id.id),
  }),
  checkConnectorConfig: t.field({
    type: CheckResultRef,
    description: 'Checks a config before saving it.',
    args: { input: t.arg({ type: CheckConnectorConfigInput, required: true, description: 'The driver and config to check.' }) },
    errors: {
      types: [ValidationError],
      dataField: { name: 'result', description: 'The outcome; a failed check is `ok: false`, not an error (VALIDATION_FAILED is only for an invalid config).' },
    },
    resolve: (_r, { input }, ctx) => ctx.services.connectors.checkConfig(input.driver, input.config, input.authenticationId?.id ?? null),
  }),
  discoverConnector: t.field({
    type: DiscoverConnectorPayload,
    description: 'Reads the streams, fields and types the connector offers. Runs in a worker with time and memory limits (RESOURCE_LIMIT).',
    args: { input: t.arg({ type: ConnectorIdInput, required: true, description: 'The connector to discover.' }) },
    errors: { types: [NotFoundError, ConnectorFailedError, ResourceLimitError], directResult: true, union: { name: 'DiscoverConnectorResult' } },
    resolve: async (_r, { input }, ctx) => ({ connectorId: input.id.id, ...(await ctx.services.connectors.discover(input.id.id)) }),
  }),
}));

CheckConnectorPayload.implement({
  fields: (t) => ({
    connector: t.prismaField({
      type: 'Connector',
      description: 'The connector, with lastCheckOk, lastCheckAt and lastCheckMessage updated.',
      resolve: (q, p, _a, ctx) => ctx.db.connector.findUniqueOrThrow({ ...q, where: { id: p.connector.id } }),
    }),
    result: t.field({ type: CheckResultRef, description: 'The outcome; a failed check is `ok: false`, not an error.', resolve: (p) => p.result }),
    job: t.prismaField({ type: 'Job', description: 'The CHECK job that recorded this check.', resolve: (q, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...q, where: { id: p.jobId } }) }),
  }),
});

DiscoverConnectorPayload.implement({
  fields: (t) => ({
    connector: t.prismaField({
      type: 'Connector',
      description: 'The discovered connector.',
      resolve: (q, p, _a, ctx) => ctx.db.connector.findUniqueOrThrow({ ...q, where: { id: p.connectorId } }),
    }),
    catalog: t.field({ type: CatalogRef, description: 'The streams the source offers now.', resolve: (p) => p.catalog }),
    job: t.prismaField({ type: 'Job', description: 'The DISCOVER job.', resolve: (q, p, _a, ctx) => ctx.db.job.findUniqueOrThrow({ ...q, where: { id: p.jobId } }) }),
  }),
});

