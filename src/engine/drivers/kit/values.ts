/**
 * How text becomes a typed value, in one place: the csv source's column types, the SQL
 * destinations' coercion of text into typed columns, discovery's type inference and the
 * mapping's casts all call these, so a value reads the same wherever it enters.
 *
 * Contract (each parser trims surrounding whitespace and answers `undefined` for text it does
 * not accept, never a guess):
 * - boolean: `true t yes y on 1` / `false f no n off 0`, any case.
 * - integer: optional sign, decimal digits, optionally `.` followed by zeros only (`"4.0"` is 4);
 *   within the safe-integer range. `-0` is 0.
 * - number: optional sign, decimal digits with an optional fraction or a bare fraction, an
 *   optional exponent; finite. No hex, no `Infinity`, no thousands separators. `-0` is 0.
 * - date-time: ISO-8601 / RFC 3339 date `YYYY-MM-DD` or date-time
 *   `YYYY-MM-DD[T ]HH:MM[:SS[.fff...]][Z|±HH[:MM]]` (a comma may stand for the decimal point);
 *   no offset means UTC; impossible dates (02-30, hour 24) are refused, never rolled over.
 */

import type { FieldType } from '../types.js';

/** The shape of an integer literal (trimmed), whatever its size. */
export const INTEGER_LITERAL = /^[+-]?\d+(?:\.0*)?$/;
/** The shape of a decimal literal (trimmed), whatever its size. */
export const NUMBER_LITERAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** The largest |epoch ms| a JavaScript Date holds. */
export const MAX_DATE_MS = 8.64e15;

const TRUE_WORDS: ReadonlySet<string> = new Set(['true', 't', 'yes', 'y', 'on', '1']);
const FALSE_WORDS: ReadonlySet<string> = new Set(['false', 'f', 'no', 'n', 'off', '0']);

/** `true` / `false` for a boolean word (see the contract above), else undefined. */
export function parseBooleanText(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (TRUE_WORDS.has(t)) return true;
  if (FALSE_WORDS.has(t)) return false;
  return undefined;
}

