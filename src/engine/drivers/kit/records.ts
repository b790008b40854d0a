/**
 * Record helpers the json and http sources share: dot paths, stream names, field selection.
 * (Their field inference is kit/inference.ts's FieldSampler.)
 */
import type { DataRecord } from '../types.js';

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
