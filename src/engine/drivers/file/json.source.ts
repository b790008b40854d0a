import fs from 'node:fs';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { FileAccessError, type FileAccess } from '../../../security/file-roots.js';
import { isHttpUrl, redactUrl, request, type RequestPolicy } from '../http/client.js';
import { requestLog } from '../context.js';
import { pathProblems, readableFile } from '../kit/local-files.js';
import { decodeText } from '../kit/text-decode.js';
import { JsonArrayScanner, JsonStructureError, LineSplitter } from './json-stream.js';
import { FieldSampler } from '../kit/inference.js';
import { project, sanitizeName, splitPath } from '../kit/records.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfigError,
  type ConfiguredStream,
  type DriverContext,
  type DataRecord,
  type JsonSchema,
  type ReadOptions,
  type RecordError,
  type SourceDriver,
  type SourceMessage,
  type StreamStates,
} from '../types.js';
import { singleStreamRead, startRowFromState } from '../kit/single-stream.js';

/**
 * JSON / JSON Lines source (Algolia SourceJSON: `url` + `uniqueIDColumn`).
 *
 * Contract:
 * - One stream per document. The document is streamed, never loaded whole: JSON Lines line by
 *   line; a JSON document through an incremental scanner that hands out the elements of the
 *   array at `recordsPath` one by one (memory is bounded by the largest record, 64 MiB max).
 *   The next chunk is pulled only when the consumer asks for the next message (backpressure).
 * - `url` is a local path, a file: URL or an http(s) URL (GET with `headers`). gzip is
 *   recognised by its magic bytes (`.gz` files, or served as a file); a `Content-Encoding`
 *   is decoded by the HTTP client.
 * - State is `{ row: N }`: records (bad ones included, blank lines excluded) already emitted.
 *   A `state` follows every `records` batch; resuming skips exactly N records (without parsing
 *   them). INCREMENTAL treats the document as append-only.
 * - A record that is not valid JSON or not an object is emitted as `{ "_raw": "<text>" }` and
 *   listed in the batch's `errors` (dead-lettered by the runner), never thrown. A broken
 *   document structure (truncated array, missing recordsPath) is a DriverError.
 * - Aborting `options.signal` destroys the stream; the iterator throws the signal's reason.
 */

export type JsonFormat = 'json' | 'jsonl';

export interface JsonSourceConfig {
  url: string;
  format?: JsonFormat;
  recordsPath?: string;
  uniqueIdColumn?: string;
  streamName?: string;
  headers?: Record<string, string>;
}

export const jsonConfigSchema: JsonSchema = {
  type: 'object',
  title: 'JSON / JSON Lines',
  required: ['url'],
  additionalProperties: false,
  properties: {
    url: {
      type: 'string',
      minLength: 1,
      origin: true,
      title: 'File path or URL',
      description:
        "Path relative to the workspace's files folder (absolute, or a file: URL, inside a files root), or an http(s) URL fetched with GET. May be gzip-compressed.",
      examples: ['products.jsonl', 'https://example.com/export/products.json.gz'],
    },
    format: {
      type: 'string',
      enum: ['json', 'jsonl'],
      title: 'Format',
      description:
        'json: one JSON document holding an array of records; jsonl: one JSON object per line (also called NDJSON). ' +
        'Default: from the extension (.jsonl/.ndjson → jsonl, .json → json), else the Content-Type, else the first character.',
    },
    recordsPath: {
      type: 'string',
      title: 'Records path',
      description: 'json only: dot path to the array of records inside the document, e.g. data.items. Default: the document itself is the array.',
      examples: ['data.items', 'results'],
    },
    uniqueIdColumn: {
      type: 'string',
      minLength: 1,
      title: 'Unique id field',
      description: "Field whose values identify a record (Algolia uniqueIDColumn); reported as the stream's primary key.",
    },
    streamName: {
      type: 'string',
      minLength: 1,
      title: 'Stream name',
      description: 'Name of the stream; defaults to the file name without extensions. Characters outside [A-Za-z0-9_] become _.',
    },
    headers: {
      type: 'object',
      title: 'HTTP headers',
      description: 'Extra request headers for http(s) URLs. Not write-only: keep credentials out of here.',
      additionalProperties: { type: 'string' },
    },
  },
};

