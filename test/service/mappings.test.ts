/**
 * Mappings through the services (no HTTP server): create / update / delete, versioning (a new version only
 * when the spec changes, every version kept), spec validation with exact field paths, and
 * `testMapping` (Open Connector semantics) on inline specs and on stored versions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDataDir } from '../helpers/server.js';
import { startTestServices, type TestServices } from '../helpers/services.js';
import { gid } from '../helpers/graphql.js';

let s: TestServices;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;

const ERR = `
  __typename
  ... on Error {
    code message
    ... on ValidationError { fieldErrors { path message } }
    ... on ConflictError { currentVersion }
    ... on InUseError { usedBy }
    ... on NotFoundError { entity id }
  }
`;
const MAPPING = `id name description version spec { mapping unset cast passThrough } versions { version spec { mapping unset cast passThrough } createdAt } createdAt updatedAt`;

async function createMapping(input: Record<string, unknown>) {
  return (await s.q(`mutation($i: CreateMappingInput!) { createMapping(input: $i) { ${ERR} ... on CreateMappingPayload { mapping { ${MAPPING} } } } }`, { i: input }))
    .createMapping;
}
async function updateMapping(input: Record<string, unknown>) {
  return (await s.q(`mutation($i: UpdateMappingInput!) { updateMapping(input: $i) { ${ERR} ... on UpdateMappingPayload { mapping { ${MAPPING} } } } }`, { i: input }))
    .updateMapping;
}
async function deleteMapping(id: string) {
  return (await s.q(`mutation($id: ID!) { deleteMapping(input: {id: $id}) { ${ERR} ... on DeleteMappingPayload { mapping { id name } } } }`, { id })).deleteMapping;
}
async function testMapping(input: Record<string, unknown>) {
  return (
    await s.q(
      `mutation($i: TestMappingInput!) { testMapping(input: $i) { ${ERR} ... on TestMappingPayload { results { input output error { path code message } } } } }`,
      { i: input },
    )
  ).testMapping;
}
async function getMapping(id: string) {
  return (await s.q(`query($id: ID!) { mapping(id: $id) { ${MAPPING} } }`, { id })).mapping;
}
async function mappingEvents(types: string[]) {
  const data = await s.q(`query($t: [EventType!]) { events(filter: {types: $t}, first: 100) { totalCount edges { node { type message data } } } }`, { t: types });
  return data.events as { totalCount: number; edges: { node: { type: string; message: string; data: any } }[] };
}
async function countMappings(): Promise<number> {
  return (await s.q(`{ mappings { totalCount } }`)).mappings.totalCount;
}

const norm = (spec: Record<string, unknown>) => ({ mapping: {}, unset: [], cast: {}, passThrough: false, ...spec });

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-mappings-'));
  fs.writeFileSync(path.join(dir, 'in.csv'), 'id,name\n1,a\n');
  s = await startTestServices({ dataDir: filesData });
});
afterAll(async () => {
  await s?.stop();
});

describe('create / update / delete', () => {
  it('creates a mapping at version 1 with its spec normalised, and writes MAPPING_CREATED', async () => {
    const spec = { mapping: { user_id: 'id', 'name.full': 'name' }, cast: { user_id: 'int' } };
    const r = await createMapping({ name: ' users ', description: 'users → warehouse', spec });
    expect(r.__typename).toBe('CreateMappingPayload');
    const m = r.mapping;
    expect(m).toMatchObject({ name: 'users', description: 'users → warehouse', version: 1, spec: norm(spec) });
    expect(m.versions).toEqual([{ version: 1, spec: norm(spec), createdAt: expect.any(String) }]);
    expect(await getMapping(m.id)).toEqual(m);
    const ev = await mappingEvents(['MAPPING_CREATED']);
    expect(ev.edges.at(-1)!.node).toEqual({
      type: 'MAPPING_CREATED',
      message: 'mapping "users" created',
      data: { mappingId: Buffer.from(m.id, 'base64').toString().split(':')[1], version: 1 },
    });
  });

  it('bumps the version only when the spec changes, and keeps every version', async () => {
    const v1 = { mapping: { a: 'x', b: 'y' }, passThrough: false };
    const m = (await createMapping({ name: 'versioned', spec: v1 })).mapping;
    expect(m.version).toBe(1);

    // Name and description only: same version.
    const renamed = await updateMapping({ id: m.id, name: 'versioned (renamed)', description: 'now described' });
    expect(renamed.mapping).toMatchObject({ name: 'versioned (renamed)', description: 'now described', version: 1 });
    expect(renamed.mapping.versions.map((v: any) => v.version)).toEqual([1]);

    // The same spec again: same version.
    const same = await updateMapping({ id: m.id, spec: v1 });
    expect(same.mapping.version).toBe(1);
    expect(same.mapping.versions.map((v: any) => v.version)).toEqual([1]);

    // A different spec: version 2, both kept (newest first).
    const v2 = { mapping: { a: 'x', b: 'z' }, unset: ['x'] };
    const up2 = await updateMapping({ id: m.id, spec: v2, expectedVersion: 1 });
    expect(up2.__typename).toBe('UpdateMappingPayload');
    expect(up2.mapping).toMatchObject({ version: 2, spec: norm(v2) });
    const v3 = { mapping: { a: 'x', b: 'z' }, unset: ['x'], passThrough: true };
    const up3 = await updateMapping({ id: m.id, spec: v3 });
    expect(up3.mapping.version).toBe(3);
    expect(up3.mapping.versions.map((v: any) => [v.version, v.spec])).toEqual([
      [3, norm(v3)],
      [2, norm(v2)],
      [1, norm(v1)],
    ]);
    // Re-sending v3 in another key order is still v3.
    const again = await updateMapping({ id: m.id, spec: { passThrough: true, unset: ['x'], mapping: { a: 'x', b: 'z' } } });
    expect(again.mapping.version).toBe(3);
    expect((await getMapping(m.id)).versions).toHaveLength(3);
  });

  it('keeps the order of mapping entries: a stored mapping applies them as written', async () => {
    // Entries apply in order: `a.b` is written first, then `a` replaces it. Reordered
    // (e.g. by a store that sorts keys) the result would differ.
    const spec = { mapping: { 'a.b': { const: 1 }, a: 'src', zz: 'src.k', c: 'src.k' }, cast: { zz: 'string', c: 'string' } };
    const m = (await createMapping({ name: 'ordered', spec })).mapping;
    expect(Object.keys(m.spec.mapping)).toEqual(['a.b', 'a', 'zz', 'c']);
    expect(Object.keys(m.spec.cast)).toEqual(['zz', 'c']);
    expect(Object.keys((await getMapping(m.id)).versions[0].spec.mapping)).toEqual(['a.b', 'a', 'zz', 'c']);
    const records = [{ src: { k: 'v' } }];
    const inline = await testMapping({ spec, records });
    const stored = await testMapping({ id: m.id, records });
    expect(inline.results[0].output).toEqual({ a: { k: 'v' }, zz: 'v', c: 'v' });
    expect(stored.results).toEqual(inline.results);
    expect(Object.keys(stored.results[0].output)).toEqual(['a', 'zz', 'c']);
  });

  it('a stale expectedVersion is a ConflictError and changes nothing', async () => {
    const m = (await createMapping({ name: 'conflict', spec: { mapping: { a: 'x' } } })).mapping;
    await updateMapping({ id: m.id, spec: { mapping: { a: 'y' } } });
    const r = await updateMapping({ id: m.id, spec: { mapping: { a: 'z' } }, expectedVersion: 1 });
    expect(r).toEqual({ __typename: 'ConflictError', code: 'CONFLICT', message: 'mapping was changed concurrently (version 2)', currentVersion: 2 });
    expect((await getMapping(m.id)).spec.mapping).toEqual({ a: 'y' });
  });

  const invalid: [string, Record<string, unknown>, { path: string; message: string }[]][] = [
    ['unknown cast type', { spec: { cast: { price: 'money' } } }, [{ path: 'spec.cast.price', message: 'unknown cast type "money"; use one of string, int, float, bool, datetime, json, integer, number, boolean' }]],
    ['cast type not a string', { spec: { cast: { price: 3 } } }, [{ path: 'spec.cast.price', message: 'cast type must be a string, one of string, int, float, bool, datetime, json, integer, number, boolean' }]],
    ['bad cast path', { spec: { cast: { 'a..b': 'int' } } }, [{ path: 'spec.cast.a..b', message: 'invalid path: empty field name at position 2' }]],
    ['bad source path', { spec: { mapping: { out: 'items[x]' } } }, [{ path: 'spec.mapping.out', message: expect.stringContaining('items[x]') }]],
    ['bad unset path', { spec: { unset: ['ok', '[0]'] } }, [{ path: 'spec.unset[1]', message: 'invalid path "[0]": path must start with a field name' }]],
    ['mapping not an object', { spec: { mapping: ['a'] } }, [{ path: 'spec.mapping', message: 'must be an object of target path -> source path or constant' }]],
    ['cast not an object', { spec: { cast: 'int' } }, [{ path: 'spec.cast', message: 'must be an object of path -> cast type' }]],
    [
      'several problems at once',
      { spec: { mapping: { ok: 'a', 'x[': 'b' }, cast: { y: 'nope' } } },
      [
        { path: 'spec.cast.y', message: 'unknown cast type "nope"; use one of string, int, float, bool, datetime, json, integer, number, boolean' },
        { path: 'spec.mapping.x[', message: expect.any(String) },
      ],
    ],
    ['empty name', { name: ' ', spec: { mapping: { a: 'b' } } }, [{ path: 'name', message: 'must not be empty' }]],
  ];

  it.each(invalid)('invalid: %s → ValidationError with exact paths, nothing created', async (_label, input, fieldErrors) => {
    const before = await countMappings();
    const events = (await mappingEvents(['MAPPING_CREATED'])).totalCount;
    const r = await createMapping({ name: 'bad', ...input });
    expect(r.__typename).toBe('ValidationError');
    expect(r.code).toBe('VALIDATION_FAILED');
    expect([...r.fieldErrors].sort((a: any, b: any) => a.path.localeCompare(b.path))).toEqual(fieldErrors);
    expect(await countMappings()).toBe(before);
    expect((await mappingEvents(['MAPPING_CREATED'])).totalCount).toBe(events);
  });

  it('an invalid spec in an update is a ValidationError and keeps the version', async () => {
    const m = (await createMapping({ name: 'update invalid', spec: { mapping: { a: 'b' } } })).mapping;
    const r = await updateMapping({ id: m.id, spec: { cast: { price: 'decimal' } } });
    expect(r.__typename).toBe('ValidationError');
    expect(r.fieldErrors).toEqual([{ path: 'spec.cast.price', message: 'unknown cast type "decimal"; use one of string, int, float, bool, datetime, json, integer, number, boolean' }]);
    expect(await getMapping(m.id)).toMatchObject({ version: 1, spec: norm({ mapping: { a: 'b' } }) });
  });

  it('deleting a mapping used by a pipeline is IN_USE; an unused one is deleted', async () => {
    const m = (await createMapping({ name: 'in use', spec: { mapping: { a: 'id' } } })).mapping;
    const conn = async (input: Record<string, unknown>) =>
      (await s.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ... on CreateConnectorPayload { connector { id } } } }`, { i: input }))
        .createConnector.connector.id as string;
    const sourceId = await conn({ name: 'src', driver: 'csv', config: { path: path.join(dir, 'in.csv') } });
    const destinationId = await conn({ name: 'dst', driver: 'jsonl', config: { path: path.join(dir, 'out.jsonl') } });
    const p = await s.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`, {
      i: { name: 'mapped pipeline', sourceId, destinationId, mappingId: m.id },
    });
    const pipelineId = p.createPipeline.pipeline.id;

    const r = await deleteMapping(m.id);
    expect(r).toEqual({ __typename: 'InUseError', code: 'IN_USE', message: 'mapping "in use" is used by pipeline(s): mapped pipeline', usedBy: [pipelineId] });
    expect(await getMapping(m.id)).not.toBeNull();

    // Detach the mapping from the pipeline; now it can go.
    const up = await s.q(`mutation($i: UpdatePipelineInput!) { updatePipeline(input: $i) { __typename ... on UpdatePipelinePayload { pipeline { mapping { id } } } } }`, {
      i: { id: pipelineId, mappingId: null },
    });
    expect(up.updatePipeline).toEqual({ __typename: 'UpdatePipelinePayload', pipeline: { mapping: null } });
    const before = await countMappings();
    const del = await deleteMapping(m.id);
    expect(del).toEqual({ __typename: 'DeleteMappingPayload', mapping: { id: m.id, name: 'in use' } });
    expect(await countMappings()).toBe(before - 1);
    expect(await getMapping(m.id)).toBeNull();
    const ev = await mappingEvents(['MAPPING_DELETED']);
    expect(ev.edges.at(-1)!.node.message).toBe('mapping "in use" deleted');
    expect(await deleteMapping(m.id)).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'Mapping' });
  });

  it('mappings(nameContains) filters, case-insensitively', async () => {
    await createMapping({ name: 'Filter Alpha', spec: {} });
    await createMapping({ name: 'filter beta', spec: {} });
    const r = await s.q(`{ mappings(nameContains: "FILTER", first: 10) { totalCount edges { node { name } } } }`);
    expect(r.mappings.totalCount).toBe(2);
    expect(r.mappings.edges.map((e: any) => e.node.name).sort()).toEqual(['Filter Alpha', 'filter beta']);
  });
});

describe('testMapping', () => {
  const order = { id: 7, name: 'Ann', email: 'ann@example.com', address: { city: 'Oslo', zip: '0150' }, items: [{ sku: 'A', qty: '2' }, { sku: 'B', qty: '5' }] };

  type Case = [label: string, spec: Record<string, unknown>, input: unknown, expected: { output?: unknown; error?: unknown }];
  const cases: Case[] = [
    ['rename', { mapping: { order_id: 'id', customer: 'name' } }, order, { output: { order_id: 7, customer: 'Ann' } }],
    ['nested source and target (a.b)', { mapping: { 'ship.city': 'address.city', zip: 'address.zip' } }, order, { output: { ship: { city: 'Oslo' }, zip: '0150' } }],
    ['index step items[0]', { mapping: { first_sku: 'items[0].sku' } }, order, { output: { first_sku: 'A' } }],
    ['index step, dotted syntax items.[1]', { mapping: { second_sku: 'items.[1].sku' } }, order, { output: { second_sku: 'B' } }],
    ['[*] collects every element', { mapping: { skus: 'items[*].sku' } }, order, { output: { skus: ['A', 'B'] } }],
    ['[*] dotted syntax items.[*]', { mapping: { skus: 'items.[*].sku' } }, order, { output: { skus: ['A', 'B'] } }],
    ['[*] into [*]', { mapping: { 'lines[*].code': 'items[*].sku', 'lines.[*].n': 'items.[*].qty' } }, order, { output: { lines: [{ code: 'A', n: '2' }, { code: 'B', n: '5' }] } }],
    [
      'constants',
      { mapping: { source: { const: 'shop' }, schema: 2, live: true, gone: null, meta: { const: { tags: ['x'] } } } },
      order,
      { output: { source: 'shop', schema: 2, live: true, gone: null, meta: { tags: ['x'] } } },
    ],
    ['missing source writes nothing', { mapping: { a: 'nope', b: 'address.nope', c: 'id' } }, order, { output: { c: 7 } }],
    ['passThrough on', { passThrough: true, mapping: { customer: 'name' } }, { id: 1, name: 'Bo' }, { output: { id: 1, name: 'Bo', customer: 'Bo' } }],
    ['passThrough off (default)', { mapping: { customer: 'name' } }, { id: 1, name: 'Bo' }, { output: { customer: 'Bo' } }],
    [
      'unset',
      { passThrough: true, unset: ['email', 'address.zip', 'items[*].qty', 'nope.deeper'] },
      order,
      { output: { id: 7, name: 'Ann', address: { city: 'Oslo' }, items: [{ sku: 'A' }, { sku: 'B' }] } },
    ],
    ['unset an index', { passThrough: true, unset: ['items[0]'] }, { items: [1, 2, 3] }, { output: { items: [2, 3] } }],
    ['cast string', { passThrough: true, cast: { n: 'string', b: 'string', o: 'string' } }, { n: 42, b: false, o: { a: 1 } }, { output: { n: '42', b: 'false', o: '{"a":1}' } }],
    ['cast int', { passThrough: true, cast: { a: 'int', b: 'int', c: 'int' } }, { a: '42', b: ' 4.0 ', c: -3 }, { output: { a: 42, b: 4, c: -3 } }],
    ['cast float', { passThrough: true, cast: { a: 'float', b: 'float' } }, { a: '3.5', b: 2 }, { output: { a: 3.5, b: 2 } }],
    ['cast bool', { passThrough: true, cast: { a: 'bool', b: 'bool', c: 'bool', d: 'bool' } }, { a: 'yes', b: 0, c: 'FALSE', d: true }, { output: { a: true, b: false, c: false, d: true } }],
    [
      'cast datetime',
      { passThrough: true, cast: { a: 'datetime', b: 'datetime', c: 'datetime' } },
      { a: '2026-01-02', b: 0, c: '2026-03-04T05:06:07+02:00' },
      { output: { a: '2026-01-02T00:00:00.000Z', b: '1970-01-01T00:00:00.000Z', c: '2026-03-04T03:06:07.000Z' } },
    ],
    ['cast json', { passThrough: true, cast: { a: 'json', b: 'json' } }, { a: '{"x":[1,2]}', b: 5 }, { output: { a: { x: [1, 2] }, b: 5 } }],
    ['cast inside arrays', { passThrough: true, cast: { 'items[*].qty': 'int' } }, { items: [{ qty: '1' }, { qty: '2' }] }, { output: { items: [{ qty: 1 }, { qty: 2 }] } }],
    ['cast leaves null and missing alone', { passThrough: true, cast: { a: 'int', b: 'int' } }, { a: null }, { output: { a: null } }],
    [
      'cast failure',
      { mapping: { price: 'p' }, cast: { price: 'float' } },
      { p: 'abc' },
      { output: null, error: { path: 'price', code: 'CAST_FAILED', message: 'cast "price" to float failed: "abc" is not a number' } },
    ],
    [
      'cast failure names the concrete element',
      { passThrough: true, cast: { 'items[*].qty': 'int' } },
      { items: [{ qty: '1' }, { qty: 'x' }] },
      { output: null, error: { path: 'items[1].qty', code: 'CAST_FAILED', message: 'cast "items[1].qty" to int failed: "x" is not an integer' } },
    ],
    [
      'writing through a value of the wrong kind',
      { passThrough: true, mapping: { 'name.first': 'id' } },
      { id: 1, name: 'Ann' },
      { output: null, error: { path: 'name.first', code: 'TYPE_MISMATCH', message: expect.any(String) } },
    ],
    ['a record that is not an object', { mapping: { a: 'b' } }, [1, 2], { output: null, error: { path: null, code: 'NOT_AN_OBJECT', message: 'a record must be a JSON object' } }],
  ];

  it.each(cases)('%s', async (_label, spec, input, expected) => {
    const r = await testMapping({ spec, records: [input] });
    expect(r.__typename).toBe('TestMappingPayload');
    expect(r.results).toEqual([{ input, output: expected.output, error: expected.error ?? null }]);
  });

  it('a failing record does not stop the others', async () => {
    const records = [{ p: '1.5' }, { p: 'oops' }, { p: null }, { p: '2' }, 'not an object'];
    const r = await testMapping({ spec: { mapping: { price: 'p' }, cast: { price: 'float' } }, records });
    expect(r.results).toEqual([
      { input: records[0], output: { price: 1.5 }, error: null },
      { input: records[1], output: null, error: { path: 'price', code: 'CAST_FAILED', message: 'cast "price" to float failed: "oops" is not a number' } },
      { input: records[2], output: { price: null }, error: null },
      { input: records[3], output: { price: 2 }, error: null },
      { input: records[4], output: null, error: { path: null, code: 'NOT_AN_OBJECT', message: 'a record must be a JSON object' } },
    ]);
  });

  it('tests a stored mapping: the current version by default, an older one by number', async () => {
    const m = (await createMapping({ name: 'stored', spec: { mapping: { out: 'a' } } })).mapping;
    await updateMapping({ id: m.id, spec: { mapping: { out: 'b' }, cast: { out: 'int' } } });
    const records = [{ a: 'from a', b: '12' }];
    expect((await testMapping({ id: m.id, records })).results).toEqual([{ input: records[0], output: { out: 12 }, error: null }]);
    expect((await testMapping({ id: m.id, version: 2, records })).results).toEqual([{ input: records[0], output: { out: 12 }, error: null }]);
    expect((await testMapping({ id: m.id, version: 1, records })).results).toEqual([{ input: records[0], output: { out: 'from a' }, error: null }]);
    const mid = Buffer.from(m.id, 'base64').toString().split(':')[1];
    expect(await testMapping({ id: m.id, version: 9, records })).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'MappingVersion', id: `${mid}@9` });
    expect(await testMapping({ id: gid('Mapping', '00000000-0000-7000-8000-0000000000ff'), records })).toMatchObject({ __typename: 'NotFoundError', entity: 'Mapping' });
  });

  it('testing writes nothing', async () => {
    const before = (await s.q(`{ events { totalCount } }`)).events.totalCount;
    await testMapping({ spec: { mapping: { a: 'b' } }, records: [{ b: 1 }] });
    expect((await s.q(`{ events { totalCount } }`)).events.totalCount).toBe(before);
  });

  it('an invalid inline spec, no spec and no id, or too many records are ValidationErrors', async () => {
    const bad = await testMapping({ spec: { cast: { price: 'money' } }, records: [{}] });
    expect(bad).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'spec.cast.price', message: 'unknown cast type "money"; use one of string, int, float, bool, datetime, json, integer, number, boolean' }] });
    const nothing = await testMapping({ records: [{}] });
    expect(nothing).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: 'id', message: 'give a mapping id or a spec' }] });
    const many = await testMapping({ spec: {}, records: Array.from({ length: 1001 }, () => ({})) });
    expect(many).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: 'records', message: 'at most 1000 records per test' }] });
  });
});
