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
    unset: t.stringList({ description: 'Paths removed from the output after the mapping targets are set (missing paths are ignored).', resolve: (s) => s.unset }),
    cast: t.field({ type: 'JSON', description: 'Path → one of string, int, float, bool, datetime, json (integer, number and boolean, the names discovery reports, mean int, float and bool).', resolve: (s) => s.cast }),
    passThrough: t.exposeBoolean('passThrough', { description: 'Copy unmapped input fields to the output.' }),
  }),
});

export const MappingSpecInput = builder.inputType('MappingSpecInput', {
  description: 'A mapping spec (semantics as in MappingSpec); validated, and every problem is reported by path as VALIDATION_FAILED.',
  fields: (t) => ({
    mapping: t.field({ type: 'JSON', description: 'Target path → source path or constant.' }),
    unset: t.stringList({ description: 'Paths to remove from the output (default none).' }),
    cast: t.field({ type: 'JSON', description: 'Path → string | int | float | bool | datetime | json.' }),
    passThrough: t.boolean({ description: 'Start from a copy of the input, so unmapped fields are kept (default false).' }),
  }),
});

export const MappingRef = builder.prismaNode('Mapping', {
  id: { field: 'id', description: 'Global ID of the mapping.' },
  // node(id) / nodes(ids) of an id that does not exist resolve to null instead of failing.
  nullable: true,
  description: 'A versioned record reshaping rule set.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name (1–200 characters).' }),
    description: t.exposeString('description', { nullable: true, description: 'Free-text notes; null when none were given.' }),
    version: t.exposeInt('version', { description: 'Increases on every change of the spec; jobs record the version they ran with.' }),
    spec: t.field({ type: MappingSpecRef, description: 'The current spec (the one at `version`).', resolve: (m) => m.spec as unknown as MappingSpec }),
    versions: t.relation('versions', {
      description: 'Every spec the mapping has had, newest first, including the current one.',
      query: { orderBy: { version: 'desc' } },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the mapping was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the name, description or spec last changed.' }),
  }),
});

builder.prismaObject('MappingVersion', {
  description: 'One spec of a mapping, kept so that every job can say exactly which spec it ran with.',
  fields: (t) => ({
    version: t.exposeInt('version', { description: 'Version number; 1 is the spec the mapping was created with.' }),
    spec: t.field({ type: MappingSpecRef, description: 'The spec at this version.', resolve: (m) => m.spec as unknown as MappingSpec }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When this version was created.' }),
  }),
});

const TestErrorRef = builder.objectRef<NonNullable<MappingTestResult['error']>>('MappingRecordError').implement({
  description: 'Why a mapping failed on one sample record.',
  fields: (t) => ({
    path: t.exposeString('path', { nullable: true, description: 'Dot path of the field it failed on; null when not tied to a field (e.g. NOT_AN_OBJECT).' }),
    code: t.exposeString('code', { description: 'CAST_FAILED, TYPE_MISMATCH, NOT_AN_OBJECT or MAPPING_FAILED.' }),
    message: t.exposeString('message', { description: 'Human-readable explanation.' }),
  }),
});

const TestResultRef = builder.objectRef<MappingTestResult>('MappingTestResult').implement({
  description: 'The outcome of applying a mapping to one sample record.',
  fields: (t) => ({
    input: t.field({ type: 'JSON', description: 'The sample record as given.', resolve: (r) => r.input }),
    output: t.field({ type: 'JSON', nullable: true, description: 'The mapped record; null when `error` is set.', resolve: (r) => r.output }),
    error: t.field({ type: TestErrorRef, nullable: true, description: 'Why the record could not be mapped; null on success.', resolve: (r) => r.error }),
  }),
});

builder.queryFields((t) => ({
  mapping: t.prismaField({
    type: 'Mapping',
    nullable: true,
    description: 'A mapping by ID; null when there is none (in your workspace).',
    args: { id: t.arg.globalID({ required: true, for: MappingRef, description: 'Global ID of the mapping.' }) },
    resolve: (query, _r, args, ctx) => ctx.db.mapping.findUnique({ ...query, where: { id: args.id.id } }),
  }),
  mappings: t.prismaConnection({
    type: 'Mapping',
    cursor: 'id',
    ...PAGE,
    description: 'The mappings of your workspace, oldest first; 20 per page by default, at most 100.',
    args: { nameContains: t.arg.string({ description: 'Only mappings whose name contains this text (case-insensitive).' }) },
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
  description: 'A new mapping; its spec becomes version 1.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name (1–200 characters after trimming).' }),
    description: t.string({ description: 'Free-text notes.' }),
    spec: t.field({ type: MappingSpecInput, required: true, description: 'The spec (version 1).' }),
  }),
});

