import { describe, it, expect } from 'vitest';
import {
  compileMapping,
  mapFieldSchema,
  MappingRecordError,
  parsePath,
  validateMappingSpec,
  type CastType,
  type MappingSpec,
  type PathStep,
} from '../../src/engine/mapping/mapping.js';

type Rec = Record<string, unknown>;

/** Validates (must succeed) and compiles a partial spec. */
function compile(input: Rec): (record: Rec) => Rec {
  const v = validateMappingSpec(input);
  if (!v.ok) throw new Error(`spec unexpectedly invalid: ${JSON.stringify(v.errors)}`);
  return compileMapping(v.spec);
}

function run(input: Rec, record: Rec): Rec {
  return compile(input)(record);
}

function runError(input: Rec, record: Rec): MappingRecordError {
  try {
    run(input, record);
  } catch (e) {
    expect(e).toBeInstanceOf(MappingRecordError);
    return e as MappingRecordError;
  }
  throw new Error('expected a MappingRecordError');
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) deepFreeze((v as Rec)[k]);
    Object.freeze(v);
  }
  return v;
}

const order = () => ({
  id: 7,
  customer: { name: 'Ada', email: 'ada@example.com', address: { city: 'London', zip: 'N1' } },
  lines: [
    { sku: 'A1', qty: '2', price: '9.50', product: { sku: 'P-A1', tags: ['x', 'y'] } },
    { sku: 'B2', qty: '1', price: '3', product: { sku: 'P-B2', tags: [] as string[] } },
  ],
  status: 'paid',
  note: null,
});

const key = (k: string): PathStep => ({ kind: 'key', key: k });
const idx = (i: number): PathStep => ({ kind: 'index', index: i });
const all: PathStep = { kind: 'all' };

describe('parsePath', () => {
  it.each<[string, PathStep[]]>([
    ['a', [key('a')]],
    ['a.b.c', [key('a'), key('b'), key('c')]],
    ['a[0].b', [key('a'), idx(0), key('b')]],
    ['a.[0].b', [key('a'), idx(0), key('b')]],
    ['a[*].b', [key('a'), all, key('b')]],
    ['a.[*].b', [key('a'), all, key('b')]],
    ['a[*]', [key('a'), all]],
    ['a[1][*][2]', [key('a'), idx(1), all, idx(2)]],
    ['a.[12].[*]', [key('a'), idx(12), all]],
    ['first name.e-mail', [key('first name'), key('e-mail')]],
    ['$weird:key!', [key('$weird:key!')]],
    ['a.0', [key('a'), key('0')]],
  ])('parses %j', (path, steps) => {
    expect(parsePath(path)).toEqual(steps);
  });

  it.each<[string, RegExp]>([
    ['', /empty/],
    ['.a', /empty field name/],
    ['a.', /ends with "."/],
    ['a..b', /empty field name/],
    ['[0]', /must start with a field name/],
    ['[*].a', /must start with a field name/],
    ['a[', /unbalanced/],
    ['a.[0', /unbalanced/],
    ['a[[0]]', /unbalanced/],
    ['a]', /unexpected "\]"/],
    ['a[0]]', /unexpected "\]"/],
    ['a[x]', /invalid array step "\[x\]"/],
    ['a[-1]', /invalid array step/],
    ['a[1.5]', /invalid array step/],
    ['a[]', /invalid array step/],
    ['a[ 1 ]', /invalid array step/],
    ['a[0]b', /expected "." or "\["/],
    ['a[1000001]', /too large/],
  ])('rejects %j', (path, message) => {
    expect(() => parsePath(path)).toThrow(message);
  });
});

