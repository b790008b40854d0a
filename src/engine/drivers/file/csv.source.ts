import fs from 'node:fs';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import Papa from 'papaparse';
import { FileAccessError, type FileAccess } from '../../../security/file-roots.js';
import { HttpError, isHttpUrl, redactUrl, request, type RequestPolicy } from '../http/client.js';
import { requestLog } from '../context.js';
import { pathProblems, readableFile } from '../kit/local-files.js';
import { decodeText } from '../kit/text-decode.js';
import { TypeInference, textKind } from '../kit/inference.js';
import { isIsoDatetime, parseBooleanText, parseIntegerText, parseNumberText } from '../kit/values.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfigError,
  type ConfiguredStream,
  type DriverContext,
  type DataRecord,
  type FieldSchema,
  type FieldType,
  type JsonSchema,
  type ReadOptions,
  type RecordError,
  type SourceDriver,
  type SourceMessage,
  type StreamStates,
} from '../types.js';
import { singleStreamRead, startRowFromState } from '../kit/single-stream.js';

/**
 * CSV file source.
 *
 * Contract:
 * - One stream per file. `read` streams the file (never loads it whole) and pulls the next
 *   chunk only when the consumer asks for the next message, so a slow consumer pauses the
 *   file stream (backpressure).
 * - State is `{ row: N }`: the number of data rows (header and blank lines excluded) already
 *   emitted. A `state` message follows every `records` batch and covers every row before it;
 *   reading from `{ row: N }` skips exactly the first N data rows. Incremental mode treats the
 *   file as append-only: rows appended after the last state are read next time.
 * - Values have the column's type: the one `columnTypes` names, else the one discover infers
 *   from the first 1000 rows (the same rows every time); empty cell -> null. A value failing its conversion is kept as the raw string and the record is listed in the
 *   batch's `errors` (never thrown), so the runner can dead-letter it.
 * - Aborting `options.signal` destroys the file stream and the iterator throws the signal's
 *   reason (an AbortError).
 */

export type CsvColumnType = FieldType;

export interface CsvSourceConfig {
  path: string;
  delimiter?: string;
  header?: boolean;
  quoteChar?: string;
  encoding?: string;
  columnTypes?: Record<string, CsvColumnType>;
  streamName?: string;
  uniqueIdColumn?: string;
}

const FIELD_TYPES: FieldType[] = ['string', 'integer', 'number', 'boolean', 'datetime', 'json'];
const ENCODINGS = ['utf8', 'utf-8', 'utf16le', 'latin1', 'ascii'] as const;

export const csvConfigSchema: JsonSchema = {
  type: 'object',
  title: 'CSV file',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      origin: true,
      title: 'File path or URL',
      description:
        "Path of the CSV file relative to the workspace's files folder (or absolute inside a files root), or an http(s) URL fetched with GET (streamed).",
      examples: ['orders.csv', 'https://example.com/export/orders.csv'],
    },
    delimiter: {
      type: 'string',
      title: 'Delimiter',
      description: 'Field separator: a single character. Use a tab character (or the two characters \\t) for TSV.',
      default: ',',
      pattern: '^(?:[^\\r\\n]|\\\\t)$',
      examples: [',', ';', '\t', '|'],
    },
    header: {
      type: 'boolean',
      title: 'Header row',
      description: 'Whether the first row holds the column names. When false, columns are named column_1, column_2, ...',
      default: true,
    },
    quoteChar: {
      type: 'string',
      title: 'Quote character',
      description: 'Character enclosing fields that contain delimiters, quotes or newlines. Doubled inside a field to escape it.',
      default: '"',
      minLength: 1,
      maxLength: 1,
    },
    encoding: {
      type: 'string',
      title: 'Encoding',
      description:
        'Text encoding of the file. With utf8 (the default) a file that is not UTF-8 text (invalid bytes, NUL bytes: a binary file) ' +
        'fails the read with the byte offset and line; latin1, utf16le and ascii decode every byte.',
      enum: [...ENCODINGS],
      default: 'utf8',
    },
    columnTypes: {
      type: 'object',
      title: 'Column types',
      description:
        'Type per column; values are converted while reading. Columns not listed are read as the type inferred from the first 1000 rows ' +
        '(set a column to string to keep its text). A value that fails conversion is kept as the raw string and its record is reported as an error.',
      additionalProperties: { type: 'string', enum: FIELD_TYPES },
      examples: [{ id: 'integer', price: 'number', created_at: 'datetime' }],
    },
    streamName: {
      type: 'string',
      minLength: 1,
      title: 'Stream name',
      description: 'Name of the stream; defaults to the file name without extension. Characters outside [A-Za-z0-9_] become _.',
    },
    uniqueIdColumn: {
      type: 'string',
      minLength: 1,
      title: 'Unique id column',
      description: "Column whose values identify a row; reported as the stream's primary key.",
    },
  },
};

