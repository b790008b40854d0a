/**
 * Record-mapping engine (modelled on Open Connector mappings and Algolia attribute paths).
 *
 * Contract of a compiled {@link MappingSpec}, applied to one record at a time:
 *
 * 1. `output = passThrough ? copy(input) : {}`.
 * 2. Each `mapping` entry, in insertion order, writes `target <- value`. A string value is a
 *    source path read from the ORIGINAL input record (never from the output being built, so
 *    entries do not chain); a number/boolean/null or `{ "const": X }` is a constant. A missing
 *    source path (or one that runs into a value of the wrong kind) writes nothing; a constant is
 *    always written. Intermediate objects/arrays are created as needed (a `null` intermediate is
 *    replaced); writing through an existing value of the wrong kind (e.g. `a.b` when `a` is a
 *    string) throws `MappingRecordError` with code `TYPE_MISMATCH`.
 * 3. `[*]` in a source reads every element and yields nested arrays, one level per star. The
 *    first k stars of the source are distributed over the k stars of the target (element i goes
 *    to element i, one target element per source element, created even when that element's
 *    value is missing); remaining source stars are collected into arrays in which a missing value
 *    is `null`. A target may not have more stars than its source (a constant has none).
 * 4. `unset` removes paths (missing paths ignored). An index step removes that element (later
 *    elements shift); a trailing `[*]` empties the array; `[*]` elsewhere applies to every element.
 * 5. `cast` converts values in place, in insertion order. A missing path or a `null` value is
 *    left as is; a value that cannot be converted throws `MappingRecordError` (`CAST_FAILED`).
 *    string: numbers/booleans via String, objects/arrays via JSON.stringify. int: integer numbers
 *    and integer strings (trimmed, "4.0" ok) within the safe-integer range. float: finite numbers
 *    and decimal strings. Text is read by drivers/kit/values.ts, as the drivers read it. bool: booleans, 1/0 and the boolean words of drivers/kit/values.ts (true/false, t/f, yes/no, y/n, on/off, 1/0, any case).
 *    datetime: ISO-8601 date or date-time (no offset = UTC; impossible dates rejected) or epoch
 *    milliseconds -> `toISOString()` form. json: strings are parsed, other values kept.
 *
 * Paths: `a.b.c`, index steps `[n]`, all-elements steps `[*]`, written `a[0].b` or `a.[0].b`.
 * A path starts with a field name; field names are any characters except `.`, `[` and `]`.
 *
 * The input record is never mutated. The output shares every nested object/array that the spec
 * does not write into with the input (structural sharing: only containers on a written, unset
 * or cast path are copied), so treat records as immutable or clone before mutating them.
 * Constants are copied per record. Error paths are concrete: `[*]` is replaced by the index.
 */
import { INTEGER_LITERAL, isoFromMs, MAX_DATE_MS, NUMBER_LITERAL, parseBooleanText, parseIntegerText, parseIsoMs, parseNumberText } from '../drivers/kit/values.js';
import type { FieldSchema, FieldType } from '../drivers/types.js';

export type CastType = 'string' | 'int' | 'float' | 'bool' | 'datetime' | 'json';

export type MappingValue = string | number | boolean | null | { const: unknown };

export interface MappingSpec {
  /** target path <- source path / constant, applied in insertion order. */
  mapping: Record<string, MappingValue>;
  /** Paths removed from the output. */
  unset: string[];
  /** path -> type, applied to the output. */
  cast: Record<string, CastType>;
  /** Start the output from a copy of the input. */
  passThrough: boolean;
}

export type PathStep = { kind: 'key'; key: string } | { kind: 'index'; index: number } | { kind: 'all' };

export type MappingErrorCode = 'CAST_FAILED' | 'TYPE_MISMATCH';

/** A record the spec cannot be applied to. `path` is concrete (`lines[2].qty`). */
export class MappingRecordError extends Error {
  override readonly name = 'MappingRecordError';
  constructor(
    message: string,
    readonly path: string,
    readonly code: MappingErrorCode,
  ) {
    super(message);
  }
}

export const CAST_TYPES: readonly CastType[] = ['string', 'int', 'float', 'bool', 'datetime', 'json'];

/** JSON Schema's names (what discovery reports) accepted for the cast types they mean. */
const CAST_ALIASES: Readonly<Record<string, CastType>> = { integer: 'int', number: 'float', boolean: 'bool' };

/** Every accepted cast name, for error messages. */
export const CAST_NAMES: readonly string[] = [...CAST_TYPES, ...Object.keys(CAST_ALIASES)];

/** The cast type a name stands for (`integer` is `int`), or undefined for an unknown name. */
export function castTypeOf(name: string): CastType | undefined {
  if ((CAST_TYPES as readonly string[]).includes(name)) return name as CastType;
  return hasOwn(CAST_ALIASES, name) ? CAST_ALIASES[name] : undefined;
}

