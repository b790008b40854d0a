/**
 * Field inference from sampled JSON records (json and http sources' `discover`), plus the
 * dot-path helpers those drivers share.
 *
 * Types: integers → integer, other numbers → number, booleans → boolean, ISO-8601 date/time
 * strings → datetime, other strings → string, objects/arrays → json. Mixed kinds widen to
 * json when an object/array is among them, else to string (numbers mixed with integers stay
 * number). A field is nullable when a sampled record has it null or lacks it.
 */
import type { DataRecord, FieldSchema, FieldType } from './types.js';

const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

export function isIsoDatetime(s: string): boolean {
  return s.length >= 10 && s.length <= 40 && ISO_RE.test(s) && !Number.isNaN(Date.parse(s.length > 10 ? s.replace(' ', 'T') : s));
}

class FieldStats {
  int = 0;
  num = 0;
  bool = 0;
  obj = 0;
  str = 0;
  date = 0;
  nulls = 0;
  present = 0;

  add(v: unknown): void {
    this.present++;
    if (v === null || v === undefined) this.nulls++;
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) this.int++;
      else this.num++;
    } else if (typeof v === 'boolean') this.bool++;
    else if (typeof v === 'string') {
      if (isIsoDatetime(v)) this.date++;
      else this.str++;
    } else this.obj++;
  }

  type(): FieldType {
    const numeric = this.int + this.num > 0;
    const kinds = [numeric, this.bool > 0, this.obj > 0, this.str + this.date > 0].filter(Boolean).length;
    if (kinds === 0) return 'string';
    if (kinds > 1) return this.obj > 0 ? 'json' : 'string';
    if (numeric) return this.num > 0 ? 'number' : 'integer';
    if (this.bool > 0) return 'boolean';
    if (this.obj > 0) return 'json';
    return this.str === 0 ? 'datetime' : 'string';
  }
}

/** Accumulates records and reports their fields in order of first appearance. */
export class FieldSampler {
  private readonly stats = new Map<string, FieldStats>();
  records = 0;

  add(rec: DataRecord): void {
    this.records++;
    for (const k in rec) {
      if (!Object.prototype.hasOwnProperty.call(rec, k)) continue;
      let s = this.stats.get(k);
      if (s === undefined) this.stats.set(k, (s = new FieldStats()));
      s.add(rec[k]);
    }
  }

  has(field: string): boolean {
    return this.stats.has(field);
  }

  fields(): FieldSchema[] {
    return [...this.stats].map(([name, s]) => ({ name, type: s.type(), nullable: s.nulls > 0 || s.present < this.records }));
  }
}

/** Splits a dot path (`data.items`); an empty/blank path is the root. */
export function splitPath(p: string | null | undefined): string[] {
  if (p === null || p === undefined) return [];
  const t = p.trim();
  if (t === '' || t === '.' || t === '$') return [];
  return t.replace(/^\$\./, '').split('.');
}

/** Value at a dot path (array indexes allowed as segments); undefined when absent. */
export function getPath(value: unknown, segs: readonly string[]): unknown {
  let cur = value;
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(s)) return undefined;
      cur = cur[Number(s)];
    } else cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

/** Stream names are [A-Za-z0-9_]; anything else becomes _. */
export function sanitizeName(name: string, fallback: string): string {
  const s = name.replace(/[^A-Za-z0-9_]/g, '_');
  return s.length > 0 ? s : fallback;
}

/** Keeps only the selected fields (absent ones stay absent). */
export function project(rec: DataRecord, fields: readonly string[]): DataRecord {
  const out: DataRecord = {};
  for (const f of fields) if (Object.prototype.hasOwnProperty.call(rec, f)) out[f] = rec[f];
  return out;
}
