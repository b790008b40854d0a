/**
 * The audit wrapper of the schema: every Mutation field writes exactly one AUDIT_MUTATION event
 * (the contract is in src/modules/workspace/access.graphql.ts).
 */
import { typeBrandKey } from '@pothos/core';
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import { AppError } from '../errors.js';
import type { GraphQLContext } from '../graphql/context.js';
import { audit } from '../modules/workspace/access.graphql.js';
import { runAudited, type MutationAudit } from '../tenancy/scope.js';

function outcomeOf(value: unknown): string {
  if (value instanceof AppError) return value.code;
  // Pothos returns a typed error in a proxy that hides its class (so graphql-js does not treat it
  // as a thrown error) and names the class under typeBrandKey.
  const brand = value && typeof value === 'object' ? (value as { [typeBrandKey]?: unknown })[typeBrandKey] : undefined;
  if (typeof brand === 'function' && (brand === AppError || brand.prototype instanceof AppError)) return (value as AppError).code;
  if (value instanceof Error) return 'ERROR';
  return 'OK';
}

/**
 * Wraps every Mutation field so that each execution writes exactly one audit event: inside the
 * first transaction that commits the mutation's changes (outcome OK: they committed), or, when
 * no transaction committed (refused, failed, nothing to write), alone with the outcome.
 */
export function withMutationAudit(schema: GraphQLSchema): GraphQLSchema {
  const fields = schema.getMutationType()?.getFields() ?? {};
  for (const field of Object.values(fields)) {
    const resolve = field.resolve as GraphQLFieldResolver<unknown, GraphQLContext> | undefined;
    if (!resolve) continue;
    field.resolve = async (root, args, ctx, info) => {
      const line: MutationAudit = { mutation: info.fieldName, requestId: ctx.requestId, state: 'open' };
      let outcome = 'ERROR';
      try {
        const value = await runAudited(line, () => resolve(root, args, ctx, info));
        outcome = outcomeOf(value);
        return value;
      } finally {
        // A transaction still carrying the line decides whether it was written.
        if (line.state === 'pending') await line.settled;
        const carried = line.state === 'written';
        line.state = 'closed';
        if (!carried) await audit(ctx, info.fieldName, outcome).catch((err: unknown) => ctx.log.error({ err }, 'audit write failed'));
        else if (outcome !== line.outcome) ctx.log.warn({ mutation: info.fieldName, outcome, audited: line.outcome }, 'mutation failed after its changes committed');
      }
    };
  }
  return schema;
}