describe('compileMapping: mapping, passThrough, unset and cast', () => {
  it.each<{ name: string; spec: Rec; input?: Rec; expected: Rec }>([
    { name: 'renames a top-level field', spec: { mapping: { orderId: 'id' } }, expected: { orderId: 7 } },
    { name: 'reads a nested source', spec: { mapping: { customerName: 'customer.name' } }, expected: { customerName: 'Ada' } },
    {
      name: 'creates intermediate objects for a nested target',
      spec: { mapping: { 'buyer.contact.email': 'customer.email' } },
      expected: { buyer: { contact: { email: 'ada@example.com' } } },
    },
    { name: 'reads an index step a[0].b', spec: { mapping: { firstSku: 'lines[0].sku' } }, expected: { firstSku: 'A1' } },
    { name: 'reads an Algolia index step a.[1].b', spec: { mapping: { secondSku: 'lines.[1].sku' } }, expected: { secondSku: 'B2' } },
    { name: 'writes an index target, padding with null', spec: { mapping: { 'pair[1]': 'id' } }, expected: { pair: [null, 7] } },
    { name: 'writes an Algolia index target', spec: { mapping: { 'slots.[0].id': 'id' } }, expected: { slots: [{ id: 7 }] } },
    { name: 'collects a star source into an array', spec: { mapping: { skus: 'lines[*].sku' } }, expected: { skus: ['A1', 'B2'] } },
    { name: 'collects an Algolia star source', spec: { mapping: { skus: 'lines.[*].sku' } }, expected: { skus: ['A1', 'B2'] } },
    {
      name: 'distributes a star source over a star target',
      spec: { mapping: { 'items[*].sku': 'lines[*].product.sku', 'items[*].quantity': 'lines[*].qty' } },
      expected: {
        items: [
          { sku: 'P-A1', quantity: '2' },
          { sku: 'P-B2', quantity: '1' },
        ],
      },
    },
    {
      name: 'distributes with Algolia stars on both sides',
      spec: { mapping: { 'items.[*].sku': 'lines.[*].sku' } },
      expected: { items: [{ sku: 'A1' }, { sku: 'B2' }] },
    },
    {
      name: 'collects missing element values as null',
      spec: { mapping: { skus: 'lines[*].sku' } },
      input: { lines: [{ sku: 'a' }, {}, { sku: 'c' }] },
      expected: { skus: ['a', null, 'c'] },
    },
    {
      name: 'creates one target element per source element even when its value is missing',
      spec: { mapping: { 'items[*].sku': 'lines[*].sku' } },
      input: { lines: [{ sku: 'a' }, {}, { sku: 'c' }] },
      expected: { items: [{ sku: 'a' }, {}, { sku: 'c' }] },
    },
    {
      name: 'yields nested arrays for nested stars',
      spec: { mapping: { tags: 'lines[*].product.tags[*]' } },
      expected: { tags: [['x', 'y'], []] },
    },
    {
      name: 'distributes two stars over two stars',
      spec: { mapping: { 'items[*].tags[*].name': 'lines[*].product.tags[*]' } },
      expected: { items: [{ tags: [{ name: 'x' }, { name: 'y' }] }, { tags: [] }] },
    },
    {
      name: 'distributes the outer star and collects the inner one when the target has fewer stars',
      spec: { mapping: { 'items[*].tags': 'lines[*].product.tags[*]' } },
      expected: { items: [{ tags: ['x', 'y'] }, { tags: [] }] },
    },
    {
      name: 'null for a missing inner array when collecting nested stars',
      spec: { mapping: { skus: 'groups[*].lines[*].sku' } },
      input: { groups: [{ lines: [{ sku: 1 }] }, {}, { lines: [] }] },
      expected: { skus: [[1], null, []] },
    },
    { name: 'writes a target ending in [*]', spec: { mapping: { 'codes[*]': 'lines[*].sku' } }, expected: { codes: ['A1', 'B2'] } },
    {
      name: 'a star over an empty array yields an empty array',
      spec: { mapping: { skus: 'lines[*].sku', 'items[*].sku': 'lines[*].sku' } },
      input: { lines: [] },
      expected: { skus: [], items: [] },
    },
    {
      name: 'a star over a non-array is a missing source',
      spec: { mapping: { skus: 'lines[*].sku' } },
      input: { lines: 'nope' },
      expected: {},
    },
    {
      name: 'copies a whole subtree',
      spec: { mapping: { addr: 'customer.address' } },
      expected: { addr: { city: 'London', zip: 'N1' } },
    },
    {
      name: 'does not write a target whose source is missing',
      spec: { mapping: { a: 'does.not.exist', b: 'lines[5].sku', c: 'customer.address.street' } },
      expected: {},
    },
    {
      name: 'treats a source running into the wrong kind of value as missing',
      spec: { mapping: { a: 'status.length', b: 'lines.sku', c: 'customer[0]' } },
      expected: {},
    },
    { name: 'writes a null source value', spec: { mapping: { n: 'note' } }, expected: { n: null } },
    {
      name: 'writes constants of every kind',
      spec: {
        mapping: {
          'meta.source': { const: 'shop' },
          version: 3,
          ratio: 0.5,
          active: true,
          deleted: false,
          nothing: null,
          obj: { const: { a: [1, { b: 2 }] } },
          list: { const: [1, 2] },
          nullConst: { const: null },
          literal: { const: 'lines[0].sku' },
        },
      },
      expected: {
        meta: { source: 'shop' },
        version: 3,
        ratio: 0.5,
        active: true,
        deleted: false,
        nothing: null,
        obj: { a: [1, { b: 2 }] },
        list: [1, 2],
        nullConst: null,
        literal: 'lines[0].sku',
      },
    },
    {
      name: 'writes a constant even when the record is empty',
      spec: { mapping: { kind: { const: 'order' } } },
      input: {},
      expected: { kind: 'order' },
    },
    { name: 'passThrough off: only mapped fields', spec: { mapping: { id: 'id' } }, expected: { id: 7 } },
    { name: 'passThrough with an empty spec copies the record', spec: { passThrough: true }, expected: order() },
    {
      name: 'passThrough keeps the source of a rename',
      spec: { passThrough: true, mapping: { orderId: 'id' } },
      expected: { ...order(), orderId: 7 },
    },
    {
      name: 'passThrough: a constant overwrites an input field',
      spec: { passThrough: true, mapping: { status: { const: 'archived' } } },
      expected: { ...order(), status: 'archived' },
    },
    {
      name: 'passThrough: a missing source leaves the copied field alone',
      spec: { passThrough: true, mapping: { status: 'nope' } },
      expected: order(),
    },
    {
      name: 'passThrough: writes into an existing nested object',
      spec: { passThrough: true, mapping: { 'customer.vip': { const: true } } },
      expected: { ...order(), customer: { ...order().customer, vip: true } },
    },
    {
      name: 'passThrough: a star target writes into the existing elements',
      spec: { passThrough: true, mapping: { 'lines[*].code': 'lines[*].product.sku' } },
      input: { lines: [{ sku: 'A', product: { sku: 'PA' } }, { sku: 'B' }] },
      expected: { lines: [{ sku: 'A', product: { sku: 'PA' }, code: 'PA' }, { sku: 'B' }] },
    },
    {
      name: 'replaces a null intermediate with an object',
      spec: { passThrough: true, mapping: { 'a.b': 1 } },
      input: { a: null },
      expected: { a: { b: 1 } },
    },
    {
      name: 'reads sources from the input, not from the output being built',
      spec: { mapping: { id: { const: 0 }, copy: 'id' } },
      expected: { id: 0, copy: 7 },
    },
    {
      name: 'a later entry writes into an earlier one',
      spec: { mapping: { a: { const: { x: 1 } }, 'a.y': { const: 2 } } },
      input: {},
      expected: { a: { x: 1, y: 2 } },
    },
    {
      name: 'field names with spaces and dashes',
      spec: { mapping: { 'contact.e-mail': 'e-mail', name: 'first name' } },
      input: { 'first name': 'Ada', 'e-mail': 'ada@example.com' },
      expected: { contact: { 'e-mail': 'ada@example.com' }, name: 'Ada' },
    },
    {
      name: 'unset removes top-level fields',
      spec: { passThrough: true, unset: ['status', 'note', 'customer'] },
      expected: { id: 7, lines: order().lines },
    },
    {
      name: 'unset removes a nested field',
      spec: { passThrough: true, unset: ['customer.address.zip'] },
      expected: { ...order(), customer: { name: 'Ada', email: 'ada@example.com', address: { city: 'London' } } },
    },
    {
      name: 'unset with [*] removes from every element',
      spec: { passThrough: true, unset: ['lines[*].product', 'lines.[*].price'] },
      expected: {
        ...order(),
        lines: [
          { sku: 'A1', qty: '2' },
          { sku: 'B2', qty: '1' },
        ],
      },
    },
    {
      name: 'unset of an index removes that element',
      spec: { passThrough: true, unset: ['lines[0]'] },
      expected: { ...order(), lines: [order().lines[1]] },
    },
    {
      name: 'unset of a trailing [*] empties the array',
      spec: { mapping: { tags: 'lines[0].product.tags' }, unset: ['tags[*]'] },
      expected: { tags: [] },
    },
    {
      name: 'unset ignores missing paths',
      spec: { passThrough: true, unset: ['nope', 'customer.nope', 'lines[9].sku', 'status.x', 'id[*]', 'lines.x'] },
      expected: order(),
    },
    {
      name: 'unset runs after the mapping',
      spec: { mapping: { tmp: 'id', keep: 'id', 'o.a': 'id', 'o.b': 'id' }, unset: ['tmp', 'o.a'] },
      expected: { keep: 7, o: { b: 7 } },
    },
    {
      name: 'unset runs before cast (a cast of an unset path is ignored)',
      spec: { passThrough: true, unset: ['status'], cast: { status: 'int' } },
      expected: { ...order(), status: undefined },
    },
    { name: 'cast leaves null as is', spec: { passThrough: true, cast: { note: 'int' } }, expected: order() },
    { name: 'cast ignores a missing path', spec: { passThrough: true, cast: { missing: 'int', 'customer.nope.x': 'bool' } }, expected: order() },
    {
      name: 'cast with [*] converts every element',
      spec: { mapping: { lines: 'lines' }, cast: { 'lines[*].qty': 'int', 'lines.[*].price': 'float' } },
      expected: {
        lines: [
          { ...order().lines[0], qty: 2, price: 9.5 },
          { ...order().lines[1], qty: 1, price: 3 },
        ],
      },
    },
    {
      name: 'cast of a trailing [*] converts array items',
      spec: { mapping: { qtys: 'lines[*].qty' }, cast: { 'qtys[*]': 'int' } },
      expected: { qtys: [2, 1] },
    },
    {
      name: 'cast with an index step',
      spec: { mapping: { lines: 'lines' }, cast: { 'lines[1].qty': 'int' } },
      expected: { lines: [order().lines[0], { ...order().lines[1], qty: 1 }] },
    },
    {
      name: 'cast applies to a mapped target',
      spec: { mapping: { total: 'lines[0].price', when: 'ts' }, cast: { total: 'float', when: 'datetime' } },
      input: { lines: [{ price: ' 9.50 ' }], ts: 0 },
      expected: { total: 9.5, when: '1970-01-01T00:00:00.000Z' },
    },
    {
      name: 'casts apply in order (json, then a field inside it)',
      spec: { passThrough: true, cast: { payload: 'json', 'payload.n': 'int' } },
      input: { payload: '{"n":"5","m":[1]}' },
      expected: { payload: { n: 5, m: [1] } },
    },
  ])('$name', ({ spec, input, expected }) => {
    const out = run(spec, input ?? order());
    // toEqual treats `undefined` properties as absent, which lets rows say "not present".
    expect(out).toEqual(expected);
    for (const [k, v] of Object.entries(expected)) if (v === undefined) expect(Object.hasOwn(out, k)).toBe(false);
  });

  it('keeps key order: passThrough fields first, then new targets in mapping order', () => {
    const out = run({ passThrough: true, mapping: { z: 'id', status: { const: 'x' }, a: 'id' } }, order());
    expect(Object.keys(out)).toEqual(['id', 'customer', 'lines', 'status', 'note', 'z', 'a']);
  });
});

