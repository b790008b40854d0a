/**
 * Descriptions for the types the Pothos plugins generate (Relay connections and edges, the
 * errors plugin's mutation payloads, result unions and success wrappers), derived from the
 * schema's own structure so each names what it wraps: `PipelineConnection` says it is a page of
 * pipelines, `StartPipelineResult` that it is the outcome of `startPipeline`.
 *
 * Contract: only elements without a description are filled in; anything the code describes
 * keeps its words. Runs once on the built schema, before it is served or printed.
 */
import type { GraphQLField, GraphQLObjectType, GraphQLSchema } from 'graphql';
import { graphqlCjs } from '../graphql/graphql-cjs.js';

// graphql-js functions applied to the libraries' schema come from the copy they load (graphql-cjs.ts).
const { getNamedType, isObjectType, isUnionType } = graphqlCjs;

function fill(target: { description?: string | null | undefined }, text: string): void {
  if (!target.description) target.description = text;
}

function field(type: GraphQLObjectType, name: string): GraphQLField<unknown, unknown> | undefined {
  return type.getFields()[name];
}

export function describeGeneratedTypes(schema: GraphQLSchema): GraphQLSchema {
  const types = Object.values(schema.getTypeMap());

  // Connections and their edges.
  for (const type of types) {
    if (!isObjectType(type) || !type.name.endsWith('Connection')) continue;
    const edges = field(type, 'edges');
    const edge = edges ? getNamedType(edges.type) : undefined;
    if (!edges || !edge || !isObjectType(edge)) continue;
    const node = field(edge, 'node');
    const nodeName = node ? getNamedType(node.type).name : 'node';
    fill(type, `A page of ${nodeName} results (a Relay connection): pass \`pageInfo.endCursor\` as \`after\` to get the next page.`);
    fill(edges, `The ${nodeName} results of this page, each with its cursor.`);
    const pageInfo = field(type, 'pageInfo');
    if (pageInfo) fill(pageInfo, 'Whether more pages exist and the cursors at both ends of this page.');
    const total = field(type, 'totalCount');
    if (total) fill(total, 'How many results the whole list holds (with the same filter), not only this page.');
    fill(edge, `One ${nodeName} in a page, with its cursor.`);
    const cursor = field(edge, 'cursor');
    if (cursor) fill(cursor, 'Opaque position of this result; pass it as `after` (or `before`) to page from here.');
    if (node) fill(node, `The ${nodeName}.`);
  }

  // Paging arguments the Relay plugin adds to every connection field.
  const paging: Record<string, string> = {
    first: 'Return at most this many results from the start (after `after`).',
    last: 'Return at most this many results from the end (before `before`).',
    after: 'Return the results after this cursor (`pageInfo.endCursor` of the previous page).',
    before: 'Return the results before this cursor (`pageInfo.startCursor` of the next page).',
  };
  for (const type of types) {
    if (!isObjectType(type)) continue;
    for (const f of Object.values(type.getFields())) {
      if (!getNamedType(f.type).name.endsWith('Connection')) continue;
      for (const a of f.args) if (paging[a.name]) fill(a, paging[a.name]!);
    }
  }

  // The Relay plugin's own types and root fields.
  const pageInfo = schema.getType('PageInfo');
  if (isObjectType(pageInfo)) {
    const f = pageInfo.getFields();
    if (f.hasNextPage) fill(f.hasNextPage, 'True when results follow this page (fetch them with `after: endCursor`).');
    if (f.hasPreviousPage) fill(f.hasPreviousPage, 'True when results precede this page (fetch them with `before: startCursor`).');
    if (f.startCursor) fill(f.startCursor, 'Cursor of the first result of this page; null when the page is empty.');
    if (f.endCursor) fill(f.endCursor, 'Cursor of the last result of this page; null when the page is empty.');
  }
  const nodeInterface = schema.getType('Node');
  if (nodeInterface && 'getFields' in nodeInterface) {
    const id = nodeInterface.getFields().id;
    if (id) fill(id, 'Global id of the object: opaque, stable, and accepted by `node(id:)` and every argument that takes this type.');
  }
  const query = schema.getQueryType()?.getFields() ?? {};
  if (query.node) {
    fill(query.node, 'Fetches any object of this workspace by its global id; null when none exists or the id is malformed.');
    for (const a of query.node.args) fill(a, 'A global id, as returned in `id` fields.');
  }
  if (query.nodes) {
    fill(query.nodes, 'Fetches several objects by global id, in the order given; each missing or malformed id gives null in its place.');
    for (const a of query.nodes.args) fill(a, 'Global ids, as returned in `id` fields.');
  }

  // Mutation payloads and result unions, query success wrappers.
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter((t): t is GraphQLObjectType => !!t);
  for (const root of [...roots, ...types.filter(isObjectType)]) {
    for (const f of Object.values(root.getFields())) {
      const result = getNamedType(f.type);
      if (root === schema.getMutationType() && isObjectType(result)) fill(result, `What the \`${f.name}\` mutation returns.`);
      if (!isUnionType(result)) continue;
      const where = root === schema.getMutationType() ? `the \`${f.name}\` mutation` : `\`${root.name}.${f.name}\``;
      const members = result.getTypes();
      const success = members.filter((m) => !m.getInterfaces().some((i) => i.name === 'Error'));
      fill(result, `The outcome of ${where}: ${success.map((s) => s.name).join(' or ')} when it succeeds, otherwise one of its typed errors (each with a \`code\` and a \`message\`).`);
      for (const s of success) {
        fill(s, `What ${where} returns when it succeeds.`);
        const data = Object.values(s.getFields());
        if (data.length === 1) fill(data[0]!, `The result of ${where}.`);
      }
    }
  }
  return schema;
}