export const docs = `# JSON / JSON Lines (source)

Reads records from a JSON array document or a JSON Lines file, local or over http(s).
The data is streamed, never loaded whole.

\`\`\`json
{
  "url": "https://example.com/export/products.json.gz",
  "format": "json",
  "recordsPath": "data.items",
  "uniqueIdColumn": "sku"
}
\`\`\`

- **url**: a path relative to the workspace's files folder (absolute paths and \`file:\` URLs must lie
  inside one of the workspace's files roots; \`..\`, links leading elsewhere and devices are refused)
  or an http(s) URL (GET, with optional \`headers\`; retried
  with backoff on 429/5xx/network errors). gzip content is detected by its magic bytes.
- **format**: \`json\` (an array of objects, at \`recordsPath\` if set, e.g. \`{"data":{"items":[...]}}\`
  with \`data.items\`) or \`jsonl\` (one object per line; blank lines are skipped). Default: from
  the extension, else the Content-Type, else \`json\` when the document starts with \`[\` (or
  \`recordsPath\` is set), \`jsonl\` otherwise.
- **Streaming**: JSON documents are scanned incrementally; only the records are parsed, one at a
  time (records up to 64 MiB each). Reading stops as soon as the records array closes.
- **Bad records**: a line/element that is not valid JSON or not an object is emitted as
  \`{"_raw": "<text>"}\` and reported in the batch's errors, so it is dead-lettered; the sync goes on.
- **Stream**: one, named after the file (\`products\`) unless \`streamName\` is set. \`discover\` infers
  fields and types from the first 1000 records; \`uniqueIdColumn\` becomes the primary key.
- **State / cursor**: \`{ "row": N }\` = records already emitted; resuming skips N records.
  INCREMENTAL treats the document as append-only (new records at the end).
- **Sync modes**: FULL_REFRESH, INCREMENTAL.
`;

const LABEL = 'JSON source';
const SAMPLE_RECORDS = 1000;
const RAW_CLIP = 64 * 1024;

interface ResolvedConfig {
  /** Local file path, or null for a URL. */
  file: string | null;
  url: string | null;
  /** Shown in messages (URL credentials redacted). */
  display: string;
  format: JsonFormat | null;
  recordsPath: string[];
  uniqueIdColumn: string | null;
  streamName: string;
  headers: Record<string, string>;
}

function formatFromName(name: string): JsonFormat | null {
  const n = name.toLowerCase().replace(/\.gz$/, '');
  if (/\.(?:jsonl|ndjson|jsonlines)$/.test(n)) return 'jsonl';
  if (/\.json$/.test(n)) return 'json';
  return null;
}

function formatFromContentType(ct: string | null): JsonFormat | null {
  if (!ct) return null;
  const t = ct.toLowerCase();
  if (/ndjson|jsonl|json-lines|jsonlines|json-seq/.test(t)) return 'jsonl';
  if (/[/+]json\b/.test(t)) return 'json';
  return null;
}

function resolveConfig(raw: JsonSourceConfig): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError(`${LABEL}: config must be an object`);
  if (typeof raw.url !== 'string' || raw.url.trim() === '') throw new DriverError(`${LABEL}: "url" is required`);
  if (raw.format !== undefined && raw.format !== 'json' && raw.format !== 'jsonl') {
    throw new DriverError(`${LABEL}: "format" must be json or jsonl (got ${JSON.stringify(raw.format)})`);
  }
  let file: string | null = null;
  let url: string | null = null;
  let baseName: string;
  if (isHttpUrl(raw.url)) {
    let u: URL;
    try {
      u = new URL(raw.url);
    } catch {
      throw new DriverError(`${LABEL}: invalid URL ${JSON.stringify(redactUrl(raw.url))}`);
    }
    url = u.toString();
    baseName = decodeURIComponent(path.posix.basename(u.pathname)) || u.hostname;
  } else {
    file = raw.url.startsWith('file:') ? fileURLToPath(raw.url) : raw.url;
    baseName = path.basename(file);
  }
  const recordsPath = splitPath(raw.recordsPath);
  if (recordsPath.some((s) => s === '')) throw new DriverError(`${LABEL}: "recordsPath" has an empty segment: ${JSON.stringify(raw.recordsPath)}`);
  const bare = baseName.replace(/\.gz$/i, '').replace(/\.(?:jsonl|ndjson|jsonlines|json)$/i, '');
  return {
    file,
    url,
    display: url !== null ? redactUrl(url) : file!,
    format: raw.format ?? formatFromName(url !== null ? new URL(url).pathname : file!),
    recordsPath,
    uniqueIdColumn: raw.uniqueIdColumn ?? null,
    streamName: sanitizeName(raw.streamName ?? bare, 'json'),
    headers: raw.headers ?? {},
  };
}