/* ------------------------------------------------------------------------------------------ */
/* Paths                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Largest index a path may name (writing pads arrays with null up to the index). */
const MAX_INDEX = 1_000_000;

/** Parses a path; throws `Error` with a message describing the first syntax problem. */
export function parsePath(path: string): PathStep[] {
  if (typeof path !== 'string') throw new Error('path must be a string');
  const n = path.length;
  if (n === 0) throw new Error('path is empty');
  if (path[0] === '[') throw new Error('path must start with a field name');
  const steps: PathStep[] = [];
  let i = 0;
  let atSegmentStart = true;
  while (i < n) {
    const ch = path[i];
    if (atSegmentStart && ch !== '[') {
      let j = i;
      while (j < n && path[j] !== '.' && path[j] !== '[' && path[j] !== ']') j++;
      if (j === i) {
        if (path[j] === ']') throw new Error(`unexpected "]" at position ${j}`);
        throw new Error(`empty field name at position ${i}`);
      }
      if (path[j] === ']') throw new Error(`unexpected "]" at position ${j}`);
      steps.push({ kind: 'key', key: path.slice(i, j) });
      i = j;
    } else if (ch === '[') {
      const close = path.indexOf(']', i + 1);
      if (close === -1) throw new Error(`unbalanced "[" at position ${i}`);
      const inner = path.slice(i + 1, close);
      if (inner.includes('[')) throw new Error(`unbalanced "[" at position ${i}`);
      if (inner === '*') {
        steps.push({ kind: 'all' });
      } else if (/^\d+$/.test(inner)) {
        const index = Number(inner);
        if (index > MAX_INDEX) throw new Error(`index [${inner}] is too large (max ${MAX_INDEX})`);
        steps.push({ kind: 'index', index });
      } else {
        throw new Error(`invalid array step "[${inner}]": expected a non-negative integer or *`);
      }
      i = close + 1;
    } else if (ch === ']') {
      throw new Error(`unexpected "]" at position ${i}`);
    } else {
      throw new Error(`expected "." or "[" at position ${i}`);
    }
    // After a step: end, ".", or "[".
    if (i === n) break;
    const next = path[i];
    if (next === '.') {
      if (i + 1 === n) throw new Error('path ends with "."');
      i++;
      atSegmentStart = true;
    } else if (next === '[') {
      atSegmentStart = false;
    } else if (next === ']') {
      throw new Error(`unexpected "]" at position ${i}`);
    } else {
      throw new Error(`expected "." or "[" at position ${i}`);
    }
  }
  return steps;
}

function formatSteps(steps: readonly PathStep[]): string {
  let s = '';
  for (const st of steps) {
    if (st.kind === 'key') s += s === '' ? st.key : `.${st.key}`;
    else if (st.kind === 'index') s += `[${st.index}]`;
    else s += '[*]';
  }
  return s;
}

function countStars(steps: readonly PathStep[]): number {
  let n = 0;
  for (const st of steps) if (st.kind === 'all') n++;
  return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Validation                                                                                 */
/* ------------------------------------------------------------------------------------------ */

export interface MappingSpecError {
  path: string;
  message: string;
}

type Rec = Record<string, unknown>;

const hasOwn = Object.hasOwn as (o: object, k: PropertyKey) => boolean;

function isPlainObject(v: unknown): v is Rec {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function isJsonValue(v: unknown, depth = 0): boolean {
  if (depth > 200) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!isJsonValue(v[i], depth + 1)) return false;
    return true;
  }
  if (isPlainObject(v)) {
    for (const k in v) if (!isJsonValue(v[k], depth + 1)) return false;
    return true;
  }
  return false;
}

function setKey(o: Rec, key: string, v: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(o, key, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[key] = v;
  }
}

/** Deep copy of JSON-like data (plain objects and arrays; other values are shared). */
function cloneJson(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) out.push(cloneJson(v[i]));
    return out;
  }
  if (!isPlainObject(v)) return v;
  const out: Rec = {};
  for (const k in v) setKey(out, k, cloneJson(v[k]));
  return out;
}

const TOP_LEVEL_KEYS = new Set(['mapping', 'unset', 'cast', 'passThrough']);

/**
 * Checks an untrusted spec (e.g. from the API) and returns a normalised copy. Missing or null
 * `mapping`/`unset`/`cast`/`passThrough` default to `{}`, `[]`, `{}`, `false`. Every problem is
 * reported, each with the offending key (`cast.price`, `mapping.items[*].x`, `unset[2]`).
 */
