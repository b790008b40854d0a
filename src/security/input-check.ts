/**
 * Limits every value a caller sends must respect before anything else looks at it:
 *
 * - No NUL character (U+0000) in any string or object key: PostgreSQL cannot store it in text or
 *   jsonb, so it would otherwise surface as a database error deep inside a transaction.
 * - At most MAX_INPUT_DEPTH levels of nested objects and arrays: the code behind the API
 *   (structuredClone, JSON.stringify, JSON Schema validation, secret walking, mapping) recurses,
 *   and a value nested a few thousand levels deep would overflow the stack there.
 *
 * The walk itself is iterative, so it is safe on any depth, and it stops descending where the
 * limit is reached. Problems are reported as FieldErrors naming the path (`input.config.path`,
 * `records[3].name`); at most MAX_REPORTED of them.
 */
import { ValidationError, type FieldError } from '../errors.js';

/** Deepest nesting of objects and arrays accepted in one input (the value at the root is level 1). */
export const MAX_INPUT_DEPTH = 64;

const MAX_REPORTED = 20;

const NUL_MESSAGE = 'contains the NUL character (\\u0000), which cannot be stored';

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  // A NUL in a key is shown as the text `\u0000`, so the path itself stays storable and printable.
  const k = key.replaceAll('\u0000', '\\u0000');
  return path === '' ? k : `${path}.${k}`;
}

/** Every NUL and depth problem in `value`, with paths starting at `at`. */
export function inputProblems(value: unknown, at: string, maxDepth: number = MAX_INPUT_DEPTH): FieldError[] {
  const problems: FieldError[] = [];
  // `badKey`: the entry's key holds a NUL (reported in place of walking its value).
  const stack: { value: unknown; path: string; depth: number; badKey?: true }[] = [{ value, path: at, depth: 0 }];
  while (stack.length > 0 && problems.length < MAX_REPORTED) {
    const { value: v, path, depth, badKey } = stack.pop()!;
    if (badKey) {
      problems.push({ path, message: `the key ${NUL_MESSAGE}` });
      continue;
    }
    if (typeof v === 'string') {
      if (v.includes('\u0000')) problems.push({ path, message: NUL_MESSAGE });
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > maxDepth) {
      problems.push({ path, message: `nested deeper than ${maxDepth} levels of objects and arrays` });
      continue;
    }
    const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((e, i) => [i, e]) : Object.entries(v);
    // Pushed in reverse so problems come out in document order.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i]!;
      const entry = { value: item, path: child(path, key), depth: depth + 1 };
      stack.push(typeof key === 'string' && key.includes('\u0000') ? { ...entry, badKey: true } : entry);
    }
  }
  return problems;
}

/** Throws a ValidationError (VALIDATION_FAILED) listing the problems of `value`, if any. */
export function checkInput(value: unknown, at: string, message = 'invalid input'): void {
  const problems = inputProblems(value, at);
  if (problems.length) throw new ValidationError(message, problems);
}
