/**
 * Every element of the served schema carries a description: GraphiQL's docs pane is where users
 * learn the API, so an undocumented type, field, argument or enum value is a defect.
 */
import type { GraphQLSchema } from 'graphql';
import { graphqlCjs } from '../../src/graphql/graphql-cjs.js';
import { describe, expect, it } from 'vitest';
import { getSchema } from '../../src/server/schema.js';

const { isEnumType, isInputObjectType, isInterfaceType, isIntrospectionType, isObjectType, isSpecifiedScalarType, isSpecifiedDirective } = graphqlCjs;

function undocumented(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const blank = (d: string | null | undefined): boolean => !d || d.trim().length === 0;
  for (const t of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(t) || isSpecifiedScalarType(t)) continue;
    if (blank(t.description)) missing.push(`type ${t.name}`);
    if (isObjectType(t) || isInterfaceType(t) || isInputObjectType(t)) {
      for (const f of Object.values(t.getFields())) {
        if (blank(f.description)) missing.push(`field ${t.name}.${f.name}`);
        if ('args' in f) for (const a of f.args) if (blank(a.description)) missing.push(`argument ${t.name}.${f.name}(${a.name})`);
      }
    }
    if (isEnumType(t)) for (const v of t.getValues()) if (blank(v.description)) missing.push(`enum value ${t.name}.${v.name}`);
  }
  for (const d of schema.getDirectives()) {
    if (isSpecifiedDirective(d)) continue;
    if (blank(d.description)) missing.push(`directive @${d.name}`);
    for (const a of d.args) if (blank(a.description)) missing.push(`argument @${d.name}(${a.name})`);
  }
  return missing;
}

describe('schema documentation', () => {
  it('describes every root field, type, field, argument and enum value', () => {
    expect(undocumented(getSchema())).toEqual([]);
  });

  it('names what generated wrappers wrap', () => {
    const s = getSchema();
    expect(s.getType('QueryPipelinesConnection')?.description).toMatch(/page of Pipeline/);
    expect(s.getType('StartPipelineResult')?.description).toMatch(/`startPipeline`/);
  });
});
