/**
 * Config as code over GraphQL: exportConfig (a query: any key that may read the workspace),
 * planConfig (a query, but WRITE: it compares given secret values with the stored ones, which a
 * READ key must not be able to probe) and applyConfig (a mutation: WRITE, like every other). The rules live in
 * config.service.ts; the format is docs/config-as-code.md.
 */
import { builder } from '../../graphql/builder.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { ConflictError, ForbiddenError, InUseError, NotFoundError, ValidationError } from '../../errors.js';
import { scopeIncludes } from '../../tenancy/scope.js';
import {
  type ConfigChange,
  type ConfigChangeKind,
  type ConfigExport,
  type ConfigFieldChange,
  type ConfigObjectType,
  type ConfigPlan,
} from './config.service.js';

const configService = (ctx: GraphQLContext) => ctx.services.config;

const ConfigChangeKindEnum = builder.enumType('ConfigChangeKind', {
  description: 'What applying a config document does to one object.',
  values: {
    CREATE: { value: 'CREATE', description: 'The document declares it and the workspace has none of that name: it is created.' },
    UPDATE: { value: 'UPDATE', description: 'It exists and differs from the document: the fields listed change.' },
    DELETE: { value: 'DELETE', description: 'It exists but the document does not declare it, and `prune` is on: it is deleted.' },
    UNCHANGED: { value: 'UNCHANGED', description: 'It exists and matches the document: nothing is written.' },
  } satisfies Record<ConfigChangeKind, { value: ConfigChangeKind; description: string }>,
});

const ConfigObjectTypeEnum = builder.enumType('ConfigObjectType', {
  description: 'The kind of object a config document declares (one top-level section each).',
  values: {
    AUTHENTICATION: { value: 'AUTHENTICATION', description: 'An entry of `authentications`.' },
    CONNECTOR: { value: 'CONNECTOR', description: 'An entry of `connectors`.' },
    MAPPING: { value: 'MAPPING', description: 'An entry of `mappings`.' },
    PIPELINE: { value: 'PIPELINE', description: 'An entry of `pipelines`.' },
    WEBHOOK: { value: 'WEBHOOK', description: 'An entry of `webhooks` (a webhook endpoint, named by its description).' },
  } satisfies Record<ConfigObjectType, { value: ConfigObjectType; description: string }>,
});

const ConfigFieldChangeRef = builder.objectRef<ConfigFieldChange>('ConfigFieldChange').implement({
  description: 'One field of an object that a config document changes. Secret values are never shown.',
  fields: (t) => ({
    path: t.exposeString('path', { nullable: false, description: 'Path inside the object, e.g. `batchSize`, `config.delimiter` or `streams[orders].syncMode`.' }),
    before: t.exposeString('before', { nullable: true, description: 'The current value as JSON text; null when the field is not set (and always for a secret).' }),
    after: t.exposeString('after', { nullable: true, description: 'The value the document gives, as JSON text; null when it removes the field (and always for a secret).' }),
    secret: t.exposeBoolean('secret', { nullable: false, description: 'True for a secret field: it changes, but neither value is shown (`(secret changed)` in the plan text).' }),
  }),
});

const ConfigChangeRef = builder.objectRef<ConfigChange>('ConfigChange').implement({
  description: 'What applying a config document does to one object.',
  fields: (t) => ({
    kind: t.field({ type: ConfigChangeKindEnum, nullable: false, description: 'Create, update, delete, or nothing.', resolve: (c) => c.kind }),
    objectType: t.field({ type: ConfigObjectTypeEnum, nullable: false, description: 'The kind of object.', resolve: (c) => c.objectType }),
    name: t.exposeString('name', { nullable: false, description: 'Its name: the key of its entry in the document.' }),
    address: t.exposeString('address', { nullable: false, description: 'Section and name as the plan text writes them, e.g. `pipelines.orders`.' }),
    fields: t.field({ type: [ConfigFieldChangeRef], nullable: false, description: 'The fields that change (UPDATE); empty for the other kinds.', resolve: (c) => c.fields }),
  }),
});

const ConfigPlanRef = builder.objectRef<ConfigPlan>('ConfigPlan').implement({
  description: 'What applying a config document would change, object by object, in the order apply works in.',
  fields: (t) => ({
    text: t.exposeString('text', {
      nullable: false,
      description:
        'The plan for people: `+ section.name` (create), `~ section.name.field: before → after` (update; `(secret changed)` for secrets), ' +
        '`- section.name` (delete), then a summary line. Exactly `no changes` and a newline when nothing changes.',
    }),
    hasChanges: t.exposeBoolean('hasChanges', { nullable: false, description: 'True when applying would write anything.' }),
    changes: t.field({
      type: [ConfigChangeRef],
      nullable: false,
      description: 'Every object of the document (and, with prune, every object to delete): dependency order (authentications → connectors → mappings → pipelines → webhooks, by name), deletions last in reverse order.',
      resolve: (p) => p.changes,
    }),
  }),
});