export const docs = `# CSV file (source)

Reads one CSV (or TSV) file as one stream: a file in the workspace's files folder or an http(s)
URL (GET, retried with backoff on 429/5xx/network errors). The file is streamed, never loaded whole.

\`\`\`json
{
  "path": "orders.csv",
  "delimiter": ",",
  "header": true,
  "columnTypes": { "id": "integer", "price": "number", "paid": "boolean" },
  "uniqueIdColumn": "id"
}
\`\`\`

- **Path**: relative to the workspace's files folder (\`SLUICE_FILES_ROOT/<workspace>\`), or absolute
  inside one of the workspace's files roots; paths leading elsewhere (\`..\`, links, devices) are refused.
- **Stream**: named after the file (\`orders\`) unless \`streamName\` is set. Fields come from the
  header row (\`column_1\`, \`column_2\`, ... when \`header\` is false; duplicate names get \`_1\`, \`_2\` suffixes).
- **Types**: \`discover\` reports \`columnTypes\` when set, otherwise types inferred from the first
  1000 rows (integer, number, boolean, ISO datetime, else string). \`read\` emits values of those
  types (datetime as ISO text); a later value that does not fit its column's type is an error for its record. Empty cells are \`null\`; blank lines are skipped.
- **Encoding**: \`utf8\` (default) is strict: a file that is not UTF-8 text (invalid bytes, NUL
  bytes, i.e. a binary file) fails with the byte offset and line of the first bad byte. Set
  \`encoding\` (\`latin1\`, \`utf16le\`, \`ascii\`) for text in another encoding.
- **Conversion failures** do not stop the sync: the record keeps the raw string and is listed in
  the batch's \`errors\`, so it can be dead-lettered.
- **State / cursor**: \`{ "row": N }\` = number of data rows already emitted. A state follows every
  batch; resuming skips exactly N rows. \`INCREMENTAL\` treats the file as append-only (new rows at
  the end); rewriting or truncating the file requires resetting the state.
- **Sync modes**: FULL_REFRESH, INCREMENTAL.
`;

interface ResolvedConfig {
  path: string;
  delimiter: string;
  header: boolean;
  quoteChar: string;
  encoding: BufferEncoding;
  columnTypes: Record<string, FieldType>;
  streamName: string;
  uniqueIdColumn: string | null;
}

export function sanitizeStreamName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_]/g, '_');
  return s.length > 0 ? s : 'csv';
}

