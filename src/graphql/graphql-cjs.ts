/**
 * graphql-js as the libraries here (Pothos, yoga, graphql-ws, graphql-armor) load it: its
 * CommonJS build. Node gives `import 'graphql'` that build too, but a bundler-style resolver (the
 * test runner's) picks the ESM build for project files, and graphql-js refuses schema objects
 * and errors of the other copy ("from another module or realm"; graphql-ws's and yoga's
 * `instanceof GraphQLError` checks). Errors that yoga or graphql-ws must recognise, and
 * graphql-js functions applied to the libraries' schema, come from here.
 */
import { createRequire } from 'node:module';
import type * as GraphQLModule from 'graphql';

export const graphqlCjs = createRequire(import.meta.url)('graphql') as typeof GraphQLModule;

export const { GraphQLError, isInputObjectType, isListType, isNonNullType } = graphqlCjs;
export type GraphQLError = GraphQLModule.GraphQLError;