export function validateMappingSpec(
  input: unknown,
): { ok: true; spec: MappingSpec } | { ok: false; errors: MappingSpecError[] } {
  const errors: MappingSpecError[] = [];
  if (!isPlainObject(input)) {
    return { ok: false, errors: [{ path: '', message: 'mapping spec must be an object' }] };
  }
  for (const k of Object.keys(input)) {
    if (!TOP_LEVEL_KEYS.has(k)) {
      errors.push({ path: k, message: `unknown key "${k}" (expected mapping, unset, cast, passThrough)` });
    }
  }

  const mapping: Record<string, MappingValue> = {};
  const rawMapping = input.mapping;
  if (rawMapping !== undefined && rawMapping !== null) {
    if (!isPlainObject(rawMapping)) {
      errors.push({ path: 'mapping', message: 'must be an object of target path -> source path or constant' });
    } else {
      for (const target of Object.keys(rawMapping)) {
        const err = checkMappingEntry(target, rawMapping[target]);
        if (err !== null) errors.push({ path: `mapping.${target}`, message: err });
        else setKey(mapping, target, normaliseValue(rawMapping[target]));
      }
    }
  }

  const unset: string[] = [];
  const rawUnset = input.unset;
  if (rawUnset !== undefined && rawUnset !== null) {
    if (!Array.isArray(rawUnset)) {
      errors.push({ path: 'unset', message: 'must be an array of paths' });
    } else {
      rawUnset.forEach((p: unknown, i: number) => {
        if (typeof p !== 'string') {
          errors.push({ path: `unset[${i}]`, message: 'must be a string path' });
          return;
        }
        const err = pathError(p);
        if (err !== null) errors.push({ path: `unset[${i}]`, message: `invalid path "${p}": ${err}` });
        else unset.push(p);
      });
    }
  }

  const cast: Record<string, CastType> = {};
  const rawCast = input.cast;
  if (rawCast !== undefined && rawCast !== null) {
    if (!isPlainObject(rawCast)) {
      errors.push({ path: 'cast', message: 'must be an object of path -> cast type' });
    } else {
      for (const p of Object.keys(rawCast)) {
        const t = rawCast[p];
        const err = pathError(p);
        if (err !== null) {
          errors.push({ path: `cast.${p}`, message: `invalid path: ${err}` });
        } else if (typeof t !== 'string') {
          errors.push({ path: `cast.${p}`, message: `cast type must be a string, one of ${CAST_NAMES.join(', ')}` });
        } else if (!castTypeOf(t)) {
          errors.push({ path: `cast.${p}`, message: `unknown cast type "${t}"; use one of ${CAST_NAMES.join(', ')}` });
        } else {
          setKey(cast, p, castTypeOf(t)!);
        }
      }
    }
  }

  let passThrough = false;
  const rawPass = input.passThrough;
  if (rawPass !== undefined && rawPass !== null) {
    if (typeof rawPass !== 'boolean') errors.push({ path: 'passThrough', message: 'must be a boolean' });
    else passThrough = rawPass;
  }

  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, spec: { mapping, unset, cast, passThrough } };
}