// ---------------------------------------------------------------------------------------------
// Byte stream → (gunzip) → text chunks.

interface Opened {
  chunks: AsyncGenerator<string>;
  contentType: string | null;
  close(): void;
}

async function openSource(cfg: ResolvedConfig, files: FileAccess, signal?: AbortSignal, onRequest?: RequestPolicy['onRequest']): Promise<Opened> {
  let raw: Readable;
  let contentType: string | null = null;
  if (cfg.url !== null) {
    const headers: Record<string, string> = { accept: 'application/json, application/x-ndjson;q=0.9, */*;q=0.5', ...cfg.headers };
    const res = await request(cfg.url, { method: 'GET', headers }, { signal, label: LABEL, onRequest });
    contentType = res.headers.get('content-type');
    raw = res.body ? Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>) : Readable.from([]);
  } else {
    // The checked descriptor is read (the path is only its name); closing the stream closes it.
    const { handle, path: abs } = await files.openForRead(cfg.file!);
    raw = fs.createReadStream(abs, { fd: handle, highWaterMark: 256 * 1024 });
  }
  if (signal) addAbortSignal(signal, raw);
  // JSON is UTF-8 (RFC 8259): a binary or otherwise non-UTF-8 document fails with the offset of the first bad byte.
  const where = cfg.url !== null ? redactUrl(cfg.url) : cfg.file!;
  return { chunks: decodeText(maybeGunzip(raw), 'utf8', LABEL, where, 'JSON must be UTF-8 text; is it a binary file?'), contentType, close: () => raw.destroy() };
}

