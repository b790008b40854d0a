import { DriverError, type DataRecord, type FieldType } from '../types.js';
import { K_STRING, K_INTEGER, K_NUMBER, K_BOOLEAN, K_DATETIME, K_JSON, KIND, parseBooleanText, parseIntegerText, parseNumberText } from '../kit/values.js';

/** Values to SQLite parameters: identifiers, declared types, coercions and the compiled row filler. */

export function sanitizeTableName(name: string): string {
  let s = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (s.length === 0) s = 'data';
  if (/^[0-9]/.test(s)) s = `_${s}`;
  if (/^sqlite_/i.test(s)) s = `t_${s}`;
  return s;
}

export function q(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

export const SQL_TYPE: Record<FieldType, string> = {
  string: 'TEXT',
  integer: 'INTEGER',
  number: 'REAL',
  boolean: 'INTEGER',
  datetime: 'TEXT',
  json: 'TEXT',
};

/** Logical type of a declared SQLite column type (SQLite affinity rules, plus a few names). */
export function fieldTypeOfDeclared(declared: string): FieldType {
  const t = declared.toUpperCase();
  if (t.includes('BOOL')) return 'boolean';
  if (t.includes('JSON')) return 'json';
  if (t.includes('INT')) return 'integer';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) {
    return t.includes('DATE') || t.includes('TIME') ? 'datetime' : 'string';
  }
  if (t.includes('DATE') || t.includes('TIME')) return 'datetime';
  if (t === '' || t.includes('BLOB')) return 'string';
  return 'number'; // REAL, FLOA, DOUB and NUMERIC affinity
}

/**
 * Text bound for a typed column is stored as the type when drivers/kit/values.ts reads it as one;
 * other text is refused (a per-record failure), never left to SQLite's own conversions (a STRICT
 * INTEGER column would take "1e3" as 1000 and a boolean column "42").
 */
function coerceString(v: string, kind: number): unknown {
  const typed =
    kind === K_INTEGER ? parseIntegerText(v) : kind === K_NUMBER ? parseNumberText(v) : kind === K_BOOLEAN ? boolToInt(parseBooleanText(v)) : v;
  if (typed === undefined) {
    const name = kind === K_INTEGER ? 'an integer' : kind === K_NUMBER ? 'a number' : 'a boolean';
    throw new RecordFailure(`datatype mismatch: ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)} is not ${name}`);
  }
  return typed;
}

function boolToInt(b: boolean | undefined): number | undefined {
  return b === undefined ? undefined : b ? 1 : 0;
}

/** JS value -> SQLite value for a column of the given kind. Throws TypeError for unstorable values. */
function toSql(v: unknown, kind: number): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      if (kind === K_STRING || kind === K_DATETIME) return v;
      if (kind === K_JSON) return JSON.stringify(v);
      return coerceString(v, kind);
    // A text column keeps a number's or boolean's text form (12345, 1.5, true, as JSON prints
    // them): bound as a number, better-sqlite3 sends a REAL that TEXT affinity turns into '12345.0'.
    case 'number':
      if (kind === K_STRING || kind === K_DATETIME) return String(v);
      return kind === K_JSON ? JSON.stringify(v) : v;
    case 'boolean':
      if (kind === K_JSON || kind === K_STRING || kind === K_DATETIME) return v ? 'true' : 'false';
      return v ? 1 : 0;
    case 'bigint':
      return kind === K_JSON || kind === K_STRING || kind === K_DATETIME ? v.toString() : v;
    case 'object':
      if (v instanceof Date) return v.toISOString();
      if (Buffer.isBuffer(v)) return v;
      return JSON.stringify(v);
    default:
      throw new TypeError(`cannot store a value of type ${typeof v}`);
  }
}

function byteSize(v: unknown): number {
  return typeof v === 'string' ? v.length : v === null ? 1 : 8;
}

export interface Column {
  name: string;
  type: FieldType;
  kind: number;
}

/** A per-record failure: the record is rejected, the batch goes on. */
export class RecordFailure extends Error {}

export function isRecordLevel(e: unknown): boolean {
  if (e instanceof RecordFailure || e instanceof TypeError || e instanceof RangeError) return true;
  const code = (e as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG' || code === 'SQLITE_RANGE')
  );
}

const RETRYABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|PROTOCOL|INTERRUPT)/;

export function wrapError(context: string, e: unknown): DriverError {
  if (e instanceof DriverError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const retryable = typeof code === 'string' && RETRYABLE_CODES.test(code);
  return new DriverError(`SQLite destination: ${context}: ${(e as Error).message ?? String(e)}`, retryable);
}

export function errorMessage(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message : String(e);
  return typeof code === 'string' ? `${code}: ${msg}` : msg;
}

/** Converts a record into statement parameters from `offset`; returns its approximate size in bytes. */
export type FillFn = (rec: DataRecord, params: unknown[], offset: number) => number;

/**
 * Compiles a FillFn for a column list. Property reads with constant keys keep V8's inline
 * caches monomorphic, several times faster than `rec[name]` in a loop (names are embedded
 * as JSON string literals, never as code).
 */
export function compileFill(columns: Column[]): FillFn {
  const lines = columns.map((c, i) => {
    const key = JSON.stringify(c.name);
    const read = c.name in Object.prototype ? `(hasOwn(rec, ${key}) ? rec[${key}] : undefined)` : `rec[${key}]`;
    return `v = toSql(${read}, ${c.kind}); p[o + ${i}] = v; b += byteSize(v);`;
  });
  const factory = new Function(
    'toSql',
    'byteSize',
    'hasOwn',
    `"use strict"; return function fill(rec, p, o) { let v; let b = 0;\n${lines.join('\n')}\nreturn b; };`,
  ) as (t: typeof toSql, s: typeof byteSize, h: typeof Object.hasOwn) => FillFn;
  return factory(toSql, byteSize, Object.hasOwn);
}
