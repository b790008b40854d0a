/**
 * PostgreSQL text and jsonb cannot hold the NUL character (U+0000). Values the API accepts
 * never carry one (see security/input-check.ts); values the engine produces from outside data
 * (dead-lettered records, driver error messages, source cursors) may. Before such a value is
 * stored in the state database, each NUL becomes U+FFFD (the replacement character), so the
 * write succeeds and shows where the NUL was.
 */

export const NUL_REPLACEMENT = '\uFFFD';

/** `s` with every NUL replaced (the same string when it has none). */
export function pgText(s: string): string;
export function pgText(s: string | null): string | null;
export function pgText(s: string | null): string | null {
  return s !== null && s.includes('\u0000') ? s.replaceAll('\u0000', NUL_REPLACEMENT) : s;
}

/** A JSON escape `\u0000` (preceded by an even number of backslashes, i.e. not itself escaped). */
const NUL_ESCAPE = /(?<!\\)((?:\\\\)*)\\u0000/g;

/** A JSON value with every NUL in its strings and keys replaced; the same value when it has none. */
export function pgJson<T>(value: T): T {
  if (value === null || value === undefined) return value;
  const json = JSON.stringify(value);
  if (json === undefined || !json.includes('\\u0000')) return value;
  const cleaned = json.replace(NUL_ESCAPE, '$1\\ufffd');
  return cleaned === json ? value : (JSON.parse(cleaned) as T);
}