function resolveConfig(raw: CsvSourceConfig): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError('CSV source: config must be an object');
  if (typeof raw.path !== 'string' || raw.path.length === 0) throw new DriverError('CSV source: "path" is required');
  let delimiter = raw.delimiter ?? ',';
  if (delimiter === '\\t') delimiter = '\t';
  const quoteChar = raw.quoteChar ?? '"';
  if (typeof delimiter !== 'string' || delimiter.length === 0 || delimiter === '\r' || delimiter === '\n') {
    throw new DriverError('CSV source: "delimiter" must be a single character');
  }
  if (typeof quoteChar !== 'string' || quoteChar.length !== 1) {
    throw new DriverError('CSV source: "quoteChar" must be a single character');
  }
  if (delimiter === quoteChar) throw new DriverError(`CSV source: "delimiter" and "quoteChar" are both ${JSON.stringify(delimiter)}`);
  if (Papa.BAD_DELIMITERS.includes(delimiter)) {
    throw new DriverError(`CSV source: ${JSON.stringify(delimiter)} cannot be used as delimiter`);
  }
  const encoding = (raw.encoding ?? 'utf8').toLowerCase();
  if (!Buffer.isEncoding(encoding)) throw new DriverError(`CSV source: unsupported encoding "${raw.encoding}"`);
  const columnTypes: Record<string, FieldType> = {};
  for (const [col, type] of Object.entries(raw.columnTypes ?? {})) {
    if (!FIELD_TYPES.includes(type)) {
      throw new DriverError(`CSV source: columnTypes.${col} must be one of ${FIELD_TYPES.join(', ')} (got ${JSON.stringify(type)})`);
    }
    columnTypes[col] = type;
  }
  const local = isHttpUrl(raw.path) ? urlFileName(raw.path) : raw.path;
  const base = path.basename(local, path.extname(local));
  return {
    path: raw.path,
    delimiter,
    header: raw.header ?? true,
    quoteChar,
    encoding: encoding as BufferEncoding,
    columnTypes,
    streamName: sanitizeStreamName(raw.streamName ?? base),
    uniqueIdColumn: raw.uniqueIdColumn ?? null,
  };
}

/** File name of a URL's path (for the default stream name); the host when the path has none. */
function urlFileName(url: string): string {
  try {
    const u = new URL(url);
    return decodeURIComponent(path.posix.basename(u.pathname)) || u.hostname;
  } catch {
    throw new DriverError(`CSV source: invalid URL ${JSON.stringify(redactUrl(url))}`);
  }
}

/** The file as a pull-based byte stream: a local file, or the body of a GET for an http(s) URL (decoded by decodeText). */
async function openCsvStream(cfg: ResolvedConfig, files: FileAccess, signal: AbortSignal | undefined, highWaterMark: number, onRequest?: RequestPolicy['onRequest']): Promise<Readable> {
  if (!isHttpUrl(cfg.path)) {
    // The checked descriptor is read (the path is only its name); closing the stream closes it.
    const { handle, path: abs } = await files.openForRead(cfg.path);
    return fs.createReadStream(abs, { fd: handle, highWaterMark });
  }
  const res = await request(cfg.path, { method: 'GET', headers: { accept: 'text/csv, text/plain;q=0.9, */*;q=0.5' } }, { signal, label: 'CSV source', onRequest });
  return res.body ? Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>) : Readable.from([]);
}

// ---------------------------------------------------------------------------------------------
// Chunked parsing: papaparse's incremental parser over a pull-based file stream.

interface RowChunk {
  /** Complete rows parsed from this chunk (arrays of raw cell strings). */
  rows: string[][];
  /** Bytes of file content these rows span. */
  bytes: number;
  /** Malformed-row messages (papaparse is lenient and still returns a row). */
  problems: string[];
}

const MAX_ROW_CHARS = 64 * 1024 * 1024;

function detectNewline(text: string, quoteChar: string, atEof: boolean): '\n' | '\r\n' | '\r' | null {
  const q = quoteChar.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const probe = text.slice(0, 1024 * 1024).replace(new RegExp(`${q}[^]*?${q}`, 'g'), '');
  const n = probe.indexOf('\n');
  const r = probe.indexOf('\r');
  if (r === -1) return n === -1 ? (atEof ? '\n' : null) : '\n';
  if (n !== -1 && n < r) return '\n';
  if (r === probe.length - 1 && !atEof) return null; // might be the first half of \r\n
  return probe[r + 1] === '\n' ? '\r\n' : '\r';
}

