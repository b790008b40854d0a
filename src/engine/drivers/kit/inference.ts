/**
 * The one type inference of the drivers: what column type a run of values calls for, used by
 * discovery (csv text columns, json / http sampled records) and by the SQL destinations for keys
 * that arrive without a declared type.
 *
 * Contract: each value is classed as exactly one kind (integer, number, boolean, datetime,
 * string, json; null and undefined are not counted). `type()` is
 * - the kind, when every counted value has the same one;
 * - `number`, when integers and numbers are mixed;
 * - `json`, when objects or arrays are mixed with anything else, and `string` for any other mix
 *   (a datetime mixed with text is text);
 * - `string`, when nothing was counted.
 * Strings are classed by their text only with `datetimeText` (ISO date-times become datetime)
 * or through {@link TypeInference.addText}, which reads text as the csv source's column types
 * read it (drivers/kit/values.ts). A `Date` counts as a datetime only with `datetimeText`, as a
 * string otherwise.
 */
import type { DataRecord, FieldSchema, FieldType } from '../types.js';
import { hasLeadingZero, isIsoDatetime, parseIntegerText, parseNumberText } from './values.js';

const PLAIN_INT_RE = /^[+-]?\d+$/;
const BOOLEAN_TEXT_RE = /^(?:true|false)$/i;

/**
 * The kind of a non-empty cell of text, as inference counts it: an integer without a leading zero
 * within the safe-integer range (a longer one would lose digits as a number, so it is text), a
 * decimal number without a leading zero, `true`/`false`, an ISO date-time, else a string.
 */
export function textKind(raw: string): 'integer' | 'number' | 'boolean' | 'datetime' | 'string' {
  const t = raw.trim();
  if (hasLeadingZero(t)) return BOOLEAN_TEXT_RE.test(t) ? 'boolean' : isIsoDatetime(t) ? 'datetime' : 'string';
  if (PLAIN_INT_RE.test(t)) return parseIntegerText(t) !== undefined ? 'integer' : 'string';
  if (parseNumberText(t) !== undefined) return 'number';
  if (BOOLEAN_TEXT_RE.test(t)) return 'boolean';
  if (isIsoDatetime(t)) return 'datetime';
  return 'string';
}

export interface InferenceOptions {
  /** Class ISO-8601 strings (and Dates) as datetime instead of string. */
  datetimeText?: boolean;
}

export class TypeInference {
  private int = 0;
  private num = 0;
  private bool = 0;
  private obj = 0;
  private str = 0;
  private date = 0;
  /** Values seen, nulls included. */
  present = 0;
  /** Null or undefined values seen. */
  nulls = 0;
  private readonly dates: boolean;

  constructor(options: InferenceOptions = {}) {
    this.dates = options.datetimeText ?? false;
  }

  /** Counts a decoded value (JSON, a driver's record). */
  add(v: unknown): void {
    this.present++;
    if (v === null || v === undefined) {
      this.nulls++;
      return;
    }
    switch (typeof v) {
      case 'number':
        if (Number.isInteger(v)) this.int++;
        else this.num++;
        return;
      case 'bigint':
        this.int++;
        return;
      case 'boolean':
        this.bool++;
        return;
      case 'string':
        if (this.dates && isIsoDatetime(v)) this.date++;
        else this.str++;
        return;
      case 'object':
        if (v instanceof Date) {
          if (this.dates) this.date++;
          else this.str++;
        } else this.obj++;
        return;
      default:
        this.str++;
    }
  }

  /** Counts a cell of text (a csv cell) by its {@link textKind}; an empty cell is a null. */
  addText(raw: string | undefined): void {
    this.present++;
    if (raw === undefined || raw === '') {
      this.nulls++;
      return;
    }
    const kind = textKind(raw);
    if (kind === 'integer') this.int++;
    else if (kind === 'number') this.num++;
    else if (kind === 'boolean') this.bool++;
    else if (kind === 'datetime') this.date++;
    else this.str++;
  }

  /** Non-null values counted. */
  get seen(): number {
    return this.present - this.nulls;
  }

  type(): FieldType {
    const numeric = this.int + this.num > 0;
    const kinds = [numeric, this.bool > 0, this.obj > 0, this.str > 0, this.date > 0].filter(Boolean).length;
    if (kinds === 0) return 'string';
    if (kinds > 1) return this.obj > 0 ? 'json' : 'string';
    if (numeric) return this.num > 0 ? 'number' : 'integer';
    if (this.bool > 0) return 'boolean';
    if (this.obj > 0) return 'json';
    if (this.date > 0) return 'datetime';
    return 'string';
  }
}

/** Accumulates records and reports their fields in order of first appearance. */
export class FieldSampler {
  private readonly stats = new Map<string, TypeInference>();
  records = 0;

  add(rec: DataRecord): void {
    this.records++;
    for (const k in rec) {
      if (!Object.prototype.hasOwnProperty.call(rec, k)) continue;
      let s = this.stats.get(k);
      if (s === undefined) this.stats.set(k, (s = new TypeInference({ datetimeText: true })));
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
