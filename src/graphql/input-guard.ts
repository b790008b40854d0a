/**
 * Every root field (query, mutation, subscription) checks its arguments with `inputProblems`
 * (no NUL character, bounded nesting; see security/input-check.ts) before its resolver runs, so
 * nothing behind the API ever sees such a value. A refused input is a ValidationError
 * (VALIDATION_FAILED) whose field errors name the argument path (`input.config.path`): the
 * field's typed result when its union lists ValidationError, otherwise a GraphQL error with
 * `extensions.code = VALIDATION_FAILED`.
 *
 * Global ids are checked the same way: an argument or input field declared as a global id
 * (`t.arg.globalID`, `t.input.globalID`, lists too) whose value is not an id Sluice could have
 * made, or names another type than the field accepts, is VALIDATION_FAILED at its path
 * (`input.id`). `node(id)` and `nodes(ids)` instead answer null for a malformed id, as they do
 * for an id that names nothing.
 */
import { wrapErrorIfMatches } from '@pothos/plugin-errors';
import type { GraphQLArgument, GraphQLField, GraphQLFieldResolver, GraphQLInputType, GraphQLObjectType, GraphQLSchema } from 'graphql';
import { ValidationError, type FieldError } from '../errors.js';
import { parseGlobalId } from '../ids.js';
import { isInputObjectType, isListType, isNonNullType } from './graphql-cjs.js';
import { inputProblems } from '../security/input-check.js';

type ErrorClass = new (...args: never[]) => Error;

interface GlobalIdExtensions {
  isRelayGlobalID?: boolean;
  relayGlobalIDFor?: { typename: string }[] | null;
}

/** Why `value` is not a global id the field accepts, or null when it is one. */
function globalIdProblem(value: unknown, ext: GlobalIdExtensions): string | null {
  const decoded = typeof value === 'string' ? parseGlobalId(value) : null;
  const types = ext.relayGlobalIDFor?.map((t) => t.typename) ?? [];
  if (!decoded) return `not a valid id${types.length ? ` of a ${types.join(' or ')}` : ''}`;
  if (types.length && !types.includes(decoded.typename)) return `is the id of a ${decoded.typename}, not of a ${types.join(' or ')}`;
  return null;
}

/** Global-id problems in one argument or input field value, walking input objects and lists. */
function walkGlobalIds(type: GraphQLInputType, value: unknown, path: string, ext: GlobalIdExtensions, out: FieldError[]): void {
  if (value === null || value === undefined || out.length >= 100) return;
  if (isNonNullType(type)) return walkGlobalIds(type.ofType, value, path, ext, out);
  if (isListType(type)) {
    if (Array.isArray(value)) value.forEach((v, i) => walkGlobalIds(type.ofType, v, `${path}[${i}]`, ext, out));
    else walkGlobalIds(type.ofType, value, path, ext, out);
    return;
  }
  if (ext.isRelayGlobalID) {
    const problem = globalIdProblem(value, ext);
    if (problem) out.push({ path, message: problem });
    return;
  }
  if (isInputObjectType(type) && typeof value === 'object') {
    for (const f of Object.values(type.getFields())) {
      walkGlobalIds(f.type, (value as Record<string, unknown>)[f.name], `${path}.${f.name}`, (f.extensions ?? {}) as GlobalIdExtensions, out);
    }
  }
}

function globalIdProblems(defs: readonly GraphQLArgument[], args: Record<string, unknown>): FieldError[] {
  const out: FieldError[] = [];
  for (const a of defs) walkGlobalIds(a.type, args[a.name], a.name, (a.extensions ?? {}) as GlobalIdExtensions, out);
  return out;
}

/** Relay's root fields that answer null for ids that name nothing (see guardNodeField). */
const NODE_FIELDS = new Set(['node', 'nodes']);

function refusal(field: GraphQLField<unknown, unknown>, args: Record<string, unknown>): ValidationError | null {
  const problems = inputProblems(args, '');
  if (!problems.length && !NODE_FIELDS.has(field.name)) problems.push(...globalIdProblems(field.args, args));
  return problems.length ? new ValidationError('invalid input', problems) : null;
}

/**
 * `node(id)` / `nodes(ids)`: a malformed id is an id that names nothing (null in its place),
 * not a failed query. The well-formed ones are resolved as usual.
 */
function guardNodeField(field: GraphQLField<unknown, unknown>, resolve: GraphQLFieldResolver<unknown, unknown>): void {
  const many = field.name === 'nodes';
  field.resolve = async (root, args, ctx, info) => {
    const ids: unknown[] = many ? ((args as { ids?: unknown[] }).ids ?? []) : [(args as { id?: unknown }).id];
    const good = ids.map((id) => typeof id === 'string' && parseGlobalId(id) !== null);
    if (good.every(Boolean)) return resolve(root, args, ctx, info);
    if (!many) return null;
    const kept = ids.filter((_, i) => good[i]);
    const found = kept.length ? ((await resolve(root, { ...args, ids: kept }, ctx, info)) as unknown[]) : [];
    let next = 0;
    return good.map((ok) => (ok ? (found[next++] ?? null) : null));
  };
}

function guardField(field: GraphQLField<unknown, unknown>): void {
  const errorTypes = (field.extensions as { pothosErrors?: ErrorClass[] } | undefined)?.pothosErrors ?? [];
  const typed = errorTypes.some((t) => t === ValidationError || ValidationError.prototype instanceof t);
  const resolve = field.resolve as GraphQLFieldResolver<unknown, unknown> | undefined;
  if (resolve && NODE_FIELDS.has(field.name)) guardNodeField(field, resolve);
  const inner = field.resolve as GraphQLFieldResolver<unknown, unknown> | undefined;
  if (inner) {
    field.resolve = (root, args, ctx, info) => {
      const err = refusal(field, args);
      if (!err) return inner(root, args, ctx, info);
      if (typed) return wrapErrorIfMatches(err, errorTypes, undefined);
      throw err;
    };
  }
  const subscribe = field.subscribe as GraphQLFieldResolver<unknown, unknown> | undefined;
  if (subscribe) {
    field.subscribe = (root, args, ctx, info) => {
      const err = refusal(field, args);
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
