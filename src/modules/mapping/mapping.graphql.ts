import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { ConflictError, InUseError, NotFoundError, ValidationError } from '../../errors.js';
import type { MappingSpec } from '../../engine/mapping/mapping.js';
import { parseSpec, testSpec, type MappingTestResult } from './mapping.service.js';

const MappingSpecRef = builder.objectRef<MappingSpec>('MappingSpec').implement({
  description:
    'Open Connector mapping semantics. Paths are dot paths with `[n]` and `[*]` array steps (`a.b`, `items[0].sku`, `lines.[*].qty`). ' +
    'Applied in order: start from a copy of the input when `passThrough`, else `{}`; set every `mapping` target; remove `unset` paths; apply `cast`.',
  fields: (t) => ({
    mapping: t.field({
      type: 'JSON',
      description: 'Target path → source path (a string), or a constant (`{"const": value}`, a number, a boolean or null).',
      resolve: (s) => s.mapping,
    }),
    unset: t.stringList({ resolve: (s) => s.unset }),
    cast: t.field({ type: 'JSON', description: 'Path → one of string, int, float, bool, datetime, json.', resolve: (s) => s.cast }),
    passThrough: t.exposeBoolean('passThrough', { description: 'Copy unmapped input fields to the output.' }),
  }),
});

export const MappingSpecInput = builder.inputType('MappingSpecInput', {
  fields: (t) => ({
    mapping: t.field({ type: 'JSON', description: 'Target path → source path or constant.' }),
    unset: t.stringList(),
    cast: t.field({ type: 'JSON', description: 'Path → string | int | float | bool | datetime | json.' }),
    passThrough: t.boolean(),
  }),
});

export const MappingRef = builder.prismaNode('Mapping', {
  id: { field: 'id' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'A versioned record reshaping rule set.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    version: t.exposeInt('version', { description: 'Increases on every change of the spec; jobs record the version they ran with.' }),
    spec: t.field({ type: MappingSpecRef, resolve: (m) => m.spec as unknown as MappingSpec }),
    versions: t.relation('versions', { query: { orderBy: { version: 'desc' } } }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.prismaObject('MappingVersion', {
  fields: (t) => ({
    version: t.exposeInt('version'),
    spec: t.field({ type: MappingSpecRef, resolve: (m) => m.spec as unknown as MappingSpec }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const TestErrorRef = builder.objectRef<NonNullable<MappingTestResult['error']>>('MappingRecordError').implement({
  fields: (t) => ({
    path: t.exposeString('path', { nullable: true }),
    code: t.exposeString('code', { description: 'CAST_FAILED, TYPE_MISMATCH, NOT_AN_OBJECT or MAPPING_FAILED.' }),
    message: t.exposeString('message'),
  }),
});

const TestResultRef = builder.objectRef<MappingTestResult>('MappingTestResult').implement({
  fields: (t) => ({
    input: t.field({ type: 'JSON', resolve: (r) => r.input }),
    output: t.field({ type: 'JSON', nullable: true, resolve: (r) => r.output }),
    error: t.field({ type: TestErrorRef, nullable: true, resolve: (r) => r.error }),
  }),
});

builder.queryFields((t) => ({
  mapping: t.prismaField({
    type: 'Mapping',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: MappingRef }) },
    resolve: (query, _r, args, ctx) => ctx.db.mapping.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  mappings: t.prismaConnection({
    type: 'Mapping',
    cursor: 'id',
    ...PAGE,
    args: { nameContains: t.arg.string() },
    resolve: (query, _r, args, ctx) =>
      ctx.db.mapping.findMany({
        ...query,
        where: args.nameContains ? { name: { contains: args.nameContains, mode: 'insensitive' } } : {},
        orderBy: { id: 'asc' },
      }),
    totalCount: (_p, args, ctx) =>
      ctx.db.mapping.count({ where: args.nameContains ? { name: { contains: args.nameContains, mode: 'insensitive' } } : {} }),
  }),
}));

const CreateMappingInput = builder.inputType('CreateMappingInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    spec: t.field({ type: MappingSpecInput, required: true }),
  }),
});

const UpdateMappingInput = builder.inputType('UpdateMappingInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: MappingRef }),
    name: t.string(),
    description: t.string(),
    spec: t.field({ type: MappingSpecInput, description: 'A new spec creates a new version.' }),
    expectedVersion: t.int(),
  }),
});

const MappingIdInput = builder.inputType('MappingIdInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: MappingRef }) }),
});

const TestMappingInput = builder.inputType('TestMappingInput', {
  description: 'Test a stored mapping (`id`, optionally an older `version`) or an unsaved `spec` against sample records.',
  fields: (t) => ({
    id: t.globalID({ for: MappingRef }),
    version: t.int(),
    spec: t.field({ type: MappingSpecInput }),
    records: t.field({ type: ['JSON'], required: true, description: 'Up to 1000 sample records.' }),
  }),
});

builder.mutationFields((t) => ({
  createMapping: t.prismaField({
    type: 'Mapping',
    args: { input: t.arg({ type: CreateMappingInput, required: true }) },
    errors: { types: [ValidationError], dataField: { name: 'mapping' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.mappings.create(input),
  }),
  updateMapping: t.prismaField({
    type: 'Mapping',
    args: { input: t.arg({ type: UpdateMappingInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'mapping' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.mappings.update({ ...input, id: input.id.id }),
  }),
  deleteMapping: t.prismaField({
    type: 'Mapping',
    args: { input: t.arg({ type: MappingIdInput, required: true }) },
    errors: { types: [NotFoundError, InUseError], dataField: { name: 'mapping' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.mappings.delete(input.id.id),
  }),
  testMapping: t.field({
    type: [TestResultRef],
    description: 'Applies a mapping to sample records and returns, per record, the output or the error. Writes nothing.',
    args: { input: t.arg({ type: TestMappingInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError], dataField: { name: 'results' } },
    resolve: async (_r, { input }, ctx) => {
      if (input.spec) return testSpec(parseSpec(input.spec), input.records);
      if (!input.id) throw new ValidationError('nothing to test', [{ path: 'id', message: 'give a mapping id or a spec' }]);
      return ctx.services.mappings.test(input.id.id, input.records, input.version);
    },
  }),
}));