const UpdateMappingInput = builder.inputType('UpdateMappingInput', {
  description: 'Changes to a mapping; omitted fields keep their value.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: MappingRef, description: 'The mapping to change.' }),
    name: t.string({ description: 'New display name (1–200 characters); omit to keep.' }),
    description: t.string({ description: 'New notes; null clears them, omit to keep.' }),
    spec: t.field({ type: MappingSpecInput, description: 'A new spec creates a new version.' }),
    expectedVersion: t.int({ description: 'Fail with CONFLICT unless the mapping is at this version (Mapping.version).' }),
  }),
});

const MappingIdInput = builder.inputType('MappingIdInput', {
  description: 'Identifies one mapping.',
  fields: (t) => ({ id: t.globalID({ required: true, for: MappingRef, description: 'The mapping.' }) }),
});

const TestMappingInput = builder.inputType('TestMappingInput', {
  description: 'Test a stored mapping (`id`, optionally an older `version`) or an unsaved `spec` against sample records.',
  fields: (t) => ({
    id: t.globalID({ for: MappingRef, description: 'Stored mapping to test; ignored when `spec` is given.' }),
    version: t.int({ description: 'Version of `id` to test; default its current one (NOT_FOUND when that version does not exist).' }),
    spec: t.field({ type: MappingSpecInput, description: 'Unsaved spec to test; takes precedence over `id`.' }),
    records: t.field({ type: ['JSON'], required: true, description: 'Up to 1000 sample records.' }),
  }),
});

builder.mutationFields((t) => ({
  createMapping: t.prismaField({
    type: 'Mapping',
    description: 'Creates a mapping at version 1. VALIDATION_FAILED when the name is empty or the spec is invalid (each problem by path).',
    args: { input: t.arg({ type: CreateMappingInput, required: true, description: 'The new mapping.' }) },
    errors: { types: [ValidationError], dataField: { name: 'mapping', description: 'The created mapping, at version 1.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.mappings.create(input),
  }),
  updateMapping: t.prismaField({
    type: 'Mapping',
    description:
      'Renames a mapping, changes its notes or its spec. A spec that differs from the current one bumps `version` and is kept in `versions`; ' +
      'pipelines use it from their next job. NOT_FOUND when the mapping does not exist; CONFLICT when it is not at expectedVersion; VALIDATION_FAILED for a bad name or spec.',
    args: { input: t.arg({ type: UpdateMappingInput, required: true, description: 'The mapping and the changes.' }) },
    errors: { types: [ValidationError, NotFoundError, ConflictError], dataField: { name: 'mapping', description: 'The mapping after the change.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.mappings.update({ ...input, id: input.id.id }),
  }),
  deleteMapping: t.prismaField({
    type: 'Mapping',
    description: 'Deletes a mapping and all its versions. IN_USE (listing the pipelines) while any pipeline uses it; NOT_FOUND when it does not exist.',
    args: { input: t.arg({ type: MappingIdInput, required: true, description: 'The mapping to delete.' }) },
    errors: { types: [NotFoundError, InUseError], dataField: { name: 'mapping', description: 'The mapping as it was just before it was deleted.' } },
    resolve: (_q, _r, { input }, ctx) => ctx.services.mappings.delete(input.id.id),
  }),
  testMapping: t.field({
    type: [TestResultRef],
    description: 'Applies a mapping to sample records and returns, per record, the output or the error. Writes nothing.',
    args: { input: t.arg({ type: TestMappingInput, required: true, description: 'The mapping (stored or unsaved) and the sample records.' }) },
    errors: { types: [ValidationError, NotFoundError], dataField: { name: 'results', description: 'One result per sample record, in the order given.' } },
    resolve: async (_r, { input }, ctx) => {
      if (input.spec) return testSpec(parseSpec(input.spec), input.records);
      if (!input.id) throw new ValidationError('nothing to test', [{ path: 'id', message: 'give a mapping id or a spec' }]);
      return ctx.services.mappings.test(input.id.id, input.records, input.version);
    },
  }),
}));
