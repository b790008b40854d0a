/**
 * Every root field (query, mutation, subscription) checks its arguments with `inputProblems`
 * (no NUL character, bounded nesting; see security/input-check.ts) before its resolver runs, so
 * nothing behind the API ever sees such a value. A refused input is a ValidationError
 * (VALIDATION_FAILED) whose field errors name the argument path (`input.config.path`): the
 * field's typed result when its union lists ValidationError, otherwise a GraphQL error with
 * `extensions.code = VALIDATION_FAILED`.
 */
import { wrapErrorIfMatches } from '@pothos/plugin-errors';
import type { GraphQLField, GraphQLFieldResolver, GraphQLObjectType, GraphQLSchema } from 'graphql';
import { ValidationError } from '../errors.js';
import { inputProblems } from '../security/input-check.js';

type ErrorClass = new (...args: never[]) => Error;

function refusal(args: unknown): ValidationError | null {
  const problems = inputProblems(args, '');
  return problems.length ? new ValidationError('invalid input', problems) : null;
}

function guardField(field: GraphQLField<unknown, unknown>): void {
  const errorTypes = (field.extensions as { pothosErrors?: ErrorClass[] } | undefined)?.pothosErrors ?? [];
  const typed = errorTypes.some((t) => t === ValidationError || ValidationError.prototype instanceof t);
  const resolve = field.resolve as GraphQLFieldResolver<unknown, unknown> | undefined;
  if (resolve) {
    field.resolve = (root, args, ctx, info) => {
      const err = refusal(args);
      if (!err) return resolve(root, args, ctx, info);
      if (typed) return wrapErrorIfMatches(err, errorTypes, undefined);
      throw err;
    };
  }
  const subscribe = field.subscribe as GraphQLFieldResolver<unknown, unknown> | undefined;
  if (subscribe) {
    field.subscribe = (root, args, ctx, info) => {
      const err = refusal(args);
      if (err) throw err;
      return subscribe(root, args, ctx, info);
    };
  }
}

/** Wraps every root field of `schema` with the input check (in place); returns the schema. */
export function withInputGuard(schema: GraphQLSchema): GraphQLSchema {
  const roots: (GraphQLObjectType | null | undefined)[] = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  for (const root of roots) for (const field of Object.values(root?.getFields() ?? {})) guardField(field);
  return schema;
}
