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
  'AUTHENTICATION_CREATED',
  'AUTHENTICATION_UPDATED',
  'AUTHENTICATION_DELETED',
  'WORKSPACE_CREATED',
  'API_KEY_CREATED',
  'API_KEY_REVOKED',
  'FILE_UPLOADED',
  'FILE_DELETED',
  /** One per mutation (allowed or refused), naming the key that made it. */
  'AUDIT_MUTATION',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface NewEvent {
  type: EventType;
  message: string;
  /** Defaults to the caller's workspace, else the workspace of the pipeline / job / connector named. */
  workspaceId?: string;
  pipelineId?: string | null;
  jobId?: string | null;
  connectorId?: string | null;
  data?: unknown;
}

/**
 * Event types delivered only to those who ask for them by type (an events filter or a webhook
 * listing them): the audit trail would otherwise double every feed.
 */
export const OPT_IN_EVENT_TYPES: readonly EventType[] = ['AUDIT_MUTATION'];

export function isOptInEventType(type: string): boolean {
  return (OPT_IN_EVENT_TYPES as readonly string[]).includes(type);
}