async function* readRowChunks(
  cfg: ResolvedConfig,
  files: FileAccess,
  signal?: AbortSignal,
  opts: { highWaterMark?: number; maxRowChars?: number; onRequest?: RequestPolicy['onRequest'] } = {},
): AsyncGenerator<RowChunk> {
  const maxRowChars = opts.maxRowChars ?? MAX_ROW_CHARS;
  const stream = await openCsvStream(cfg, files, signal, opts.highWaterMark ?? 1024 * 1024, opts.onRequest);
  if (signal) addAbortSignal(signal, stream);
  let parser: Papa.Parser | null = null;
  let pending = '';
  const makeParser = (newline: '\n' | '\r\n' | '\r') =>
    new Papa.Parser({ delimiter: cfg.delimiter, quoteChar: cfg.quoteChar, newline });
  const run = (text: string, final: boolean): RowChunk | null => {
    const res = parser!.parse(text, 0, !final) as Papa.ParseResult<string[]>;
    const consumed = final ? text.length : res.meta.cursor;
    pending = consumed < text.length ? text.slice(consumed) : '';
    if (pending.length > maxRowChars) {
      throw new DriverError(
        `CSV source: a row in ${cfg.path} is longer than ${maxRowChars} characters (unterminated ${cfg.quoteChar} quote?)`,
      );
    }
    const rows = res.data;
    if (rows.length === 0) return null;
    const problems: string[] = [];
    for (const e of res.errors) {
      if (typeof e.row === 'number' && e.row < rows.length) problems.push(`${e.message} (row ${e.row})`);
    }
    const bytes = Buffer.byteLength(consumed === text.length ? text : text.slice(0, consumed), cfg.encoding);
    return { rows, bytes, problems };
  };
  try {
    for await (const piece of decodeText(stream, cfg.encoding, 'CSV source', isHttpUrl(cfg.path) ? redactUrl(cfg.path) : cfg.path)) {
      let text = piece;
      if (pending.length > 0) text = pending + text;
      if (parser === null) {
        const nl = detectNewline(text, cfg.quoteChar, false);
        if (nl === null) {
          pending = text;
          if (pending.length > maxRowChars) throw new DriverError(`CSV source: no line break in the first ${maxRowChars} characters of ${cfg.path}`);
          continue;
        }
        parser = makeParser(nl);
      }
      const chunk = run(text, false);
      if (chunk) yield chunk;
    }
    if (pending.length > 0) {
      parser ??= makeParser(detectNewline(pending, cfg.quoteChar, true) ?? '\n');
      const chunk = run(pending, true);
      if (chunk) yield chunk;
    }
  } finally {
    stream.destroy();
  }
}

function isBlank(row: string[]): boolean {
  return row.length === 1 && row[0] === '';
}

/** Column names from a header row: blanks become column_N, duplicates get _1, _2 suffixes. */
function headerNames(row: string[]): string[] {
  const used = new Set<string>();
  const counts = new Map<string, number>();
  const out: string[] = [];
  for (let i = 0; i < row.length; i++) {
    const base = (row[i] ?? '').trim() || `column_${i + 1}`;
    let name = base;
    if (used.has(name)) {
      let n = counts.get(base) ?? 1;
      do name = `${base}_${n++}`;
      while (used.has(name));
      counts.set(base, n);
    }
    used.add(name);
    out.push(name);
  }
  return out;
}

function positionalNames(width: number): string[] {
  return Array.from({ length: width }, (_, i) => `column_${i + 1}`);
}

// ---------------------------------------------------------------------------------------------
// Conversion and inference.

const BAD: unique symbol = Symbol('bad');
type Converter = (raw: string) => unknown;

const converters: Record<FieldType, Converter | null> = {
  string: null,
  integer: (raw) => parseIntegerText(raw) ?? BAD,
  number: (raw) => parseNumberText(raw) ?? BAD,
  boolean: (raw) => parseBooleanText(raw) ?? BAD,
  datetime: (raw) => {
    const t = raw.trim();
    return isIsoDatetime(t) ? t : BAD;
  },
  json: (raw) => {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return BAD;
    }
  },
};

