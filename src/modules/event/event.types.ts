/** Every event type Sluice writes. The GraphQL enum is built from this list. */
export const EVENT_TYPES = [
  'CONNECTOR_CREATED',
  'CONNECTOR_UPDATED',
  'CONNECTOR_DELETED',
  'CONNECTOR_CHECKED',
  'CONNECTOR_DISCOVERED',
  'CONNECTOR_PAUSED',
  'CONNECTOR_RESUMED',
  'MAPPING_CREATED',
  'MAPPING_UPDATED',
  'MAPPING_DELETED',
  'PIPELINE_CREATED',
  'PIPELINE_UPDATED',
  'PIPELINE_DELETED',
  'PIPELINE_STATE_CHANGED',
  'PIPELINE_ENABLED',
  'PIPELINE_DISABLED',
  'PIPELINE_AUTO_STOPPED',
  'SCHEDULE_FIRED',
  'SCHEDULE_SKIPPED',
  'RUN_SKIPPED',
  'PUSH_ACCEPTED',
  'JOB_QUEUED',
  'JOB_STARTED',
  'JOB_PROGRESS',
  'JOB_PAUSED',
  'JOB_RETRYING',
  'JOB_SUCCEEDED',
  'JOB_FAILED',
  'JOB_CANCELLED',
  'WEBHOOK_CREATED',
  'WEBHOOK_UPDATED',
  'WEBHOOK_DELETED',
  'WEBHOOK_DISABLED',
  'WEBHOOK_SECRET_ROTATED',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface NewEvent {
  type: EventType;
  message: string;
  pipelineId?: string | null;
  jobId?: string | null;
  connectorId?: string | null;
  data?: unknown;
}
