/**
 * Config as code, the text side: parsing a YAML document with positions, mapping a document
 * path to `file:line:column`, `${NAME}` references, reading typed values with every problem
 * collected, and writing a document deterministically. No database, no services.
 *
 * Contract:
 * - A problem is reported at a document path (`pipelines.orders.batchSize`, `streams[0]`);
 *   `Problems.toError` turns the list into one ValidationError whose field error paths read
 *   `<file>:<line>:<column> <document path>` (the deepest part of the path the document has).
 * - `${NAME}` in any string value is replaced by `env[NAME]`; `$${` is a literal `${`. A
 *   reference to an unset name, or a malformed one, is a problem at the string's path.
 *   Map keys are never interpolated.
 * - `writeYaml` gives the same bytes for the same value: keys in the order the value has them,
 *   no anchors or aliases, lists of scalars in flow style, no line folding.
 */
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Node as YamlNode } from 'yaml';
import { ValidationError, type FieldError } from '../../errors.js';

/** A path into the document: map keys and list indices. */
export type DocPath = (string | number)[];

const SIMPLE_KEY = /^[A-Za-z0-9_-]+$/;

/** `connectors.orders.config.delimiter`, `pipelines.orders.streams[0].name`, `connectors["my api"]`. */
export function formatPath(path: readonly (string | number | { key: string })[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'object') out += `[${SIMPLE_KEY.test(seg.key) ? seg.key : JSON.stringify(seg.key)}]`;
    else if (SIMPLE_KEY.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * A service's field-error path (`config.auth.token`, `streams[0].name`, `schedule.cron`) as
 * document path segments.
 */
export function parseServicePath(path: string): DocPath {
  const out: DocPath = [];
  for (const part of path.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

export interface ParsedYaml {
  fileName: string;
  /** The document as plain data (aliases expanded). */
  value: unknown;
  /** `<file>:<line>:<column>` of the deepest node the document has on `path`. */
  locate(path: DocPath): string;
}

const MAX_DOCUMENT_CHARS = 4_000_000;

/** Parses `text`; a syntax error is a ValidationError naming file, line and column. */
export function parseYaml(text: string, fileName: string): ParsedYaml {
  if (text.length > MAX_DOCUMENT_CHARS) {
    throw new ValidationError('invalid config document', [{ path: `${fileName}:1:1`, message: `the document is larger than ${MAX_DOCUMENT_CHARS} characters` }]);
  }
  const lc = new LineCounter();
  // prettyErrors off: its messages quote the source line, which may hold a secret written in clear.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number) => {
    const { line, col } = lc.linePos(offset);
    return `${fileName}:${line}:${col}`;
  };
  if (doc.errors.length) {
    throw new ValidationError(
      'invalid YAML',
      doc.errors.map((e) => ({ path: at(e.pos[0]), message: `${e.message} (${e.code})` })),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ValidationError('invalid YAML', [{ path: at(0), message: (err as Error).message }]);
  }
  const locate = (path: DocPath): string => {
    let node: unknown = doc.contents;
    let offset = (node as YamlNode | null)?.range?.[0] ?? 0;
    for (let i = 0; i < path.length && node; i++) {
      if (isMap(node)) {
        // Keys may themselves hold dots (`mapping.a.b` of a mapping spec): the longest match wins.
        let found: { pair: (typeof node.items)[number]; used: number } | null = null;
        for (let j = i; j < path.length && typeof path[j] !== 'number'; j++) {
          const key = path.slice(i, j + 1).join('.');
          const pair = node.items.find((p) => keyText(p.key) === key);
          if (pair) found = { pair, used: j - i };
        }
        if (!found) break;
        i += found.used;
        offset = (found.pair.key as YamlNode | null)?.range?.[0] ?? offset;
        node = found.pair.value;
      } else if (isSeq(node) && typeof path[i] === 'number') {
        const item = node.items[path[i] as number] as YamlNode | undefined;
        if (!item) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else break;
    }
    return at(offset);
  };
  return { fileName, value, locate };
}

function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

/** Problems found in a document, each at a document path. */
export class Problems {
  readonly list: { path: DocPath; message: string }[] = [];

  add(path: DocPath, message: string): void {
    this.list.push({ path, message });
  }

  /** Adds a service's ValidationError, its field paths re-rooted at `base` (`rename` maps service field names to document keys). */
  addServiceError(err: ValidationError, base: DocPath, rename: Record<string, DocPath> = {}): void {
    if (!err.fieldErrors.length) {
      this.add(base, err.message);
      return;
    }
    for (const fe of err.fieldErrors) {
      const segs = parseServicePath(fe.path);
      const head = segs[0];
      const mapped = typeof head === 'string' && head in rename ? [...rename[head]!, ...segs.slice(1)] : segs;
      this.add([...base, ...mapped], fe.message);
    }
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  fieldErrors(doc: ParsedYaml): FieldError[] {
    return this.list.map((p) => ({ path: `${doc.locate(p.path)} ${formatPath(p.path) || '(document)'}`, message: p.message }));
  }

  toError(doc: ParsedYaml, message = 'invalid config document'): ValidationError {
    return new ValidationError(message, this.fieldErrors(doc));
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Reads typed values from the document, reporting each problem instead of throwing. */
export class Reader {
  constructor(readonly problems: Problems) {}

  /** A map with only `keys` (others are problems); null when absent, undefined when not a map. */
  object(v: unknown, path: DocPath, keys: readonly string[]): Record<string, unknown> | null | undefined {
    if (v === undefined || v === null) return null;
    if (!isPlainObject(v)) {
      this.problems.add(path, 'must be a map');
      return undefined;
    }
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.problems.add([...path, k], `unknown key "${k}"; expected one of: ${keys.join(', ')}`);
    return v;
  }

  string(v: unknown, path: DocPath, required = false): string | null | undefined {
    if (v === undefined || v === null) {
      if (required) this.problems.add(path, 'is required');
      return null;
    }
    if (typeof v !== 'string') {
      this.problems.add(path, 'must be a string');
      return undefined;
    }
    return v;
  }

  int(v: unknown, path: DocPath): number | null | undefined {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.problems.add(path, 'must be a whole number');
      return undefined;
    }
    return v;
  }

  number(v: unknown, path: DocPath): number | null | undefined {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.problems.add(path, 'must be a number');
      return undefined;
    }
    return v;
  }

  bool(v: unknown, path: DocPath): boolean | null | undefined {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'boolean') {
      this.problems.add(path, 'must be true or false');
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, path: DocPath, values: readonly T[]): T | null | undefined {
    const s = this.string(v, path);
    if (s == null) return s;
    if (!(values as readonly string[]).includes(s)) {
      this.problems.add(path, `must be one of: ${values.join(', ')}`);
      return undefined;
    }
    return s as T;
  }

  stringList(v: unknown, path: DocPath): string[] | null | undefined {
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) {
      this.problems.add(path, 'must be a list of strings');
      return undefined;
    }
    let ok = true;
    v.forEach((item, i) => {
      if (typeof item !== 'string') {
        this.problems.add([...path, i], 'must be a string');
        ok = false;
      }
    });
    return ok ? (v as string[]) : undefined;
  }

  list(v: unknown, path: DocPath): unknown[] | null | undefined {
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) {
      this.problems.add(path, 'must be a list');
      return undefined;
    }
    return v;
  }
}

const REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}/;

/**
 * `value` with every `${NAME}` in its strings replaced by `env[NAME]` (`$${` is a literal `${`).
 * Unset or malformed references are problems; `refs` collects every name referenced.
 */
export function interpolate(value: unknown, env: Readonly<Record<string, string>>, problems: Problems, refs: Set<string>, path: DocPath = []): unknown {
  if (typeof value === 'string') return interpolateString(value, env, problems, refs, path);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, refs, [...path, i]));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, problems, refs, [...path, k]);
    return out;
  }
  return value;
}