describe('casts', () => {
  it('accepts the JSON Schema names discovery reports (integer, number, boolean) for int, float and bool', () => {
    const v = validateMappingSpec({ cast: { a: 'integer', b: 'number', c: 'boolean' }, passThrough: true });
    expect(v.ok && v.spec.cast).toEqual({ a: 'int', b: 'float', c: 'bool' });
    expect(run({ cast: { a: 'integer', b: 'number', c: 'boolean' }, passThrough: true }, { a: '4', b: '2.5', c: 'true' })).toEqual({ a: 4, b: 2.5, c: true });
    // A spec stored with an alias (compiled without validation) means the same.
    expect(compileMapping({ mapping: {}, unset: [], cast: { a: 'integer' as CastType }, passThrough: true })({ a: '7' })).toEqual({ a: 7 });
  });

  it.each<[CastType, unknown, unknown]>([
    ['string', 42, '42'],
    ['string', 1.5, '1.5'],
    ['string', true, 'true'],
    ['string', 'same', 'same'],
    ['string', { a: 1 }, '{"a":1}'],
    ['string', [1, 'b'], '[1,"b"]'],
    ['int', ' 42 ', 42],
    ['int', '-3', -3],
    ['int', '+8', 8],
    ['int', '4.0', 4],
    ['int', 7, 7],
    ['int', 7.0, 7],
    ['float', '9.50', 9.5],
    ['float', ' -1e3 ', -1000],
    ['float', '.5', 0.5],
    ['float', 2, 2],
    ['bool', true, true],
    ['bool', false, false],
    ['bool', 'TRUE', true],
    ['bool', 'False', false],
    ['bool', ' yes ', true],
    ['bool', 'No', false],
    ['bool', '1', true],
    ['bool', '0', false],
    ['bool', 1, true],
    ['bool', 0, false],
    ['datetime', '2024-01-15T10:00:00Z', '2024-01-15T10:00:00.000Z'],
    ['datetime', '2024-01-15T10:00:00.123Z', '2024-01-15T10:00:00.123Z'],
    ['datetime', '2024-01-15T10:00:00+02:00', '2024-01-15T08:00:00.000Z'],
    ['datetime', '2024-01-15T10:00:00.5-0130', '2024-01-15T11:30:00.500Z'],
    ['datetime', '2024-01-15 10:00', '2024-01-15T10:00:00.000Z'],
    ['datetime', '2024-01-15T10:00:00', '2024-01-15T10:00:00.000Z'],
    ['datetime', '2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['datetime', '0099-12-31T23:59:59Z', '0099-12-31T23:59:59.000Z'],
    ['datetime', 0, '1970-01-01T00:00:00.000Z'],
    ['datetime', 1700000000123, '2023-11-14T22:13:20.123Z'],
    ['datetime', -86400000, '1969-12-31T00:00:00.000Z'],
    ['json', '{"a":[1,2]}', { a: [1, 2] }],
    ['json', '[1]', [1]],
    ['json', '"s"', 's'],
    ['json', 'null', null],
    ['json', { a: 1 }, { a: 1 }],
    ['json', 5, 5],
  ])('%s: %j -> %j', (type, value, expected) => {
    expect(run({ passThrough: true, cast: { v: type } }, { v: value })).toEqual({ v: expected });
  });

  it.each<[CastType, unknown, string]>([
    ['int', '4.5', '"4.5" is not an integer'],
    ['int', 'abc', '"abc" is not an integer'],
    ['int', '', '"" is not an integer'],
    ['int', 4.5, '4.5 is not an integer'],
    ['int', true, 'true is not an integer'],
    ['int', { a: 1 }, '{"a":1} is not an integer'],
    ['int', '9007199254740993', 'outside the safe integer range'],
    ['float', 'abc', '"abc" is not a number'],
    ['float', '', '"" is not a number'],
    ['float', '0x10', '"0x10" is not a number'],
    ['float', 'Infinity', '"Infinity" is not a number'],
    ['float', '1e999', 'is not a finite number'],
    ['float', false, 'false is not a number'],
    ['bool', 'maybe', '"maybe" is not a boolean'],
    ['bool', 2, '2 is not a boolean'],
    ['bool', '', '"" is not a boolean'],
    ['datetime', '2024-02-30', 'is not an ISO-8601 date-time'],
    ['datetime', '2023-02-29T00:00:00Z', 'is not an ISO-8601 date-time'],
    ['datetime', '2024-01-15T25:00:00Z', 'is not an ISO-8601 date-time'],
    ['datetime', 'March 7, 2020', 'is not an ISO-8601 date-time'],
    ['datetime', '1700000000000', 'is not an ISO-8601 date-time'],
    ['datetime', true, 'is not an ISO-8601 date-time'],
    ['datetime', 1e20, 'is not a valid epoch-milliseconds timestamp'],
    ['json', '{bad', '"{bad" is not valid JSON'],
    ['json', '', '"" is not valid JSON'],
  ])('%s: %j fails', (type, value, reason) => {
    const e = runError({ passThrough: true, cast: { v: type } }, { v: value });
    expect(e.code).toBe('CAST_FAILED');
    expect(e.path).toBe('v');
    expect(e.message).toContain(`cast "v" to ${type} failed: `);
    expect(e.message).toContain(reason);
  });
});

describe('record errors', () => {
  it.each<{ name: string; spec: Rec; input: Rec; code: 'CAST_FAILED' | 'TYPE_MISMATCH'; path: string; message: string | RegExp }>([
    {
      name: 'the documented cast message',
      spec: { passThrough: true, cast: { price: 'float' } },
      input: { price: 'abc' },
      code: 'CAST_FAILED',
      path: 'price',
      message: 'cast "price" to float failed: "abc" is not a number',
    },
    {
      name: 'a failing cast under [*] names the element',
      spec: { passThrough: true, cast: { 'lines[*].qty': 'int' } },
      input: { lines: [{ qty: '1' }, { qty: 'x' }] },
      code: 'CAST_FAILED',
      path: 'lines[1].qty',
      message: 'cast "lines[1].qty" to int failed: "x" is not an integer',
    },
    {
      name: 'writing a.b when a is a string',
      spec: { passThrough: true, mapping: { 'a.b': 1 } },
      input: { a: 'str' },
      code: 'TYPE_MISMATCH',
      path: 'a.b',
      message: 'cannot write "a.b": "a" is a string, not an object',
    },
    {
      name: 'writing an index into an object',
      spec: { passThrough: true, mapping: { 'customer[0]': 'id' } },
      input: order(),
      code: 'TYPE_MISMATCH',
      path: 'customer[0]',
      message: '"customer" is an object, not an array',
    },
    {
      name: 'writing a key into an array',
      spec: { passThrough: true, mapping: { 'lines.x': 'id' } },
      input: order(),
      code: 'TYPE_MISMATCH',
      path: 'lines.x',
      message: '"lines" is an array, not an object',
    },
    {
      name: 'a star target over a non-array',
      spec: { passThrough: true, mapping: { 'items[*].sku': 'lines[*].sku' } },
      input: { items: 'x', lines: [{ sku: 1 }] },
      code: 'TYPE_MISMATCH',
      path: 'items[*].sku',
      message: '"items" is a string, not an array',
    },
    {
      name: 'a star target element of the wrong kind names the element',
      spec: { passThrough: true, mapping: { 'items[*].sku': 'lines[*].sku' } },
      input: { items: [{}, 5], lines: [{ sku: 1 }, { sku: 2 }] },
      code: 'TYPE_MISMATCH',
      path: 'items[1].sku',
      message: '"items[1]" is a number, not an object',
    },
    {
      name: 'writing under a constant written by an earlier entry',
      spec: { mapping: { a: { const: 5 }, 'a.b': { const: 1 } } },
      input: {},
      code: 'TYPE_MISMATCH',
      path: 'a.b',
      message: '"a" is a number, not an object',
    },
    {
      name: 'writing through a deep string',
      spec: { passThrough: true, mapping: { 'customer.name.first': 'customer.name' } },
      input: order(),
      code: 'TYPE_MISMATCH',
      path: 'customer.name.first',
      message: '"customer.name" is a string, not an object',
    },
  ])('$name', ({ spec, input, code, path, message }) => {
    const e = runError(spec, input);
    expect(e.name).toBe('MappingRecordError');
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe(code);
    expect(e.path).toBe(path);
    if (typeof message === 'string') expect(e.message).toContain(message);
    else expect(e.message).toMatch(message);
  });
});

describe('validateMappingSpec', () => {
  it.each<{ name: string; input: unknown; errors: { path: string; message: string | RegExp }[] }>([
    { name: 'null spec', input: null, errors: [{ path: '', message: 'mapping spec must be an object' }] },
    { name: 'array spec', input: [], errors: [{ path: '', message: 'mapping spec must be an object' }] },
    { name: 'string spec', input: 'a', errors: [{ path: '', message: 'mapping spec must be an object' }] },
    { name: 'unknown top-level key', input: { unsets: [] }, errors: [{ path: 'unsets', message: /unknown key "unsets"/ }] },
    { name: 'non-object mapping (array)', input: { mapping: ['a'] }, errors: [{ path: 'mapping', message: /must be an object/ }] },
    { name: 'non-object mapping (string)', input: { mapping: 'a' }, errors: [{ path: 'mapping', message: /must be an object/ }] },
    { name: 'bad target path', input: { mapping: { 'a..b': 'x' } }, errors: [{ path: 'mapping.a..b', message: /invalid target path: empty field name/ }] },
    { name: 'bad target index', input: { mapping: { 'a[x]': 'x' } }, errors: [{ path: 'mapping.a[x]', message: /invalid target path: invalid array step "\[x\]"/ }] },
    { name: 'bad source path', input: { mapping: { a: 'b[' } }, errors: [{ path: 'mapping.a', message: /invalid source path "b\[": unbalanced/ }] },
    { name: 'empty source path', input: { mapping: { a: '' } }, errors: [{ path: 'mapping.a', message: /invalid source path "": path is empty/ }] },
    { name: 'object value without const', input: { mapping: { a: { value: 1 } } }, errors: [{ path: 'mapping.a', message: /\{ "const": <JSON value> \}/ }] },
    { name: 'const with extra keys', input: { mapping: { a: { const: 1, x: 2 } } }, errors: [{ path: 'mapping.a', message: /\{ "const": <JSON value> \}/ }] },
    { name: 'array value', input: { mapping: { a: [1] } }, errors: [{ path: 'mapping.a', message: /must be a source path string/ }] },
    { name: 'non-finite number', input: { mapping: { a: Number.NaN } }, errors: [{ path: 'mapping.a', message: /finite/ }] },
    { name: 'non-JSON constant', input: { mapping: { a: { const: () => 1 } } }, errors: [{ path: 'mapping.a', message: 'constant is not a JSON value' }] },
    {
      name: 'target with a star but the source has none',
      input: { mapping: { 'items[*].x': 'name' } },
      errors: [{ path: 'mapping.items[*].x', message: 'target has 1 [*] but source "name" has 0; a target may not have more [*] than its source' }],
    },
    {
      name: 'target with more stars than the source',
      input: { mapping: { 'a[*].b.[*]': 'lines[*].tags' } },
      errors: [{ path: 'mapping.a[*].b.[*]', message: /target has 2 \[\*\] but source "lines\[\*\]\.tags" has 1/ }],
    },
    {
      name: 'star target with a constant',
      input: { mapping: { 'items[*].currency': { const: 'EUR' } } },
      errors: [{ path: 'mapping.items[*].currency', message: /target has 1 \[\*\] but a constant has none/ }],
    },
    { name: 'unset not an array', input: { unset: 'a' }, errors: [{ path: 'unset', message: 'must be an array of paths' }] },
    {
      name: 'non-string unset entries',
      input: { unset: ['ok', 1, null] },
      errors: [
        { path: 'unset[1]', message: 'must be a string path' },
        { path: 'unset[2]', message: 'must be a string path' },
      ],
    },
    { name: 'bad unset path', input: { unset: ['a[x]'] }, errors: [{ path: 'unset[0]', message: /invalid path "a\[x\]": invalid array step/ }] },
    { name: 'cast not an object', input: { cast: ['a'] }, errors: [{ path: 'cast', message: /must be an object/ }] },
    { name: 'unknown cast type', input: { cast: { price: 'money' } }, errors: [{ path: 'cast.price', message: 'unknown cast type "money"; use one of string, int, float, bool, datetime, json, integer, number, boolean' }] },
    { name: 'non-string cast type', input: { cast: { price: 3 } }, errors: [{ path: 'cast.price', message: /cast type must be a string/ }] },
    { name: 'bad cast path', input: { cast: { 'a]': 'int' } }, errors: [{ path: 'cast.a]', message: /invalid path: unexpected "\]"/ }] },
    { name: 'non-boolean passThrough', input: { passThrough: 'yes' }, errors: [{ path: 'passThrough', message: 'must be a boolean' }] },
    {
      name: 'reports every problem',
      input: { mapping: { 'a.': 'b', ok: 'c' }, unset: [3], cast: { x: 'money' }, passThrough: 1 },
      errors: [
        { path: 'mapping.a.', message: /invalid target path/ },
        { path: 'unset[0]', message: 'must be a string path' },
        { path: 'cast.x', message: 'unknown cast type "money"; use one of string, int, float, bool, datetime, json, integer, number, boolean' },
        { path: 'passThrough', message: 'must be a boolean' },
      ],
    },
  ])('$name', ({ input, errors }) => {
    const v = validateMappingSpec(input);
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.errors.map((e) => e.path)).toEqual(errors.map((e) => e.path));
    errors.forEach((want, i) => {
      const got = v.errors[i]!.message;
      if (typeof want.message === 'string') expect(got).toBe(want.message);
      else expect(got).toMatch(want.message);
    });
  });

  it.each<{ name: string; input: unknown; spec: MappingSpec }>([
    { name: 'empty object', input: {}, spec: { mapping: {}, unset: [], cast: {}, passThrough: false } },
    { name: 'nulls default too', input: { mapping: null, unset: null, cast: null, passThrough: null }, spec: { mapping: {}, unset: [], cast: {}, passThrough: false } },
    { name: 'partial', input: { mapping: { a: 'b' } }, spec: { mapping: { a: 'b' }, unset: [], cast: {}, passThrough: false } },
    {
      name: 'full',
      input: { mapping: { 'x[*].y': 'a.[*].b', c: { const: [1] }, n: null }, unset: ['a'], cast: { c: 'json' }, passThrough: true },
      spec: { mapping: { 'x[*].y': 'a.[*].b', c: { const: [1] }, n: null }, unset: ['a'], cast: { c: 'json' }, passThrough: true },
    },
  ])('accepts $name', ({ input, spec }) => {
    const v = validateMappingSpec(input);
    expect(v).toEqual({ ok: true, spec });
  });

  it('returns a copy that later changes to the input do not affect', () => {
    const input = { mapping: { c: { const: { a: 1 } } }, unset: ['x'] };
    const v = validateMappingSpec(input);
    if (!v.ok) throw new Error('invalid');
    input.mapping.c.const.a = 2;
    input.unset.push('y');
    expect(v.spec.mapping.c).toEqual({ const: { a: 1 } });
    expect(v.spec.unset).toEqual(['x']);
  });
});