/**
 * Converters of columns whose type was inferred: a value must be of the kind inference counted
 * for that type (kit/inference.ts textKind), so `007` in an integer column or `yes` in a boolean
 * one is an error for its record rather than silently becoming 7 or true.
 */
const inferredConverters: Record<FieldType, Converter | null> = {
  string: null,
  integer: (raw) => (textKind(raw) === 'integer' ? converters.integer!(raw) : BAD),
  number: (raw) => {
    const k = textKind(raw);
    return k === 'integer' || k === 'number' ? converters.number!(raw) : BAD;
  },
  boolean: (raw) => (textKind(raw) === 'boolean' ? converters.boolean!(raw) : BAD),
  datetime: (raw) => (textKind(raw) === 'datetime' ? converters.datetime!(raw) : BAD),
  json: converters.json,
};

// ---------------------------------------------------------------------------------------------
// Driver.

async function check(config: CsvSourceConfig, ctx: DriverContext): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  const remote = isHttpUrl(cfg.path);
  let stat: { size: number } | null = null;
  if (!remote) {
    const local = await readableFile(ctx.files, cfg.path);
    if (typeof local === 'string') return { ok: false, message: local };
    stat = local;
  }
  let firstRow: string[] | null = null;
  try {
    for await (const chunk of readRowChunks(cfg, ctx.files, undefined, { highWaterMark: 64 * 1024, maxRowChars: 1024 * 1024 })) {
      firstRow = chunk.rows.find((r) => !isBlank(r)) ?? null;
      if (firstRow) break;
    }
  } catch (e) {
    if (remote && e instanceof HttpError) return { ok: false, message: `Cannot fetch ${redactUrl(cfg.path)}: ${e.message}` };
    if (e instanceof FileAccessError) return { ok: false, message: e.message };
    return { ok: false, message: `Cannot parse the first line of ${cfg.path}: ${(e as Error).message}` };
  }
  if (!firstRow) {
    return cfg.header
      ? { ok: false, message: `${cfg.path} is empty: a header row was expected` }
      : { ok: true, message: `${cfg.path} is readable and empty` };
  }
  const names = cfg.header ? headerNames(firstRow) : positionalNames(firstRow.length);
  if (cfg.header && firstRow.every((c) => c.trim() === '')) {
    return { ok: false, message: `The header row of ${cfg.path} has no column names` };
  }
  const unknown = Object.keys(cfg.columnTypes).filter((c) => !names.includes(c));
  if (unknown.length > 0) {
    return {
      ok: false,
      message: `columnTypes names column(s) not in the file: ${unknown.join(', ')} (columns: ${names.join(', ')})`,
    };
  }
  if (cfg.uniqueIdColumn !== null && !names.includes(cfg.uniqueIdColumn)) {
    return { ok: false, message: `uniqueIdColumn "${cfg.uniqueIdColumn}" is not a column of the file (columns: ${names.join(', ')})` };
  }
  let hint = '';
  if (names.length === 1) {
    const other = [',', ';', '\t', '|'].find((d) => d !== cfg.delimiter && (firstRow[0] ?? '').includes(d));
    if (other) hint = ` Only one column was found; is the delimiter ${JSON.stringify(other)}?`;
  }
  return {
    ok: true,
    message: `${cfg.path} is ${stat ? `readable (${stat.size} bytes)` : 'reachable'}; ${names.length} column(s): ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}.${hint}`,
  };
}

/** Create/update checks: a local path must be inside the workspace's files roots. */
function validate(config: CsvSourceConfig, ctx: DriverContext): ConfigError[] {
  return typeof config?.path === 'string' && isHttpUrl(config.path) ? [] : pathProblems(ctx.files, 'path', config?.path, 'read');
}

const SAMPLE_ROWS = 1000;
const hasOwn = Object.hasOwn as (o: object, k: PropertyKey) => boolean;

/** What the first SAMPLE_ROWS data rows say about the columns. */
interface Sample {
  /** Header names; null without a header, or when the file has no rows at all. */
  names: string[] | null;
  stats: TypeInference[];
  sampled: number;
  width: number;
}

