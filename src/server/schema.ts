/** Assembles the schema: importing each module registers its types on the builder. */
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from '../graphql/builder.js';
import '../graphql/common.graphql.js';
import '../modules/authentication/authentication.graphql.js';
import '../modules/connector/connector.graphql.js';
import '../modules/secrets/secrets.graphql.js';
import '../modules/mapping/mapping.graphql.js';
import '../modules/pipeline/pipeline.graphql.js';
import '../modules/pipeline/preview.graphql.js';
import '../modules/job/job.graphql.js';
import '../modules/event/event.graphql.js';
import '../modules/webhook/webhook.graphql.js';
import '../modules/file/file.graphql.js';
import '../modules/system/system.graphql.js';
import '../modules/workspace/workspace.graphql.js';
import '../modules/config/config.graphql.js';
import { withMutationAudit } from './mutation-audit.js';
import { withInputGuard } from '../graphql/input-guard.js';
import { describeGeneratedTypes } from './schema-docs.js';

let schema: GraphQLSchema | null = null;

export function getSchema(): GraphQLSchema {
  // The audit wraps the input guard, so a refused input is audited as VALIDATION_FAILED.
  schema ??= withMutationAudit(withInputGuard(describeGeneratedTypes(builder.toSchema())));
  return schema;
}

/** The SDL committed as schema.graphql. */
export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(getSchema()))}\n`;
}
