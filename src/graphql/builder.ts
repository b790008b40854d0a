/**
 * The Pothos schema builder: plugin set-up only. Types live in src/modules/<domain>/.
 */
import SchemaBuilder, { PothosValidationError } from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin, { decodeGlobalID } from '@pothos/plugin-relay';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { GraphQLContext } from './context.js';

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Node types whose ids are not database UUIDs. */
const NON_UUID_IDS = new Set(['ConnectorDefinition']);

/**
 * Global ids of database objects must carry a UUID: anything else is a clear validation
 * error, not a database error masked as "Unexpected error.".
 */
function decodeSluiceGlobalID(globalID: string): { typename: string; id: string } {
  const decoded = decodeGlobalID(globalID);
  if (!NON_UUID_IDS.has(decoded.typename) && !UUID.test(decoded.id)) {
    throw new PothosValidationError(`Invalid global ID: ${globalID}`);
  }
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
  },
  errors: {
    defaultTypes: [],
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

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