/** Reads the header and the first SAMPLE_ROWS data rows (the same rows every time). */
async function sampleRows(cfg: ResolvedConfig, files: FileAccess, signal?: AbortSignal): Promise<Sample> {
  let names: string[] | null = null;
  const stats: TypeInference[] = [];
  let sampled = 0;
  let width = 0;
  outer: for await (const chunk of readRowChunks(cfg, files, signal)) {
    for (const row of chunk.rows) {
      if (isBlank(row)) continue;
      if (names === null && cfg.header) {
        names = headerNames(row);
        continue;
      }
      if (sampled >= SAMPLE_ROWS) break outer;
      sampled++;
      width = Math.max(width, row.length);
      for (let i = 0; i < row.length; i++) (stats[i] ??= new TypeInference()).addText(row[i]);
      // A row shorter than the others leaves its missing cells empty.
      for (let i = row.length; i < stats.length; i++) stats[i]!.addText(undefined);
    }
  }
  return { names, stats, sampled, width };
}

/** The fields a sample describes: the configured type of a column, else the inferred one. */
function sampleFields(cfg: ResolvedConfig, sample: Sample): FieldSchema[] {
  const { stats, sampled } = sample;
  const cols = sample.names ?? positionalNames(sample.width);
  return cols.map((name, i) => {
    const s = stats[i];
    const type = (hasOwn(cfg.columnTypes, name) ? cfg.columnTypes[name] : undefined) ?? s?.type() ?? 'string';
    return { name, type, nullable: s === undefined || s.nulls > 0 || (sampled > 0 && s.present < sampled) };
  });
}

