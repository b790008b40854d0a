import { builder } from '../../graphql/builder.js';
import { ConnectorFailedError, NotFoundError, ResourceLimitError, ValidationError } from '../../errors.js';
import { MAX_PREVIEW, type PreviewRecord } from '../../engine/preview.js';
import { parseSpec } from '../mapping/mapping.service.js';
import { ConnectorRef } from '../connector/connector.graphql.js';
import { MappingRef, MappingSpecInput } from '../mapping/mapping.graphql.js';
import { PipelineRef } from './pipeline.graphql.js';

const DeadLetterStage = builder.enumType('PreviewErrorStage', {
  description: 'Where a previewed record failed.',
  values: {
    READ: { value: 'READ', description: 'The source could not read or decode the record (code READ_FAILED).' },
    MAPPING: { value: 'MAPPING', description: 'The mapping failed on the record.' },
  } as const,
});

const PreviewErrorRef = builder.objectRef<NonNullable<PreviewRecord['error']>>('PreviewError').implement({
  description: 'Why one previewed record has no output.',
  fields: (t) => ({
    stage: t.field({ type: DeadLetterStage, description: 'Whether reading or mapping failed.', resolve: (e) => e.stage }),
    path: t.exposeString('path', { nullable: true, description: 'Dot path of the field the mapping failed on; null when the error is not tied to a field.' }),
    code: t.exposeString('code', { description: 'READ_FAILED (stage READ), or CAST_FAILED, TYPE_MISMATCH or MAPPING_FAILED (stage MAPPING).' }),
    message: t.exposeString('message', { description: 'Human-readable explanation.' }),
  }),
});

export const PreviewRecordRef = builder.objectRef<PreviewRecord>('PreviewRecord').implement({
  description: 'One record pulled from the live source: its input, and the mapped output or the error.',
  fields: (t) => ({
    stream: t.exposeString('stream', { description: 'The stream the record was read from.' }),
    input: t.field({ type: 'JSON', description: 'The record as the source read it.', resolve: (r) => r.input }),
    output: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The record after the mapping (the input itself when there is no mapping); null when `error` is set.',
      resolve: (r) => r.output,
    }),
    error: t.field({ type: PreviewErrorRef, nullable: true, description: 'Why the record could not be read or mapped; null on success.', resolve: (r) => r.error }),
  }),
});

const PreviewPipelineInput = builder.inputType('PreviewPipelineInput', {
  description: 'Which pipeline to preview, how many records and from which stream.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: PipelineRef, description: 'The pipeline whose source, streams and mapping to use.' }),
    limit: t.int({ defaultValue: 20, description: `Records to pull (1–${MAX_PREVIEW}).` }),
    stream: t.string({ description: "One of the pipeline's streams; default all (in source order)." }),
  }),
});

const PreviewMappingInput = builder.inputType('PreviewMappingInput', {
  description: 'Map live records from a source connector with a stored mapping (`mappingId`, optional `version`) or an unsaved `spec`.',
  fields: (t) => ({
    connectorId: t.globalID({ required: true, for: ConnectorRef, description: 'The SOURCE connector to read from (VALIDATION_FAILED for a destination).' }),
    mappingId: t.globalID({ for: MappingRef, description: 'Stored mapping to apply; ignored when `spec` is given.' }),
    version: t.int({ description: 'Version of `mappingId` to apply; default its current one (NOT_FOUND when that version does not exist).' }),
    spec: t.field({ type: MappingSpecInput, description: 'Unsaved spec to apply; takes precedence over `mappingId`.' }),
    stream: t.string({ description: 'Default: the first stream the source discovers.' }),
    limit: t.int({ defaultValue: 20, description: `Records to pull (1–${MAX_PREVIEW}).` }),
  }),
});

function checkLimit(limit: number | null | undefined): number {
  const n = limit ?? 20;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PREVIEW) {
    throw new ValidationError('invalid limit', [{ path: 'limit', message: `must be from 1 to ${MAX_PREVIEW}` }]);
  }
  return n;
}

builder.mutationFields((t) => ({
  previewPipeline: t.field({
    type: [PreviewRecordRef],
    description: "Pulls records from the pipeline's live source and applies its mapping. Writes nothing, saves no state. Runs in a worker with time and memory limits (RESOURCE_LIMIT).",
    args: { input: t.arg({ type: PreviewPipelineInput, required: true, description: 'The pipeline, and how many records from which stream.' }) },
    errors: {
      types: [ValidationError, NotFoundError, ConnectorFailedError, ResourceLimitError],
      dataField: { name: 'records', description: 'Up to `limit` records, each with its input and its mapped output or error.' },
    },
    resolve: (_r, { input }, ctx) => ctx.services.pipelines.preview(input.id.id, checkLimit(input.limit), input.stream),
  }),
  previewMapping: t.field({
    type: [PreviewRecordRef],
    description: 'Pulls records from a live source connector and applies a mapping to them. Writes nothing. Runs in a worker with time and memory limits (RESOURCE_LIMIT).',
    args: { input: t.arg({ type: PreviewMappingInput, required: true, description: 'The source connector, the mapping (stored or unsaved) and how many records.' }) },
    errors: {
      types: [ValidationError, NotFoundError, ConnectorFailedError, ResourceLimitError],
      dataField: { name: 'records', description: 'Up to `limit` records, each with its input and its mapped output or error.' },
    },
    resolve: async (_r, { input }, ctx) => {
      const limit = checkLimit(input.limit);
      let spec;
      if (input.spec) spec = parseSpec(input.spec);
      else if (input.mappingId) spec = await ctx.services.mappings.specOf(input.mappingId.id, input.version);
      else throw new ValidationError('nothing to preview', [{ path: 'mappingId', message: 'give a mapping id or a spec' }]);
      return ctx.services.mappings.preview({ connectorId: input.connectorId.id, spec, stream: input.stream, limit });
    },
  }),
}));