const ConfigExportRef = builder.objectRef<ConfigExport>('ConfigExport').implement({
  description: "The workspace as a config document (YAML, version 1): the same workspace gives the same bytes. No ids, timestamps, versions or secret values.",
  fields: (t) => ({
    document: t.exposeString('document', { nullable: false, description: 'The YAML document; every secret is a `${NAME}` reference (see secretReferences).' }),
    secretReferences: t.exposeStringList('secretReferences', {
      nullable: false,
      description: 'The names of the `${NAME}` references in the document, sorted: the values to pass as `env` when applying it.',
    }),
  }),
});

const ApplyConfigPayloadRef = builder.objectRef<{ plan: ConfigPlan; applied: boolean }>('ApplyConfigPayload').implement({
  description: 'The outcome of applyConfig.',
  fields: (t) => ({
    plan: t.field({ type: ConfigPlanRef, nullable: false, description: 'The plan that was applied (or, with dryRun, would be).', resolve: (p) => p.plan }),
    applied: t.exposeBoolean('applied', { nullable: false, description: 'True when changes were written; false for a dry run and when the plan has no changes.' }),
  }),
});

const ApplyConfigInput = builder.inputType('ApplyConfigInput', {
  description: 'A config document to apply, and how.',
  fields: (t) => ({
    document: t.string({ required: true, description: 'The YAML document (docs/config-as-code.md).' }),
    fileName: t.string({ description: 'Named in error messages (`<file>:<line>:<column> <path>`); default `config.yaml`.' }),
    prune: t.boolean({ description: 'Also delete the objects of the workspace the document does not declare (default false: they are left alone).' }),
    dryRun: t.boolean({ description: 'Only plan: validate and compare, write nothing (default false).' }),
    env: t.field({
      type: 'JSON',
      description: 'Values of the `${NAME}` references in the document, as an object NAME → string (the client fills it from its own environment). A reference without a value is VALIDATION_FAILED.',
    }),
  }),
});

builder.queryFields((t) => ({
  exportConfig: t.field({
    type: ConfigExportRef,
    nullable: false,
    description:
      "Writes the workspace's authentications, connectors, mappings, pipelines and webhooks as one YAML config document (secrets as `${NAME}` references). " +
      'A GraphQL error with code VALIDATION_FAILED when two objects of a kind share a name.',
    resolve: (_r, _a, ctx) => configService(ctx).exportConfig(),
  }),
  planConfig: t.field({
    type: ConfigPlanRef,
    description:
      'Compares a config document with the workspace and answers what applyConfig would change; writes nothing. VALIDATION_FAILED (each problem at `<file>:<line>:<column> <path>`) ' +
      'for bad YAML, an unknown reference, an invalid object, or a `${NAME}` without a value in env. FORBIDDEN for a READ key: a plan compares secret values, so it needs WRITE like applyConfig.',
    args: {
      document: t.arg.string({ required: true, description: 'The YAML document (docs/config-as-code.md).' }),
      fileName: t.arg.string({ description: 'Named in error messages; default `config.yaml`.' }),
      prune: t.arg.boolean({ description: 'Also plan to delete the objects the document does not declare (default false).' }),
      env: t.arg({ type: 'JSON', description: 'Values of the `${NAME}` references, as an object NAME → string (the client fills it from its own environment).' }),
    },
    errors: { types: [ValidationError, ForbiddenError], directResult: true, union: { name: 'PlanConfigResult' } },
    resolve: (_r, args, ctx) => {
      if (!scopeIncludes(ctx.auth.scope, 'WRITE')) throw new ForbiddenError('planConfig compares secret values with the stored ones: it needs a WRITE key, like applyConfig', 'WRITE');
      return configService(ctx).planConfig(args);
    },
  }),
}));

builder.mutationFields((t) => ({
  applyConfig: t.field({
    type: ApplyConfigPayloadRef,
    description:
      'Makes the workspace match a config document, through the same checks, events and encryption as the individual mutations, in dependency order. ' +
      'Everything checkable without writing is checked first (VALIDATION_FAILED, nothing written). A step that still fails (e.g. a stream the source does not have) ' +
      'ends the apply with its error, naming the step and what was applied before it. A document that matches writes nothing.',
    args: { input: t.arg({ type: ApplyConfigInput, required: true, description: 'The document, its env values and the options.' }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError, InUseError], directResult: true, union: { name: 'ApplyConfigResult' } },
    resolve: (_r, { input }, ctx) => configService(ctx).applyConfig(input),
  }),
}));
