import { fieldTypeOfTypname } from './common.js';
import type { DataRecord, FieldType } from '../types.js';
import { K_STRING, K_INTEGER, K_NUMBER, K_BOOLEAN, K_DATETIME, K_JSON, K_ARRAY, KIND } from '../kit/values.js';

/** Values to PostgreSQL text: the COPY csv cells and literals the destination writes. */

export const SQL_TYPE: Record<FieldType, string> = {
  integer: 'bigint',
  number: 'double precision',
  boolean: 'boolean',
  datetime: 'timestamp with time zone',
  json: 'jsonb',
  string: 'text',
};

export function kindOfType(typname: string, category: string): number {
  if (category === 'A') return K_ARRAY;
  return KIND[fieldTypeOfTypname(typname)];
}

/** A per-record failure found before sending anything. */
export class RecordFailure extends Error {}

function pgArrayLiteral(v: unknown[]): string {
  const parts = v.map((e): string => {
    if (e === null || e === undefined) return 'NULL';
    if (Array.isArray(e)) return pgArrayLiteral(e);
    const s = typeof e === 'object' ? (e instanceof Date ? e.toISOString() : JSON.stringify(e)) : String(e);
    return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  });
  return `{${parts.join(',')}}`;
}

/** PostgreSQL text input for a JS value going into a column of `kind` (never null here). */
function toText(v: unknown, kind: number): string {
  switch (typeof v) {
    case 'string':
      return kind === K_JSON ? JSON.stringify(v) : v;
    case 'number':
      if (kind === K_JSON) return JSON.stringify(v);
      if (Number.isFinite(v)) return String(v);
      return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    case 'boolean':
      if (kind === K_INTEGER || kind === K_NUMBER) return v ? '1' : '0';
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'object':
      if (v instanceof Date) {
        if (Number.isNaN(v.getTime())) throw new RecordFailure('invalid Date');
        return kind === K_JSON ? JSON.stringify(v) : v.toISOString();
      }
      if (Buffer.isBuffer(v)) return kind === K_JSON ? JSON.stringify(v.toString('base64')) : `\\x${v.toString('hex')}`;
      if (kind === K_ARRAY && Array.isArray(v)) return pgArrayLiteral(v);
      return JSON.stringify(v);
    default:
      throw new RecordFailure(`cannot store a value of type ${typeof v}`);
  }
}

const CSV_SPECIAL = /[",\r\n]/;

/** One CSV cell: unquoted empty = NULL, "" = empty string; quotes doubled; leading \ quoted (\. is end-of-data). */
function csvCell(v: unknown, kind: number): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' && kind !== K_JSON && Number.isFinite(v)) return String(v);
  const s = toText(v, kind);
  if (s.length === 0) return '""';
  if (CSV_SPECIAL.test(s) || s.charCodeAt(0) === 92) return `"${s.replace(/"/g, '""')}"`;
  return s;
}

export type LineFn = (rec: DataRecord) => string;

export interface Column {
  name: string;
  sqlType: string;
  kind: number;
}

/** Compiles record → CSV line (no newline) for a column list; keys are embedded as JSON literals. */
export function compileLine(columns: Column[]): LineFn {
  if (columns.length === 0) return () => '';
  const lines = columns.map((c, i) => {
    const key = JSON.stringify(c.name);
    const read = c.name in Object.prototype ? `(hasOwn(rec, ${key}) ? rec[${key}] : undefined)` : `rec[${key}]`;
    // Inline fast paths for the common value/column combinations; everything else goes through cell().
    let fast: string;
    switch (c.kind) {
      case K_INTEGER:
      case K_NUMBER:
        fast = `typeof v === 'number' && v - v === 0 ? '' + v : `;
        break;
      case K_STRING:
      case K_DATETIME:
        fast = `typeof v === 'string' && v.length > 0 && v.charCodeAt(0) !== 92 && !SPECIAL.test(v) ? v : `;
        break;
      case K_BOOLEAN:
        fast = `v === true ? 't' : v === false ? 'f' : `;
        break;
      case K_JSON:
        // JSON text always goes quoted (quotes doubled): no need to look for special characters.
        fast = `typeof v === 'object' && !(v instanceof Date) && !Buffer.isBuffer(v) ? '"' + JSON.stringify(v).replaceAll('"', '""') + '"' : `;
        break;
      default:
        fast = '';
    }
    return `v = ${read}; s${i} = v === null || v === undefined ? '' : ${fast}cell(v, ${c.kind});`;
  });
  const vars = columns.map((_, i) => `s${i}`).join(', ');
  const result = columns.map((_, i) => `s${i}`).join(" + ',' + ");
  const factory = new Function(
    'cell',
    'hasOwn',
    'SPECIAL',
    'Buffer',
    `"use strict"; return function line(rec) { let v, ${vars};\n${lines.join('\n')}\nreturn ${result}; };`,
  ) as (c: typeof csvCell, h: typeof Object.hasOwn, sp: RegExp, b: typeof Buffer) => LineFn;
  return factory(csvCell, Object.hasOwn, CSV_SPECIAL, Buffer);
}