describe('compileMapping safety', () => {
  it('does not mutate the input record (deep-frozen) for any kind of operation', () => {
    const input = deepFreeze(order());
    const before = structuredClone(input);
    const spec = {
      passThrough: true,
      mapping: {
        'customer.vip': { const: true },
        'customer.address.country': { const: 'UK' },
        'lines[*].currency': 'lines[*].product.sku',
        'lines[0].product.tags[2]': { const: 'z' },
        copy: 'customer',
        'copy.extra': 1,
        'items[*].sku': 'lines[*].sku',
      },
      unset: ['customer.email', 'lines[*].product.sku', 'copy.address.zip', 'lines[1].product.tags[*]'],
      cast: { 'lines[*].qty': 'int', 'lines[*].price': 'float', 'copy.name': 'json' as const, id: 'string' },
    };
    // 'copy.name' json-casts "Ada", which is not JSON: use a separate spec without it for the success run.
    expect(() => run(spec, input)).toThrow(MappingRecordError);
    const out = run({ ...spec, cast: { 'lines[*].qty': 'int', 'lines[*].price': 'float', id: 'string' } }, input);
    expect(input).toEqual(before);
    expect(out).toEqual({
      id: '7',
      customer: { name: 'Ada', address: { city: 'London', zip: 'N1', country: 'UK' }, vip: true },
      lines: [
        { sku: 'A1', qty: 2, price: 9.5, product: { tags: ['x', 'y', 'z'] }, currency: 'P-A1' },
        { sku: 'B2', qty: 1, price: 3, product: { tags: [] }, currency: 'P-B2' },
      ],
      status: 'paid',
      note: null,
      copy: { name: 'Ada', email: 'ada@example.com', address: { city: 'London' }, extra: 1 },
      items: [{ sku: 'A1' }, { sku: 'B2' }],
    });
  });

  it('does not mutate the input without passThrough either', () => {
    const input = deepFreeze({ a: { b: { c: 1 } }, list: [{ v: '1' }, { v: '2' }] });
    const out = run(
      { mapping: { x: 'a', 'x.b.d': 2, l: 'list', 'l[0].w': 0 }, unset: ['x.b.c'], cast: { 'l[*].v': 'int' } },
      input,
    );
    expect(out).toEqual({ x: { b: { d: 2 } }, l: [{ v: 1, w: 0 }, { v: 2 }] });
    expect(input).toEqual({ a: { b: { c: 1 } }, list: [{ v: '1' }, { v: '2' }] });
  });

  it('returns a new object even for an empty passThrough spec', () => {
    const input = order();
    const out = compileMapping({ mapping: {}, unset: [], cast: {}, passThrough: true })(input);
    expect(out).not.toBe(input);
    expect(out).toEqual(input);
    expect(compileMapping({ mapping: {}, unset: [], cast: {}, passThrough: false })(input)).toEqual({});
  });

  it('gives every record its own copy of object constants', () => {
    const f = compile({ mapping: { obj: { const: { a: [1] } } } });
    const a = f({});
    const b = f({});
    expect(a.obj).toEqual({ a: [1] });
    expect(a.obj).not.toBe(b.obj);
  });

  it('is reusable across records and does not leak state after an error', () => {
    const f = compile({ passThrough: true, cast: { 'l[*].n': 'int' } });
    expect(() => f({ l: [{ n: '1' }, { n: 'x' }] })).toThrow('cast "l[1].n" to int failed');
    expect(f({ l: [{ n: '3' }] })).toEqual({ l: [{ n: 3 }] });
  });

  it('does not pollute prototypes or read inherited properties', () => {
    const input = JSON.parse('{"__proto__": {"a": 1}, "x": 1}') as Rec;
    const out = run(
      { passThrough: true, mapping: { '__proto__.polluted': { const: 1 }, ctor: 'constructor', str: 'toString', p: '__proto__' } },
      input,
    );
    expect(({} as Rec).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ a: 1, polluted: 1 });
    expect(out.p).toEqual({ a: 1 });
    expect(Object.hasOwn(out, 'ctor')).toBe(false);
    expect(Object.hasOwn(out, 'str')).toBe(false);
    expect(Object.getOwnPropertyDescriptor(input, '__proto__')?.value).toEqual({ a: 1 });
  });

  it('never touches a deep-frozen input for randomly generated specs (seeded)', () => {
    let seed = 20240601;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const names = ['a', 'b', 'c'] as const;
    const randPath = (): string => {
      let p: string = pick(names);
      for (let i = Math.floor(rnd() * 4); i > 0; i--) {
        const r = rnd();
        p += r < 0.5 ? `.${pick(names)}` : r < 0.75 ? pick(['[*]', '.[*]']) : `[${Math.floor(rnd() * 2)}]`;
      }
      return p;
    };
    const randValue = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.3) return pick([1, 'x', '2', null, true, '2024-01-01']);
      if (r < 0.65) return Object.fromEntries(names.filter(() => rnd() < 0.6).map((k) => [k, randValue(depth + 1)]));
      return Array.from({ length: Math.floor(rnd() * 3) }, () => randValue(depth + 1));
    };
    let applied = 0;
    for (let iter = 0; iter < 3000; iter++) {
      const mapping: Rec = {};
      for (let i = Math.floor(rnd() * 4); i > 0; i--) mapping[randPath()] = rnd() < 0.75 ? randPath() : { const: randValue(2) };
      const cast: Rec = {};
      for (let i = Math.floor(rnd() * 3); i > 0; i--) cast[randPath()] = pick(['string', 'int', 'float', 'bool', 'datetime', 'json']);
      const v = validateMappingSpec({ mapping, cast, unset: [randPath(), randPath()].slice(0, Math.floor(rnd() * 3)), passThrough: rnd() < 0.6 });
      if (!v.ok) continue;
      const f = compileMapping(v.spec);
      const record = Object.fromEntries(names.filter(() => rnd() < 0.8).map((k) => [k, randValue(0)]));
      const snapshot = JSON.stringify(record);
      const frozen = deepFreeze(JSON.parse(snapshot) as Rec);
      let fromFrozen: unknown;
      let fromFresh: unknown;
      try {
        fromFrozen = f(frozen);
      } catch (e) {
        // Anything but a MappingRecordError (e.g. a TypeError from writing to a frozen object) fails.
        expect(e).toBeInstanceOf(MappingRecordError);
        fromFrozen = (e as MappingRecordError).message;
      }
      try {
        fromFresh = f(JSON.parse(snapshot) as Rec);
      } catch (e) {
        fromFresh = (e as MappingRecordError).message;
      }
      expect(JSON.stringify(frozen)).toBe(snapshot);
      expect(fromFrozen).toEqual(fromFresh);
      applied++;
    }
    expect(applied).toBeGreaterThan(1000);
  });

  it.each<[string, MappingSpec]>([
    ['a bad target path', { mapping: { 'a..b': 'x' }, unset: [], cast: {}, passThrough: false }],
    ['a bad unset path', { mapping: {}, unset: ['a['], cast: {}, passThrough: false }],
    ['an unknown cast type', { mapping: {}, unset: [], cast: { a: 'money' as CastType }, passThrough: false }],
    ['too many target stars', { mapping: { 'a[*]': 'b' }, unset: [], cast: {}, passThrough: false }],
  ])('throws at compile time for %s', (_name, spec) => {
    expect(() => compileMapping(spec)).toThrow(Error);
  });
});