function pathError(p: string): string | null {
  try {
    parsePath(p);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

function isConstObject(v: unknown): v is { const: unknown } {
  return isPlainObject(v) && hasOwn(v, 'const') && Object.keys(v).length === 1;
}

/** Returns an error message for one mapping entry, or null when it is valid. */
function checkMappingEntry(target: string, value: unknown): string | null {
  let targetSteps: PathStep[];
  try {
    targetSteps = parsePath(target);
  } catch (e) {
    return `invalid target path: ${(e as Error).message}`;
  }
  const targetStars = countStars(targetSteps);
  if (typeof value === 'string') {
    let sourceSteps: PathStep[];
    try {
      sourceSteps = parsePath(value);
    } catch (e) {
      return `invalid source path "${value}": ${(e as Error).message}`;
    }
    const sourceStars = countStars(sourceSteps);
    if (targetStars > sourceStars) {
      return `target has ${targetStars} [*] but source "${value}" has ${sourceStars}; a target may not have more [*] than its source`;
    }
    return null;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a number constant must be finite';
  if (value === null || typeof value === 'number' || typeof value === 'boolean' || isConstObject(value)) {
    if (isConstObject(value) && !isJsonValue(value.const)) return 'constant is not a JSON value';
    if (targetStars > 0) {
      return `target has ${targetStars} [*] but a constant has none; a target may not have more [*] than its source`;
    }
    return null;
  }
  return 'value must be a source path string, a number, boolean, null, or { "const": <JSON value> }';
}

function normaliseValue(v: unknown): MappingValue {
  if (isConstObject(v)) return { const: cloneJson(v.const) };
  return v as MappingValue;
}

/* ------------------------------------------------------------------------------------------ */
/* Compiled representation                                                                    */
/* ------------------------------------------------------------------------------------------ */

const KEY = 0;
const INDEX = 1;
const ALL = 2;

/** A precompiled path step; one monomorphic shape for all kinds. */
interface CStep {
  kind: 0 | 1 | 2;
  key: string;
  index: number;
  /** The key also names an Object.prototype property: read it only when it is an own property. */
  guarded: boolean;
  /** Position of this step in its full path (for error messages). */
  pos: number;
  /** Star number of an ALL step (0-based), else -1. */
  star: number;
}

function compileSteps(steps: readonly PathStep[]): CStep[] {
  let star = 0;
  return steps.map((s, pos): CStep => {
    if (s.kind === 'key') return { kind: KEY, key: s.key, index: -1, guarded: s.key in Object.prototype, pos, star: -1 };
    if (s.kind === 'index') return { kind: INDEX, key: '', index: s.index, guarded: false, pos, star: -1 };
    return { kind: ALL, key: '', index: -1, guarded: false, pos, star: star++ };
  });
}

/** Splits a path at its `[*]` steps: `a[*].b[*]` -> [[a], [b], []]. */
function splitAtStars(steps: CStep[]): CStep[][] {
  const segs: CStep[][] = [[]];
  for (const s of steps) {
    if (s.kind === ALL) segs.push([]);
    else segs[segs.length - 1]!.push(s);
  }
  return segs;
}

/**
 * Trie of every path the spec writes, unsets or casts. Containers on these paths are copied
 * before they are modified; everything else is shared. Index and `[*]` steps share one child
 * ("some element"), which is conservative (all elements are copied) but always safe.
 */
interface TNode {
  keys: Map<string, TNode> | null;
  elem: TNode | null;
  leaf: boolean;
  keyList: { key: string; guarded: boolean; node: TNode }[];
  /** A mapping may add keys to objects here: copy key by key (V8 handles adding properties to
   * a spread copy badly) rather than with a spread. */
  adds: boolean;
  /** A mapping target runs through or ends at this node. */
  mapped: boolean;
  /** Reached from the root by key steps only (one concrete location). */
  keyOnly: boolean;
  /** Keys unset here that no mapping writes: left out when the object is copied (cheaper than
   * `delete`, which also slows every later access to the object). */
  skip: Set<string> | null;
}

function newNode(keyOnly: boolean): TNode {
  return { keys: null, elem: null, leaf: true, keyList: [], adds: false, mapped: false, keyOnly, skip: null };
}

function trieInsert(root: TNode, steps: CStep[], isMapping: boolean): TNode {
  let n = root;
  for (const s of steps) {
    n.leaf = false;
    if (s.kind === KEY) {
      if (isMapping) n.adds = true;
      n.keys ??= new Map();
      let c = n.keys.get(s.key);
      if (c === undefined) {
        c = newNode(n.keyOnly);
        n.keys.set(s.key, c);
        n.keyList.push({ key: s.key, guarded: s.guarded, node: c });
      }
      n = c;
    } else {
      n.elem ??= newNode(false);
      n = n.elem;
    }
    if (isMapping) n.mapped = true;
  }
  return n;
}

/** Marks top-level-style unsets (key steps only, nothing mapped into them) to be skipped on copy. */
function planSkips(root: TNode, unsets: CStep[][]): void {
  for (const steps of unsets) {
    let n: TNode | undefined = root;
    for (let i = 0; i < steps.length - 1 && n !== undefined; i++) {
      const s = steps[i]!;
      n = s.kind === KEY ? n.keys?.get(s.key) : undefined;
    }
    const last = steps[steps.length - 1]!;
    if (n === undefined || !n.keyOnly || last.kind !== KEY) continue;
    const child = n.keys?.get(last.key);
    if (child === undefined || child.mapped) continue;
    (n.skip ??= new Set()).add(last.key);
  }
}

function getOwn(o: Rec, key: string, guarded: boolean): unknown {
  if (guarded && !hasOwn(o, key)) return undefined;
  return o[key];
}

/** Copies the containers of `v` that lie on paths of `n`; shares everything else. */
function cloneAlong(v: unknown, n: TNode): unknown {
  if (n.leaf || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const e = n.elem;
    if (e === null) return v;
    const c = v.slice();
    if (!e.leaf) for (let i = 0; i < c.length; i++) c[i] = cloneAlong(c[i], e);
    return c;
  }
  if (n.keys === null || !isPlainObject(v)) return v;
  return cloneKeys(copyObject(v, n), n);
}

/** Shallow copy of an object for node `n` (see {@link TNode.adds} and {@link TNode.skip}). */
function copyObject(v: Rec, n: TNode): Rec {
  if (!n.adds && n.skip === null) return { ...v };
  const o: Rec = {};
  const skip = n.skip;
  for (const k in v) {
    if (skip !== null && skip.has(k)) continue;
    if (k === '__proto__') setKey(o, k, v[k]);
    else o[k] = v[k];
  }
  return o;
}

function cloneKeys(c: Rec, n: TNode): Rec {
  const list = n.keyList;
  for (let i = 0; i < list.length; i++) {
    const k = list[i]!;
    if (k.node.leaf) continue;
    const cur = getOwn(c, k.key, k.guarded);
    if (cur === null || typeof cur !== 'object') continue;
    const nv = cloneAlong(cur, k.node);
    if (nv !== cur) setKey(c, k.key, nv);
  }
  return c;
}

const MISSING: unique symbol = Symbol('missing');

/** Reads a star-free path; MISSING when absent or when it runs into a value of the wrong kind. */
function readPlain(root: unknown, steps: CStep[]): unknown {
  let cur = root;
  for (let i = 0; i < steps.length; i++) {
    if (cur === null || typeof cur !== 'object') return MISSING;
    const s = steps[i]!;
    if (s.kind === KEY) {
      if (Array.isArray(cur)) return MISSING;
      cur = getOwn(cur as Rec, s.key, s.guarded);
    } else {
      if (!Array.isArray(cur) || s.index >= cur.length) return MISSING;
      cur = cur[s.index];
    }
  }
  return cur === undefined ? MISSING : cur;
}

/**
 * Reads a path split at its stars. Star levels below `distributed` keep MISSING elements (the
 * writer skips them); deeper levels are collected into plain arrays with MISSING -> null.
 */
function readSegs(cur: unknown, segs: CStep[][], level: number, distributed: number): unknown {
  const v = readPlain(cur, segs[level]!);
  if (level === segs.length - 1 || v === MISSING) return v;
  if (!Array.isArray(v)) return MISSING;
  const out: unknown[] = [];
  const fill = level >= distributed;
  for (let i = 0; i < v.length; i++) {
    const r = readSegs(v[i], segs, level + 1, distributed);
    out.push(fill && r === MISSING ? null : r);
  }
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** What is being processed, for error messages: the full path and the current star indices. */
interface Ctx {
  steps: CStep[];
  idx: number[];
}

function concretePath(steps: CStep[], idx: number[], upto: number): string {
  let s = '';
  for (let i = 0; i <= upto && i < steps.length; i++) {
    const st = steps[i]!;
    if (st.kind === KEY) s += i === 0 ? st.key : `.${st.key}`;
    else if (st.kind === INDEX) s += `[${st.index}]`;
    else s += `[${idx[st.star] ?? '*'}]`;
  }
  return s;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') {
    if (isPlainObject(v)) return 'an object';
    const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'a non-plain object';
  }
  return typeof v === 'string' ? 'a string' : `a ${typeof v}`;
}

function show(v: unknown): string {
  let s: string;
  if (v instanceof Date) s = Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') s = String(v);
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = String(v);
    }
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function mismatch(ctx: Ctx, pos: number, existing: unknown, wanted: 'object' | 'array'): MappingRecordError {
  const path = concretePath(ctx.steps, ctx.idx, ctx.steps.length - 1);
  const at = concretePath(ctx.steps, ctx.idx, pos);
  return new MappingRecordError(
    `cannot write "${path}": "${at}" is ${describe(existing)}, not ${wanted === 'object' ? 'an object' : 'an array'}`,
    path,
    'TYPE_MISMATCH',
  );
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                    */
/* ------------------------------------------------------------------------------------------ */

const OBJ = 0;
const ARR = 1;
type Kind = typeof OBJ | typeof ARR;

function kindFor(next: CStep | undefined): Kind {
  return next === undefined || next.kind === KEY ? OBJ : ARR;
}

function setIndex(arr: unknown[], i: number, v: unknown): void {
  if (i < arr.length) {
    arr[i] = v;
    return;
  }
  while (arr.length < i) arr.push(null);
  arr.push(v);
}

/** Returns the container at `existing`, creating one in place of undefined/null; checks its kind. */
function asContainer(existing: unknown, kind: Kind, ctx: Ctx, pos: number): Rec | unknown[] | undefined {
  if (existing === undefined || existing === null) return undefined;
  if (kind === OBJ) {
    if (isPlainObject(existing)) return existing;
    throw mismatch(ctx, pos, existing, 'object');
  }
  if (Array.isArray(existing)) return existing;
  throw mismatch(ctx, pos, existing, 'array');
}

/** Steps from an owned container into the child named by `s`, creating it with `kind` if absent. */
function ensureChild(container: Rec | unknown[], s: CStep, kind: Kind, ctx: Ctx): Rec | unknown[] {
  if (s.kind === KEY) {
    const o = container as Rec;
    const c = asContainer(getOwn(o, s.key, s.guarded), kind, ctx, s.pos);
    if (c !== undefined) return c;
    const created = kind === OBJ ? {} : [];
    setKey(o, s.key, created);
    return created;
  }
  const a = container as unknown[];
  const i = s.index;
  const c = asContainer(i < a.length ? a[i] : undefined, kind, ctx, s.pos);
  if (c !== undefined) return c;
  const created = kind === OBJ ? {} : [];
  setIndex(a, i, created);
  return created;
}

/** Writes `v` at the star-free `steps` below `container` (steps.length >= 1). */
function writePlain(container: Rec | unknown[], steps: CStep[], v: unknown, ctx: Ctx): void {
  let cur = container;
  const last = steps.length - 1;
  for (let i = 0; i < last; i++) cur = ensureChild(cur, steps[i]!, kindFor(steps[i + 1]), ctx);
  const s = steps[last]!;
  if (s.kind === KEY) setKey(cur as Rec, s.key, v);
  else setIndex(cur as unknown[], s.index, v);
}

/** Walks `steps` below `container`, creating containers; the container reached is an array. */
function ensureArrayPath(container: Rec | unknown[], steps: CStep[], ctx: Ctx): unknown[] {
  let cur = container;
  for (let i = 0; i < steps.length; i++) {
    cur = ensureChild(cur, steps[i]!, i + 1 < steps.length ? kindFor(steps[i + 1]) : ARR, ctx);
  }
  return cur as unknown[];
}

interface MapOp {
  constant: boolean;
  value: unknown;
  constIsObject: boolean;
  source: CStep[][];
  sourceStars: number;
  target: CStep[][];
  targetSteps: CStep[];
  targetStars: number;
  /** Position of each `[*]` step of the target. */
  starPos: number[];
  /** Trie node of the target: what a written value must have copied. */
  node: TNode;
}

/** Distributes `values` (the array for target star `level`) over the target's star `level`. */
function writeStar(container: Rec | unknown[], op: MapOp, level: number, values: unknown[], ctx: Ctx): void {
  const arr = ensureArrayPath(container, op.target[level]!, ctx);
  const next = op.target[level + 1]!;
  const last = level + 1 === op.targetStars;
  const kind = next.length === 0 ? ARR : kindFor(next[0]);
  const starPos = op.starPos[level]!;
  const idx = ctx.idx;
  for (let i = 0; i < values.length; i++) {
    const ev = values[i];
    idx.push(i);
    if (last && next.length === 0) {
      setIndex(arr, i, ev === MISSING ? null : cloneAlong(ev, op.node));
    } else {
      let el = asContainer(i < arr.length ? arr[i] : undefined, kind, ctx, starPos);
      if (el === undefined) {
        el = kind === OBJ ? {} : [];
        setIndex(arr, i, el);
      }
      if (ev !== MISSING) {
        if (last) writePlain(el, next, cloneAlong(ev, op.node), ctx);
        else writeStar(el, op, level + 1, ev as unknown[], ctx);
      }
    }
    idx.pop();
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Unset and cast                                                                             */
/* ------------------------------------------------------------------------------------------ */

function unsetAt(cur: unknown, steps: CStep[], i: number): void {
  const s = steps[i]!;
  const last = i === steps.length - 1;
  if (s.kind === KEY) {
    if (!isPlainObject(cur)) return;
    if (last) {
      if (hasOwn(cur, s.key)) delete cur[s.key];
    } else {
      unsetAt(getOwn(cur, s.key, s.guarded), steps, i + 1);
    }
    return;
  }
  if (!Array.isArray(cur)) return;
  if (s.kind === INDEX) {
    if (s.index >= cur.length) return;
    if (last) cur.splice(s.index, 1);
    else unsetAt(cur[s.index], steps, i + 1);
    return;
  }
  if (last) cur.length = 0;
  else for (let j = 0; j < cur.length; j++) unsetAt(cur[j], steps, i + 1);
}

class CastFailure {
  constructor(readonly reason: string) {}
}

function castString(v: unknown): unknown {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? new CastFailure('invalid Date') : v.toISOString();
  try {
    const s = JSON.stringify(v);
    return typeof s === 'string' ? s : new CastFailure(`${describe(v)} cannot be serialised`);
  } catch (e) {
    return new CastFailure(`value cannot be serialised to JSON (${(e as Error).message})`);
  }
}

function castInt(v: unknown): unknown {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return new CastFailure(`${show(v)} is not an integer`);
    if (!Number.isSafeInteger(v)) return new CastFailure(`${show(v)} is outside the safe integer range`);
    return v + 0;
  }
  if (typeof v === 'string') {
    const n = parseIntegerText(v);
    if (n !== undefined) return n;
    return new CastFailure(
      INTEGER_LITERAL.test(v.trim())
        ? `${show(v)} is outside the safe integer range`
        : `${show(v)} is not an integer`,
    );
  }
  return new CastFailure(`${show(v)} is not an integer`);
}

function castFloat(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v + 0 : new CastFailure(`${show(v)} is not a finite number`);
  if (typeof v === 'string') {
    const n = parseNumberText(v);
    if (n !== undefined) return n;
    if (NUMBER_LITERAL.test(v.trim())) return new CastFailure(`${show(v)} is not a finite number`);
  }
  return new CastFailure(`${show(v)} is not a number`);
}

function castBool(v: unknown): unknown {
  if (typeof v === 'boolean') return v;
  if (v === 1) return true;
  if (v === 0) return false;
  if (typeof v === 'string') {
    const b = parseBooleanText(v);
    if (b !== undefined) return b;
  }
  return new CastFailure(`${show(v)} is not a boolean`);
}

function castDatetime(v: unknown): unknown {
  let ms = NaN;
  if (typeof v === 'string') {
    const t = v.trim();
    ms = parseIsoMs(t);
    // Already canonical (what toISOString produces): keep the string.
    if (t.length === 24 && t.charCodeAt(10) === 84 && t.charCodeAt(19) === 46 && t.charCodeAt(23) === 90 && ms === ms) {
      return t;
    }
  } else if (typeof v === 'number') {
    ms = v;
  } else if (v instanceof Date) {
    ms = v.getTime();
  }
  if (Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS) return isoFromMs(ms);
  return new CastFailure(
    typeof v === 'number'
      ? `${show(v)} is not a valid epoch-milliseconds timestamp`
      : `${show(v)} is not an ISO-8601 date-time or epoch milliseconds`,
  );
}

function castJson(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch (e) {
    return new CastFailure(`${show(v)} is not valid JSON (${(e as Error).message})`);
  }
}

/** Converters: return the converted value or a {@link CastFailure}. */
const CASTERS: Record<CastType, (v: unknown) => unknown> = {
  string: castString,
  int: castInt,
  float: castFloat,
  bool: castBool,
  datetime: castDatetime,
  json: castJson,
};

interface CastOp {
  steps: CStep[];
  type: CastType;
  fn: (v: unknown) => unknown;
}

function castAt(cur: unknown, op: CastOp, i: number, ctx: Ctx): void {
  const steps = op.steps;
  const s = steps[i]!;
  const last = i === steps.length - 1;
  if (s.kind === KEY) {
    if (!isPlainObject(cur)) return;
    const v = getOwn(cur, s.key, s.guarded);
    if (!last) return castAt(v, op, i + 1, ctx);
    if (v === undefined || v === null) return;
    const c = convert(op, v, ctx);
    if (c !== v) setKey(cur, s.key, c);
    return;
  }
  if (!Array.isArray(cur)) return;
  if (s.kind === INDEX) {
    if (s.index >= cur.length) return;
    const v = cur[s.index];
    if (!last) return castAt(v, op, i + 1, ctx);
    if (v === undefined || v === null) return;
    cur[s.index] = convert(op, v, ctx);
    return;
  }
  const idx = ctx.idx;
  for (let j = 0; j < cur.length; j++) {
    idx.push(j);
    const v = cur[j];
    if (!last) castAt(v, op, i + 1, ctx);
    else if (v !== undefined && v !== null) cur[j] = convert(op, v, ctx);
    idx.pop();
  }
}

function convert(op: CastOp, v: unknown, ctx: Ctx): unknown {
  const c = op.fn(v);
  if (c instanceof CastFailure) {
    const path = concretePath(ctx.steps, ctx.idx, ctx.steps.length - 1);
    throw new MappingRecordError(`cast "${path}" to ${op.type} failed: ${c.reason}`, path, 'CAST_FAILED');
  }
  return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Compilation                                                                                */
/* ------------------------------------------------------------------------------------------ */

/**
 * Compiles a spec into a per-record function. Paths are parsed once here; invalid specs throw
 * `Error` (run {@link validateMappingSpec} first for user-facing messages). The returned function
 * throws {@link MappingRecordError} for a record the spec cannot be applied to.
 */
export function compileMapping(spec: MappingSpec): (record: Record<string, unknown>) => Record<string, unknown> {
  const passThrough = spec.passThrough === true;
  const mapping = spec.mapping ?? {};
  const unsetPaths = spec.unset ?? [];
  const castEntries = Object.entries(spec.cast ?? {});
  const root = newNode(true);

  const ops: MapOp[] = [];
  for (const target of Object.keys(mapping)) {
    const problem = checkMappingEntry(target, mapping[target]);
    if (problem !== null) throw new Error(`mapping "${target}": ${problem}`);
    const value = mapping[target];
    const targetSteps = compileSteps(parsePath(target));
    const isSource = typeof value === 'string';
    const sourceSteps = isSource ? compileSteps(parsePath(value)) : [];
    const constant = isSource ? undefined : isConstObject(value) ? value.const : value;
    ops.push({
      constant: !isSource,
      value: constant,
      constIsObject: constant !== null && typeof constant === 'object',
      source: splitAtStars(sourceSteps),
      sourceStars: countStarsC(sourceSteps),
      target: splitAtStars(targetSteps),
      targetSteps,
      targetStars: countStarsC(targetSteps),
      starPos: targetSteps.filter((s) => s.kind === ALL).map((s) => s.pos),
      node: trieInsert(root, targetSteps, true),
    });
  }
  const unsets = unsetPaths.map((p) => {
    const steps = compileSteps(parsePath(p));
    trieInsert(root, steps, false);
    return steps;
  });
  const casts = castEntries.map(([p, name]): CastOp => {
    const type = castTypeOf(name);
    if (!type) throw new Error(`cast "${p}": unknown cast type "${name}"; use one of ${CAST_NAMES.join(', ')}`);
    const steps = compileSteps(parsePath(p));
    trieInsert(root, steps, false);
    return { steps, type, fn: CASTERS[type] };
  });
  planSkips(root, unsets);

  if (ops.length === 0 && unsets.length === 0 && casts.length === 0) {
    return passThrough ? (record) => ({ ...record }) : () => ({});
  }

  const ctx: Ctx = { steps: [], idx: [] };
  return (record) => {
    const out: Rec = passThrough ? cloneKeys(copyObject(record, root), root) : {};
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      let v: unknown;
      if (op.constant) {
        v = op.constIsObject ? cloneJson(op.value) : op.value;
      } else {
        v = op.sourceStars === 0 ? readPlain(record, op.source[0]!) : readSegs(record, op.source, 0, op.targetStars);
        if (v === MISSING) continue;
      }
      ctx.steps = op.targetSteps;
      if (ctx.idx.length !== 0) ctx.idx.length = 0;
      if (op.targetStars !== 0) writeStar(out, op, 0, v as unknown[], ctx);
      else writePlain(out, op.target[0]!, op.constant ? v : cloneAlong(v, op.node), ctx);
    }
    for (let i = 0; i < unsets.length; i++) unsetAt(out, unsets[i]!, 0);
    for (let i = 0; i < casts.length; i++) {
      const c = casts[i]!;
      ctx.steps = c.steps;
      if (ctx.idx.length !== 0) ctx.idx.length = 0;
      castAt(out, c, 0, ctx);
    }
    return out;
  };
}

function countStarsC(steps: CStep[]): number {
  let n = 0;
  for (const s of steps) if (s.kind === ALL) n++;
  return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Output schema                                                                              */
/* ------------------------------------------------------------------------------------------ */

const CAST_FIELD_TYPE: Record<CastType, FieldType> = {
  string: 'string',
  int: 'integer',
  float: 'number',
  bool: 'boolean',
  datetime: 'datetime',
  json: 'json',
};

function constantType(v: unknown): FieldType {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return 'json';
}

/**
 * Best-effort top-level field list of the output, for destinations that create tables.
 * passThrough copies the input fields; each mapping target adds (or retypes) its top-level key:
 * the source field's type for a plain top-level rename, the constant's type for a constant
 * (`null` and objects/arrays are `json`), `json` when the target or source is nested or has an
 * array step. Top-level unsets remove keys; top-level casts set the type. Every field is
 * nullable except passThrough copies of, and plain renames from, non-nullable input fields.
 * Order: passThrough fields in input order, then new mapping targets in mapping order.
 */
export function mapFieldSchema(spec: MappingSpec, input: FieldSchema[]): FieldSchema[] {
  const inputByName = new Map<string, FieldSchema>();
  for (const f of input) if (!inputByName.has(f.name)) inputByName.set(f.name, f);
  const out = new Map<string, { type: FieldType; nullable: boolean }>();
  if (spec.passThrough) for (const f of input) if (!out.has(f.name)) out.set(f.name, { type: f.type, nullable: f.nullable });

  const mapping = spec.mapping ?? {};
  for (const target of Object.keys(mapping)) {
    const targetSteps = safeParse(target);
    const first = targetSteps?.[0];
    if (targetSteps === null || first === undefined || first.kind !== 'key') continue;
    const value = mapping[target];
    let type: FieldType = 'json';
    let nullable = true;
    if (targetSteps.length === 1) {
      if (typeof value === 'string') {
        const sourceSteps = safeParse(value);
        const s0 = sourceSteps !== null && sourceSteps.length === 1 ? sourceSteps[0] : undefined;
        const field = s0 !== undefined && s0.kind === 'key' ? inputByName.get(s0.key) : undefined;
        if (field !== undefined) {
          type = field.type;
          nullable = field.nullable;
        }
      } else {
        type = constantType(isConstObject(value) ? value.const : value);
      }
    }
    out.set(first.key, { type, nullable });
  }

  for (const p of spec.unset ?? []) {
    const steps = safeParse(p);
    if (steps !== null && steps.length === 1 && steps[0]!.kind === 'key') out.delete(steps[0]!.key);
  }
  for (const [p, t] of Object.entries(spec.cast ?? {})) {
    const steps = safeParse(p);
    if (steps === null || steps.length !== 1 || steps[0]!.kind !== 'key') continue;
    const f = out.get(steps[0]!.key);
    const type = CAST_FIELD_TYPE[t];
    if (f !== undefined && type !== undefined) f.type = type;
  }
  return [...out].map(([name, f]) => ({ name, type: f.type, nullable: f.nullable }));
}

function safeParse(p: string): PathStep[] | null {
  try {
    return parsePath(p);
  } catch {
    return null;
  }
}

/** Canonical spelling of a path (`a.[0].b` -> `a[0].b`). */
export function formatPath(path: string | readonly PathStep[]): string {
  return formatSteps(typeof path === 'string' ? parsePath(path) : path);
}
