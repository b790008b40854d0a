/**
 * The Pothos schema builder: plugin set-up only. Types live in src/modules/<domain>/.
 */
import SchemaBuilder, { PothosValidationError } from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import { ValidationError } from '../errors.js';
import { parseGlobalId } from '../ids.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { GraphQLContext } from './context.js';

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Global ids of database objects must carry a UUID: anything else is a clear validation
 * error, not a database error masked as "Unexpected error." (the input guard reports it first,
 * as VALIDATION_FAILED at the argument's path).
 */
function decodeSluiceGlobalID(globalID: string): { typename: string; id: string } {
  const decoded = parseGlobalId(globalID);
  if (!decoded) throw new PothosValidationError(`Invalid global ID: ${globalID}`);
  return decoded;
}

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  PrismaTypes: PrismaTypes;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
    SafeInt: { Input: number; Output: number | bigint };
  };
}>({
  plugins: [ErrorsPlugin, PrismaPlugin, RelayPlugin],
  prisma: {
    client: (ctx) => ctx.db,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    decodeGlobalID: decodeSluiceGlobalID,
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
    nodesOnConnection: { description: 'The nodes of this page (a shortcut for edges { node }).' },
    nodeTypeOptions: { description: 'An object with a global id, fetchable with `node(id:)`.' },
    pageInfoTypeOptions: { description: 'Where a page sits in its list (Relay cursor pagination).' },
  },
  errors: {
    // Every field with typed errors may answer VALIDATION_FAILED (malformed ids, NUL, depth: the input guard).
    defaultTypes: [ValidationError],
    directResult: false,
    defaultResultOptions: {
      name: ({ parentTypeName, fieldName }) =>
        parentTypeName === 'Mutation' ? `${upperFirst(fieldName)}Payload` : `${parentTypeName}${upperFirst(fieldName)}Success`,
    },
    defaultUnionOptions: {
      name: ({ parentTypeName, fieldName }) =>
        parentTypeName === 'Mutation' ? `${upperFirst(fieldName)}Result` : `${parentTypeName}${upperFirst(fieldName)}Result`,
    },
  },
});

builder.queryType({ description: 'Reads: every object of the caller\'s workspace, by id or in paged lists.' });
builder.mutationType({ description: 'Changes: each mutation answers its payload or a typed error (`... on Error { code message }`), and a refused input changes nothing.' });
builder.subscriptionType({ description: 'Live feeds over WebSocket (graphql-ws) or SSE: job progress, pipeline state changes, events.' });
