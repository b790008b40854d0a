import { builder } from '../../graphql/builder.js';
import { ConnectorFailedError, NotFoundError, ResourceLimitError, ValidationError } from '../../errors.js';
import { MAX_PREVIEW, type PreviewRecord } from '../../engine/preview.js';
import { parseSpec } from '../mapping/mapping.service.js';
import { ConnectorRef } from '../connector/connector.graphql.js';
import { MappingRef, MappingSpecInput } from '../mapping/mapping.graphql.js';
import { PipelineRef } from './pipeline.graphql.js';

const DeadLetterStage = builder.enumType('PreviewErrorStage', { values: ['READ', 'MAPPING'] as const });

const PreviewErrorRef = builder.objectRef<NonNullable<PreviewRecord['error']>>('PreviewError').implement({
  fields: (t) => ({
    stage: t.field({ type: DeadLetterStage, resolve: (e) => e.stage }),
    path: t.exposeString('path', { nullable: true }),
    code: t.exposeString('code'),
    message: t.exposeString('message'),
  }),
});

export const PreviewRecordRef = builder.objectRef<PreviewRecord>('PreviewRecord').implement({
  description: 'One record pulled from the live source: its input, and the mapped output or the error.',
  fields: (t) => ({
    stream: t.exposeString('stream'),
    input: t.field({ type: 'JSON', resolve: (r) => r.input }),
    output: t.field({ type: 'JSON', nullable: true, resolve: (r) => r.output }),
    error: t.field({ type: PreviewErrorRef, nullable: true, resolve: (r) => r.error }),
  }),
});

const PreviewPipelineInput = builder.inputType('PreviewPipelineInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: PipelineRef }),
    limit: t.int({ defaultValue: 20, description: `Records to pull (1–${MAX_PREVIEW}).` }),
    stream: t.string({ description: "One of the pipeline's streams; default all (in source order)." }),
  }),
});

const PreviewMappingInput = builder.inputType('PreviewMappingInput', {
  description: 'Map live records from a source connector with a stored mapping (`mappingId`, optional `version`) or an unsaved `spec`.',
  fields: (t) => ({
    connectorId: t.globalID({ required: true, for: ConnectorRef }),
    mappingId: t.globalID({ for: MappingRef }),
    version: t.int(),
    spec: t.field({ type: MappingSpecInput }),
    stream: t.string({ description: 'Default: the first stream the source discovers.' }),
    limit: t.int({ defaultValue: 20 }),
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
    args: { input: t.arg({ type: PreviewPipelineInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConnectorFailedError, ResourceLimitError], dataField: { name: 'records' } },
    resolve: (_r, { input }, ctx) => ctx.services.pipelines.preview(input.id.id, checkLimit(input.limit), input.stream),
  }),
  previewMapping: t.field({
    type: [PreviewRecordRef],
    description: 'Pulls records from a live source connector and applies a mapping to them. Writes nothing. Runs in a worker with time and memory limits (RESOURCE_LIMIT).',
    args: { input: t.arg({ type: PreviewMappingInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError, ConnectorFailedError, ResourceLimitError], dataField: { name: 'records' } },
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