/** Passes bytes through, gunzipping them when they start with the gzip magic bytes. */
async function* maybeGunzip(src: Readable): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head: Buffer = Buffer.alloc(0);
  try {
    while (head.length < 2) {
      const n = await it.next();
      if (n.done) {
        if (head.length > 0) yield head;
        return;
      }
      head = head.length === 0 ? Buffer.from(n.value) : Buffer.concat([head, n.value]);
    }
    if (head[0] !== 0x1f || head[1] !== 0x8b) {
      yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    }
    const gunzip = zlib.createGunzip();
    const feed = Readable.from(
      (async function* () {
        yield head;
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          yield n.value;
        }
      })(),
    );
    feed.on('error', (e) => gunzip.destroy(e));
    feed.pipe(gunzip);
    try {
      for await (const c of gunzip as AsyncIterable<Buffer>) yield c;
    } finally {
      feed.destroy();
      gunzip.destroy();
    }
  } finally {
    src.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Text → records.

interface Sink {
  /** `error` non-null marks a bad record. */
  add(rec: DataRecord, error: string | null, bytes: number): void;
}

interface Parser {
  push(text: string): void;
  end(): void;
  /** True when nothing more needs to be read. */
  done(): boolean;
  /** Records seen so far, skipped ones included. */
  seen(): number;
  format(): JsonFormat | null;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function clip(text: string): string {
  return text.length > RAW_CLIP ? `${text.slice(0, RAW_CLIP)}...` : text;
}

/**
 * Builds the parser for a document. With no known format, the first non-blank character
 * decides: `[` (or a recordsPath) → json, anything else → jsonl.
 */
function makeParser(cfg: ResolvedConfig, known: JsonFormat | null, skip: number, selected: string[] | null, sink: Sink): Parser {
  let fmt: JsonFormat | null = known ?? (cfg.recordsPath.length > 0 ? 'json' : null);
  let inner: { push(t: string): void; end(): void; done(): boolean } | null = null;
  let seen = 0;

  const accept = (text: string, where: string) => {
    const bytes = Buffer.byteLength(text, 'utf8') + 1;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      sink.add({ _raw: clip(text) }, `${where}: invalid JSON: ${(e as Error).message}`, bytes);
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      sink.add({ _raw: clip(text) }, `${where}: expected a JSON object, got ${kindOf(v)}`, bytes);
      return;
    }
    sink.add(selected ? project(v as DataRecord, selected) : (v as DataRecord), null, bytes);
  };

  const build = (f: JsonFormat) => {
    if (f === 'jsonl') {
      let line = 0;
      let skipLeft = skip;
      const splitter = new LineSplitter((text) => {
        line++;
        const c = text.charCodeAt(0);
        if (text.length === 0 || ((c === 0x20 || c === 0x09) && text.trim() === '')) return;
        seen++;
        if (skipLeft > 0) {
          skipLeft--;
          return;
        }
        accept(text, `line ${line}`);
      });
      return { push: (t: string) => splitter.push(t), end: () => splitter.end(), done: () => false };
    }
    const scanner = new JsonArrayScanner(cfg.recordsPath, {
      skip,
      onElement: (text) => {
        seen++;
        if (text !== null) accept(text, `record ${seen}`);
      },
    });
    return { push: (t: string) => scanner.push(t), end: () => scanner.end(), done: () => scanner.done };
  };

  return {
    push(text) {
      if (inner === null) {
        if (fmt === null) {
          const m = /\S/.exec(text);
          if (m === null) return; // whitespace only so far: wait (it carries no data)
          fmt = m[0] === '[' ? 'json' : 'jsonl';
        }
        inner = build(fmt);
      }
      inner.push(text);
    },
    end() {
      if (inner === null) {
        // Nothing but whitespace: zero records for JSON Lines, an empty document for JSON.
        if ((fmt ?? 'jsonl') === 'jsonl') return;
        inner = build(fmt!);
      }
      inner.end();
    },
    done: () => inner?.done() ?? false,
    seen: () => seen,
    format: () => fmt,
  };
}

function structureError(cfg: ResolvedConfig, e: unknown): DriverError {
  if (e instanceof DriverError) return e;
  if (e instanceof FileAccessError) return new DriverError(`${LABEL}: ${e.message}`);
  if (e instanceof JsonStructureError) return new DriverError(`${LABEL}: ${cfg.display}: ${e.message}`);
  const code = (e as NodeJS.ErrnoException).code;
  const permanent =
    code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR';
  const what = code?.startsWith('Z_') ? 'invalid gzip data' : (e as Error).message;
  return new DriverError(`${LABEL}: cannot read ${cfg.display}: ${what}`, !permanent);
}

/** Reads up to `limit` records (good and bad) from the start of the document. */
async function sample(cfg: ResolvedConfig, files: FileAccess, limit: number): Promise<{ records: DataRecord[]; errors: string[]; format: JsonFormat | null }> {
  const records: DataRecord[] = [];
  const errors: string[] = [];
  let count = 0;
  const opened = await openSource(cfg, files).catch((e: unknown) => {
    throw structureError(cfg, e);
  });
  const parser = makeParser(cfg, cfg.format ?? formatFromContentType(opened.contentType), 0, null, {
    add(rec, error) {
      count++;
      if (error === null) records.push(rec);
      else errors.push(error);
    },
  });
  try {
    let stopped = false;
    for await (const text of opened.chunks) {
      parser.push(text);
      if (count >= limit || parser.done()) {
        stopped = true;
        break;
      }
    }
    if (!stopped) parser.end();
  } catch (e) {
    throw structureError(cfg, e);
  } finally {
    opened.close();
  }
  return { records: records.slice(0, limit), errors, format: parser.format() };
}

// ---------------------------------------------------------------------------------------------
// Driver.

async function check(config: JsonSourceConfig, ctx: DriverContext): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  if (cfg.file !== null) {
    const local = await readableFile(ctx.files, cfg.file);
    if (typeof local === 'string') return { ok: false, message: local };
  }
  let got: Awaited<ReturnType<typeof sample>>;
  try {
    got = await sample(cfg, ctx.files, 1);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  const fmt = got.format ?? 'jsonl';
  const where = fmt === 'json' && cfg.recordsPath.length > 0 ? ` at "${cfg.recordsPath.join('.')}"` : '';
  if (got.errors.length > 0 && got.records.length === 0) {
    const hint = fmt === 'jsonl' ? ' (if this is one JSON document, set format to json)' : '';
    return { ok: false, message: `${cfg.display} is readable but its first record is unusable: ${got.errors[0]}${hint}` };
  }
  const first = got.records[0];
  if (first === undefined) return { ok: true, message: `${cfg.display} is readable (${fmt}${where}) and holds no records` };
  const names = Object.keys(first);
  if (cfg.uniqueIdColumn !== null && !names.includes(cfg.uniqueIdColumn)) {
    return { ok: false, message: `uniqueIdColumn "${cfg.uniqueIdColumn}" is not a field of the first record (fields: ${names.slice(0, 20).join(', ')})` };
  }
  return {
    ok: true,
    message: `${cfg.display} is readable (${fmt}${where}); the first record has ${names.length} field(s): ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`,
  };
}

/** Create/update checks: a local path must be inside the workspace's files roots. */
function validate(config: JsonSourceConfig, ctx: DriverContext): ConfigError[] {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch {
    return []; // reported by check and at run
  }
  return cfg.file === null ? [] : pathProblems(ctx.files, 'url', cfg.file, 'read');
}

async function discover(config: JsonSourceConfig, ctx: DriverContext): Promise<Catalog> {
  const cfg = resolveConfig(config);
  const got = await sample(cfg, ctx.files, SAMPLE_RECORDS);
  if (got.records.length === 0 && got.errors.length > 0) {
    throw new DriverError(`${LABEL}: ${cfg.display}: no usable record in the sample; first problem: ${got.errors[0]}`);
  }
  const sampler = new FieldSampler();
  for (const r of got.records) sampler.add(r);
  if (cfg.uniqueIdColumn !== null && sampler.records > 0 && !sampler.has(cfg.uniqueIdColumn)) {
    throw new DriverError(`${LABEL}: uniqueIdColumn "${cfg.uniqueIdColumn}" is not a field of the records in ${cfg.display}`);
  }
  return {
    streams: [
      {
        name: cfg.streamName,
        fields: sampler.fields(),
        supportedSyncModes: ['FULL_REFRESH', 'INCREMENTAL'],
        defaultCursorField: null,
        sourceDefinedPrimaryKey: cfg.uniqueIdColumn !== null ? [cfg.uniqueIdColumn] : null,
      },
    ],
  };
}

interface Batch {
  records: DataRecord[];
  errors: RecordError[];
  bytes: number;
}

async function* read(config: JsonSourceConfig, streams: ConfiguredStream[], state: StreamStates, options: ReadOptions): AsyncGenerator<SourceMessage> {
  const cfg = resolveConfig(config);
  const signal = options.signal;
  signal?.throwIfAborted();
  const pick = singleStreamRead(LABEL, 'document', cfg.streamName, streams, options);
  yield* pick.warnings;
  const configured = pick.configured;
  if (!configured) return;
  const stream = cfg.streamName;
  const startRow = startRowFromState(LABEL, state?.[stream], stream);
  const { batchSize, selected } = pick;

  const ready: Batch[] = [];
  let cur: Batch = { records: [], errors: [], bytes: 0 };
  let emitted = 0; // records emitted in batches so far
  const sink: Sink = {
    add(rec, error, bytes) {
      if (error !== null) cur.errors.push({ index: cur.records.length, error });
      cur.records.push(rec);
      cur.bytes += bytes;
      if (cur.records.length >= batchSize) {
        ready.push(cur);
        cur = { records: [], errors: [], bytes: 0 };
      }
    },
  };
  const message = (b: Batch): SourceMessage =>
    b.errors.length > 0
      ? { type: 'records', stream, records: b.records, bytes: b.bytes, errors: b.errors }
      : { type: 'records', stream, records: b.records, bytes: b.bytes };

  let opened: Opened | null = null;
  let parser: Parser | null = null;
  try {
    opened = await openSource(cfg, options.ctx.files, signal, requestLog(options.ctx, LABEL));
    parser = makeParser(cfg, cfg.format ?? formatFromContentType(opened.contentType), startRow, selected, sink);
    for await (const text of opened.chunks) {
      parser.push(text);
      while (ready.length > 0) {
        const b = ready.shift()!;
        emitted += b.records.length;
        yield message(b);
        yield { type: 'state', stream, state: { row: startRow + emitted } };
        signal?.throwIfAborted();
      }
      if (parser.done()) break;
    }
    if (!parser.done()) parser.end();
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw structureError(cfg, e);
  } finally {
    opened?.close();
  }
  for (const b of [...ready, cur]) {
    if (b.records.length === 0) continue;
    emitted += b.records.length;
    yield message(b);
    yield { type: 'state', stream, state: { row: startRow + emitted } };
  }
  if (emitted === 0) {
    const seen = parser?.seen() ?? 0;
    if (seen < startRow) {
      yield {
        type: 'log',
        level: 'warn',
        message: `${LABEL}: the state says ${startRow} records were already read but ${cfg.display} has only ${seen}; the document was truncated or replaced (reset the state to read it again)`,
      };
    }
    yield { type: 'state', stream, state: { row: Math.max(startRow, seen) } };
  }
}

export const jsonSource: SourceDriver<JsonSourceConfig> = {
  name: 'json',
  role: 'SOURCE',
  title: 'JSON / JSON Lines',
  description: 'Streams records from a JSON array document or a JSON Lines file, local or over http(s), gzip or not.',
  docs,
  configSchema: jsonConfigSchema,
  check,
  discover,
  validate,
  read,
};

export default jsonSource;