/** The safe integer an integer literal denotes, else undefined. */
export function parseIntegerText(text: string): number | undefined {
  const t = text.trim();
  if (!INTEGER_LITERAL.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n + 0 : undefined;
}

/** The finite number a decimal literal denotes, else undefined. */
export function parseNumberText(text: string): number | undefined {
  const t = text.trim();
  if (!NUMBER_LITERAL.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n + 0 : undefined;
}

/** Whether the text is an ISO-8601 date or date-time (see the contract above). */
export function isIsoDatetime(text: string): boolean {
  return !Number.isNaN(parseIsoMs(text.trim()));
}

/**
 * Whether a column of text values reads best as numbers: a leading zero (`007`, a zip code, an
 * id) keeps text as text, since the number would lose it.
 */
export function hasLeadingZero(text: string): boolean {
  return /^[+-]?0\d/.test(text.trim());
}

const DAYS_IN_400_YEARS_MS = 146097 * 86_400_000;

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Value of the `n` ASCII digits at `s[i]`, or -1. */
function digits(s: string, i: number, n: number): number {
  if (i + n > s.length) return -1;
  let v = 0;
  for (let j = i; j < i + n; j++) {
    const c = s.charCodeAt(j) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Epoch ms of an ISO-8601 / RFC 3339 date (`YYYY-MM-DD`) or date-time
 * (`YYYY-MM-DD[T ]HH:MM[:SS[.fff...]][Z|±HH[:MM]]`), or NaN. No offset means UTC.
 * Hand-written (no regex, no Date.parse, which accepts non-ISO text and rolls 02-30 over).
 */
export function parseIsoMs(s: string): number {
  const n = s.length;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  if (d > daysInMonth(y, mo)) return NaN;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  let offset = 0;
  let i = 10;
  if (i < n) {
    const sep = s.charCodeAt(i);
    if (sep !== 84 && sep !== 116 && sep !== 32) return NaN; // T t space
    h = digits(s, 11, 2);
    mi = digits(s, 14, 2);
    if (h < 0 || h > 23 || s.charCodeAt(13) !== 58 || mi < 0 || mi > 59) return NaN;
    i = 16;
    if (i < n && s.charCodeAt(i) === 58) {
      sec = digits(s, 17, 2);
      if (sec < 0 || sec > 59) return NaN;
      i = 19;
      const dot = s.charCodeAt(i);
      if (i < n && (dot === 46 || dot === 44)) {
        i++;
        const start = i;
        while (i < n) {
          const c = s.charCodeAt(i) - 48;
          if (c < 0 || c > 9) break;
          if (i - start < 3) ms = ms * 10 + c;
          i++;
        }
        const len = i - start;
        if (len === 0) return NaN;
        if (len === 1) ms *= 100;
        else if (len === 2) ms *= 10;
      }
    }
    if (i < n) {
      const z = s.charCodeAt(i);
      if (z === 90 || z === 122) {
        i++;
      } else if (z === 43 || z === 45) {
        const oh = digits(s, i + 1, 2);
        if (oh < 0 || oh > 23) return NaN;
        i += 3;
        let om = 0;
        if (i < n) {
          if (s.charCodeAt(i) === 58) i++;
          om = digits(s, i, 2);
          if (om < 0 || om > 59) return NaN;
          i += 2;
        }
        offset = (z === 45 ? -1 : 1) * (oh * 60 + om) * 60_000;
      } else {
        return NaN;
      }
    }
    if (i !== n) return NaN;
  }
  // Shift by 400 years (an exact Gregorian cycle) so Date.UTC does not treat years 0-99 as 19xx.
  return Date.UTC(y + 400, mo - 1, d, h, mi, sec, ms) - DAYS_IN_400_YEARS_MS - offset;
}

const MIN_4_DIGIT_YEAR_MS = -62167219200000; // 0000-01-01T00:00:00.000Z
const MAX_4_DIGIT_YEAR_MS = 253402300799999; // 9999-12-31T23:59:59.999Z

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** `new Date(ms).toISOString()`, several times faster for years 0000-9999. */
export function isoFromMs(ms: number): string {
  const t = Math.trunc(ms);
  if (t < MIN_4_DIGIT_YEAR_MS || t > MAX_4_DIGIT_YEAR_MS) return new Date(t).toISOString();
  const inDay = ((t % 86_400_000) + 86_400_000) % 86_400_000;
  // Days since 1970-01-01 to civil date (H. Hinnant's algorithm).
  const z = (t - inDay) / 86_400_000 + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(inDay / 3_600_000);
  const mi = Math.floor(inDay / 60_000) % 60;
  const sec = Math.floor(inDay / 1000) % 60;
  const milli = inDay % 1000;
  const y = year < 1000 ? `${year}`.padStart(4, '0') : `${year}`;
  const msStr = milli < 10 ? `00${milli}` : milli < 100 ? `0${milli}` : `${milli}`;
  return `${y}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(mi)}:${pad2(sec)}.${msStr}Z`;
}

/**
 * Small-integer codes for field types, for encoders compiled per column list (a `switch` on a
 * number stays monomorphic where one on a string would not). `K_ARRAY` is PostgreSQL's array
 * columns, which have no FieldType of their own.
 */
export const K_STRING = 0;
export const K_INTEGER = 1;
export const K_NUMBER = 2;
export const K_BOOLEAN = 3;
export const K_DATETIME = 4;
export const K_JSON = 5;
export const K_ARRAY = 6;

/** The code of each FieldType. */
export const KIND: Readonly<Record<FieldType, number>> = {
  string: K_STRING,
  integer: K_INTEGER,
  number: K_NUMBER,
  boolean: K_BOOLEAN,
  datetime: K_DATETIME,
  json: K_JSON,
};