async function discover(config: CsvSourceConfig, ctx: DriverContext): Promise<Catalog> {
  const cfg = resolveConfig(config);
  let sample: Sample;
  try {
    sample = await sampleRows(cfg, ctx.files);
  } catch (e) {
    if (e instanceof DriverError) throw e;
    if (e instanceof FileAccessError) throw new DriverError(`CSV source: ${e.message}`);
    throw new DriverError(`CSV source: cannot read ${cfg.path}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code === 'EBUSY');
  }
  if (cfg.header && sample.names === null) throw new DriverError(`CSV source: ${cfg.path} is empty: a header row was expected`);
  const fields = sampleFields(cfg, sample);
  if (cfg.uniqueIdColumn !== null && !fields.some((f) => f.name === cfg.uniqueIdColumn)) {
    throw new DriverError(`CSV source: uniqueIdColumn "${cfg.uniqueIdColumn}" is not a column of ${cfg.path}`);
  }
  return {
    streams: [
      {
        name: cfg.streamName,
        fields,
        supportedSyncModes: ['FULL_REFRESH', 'INCREMENTAL'],
        defaultCursorField: null,
        sourceDefinedPrimaryKey: cfg.uniqueIdColumn !== null ? [cfg.uniqueIdColumn] : null,
      },
    ],
  };
}

/** Which cells of a row become which record properties, and how they are converted. */
interface Plan {
  idx: number[];
  names: string[];
  conv: (Converter | null)[];
  types: FieldType[];
  width: number;
}

function buildPlan(columns: string[], selected: string[] | null, types: Record<string, FieldType>, configured: Record<string, FieldType>): Plan {
  const plan: Plan = { idx: [], names: [], conv: [], types: [], width: columns.length };
  const wanted = selected ?? columns;
  // A map, not indexOf: a file may have 100k columns.
  const position = new Map<string, number>();
  columns.forEach((name, i) => position.has(name) || position.set(name, i));
  for (const name of wanted) {
    const type = (hasOwn(types, name) ? types[name] : undefined) ?? 'string';
    plan.idx.push(position.get(name) ?? -1);
    plan.names.push(name);
    plan.conv.push(hasOwn(configured, name) ? converters[type] : inferredConverters[type]);
    plan.types.push(type);
  }
  return plan;
}

function preview(raw: string): string {
  return JSON.stringify(raw.length > 60 ? `${raw.slice(0, 57)}...` : raw);
}

async function* read(
  config: CsvSourceConfig,
  streams: ConfiguredStream[],
  state: StreamStates,
  options: ReadOptions,
): AsyncGenerator<SourceMessage> {
  const cfg = resolveConfig(config);
  const signal = options.signal;
  signal?.throwIfAborted();
  const pick = singleStreamRead('CSV source', 'file', cfg.streamName, streams, options);
  yield* pick.warnings;
  const configured = pick.configured;
  if (!configured) return;
  const stream = cfg.streamName;
  const startRow = startRowFromState('CSV source', state?.[stream], stream);
  const { batchSize, selected } = pick;

  // Columns without a configured type are read as the type discovery infers from the same first
  // rows (sampled again here, whatever the state), so what discover reports is what read emits
  // (datetime stays ISO text). Set in the try below, so sampling fails and aborts like reading.
  let types: Record<string, FieldType> = cfg.columnTypes;

  let plan: Plan | null = null;
  let headerSeen = !cfg.header;
  let dataRows = 0; // data rows seen so far, skipped ones included
  let emittedAny = false;
  let batch: DataRecord[] = [];
  let errors: RecordError[] = [];
  let batchBytes = 0;
  let bytesTotal = 0; // fractional bytes of all rows emitted so far
  let bytesReported = 0;
  const takeBytes = () => {
    bytesTotal += batchBytes;
    batchBytes = 0;
    const n = Math.round(bytesTotal) - bytesReported;
    bytesReported += n;
    return n;
  };
  let problemsReported = 0;
  let widthWarned = false;
  const warnings: string[] = [];
  const warned = new Set<string>();
  const warn = (message: string) => {
    if (!warned.has(message)) {
      warned.add(message);
      warnings.push(message);
    }
  };
  // Without a header, a selected `column_K` is the K-th cell whatever the first row's width.
  const selectedWidth = cfg.header
    ? 0
    : Math.max(0, ...(selected ?? []).map((f) => Number(/^column_([1-9]\d*)$/.exec(f)?.[1] ?? 0)));

  const makePlan = (columns: string[]): Plan => {
    const present = new Set(columns);
    if (selected) {
      const missing = selected.filter((f) => !present.has(f));
      if (missing.length > 0) {
        warn(`CSV source: selected field(s) not in ${cfg.path}: ${missing.join(', ')}; emitted as null`);
      }
    }
    const missingTypes = Object.keys(cfg.columnTypes).filter((c) => !present.has(c));
    if (missingTypes.length > 0) warn(`CSV source: columnTypes names column(s) not in the file: ${missingTypes.join(', ')}`);
    return buildPlan(columns, selected, types, cfg.columnTypes);
  };

  try {
    // The runner's discovery of this attempt, else a sample of the same first rows.
    const sampled = configured.sourceFields ?? sampleFields(cfg, await sampleRows(cfg, options.ctx.files, signal));
    types = { ...Object.fromEntries(sampled.map((f) => [f.name, f.type])), ...cfg.columnTypes };
    signal?.throwIfAborted();
    for await (const chunk of readRowChunks(cfg, options.ctx.files, signal, { onRequest: requestLog(options.ctx, 'CSV source') })) {
      const rows = chunk.rows;
      let payloadRows = 0;
      let payloadBytes = chunk.bytes;
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r]!;
        if (row.length === 1 && row[0] === '') continue;
        if (!headerSeen && payloadRows === 0 && payloadBytes === chunk.bytes) {
          payloadBytes -= Buffer.byteLength(row.join(cfg.delimiter), cfg.encoding) + 1;
          continue;
        }
        payloadRows++;
      }
      const perRow = payloadRows > 0 ? Math.max(0, payloadBytes) / payloadRows : 0;
      for (const p of chunk.problems) {
        if (problemsReported++ < 5) warn(`CSV source: malformed CSV near data row ${dataRows + 1}: ${p}`);
      }
      while (warnings.length > 0) yield { type: 'log', level: 'warn', message: warnings.shift()! };
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r]!;
        if (row.length === 1 && row[0] === '') continue;
        if (!headerSeen) {
          headerSeen = true;
          plan = makePlan(headerNames(row));
          continue;
        }
        let p: Plan = plan ?? (plan = makePlan(positionalNames(Math.max(row.length, selectedWidth))));
        if (row.length > p.width) {
          if (!cfg.header && !selected) p = plan = makePlan(positionalNames(row.length));
          else if (cfg.header && !widthWarned) {
            widthWarned = true;
            warn(
              `CSV source: data row ${dataRows + 1} has ${row.length} fields but the header has ${p.width}; extra fields are ignored (reported once)`,
            );
          }
        }
        if (dataRows++ < startRow) continue;

        const { idx, names, conv } = p;
        const rec: DataRecord = {};
        let recError: string | null = null;
        for (let j = 0; j < idx.length; j++) {
          const raw = row[idx[j]!];
          if (raw === undefined || raw === '') {
            rec[names[j]!] = null;
            continue;
          }
          const c = conv[j];
          if (c === null || c === undefined) {
            rec[names[j]!] = raw;
            continue;
          }
          const v = c(raw);
          if (v === BAD) {
            rec[names[j]!] = raw;
            const how = hasOwn(cfg.columnTypes, names[j]!) ? '' : ` (type inferred from the first ${SAMPLE_ROWS} rows; set columnTypes to read it otherwise)`;
            const msg = `column "${names[j]}": ${preview(raw)} is not a valid ${p.types[j]}${how}`;
            recError = recError === null ? msg : `${recError}; ${msg}`;
          } else {
            rec[names[j]!] = v;
          }
        }
        if (recError !== null) errors.push({ index: batch.length, error: recError });
        batch.push(rec);
        batchBytes += perRow;
        if (batch.length >= batchSize) {
          while (warnings.length > 0) yield { type: 'log', level: 'warn', message: warnings.shift()! };
          const msg: SourceMessage =
            errors.length > 0
              ? { type: 'records', stream, records: batch, bytes: takeBytes(), errors }
              : { type: 'records', stream, records: batch, bytes: takeBytes() };
          batch = [];
          errors = [];
          emittedAny = true;
          yield msg;
          yield { type: 'state', stream, state: { row: dataRows } };
          signal?.throwIfAborted();
        }
      }
    }
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    if (e instanceof DriverError) throw e;
    if (e instanceof FileAccessError) throw new DriverError(`CSV source: ${e.message}`);
    const code = (e as NodeJS.ErrnoException).code;
    const permanent = code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR';
    throw new DriverError(`CSV source: cannot read ${cfg.path}: ${(e as Error).message}`, !permanent);
  }
  while (warnings.length > 0) yield { type: 'log', level: 'warn', message: warnings.shift()! };
  if (batch.length > 0) {
    const bytes = takeBytes();
    yield errors.length > 0 ? { type: 'records', stream, records: batch, bytes, errors } : { type: 'records', stream, records: batch, bytes };
    yield { type: 'state', stream, state: { row: dataRows } };
  } else if (!emittedAny) {
    if (dataRows < startRow) {
      yield {
        type: 'log',
        level: 'warn',
        message: `CSV source: the state says ${startRow} rows were already read but ${cfg.path} has only ${dataRows}; the file was truncated or replaced (reset the state to read it again)`,
      };
    }
    yield { type: 'state', stream, state: { row: Math.max(startRow, dataRows) } };
  }
}

export const csvSource: SourceDriver<CsvSourceConfig> = {
  name: 'csv',
  role: 'SOURCE',
  title: 'CSV file',
  description: 'Reads a local CSV/TSV file as one stream, with type conversion and append-only incremental reads.',
  docs,
  configSchema: csvConfigSchema,
  check,
  discover,
  validate,
  read,
};

export default csvSource;