describe('mapFieldSchema', () => {
  type Field = ReturnType<typeof mapFieldSchema>[number];
  const fields: Field[] = [
    { name: 'id', type: 'integer', nullable: false },
    { name: 'name', type: 'string', nullable: false },
    { name: 'email', type: 'string', nullable: true },
    { name: 'created', type: 'datetime', nullable: false },
    { name: 'meta', type: 'json', nullable: true },
  ];
  const spec = (s: Partial<MappingSpec>): MappingSpec => ({ mapping: {}, unset: [], cast: {}, passThrough: false, ...s });

  it.each<{ name: string; spec: MappingSpec; expected: Field[] }>([
    { name: 'passThrough copies the input fields', spec: spec({ passThrough: true }), expected: fields },
    { name: 'no passThrough and no mapping: nothing', spec: spec({}), expected: [] },
    {
      name: 'passThrough with a top-level unset',
      spec: spec({ passThrough: true, unset: ['email', 'meta.x', 'nope'] }),
      expected: fields.filter((f) => f.name !== 'email'),
    },
    {
      name: 'a plain rename keeps type and nullability',
      spec: spec({ mapping: { userId: 'id', mail: 'email' } }),
      expected: [
        { name: 'userId', type: 'integer', nullable: false },
        { name: 'mail', type: 'string', nullable: true },
      ],
    },
    {
      name: 'nested or array sources and targets are json',
      spec: spec({ mapping: { city: 'meta.city', first: 'tags[0]', all: 'lines[*].sku', 'profile.name': 'name', 'arr[0]': 'id' } }),
      expected: [
        { name: 'city', type: 'json', nullable: true },
        { name: 'first', type: 'json', nullable: true },
        { name: 'all', type: 'json', nullable: true },
        { name: 'profile', type: 'json', nullable: true },
        { name: 'arr', type: 'json', nullable: true },
      ],
    },
    {
      name: 'constants take the constant type',
      spec: spec({ mapping: { s: { const: 'x' }, i: 3, f: 0.5, b: true, n: null, o: { const: { a: 1 } }, l: { const: [1] }, fc: { const: 2.5 } } }),
      expected: [
        { name: 's', type: 'string', nullable: true },
        { name: 'i', type: 'integer', nullable: true },
        { name: 'f', type: 'number', nullable: true },
        { name: 'b', type: 'boolean', nullable: true },
        { name: 'n', type: 'json', nullable: true },
        { name: 'o', type: 'json', nullable: true },
        { name: 'l', type: 'json', nullable: true },
        { name: 'fc', type: 'number', nullable: true },
      ],
    },
    {
      name: 'an unknown source field is json and nullable',
      spec: spec({ mapping: { x: 'missing' } }),
      expected: [{ name: 'x', type: 'json', nullable: true }],
    },
    {
      name: 'casts set the type of top-level fields; nested and missing casts are ignored',
      spec: spec({
        passThrough: true,
        mapping: { idText: 'id' },
        cast: { id: 'string', email: 'bool', created: 'int', meta: 'float', idText: 'datetime', name: 'json', 'meta.x': 'int', nope: 'int' },
      }),
      expected: [
        { name: 'id', type: 'string', nullable: false },
        { name: 'name', type: 'json', nullable: false },
        { name: 'email', type: 'boolean', nullable: true },
        { name: 'created', type: 'integer', nullable: false },
        { name: 'meta', type: 'number', nullable: true },
        { name: 'idText', type: 'datetime', nullable: false },
      ],
    },
    {
      name: 'order: passThrough fields keep their place when remapped, new targets follow in mapping order',
      spec: spec({ passThrough: true, mapping: { zeta: 'name', name: { const: 'x' }, alpha: 'id', 'meta.k': 1 } }),
      expected: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'name', type: 'string', nullable: true },
        { name: 'email', type: 'string', nullable: true },
        { name: 'created', type: 'datetime', nullable: false },
        { name: 'meta', type: 'json', nullable: true },
        { name: 'zeta', type: 'string', nullable: false },
        { name: 'alpha', type: 'integer', nullable: false },
      ],
    },
    {
      name: 'a mapped target that is unset is removed',
      spec: spec({ mapping: { tmp: 'id', keep: 'name' }, unset: ['tmp'] }),
      expected: [{ name: 'keep', type: 'string', nullable: false }],
    },
  ])('$name', ({ spec: s, expected }) => {
    expect(mapFieldSchema(s, fields)).toEqual(expected);
  });

  it('does not modify the input field list', () => {
    const input = fields.map((f) => ({ ...f }));
    mapFieldSchema(spec({ passThrough: true, cast: { id: 'string' }, unset: ['email'] }), input);
    expect(input).toEqual(fields);
  });
});
