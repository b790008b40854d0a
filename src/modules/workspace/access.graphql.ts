/**
 * Authorization by key scope, and the audit trail of mutations.
 *
 * Contract:
 * - Queries and subscriptions need READ (every key has it). A mutation needs WRITE, except the
 *   side-effect-free `testMapping` (READ) and the instance/workspace administration listed in
 *   ADMIN_MUTATIONS (ADMIN). An operation containing any mutation field the key may not run is
 *   refused as a whole before anything executes (FORBIDDEN, HTTP 403): nothing changes.
 * - Every mutation field executed or refused writes one AUDIT_MUTATION event in the caller's
 *   workspace naming the key (id and prefix), its scope, the field, the outcome (OK, an error
 *   code, or FORBIDDEN) and the request id. Inputs are never recorded (they may hold secrets).
 *   A mutation that commits changes through the event log commits its audit line in that same
 *   transaction (outcome OK), so a change is never left without its line; one that commits
 *   nothing has its line written alone, after it, with its outcome (src/server/mutation-audit.ts
 *   wraps every mutation field to do so).
 */
import type { Plugin } from '@envelop/core';
import {
  Kind,
  getOperationAST,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { GraphQLError } from '../../graphql/graphql-cjs.js';
import { auditEvent } from '../event/audit.js';
import { scopeIncludes, type ApiKeyScopeName } from '../../tenancy/scope.js';

/** Mutations that only compute (no side effect): a READ key may run them. */
const READ_MUTATIONS = new Set(['testMapping']);
/** Mutations that administer the workspace or the instance. */
export const ADMIN_MUTATIONS = new Set(['createWorkspace', 'renameWorkspace', 'rotateEncryptionKey']);

export function requiredScope(mutationField: string): ApiKeyScopeName {
  if (READ_MUTATIONS.has(mutationField)) return 'READ';
  if (ADMIN_MUTATIONS.has(mutationField)) return 'ADMIN';
  return 'WRITE';
}

/** The root field names selected by a selection set (through fragments). */
function rootFields(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, out = new Set<string>(), seen = new Set<string>()): Set<string> {
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) {
      if (!sel.name.value.startsWith('__')) out.add(sel.name.value);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) rootFields(sel.selectionSet, fragments, out, seen);
    else if (!seen.has(sel.name.value)) {
      seen.add(sel.name.value);
      const frag = fragments.get(sel.name.value);
      if (frag) rootFields(frag.selectionSet, fragments, out, seen);
    }
  }
  return out;
}

function mutationFields(document: DocumentNode, operationName: string | null | undefined): string[] {
  const op = getOperationAST(document, operationName);
  if (!op || op.operation !== 'mutation') return [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  return [...rootFields(op.selectionSet, fragments)];
}

/** Writes one AUDIT_MUTATION event for `field` in a transaction of its own (refused, failed, or nothing committed; also used by HTTP routes that change state, e.g. uploads). */
export async function audit(ctx: Pick<GraphQLContext, 'auth' | 'services' | 'requestId'>, field: string, outcome: string): Promise<void> {
  await ctx.services.events.append(auditEvent(ctx.auth, { mutation: field, requestId: ctx.requestId }, outcome));
}

/** Refuses mutations beyond the key's scope before execution (see the module contract). */
export function useScopeCheck(): Plugin<GraphQLContext> {
  return {
    onExecute: async ({ args, setResultAndStopExecution }) => {
      const ctx = args.contextValue;
      const denied = mutationFields(args.document, args.operationName).filter((f) => !scopeIncludes(ctx.auth.scope, requiredScope(f)));
      if (!denied.length) return;
      for (const f of denied) await audit(ctx, f, 'FORBIDDEN').catch((err: unknown) => ctx.log.error({ err }, 'audit write failed'));
      const need = denied.some((f) => requiredScope(f) === 'ADMIN') ? 'ADMIN' : 'WRITE';
      setResultAndStopExecution({
        errors: [
          new GraphQLError(`this ${ctx.auth.scope} key may not run ${denied.join(', ')} (needs ${need}); nothing was changed`, {
            extensions: { code: 'FORBIDDEN', requiredScope: need, http: { status: 403 } },
          }),
        ],
      });
    },
  };
}