function interpolateString(s: string, env: Readonly<Record<string, string>>, problems: Problems, refs: Set<string>, path: DocPath): string {
  if (!s.includes('$')) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const j = s.indexOf('$', i);
    if (j < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, j);
    if (s.startsWith('$${', j)) {
      out += '${';
      i = j + 3;
      continue;
    }
    if (s.startsWith('${', j)) {
      const m = REF.exec(s.slice(j));
      if (!m) {
        problems.add(path, 'malformed ${…} reference: a name is letters, digits and _ (not starting with a digit) between ${ and }; write $${ for a literal ${');
        return s;
      }
      const name = m[1]!;
      refs.add(name);
      const v = Object.prototype.hasOwnProperty.call(env, name) ? env[name] : undefined;
      if (v === undefined) {
        problems.add(path, `\${${name}} is not set: pass it in env (the CLI takes it from its environment)`);
        // Kept as written, so the checks that follow do not also report an empty value.
        out += m[0];
      } else out += v;
      i = j + m[0].length;
      continue;
    }
    out += '$';
    i = j + 1;
  }
  return out;
}

/** A string value as written in a document: `${` escaped as `$${` so it is read back as is. */
export function escapeString(s: string): string {
  // A function, not a replacement string: in one, `$$` would mean a single `$`.
  return s.includes('${') ? s.replaceAll('${', () => '$${') : s;
}

/** Every string in `value` escaped (see escapeString); keys are left alone. */
export function escapeStrings(value: unknown): unknown {
  if (typeof value === 'string') return escapeString(value);
  if (Array.isArray(value)) return value.map(escapeStrings);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeStrings(v)]));
  return value;
}

/** `value` with the keys of every map sorted (by UTF-16 code units, locale-independent). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort(compareText)
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The YAML text of `value`: deterministic (see the module contract). */
export function writeYaml(value: unknown): string {
  const doc = new Document(value, { aliasDuplicateObjects: false });
  visit(doc, {
    Seq(_key, node) {
      if (node.items.length && node.items.every((n) => isScalar(n))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, minContentWidth: 0, indent: 2, flowCollectionPadding: false });
}

/**
 * The names of the `${NAME}` references in a document's string values (comments and `$${`
 * escapes excluded), sorted: what a client looks up in its environment to fill `env`. A
 * document that does not parse has none (applying it reports the syntax error).
 */
export function envReferences(text: string): string[] {
  let parsed: ParsedYaml;
  try {
    parsed = parseYaml(text, DEFAULT_FILE_NAME);
  } catch {
    return [];
  }
  const refs = new Set<string>();
  interpolate(parsed.value, {}, new Problems(), refs);
  return [...refs].sort(compareText);
}

const DEFAULT_FILE_NAME = 'config.yaml';
