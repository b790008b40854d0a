/**
 * The audit line of a mutation (an AUDIT_MUTATION event): who ran which mutation field, with
 * what outcome (OK, an error code, or FORBIDDEN) and the request id. Inputs are never
 * recorded (they may hold secrets).
 */
import type { AuthContext, MutationAudit } from '../../tenancy/scope.js';
import type { NewEvent } from './event.types.js';

export function auditEvent(auth: AuthContext, audit: Pick<MutationAudit, 'mutation' | 'requestId'>, outcome: string): NewEvent {
  return {
    type: 'AUDIT_MUTATION',
    workspaceId: auth.workspaceId,
    message: `${audit.mutation} by ${auth.keyPrefix} (${auth.scope}): ${outcome}`,
    data: { mutation: audit.mutation, outcome, apiKeyId: auth.apiKeyId, keyPrefix: auth.keyPrefix, scope: auth.scope, requestId: audit.requestId },
  };
}
