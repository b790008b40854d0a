import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { FileAccessError, type FileAccess } from '../../../security/file-roots.js';
import { pathProblems, targetInExistingFolder, writableFolder } from '../kit/local-files.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfigError,
  type DataRecord,
  type DriverContext,
  type DestinationDriver,
  type JsonSchema,
  type RejectedRecord,
  type StreamWriter,
  type WriteMode,
  type WriteResult,
  type WriterOptions,
} from '../types.js';

/**
 * File destination: JSON Lines or CSV files, one file per stream or numbered files with size
 * rotation.
 *
 * Contract:
 * - Names: `path` is the file; or, with `filePattern`, `path` is a directory and files are
 *   named by the pattern (`{stream}` = the stream's destination name, `{n}` = 1, 2, ...). With
 *   `rotateBytes` and no pattern, files are `<name>-<n><ext>` next to `path`.
 * - APPEND: each `writeBatch` appends its lines with one write per file touched and (with
 *   `fsync`) fdatasyncs them, and fsyncs the directory when it created a file, before resolving:
 *   a resolved batch is on disk. A later sync continues the highest-numbered file. A torn last
 *   line left by a crash is terminated first. CSV appends keep the existing file's header.
 * - OVERWRITE: everything goes to `<file>.sluice-tmp` files; `commit()` fsyncs and renames each
 *   over its final name, then deletes older numbered files of the stream beyond the new last
 *   one. Each file is replaced atomically (a set of rotated files is not replaced as one unit).
 *   `abort()` removes the temporary files.
 * - Rotation: with `rotateBytes`, a new numbered file starts before a record would push the
 *   current file past the limit (a file always gets at least one record, so one oversized record
 *   makes an oversized file). Every CSV file starts with the header.
 * - CSV (RFC 4180): header = the stream schema's fields, else the keys of the first batch in
 *   order of appearance; fields quoted when they hold the delimiter, a quote, CR or LF (quotes
 *   doubled); lines end with CRLF; null/absent → empty field, "" → `""`; objects/arrays →
 *   JSON text; Dates → ISO strings. A record with a field outside the header is rejected (the
 *   header of a file cannot change).
 * - Records that cannot be serialized (BigInt inside JSON, circular) are rejected individually.
 * - Every file (temporary ones included, always in the same folder) is opened through the
 *   workspace's writable files roots: `path` is relative to its files folder or absolute inside
 *   a root, and links leading elsewhere are refused at open.
 * - Two writers of one process may not target the same files (e.g. two streams without
 *   `{stream}` in the pattern): the second open fails with a clear error.
 */

export type FileFormat = 'jsonl' | 'csv';

export interface FileDestinationConfig {
  path: string;
  filePattern?: string;
  format?: FileFormat;
  rotateBytes?: number;
  fsync?: boolean;
}

export const fileConfigSchema: JsonSchema = {
  type: 'object',
  title: 'Files (JSON Lines / CSV)',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      title: 'Path',
      description:
        "Output file; or, with filePattern, the output directory (. for the files folder itself). Relative to the workspace's files folder, or absolute inside a writable files root. The directory must exist.",
      examples: ['export/orders.csv', 'export'],
    },
    filePattern: {
      type: 'string',
      minLength: 1,
      pattern: '^[^/\\\\]+$',
      title: 'File name pattern',
      description: 'File names inside the path directory: {stream} = stream (destination) name, {n} = file number (needed with rotateBytes).',
      examples: ['{stream}-{n}.jsonl', '{stream}.csv'],
    },
    format: {
      type: 'string',
      enum: ['jsonl', 'csv'],
      title: 'Format',
      description: 'jsonl (one JSON object per line) or csv (RFC 4180, header row). Default: csv when the file name ends in .csv, else jsonl.',
    },
    rotateBytes: {
      type: 'integer',
      minimum: 1,
      title: 'Rotate after (bytes)',
      description: 'Start a new numbered file before one would grow beyond this size.',
      examples: [104857600],
    },
    fsync: {
      type: 'boolean',
      default: true,
      title: 'fsync each batch',
      description: 'Flush every batch to disk before acknowledging it. Off: faster, but a power cut may lose the last batches.',
    },
  },
};

export const docs = `# Files (destination)

Writes each stream to JSON Lines or CSV files, optionally rotated by size.

\`\`\`json
{ "path": "export", "filePattern": "{stream}-{n}.csv", "format": "csv", "rotateBytes": 104857600 }
\`\`\`

- **Path**: relative to the workspace's files folder, or absolute inside one of its writable files
  roots; \`..\`, links leading elsewhere, hard links and devices are refused.

- **Names**: \`path\` alone is the output file. With \`filePattern\`, \`path\` is a directory and
  \`{stream}\` / \`{n}\` are replaced by the stream's destination name and the file number (1, 2, ...).
  Use \`{stream}\` when a pipeline has several streams: two streams may not share files.
- **Formats**: \`jsonl\` or \`csv\` (default from the file extension). CSV follows RFC 4180 (CRLF,
  quotes doubled); the header comes from the stream schema, else the first batch's keys; nested
  values are written as JSON; a record with a field that is not in the header is rejected.
- **Rotation**: \`rotateBytes\` starts a new numbered file before a file would exceed the size.
  Without a pattern, files are named \`<name>-1.jsonl\`, \`<name>-2.jsonl\`, ...
- **APPEND**: each batch is on disk (fsync) when acknowledged; a new sync continues the last file.
- **OVERWRITE**: writes \`.sluice-tmp\` files and renames them into place on commit (each file
  atomically), then removes the stream's older numbered files; an aborted sync leaves the old files.
`;

const SUPPORTED_MODES: WriteMode[] = ['APPEND', 'OVERWRITE'];
const TMP = '.sluice-tmp';
const LABEL = 'File destination';

interface ResolvedConfig {
  /** The output folder as the user wrote it (relative to the workspace's files folder, or absolute inside a root). */
  dir: string;
  /** Name template inside `dir`, with {stream} and {n}. */
  template: string;
  format: FileFormat;
  rotateBytes: number | null;
  fsync: boolean;
  numbered: boolean;
  /** The driver's name in messages. */
  label: string;
}

/** How a preset of this driver (jsonl) differs from it. */
export interface FilePreset {
  /** The driver's name in messages. */
  label: string;
  /** APPEND writers of several streams may share one file (each batch is one append). */
  shareAppend: boolean;
}

const FILE: FilePreset = { label: LABEL, shareAppend: false };

function resolveConfig(raw: FileDestinationConfig, preset: FilePreset = FILE): ResolvedConfig {
  const LABEL = preset.label;
  if (!raw || typeof raw !== 'object') throw new DriverError(`${LABEL}: config must be an object`);
  if (typeof raw.path !== 'string' || raw.path.length === 0) throw new DriverError(`${LABEL}: "path" is required`);
  const rotateBytes = raw.rotateBytes ?? null;
  if (rotateBytes !== null && (!Number.isSafeInteger(rotateBytes) || rotateBytes < 1)) {
    throw new DriverError(`${LABEL}: "rotateBytes" must be a positive integer`);
  }
  const full = path.normalize(raw.path);
  let dir: string;
  let template: string;
  if (raw.filePattern !== undefined) {
    const p = raw.filePattern;
    if (p.length === 0 || /[/\\]/.test(p) || p === '.' || p === '..') {
      throw new DriverError(`${LABEL}: "filePattern" must be a file name without directories (got ${JSON.stringify(p)})`);
    }
    if (rotateBytes !== null && !p.includes('{n}')) throw new DriverError(`${LABEL}: "filePattern" needs {n} when rotateBytes is set`);
    dir = full;
    template = p;
  } else {
    dir = path.dirname(full);
    const base = path.basename(full);
    if (rotateBytes !== null) {
      const ext = path.extname(base);
      template = `${escapeBraces(base.slice(0, base.length - ext.length))}-{n}${escapeBraces(ext)}`;
    } else template = escapeBraces(base);
  }
  const format = raw.format ?? (/\.csv$/i.test(template.replace(/\{n\}/g, '1')) ? 'csv' : 'jsonl');
  if (format !== 'jsonl' && format !== 'csv') throw new DriverError(`${LABEL}: "format" must be jsonl or csv`);
  return { dir, template, format, rotateBytes, fsync: raw.fsync ?? true, numbered: template.includes('{n}'), label: preset.label };
}

/** A literal file name's braces must not read as placeholders. */
function escapeBraces(s: string): string {
  return s.replace(/\{(stream|n)\}/g, '{{$1}}');
}

function sanitizeStream(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_');
  return s.length > 0 ? s : 'stream';
}

/** File name for stream + number; `{{x}}` stays a literal `{x}`. */
function fileName(template: string, stream: string, n: number): string {
  return template.replace(/\{\{(stream|n)\}\}|\{(stream|n)\}/g, (m, lit: string | undefined, ph: string | undefined) => {
    if (lit !== undefined) return `{${lit}}`;
    return ph === 'stream' ? stream : String(n);
  });
}

/** Regex matching the stream's numbered files, capturing the number. */
function numberedRegex(template: string, stream: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const parts = template.split(/(\{\{(?:stream|n)\}\}|\{(?:stream|n)\})/);
  let re = '';
  for (const part of parts) {
    if (part === '{n}') re += '([1-9]\\d*)';
    else if (part === '{stream}') re += esc(stream);
    else if (part === '{{n}}') re += esc('{n}');
    else if (part === '{{stream}}') re += esc('{stream}');
    else re += esc(part);
  }
  return new RegExp(`^${re}$`);
}

function ioError(context: string, e: unknown, LABEL: string): DriverError {
  if (e instanceof DriverError) return e;
  if (e instanceof FileAccessError) return new DriverError(`${LABEL}: ${e.message}`);
  const code = (e as NodeJS.ErrnoException).code;
  const permanent = code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EROFS';
  return new DriverError(`${LABEL}: ${context}: ${(e as Error).message}`, !permanent);
}

async function fsyncDirectory(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | null = null;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // Not supported everywhere; the data itself was synced.
  } finally {
    await fh?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// CSV.

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s: string;
  switch (typeof v) {
    case 'string':
      if (v === '') return '""';
      s = v;
      break;
    case 'number':
      return Number.isFinite(v) ? String(v) : '';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    default:
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? '' : v.toISOString();
      s = JSON.stringify(v) ?? '';
  }
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(cells: string[]): string {
  return `${cells.join(',')}\r\n`;
}

/** Header of an existing CSV file (its first line), or null when the file is empty. */
async function readCsvHeader(fh: fs.promises.FileHandle): Promise<string[] | null> {
  const buf = Buffer.alloc(1024 * 1024);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  if (bytesRead === 0) return null;
  const text = buf.toString('utf8', 0, bytesRead).replace(/^\uFEFF/, '');
  const parsed = Papa.parse<string[]>(text, { preview: 1 });
  const row = parsed.data[0];
  if (!row || (row.length === 1 && row[0] === '')) return null;
  return row;
}

// ---------------------------------------------------------------------------------------------
// Writer.

const activeTargets = new Map<string, string>();

interface OpenFile {
  n: number;
  /** User form (as in messages). */
  final: string;
  /** Where bytes go, absolute and checked: `final` (APPEND) or `final + TMP` (OVERWRITE). */
  target: string;
  fh: fs.promises.FileHandle;
  size: number;
  records: number;
  /** Written before the next line: a newline after a torn line, or the CSV header. */
  prefix: string;
}

class FileWriter implements StreamWriter {
  private done = false;
  private current: OpenFile | null = null;
  /** OVERWRITE: temp files written, in order. */
  private readonly temps: { target: string; final: string }[] = [];
  private columns: string[] | null;
  private columnSet: Set<string> | null;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly files: FileAccess,
    /** `cfg.dir`, absolute and checked. */
    private readonly dirAbs: string,
    private readonly mode: WriteMode,
    private readonly stream: string,
    /** The key this writer holds in activeTargets; null: a shared APPEND writer holds none. */
    private readonly lockKey: string | null,
    schemaColumns: string[] | null,
  ) {
    this.columns = schemaColumns;
    this.columnSet = schemaColumns ? new Set(schemaColumns) : null;
  }

  private nameFor(n: number): string {
    return path.join(this.cfg.dir, fileName(this.cfg.template, this.stream, n));
  }

  /** APPEND: the highest existing number of this stream's files (0 if none). */
  private async lastNumber(): Promise<number> {
    if (!this.cfg.numbered) return 1;
    const re = numberedRegex(this.cfg.template, this.stream);
    let max = 0;
    for (const name of await fs.promises.readdir(this.dirAbs)) {
      const m = re.exec(name);
      if (m) max = Math.max(max, Number(m[1]));
    }
    return max;
  }

  async open(): Promise<void> {
    if (this.mode === 'OVERWRITE') {
      await this.openFile(1);
      return;
    }
    const last = Math.max(1, await this.lastNumber());
    await this.openFile(last);
    const cur = this.current!;
    if (this.cfg.rotateBytes !== null && cur.size >= this.cfg.rotateBytes && this.cfg.numbered) await this.rotate();
  }

  private async openFile(n: number): Promise<void> {
    const final = this.nameFor(n);
    if (this.mode === 'OVERWRITE') {
      // The temporary file sits beside the final one: same checked folder, same root.
      let fh: fs.promises.FileHandle;
      let target: string;
      try {
        ({ handle: fh, path: target } = await this.files.openForWrite(`${final}${TMP}`, 'w'));
      } catch (e) {
        throw ioError(`cannot create ${final}${TMP}`, e, this.cfg.label);
      }
      this.temps.push({ target, final });
      this.current = { n, final, target, fh, size: 0, records: 0, prefix: this.headerText() };
      return;
    }
    let fh: fs.promises.FileHandle;
    let target: string;
    let size: number;
    let created = false;
    try {
      created = !fs.existsSync(this.files.resolve(final, 'write'));
      ({ handle: fh, path: target } = await this.files.openForWrite(final, 'a'));
      size = (await fh.stat()).size;
    } catch (e) {
      throw ioError(`cannot open ${final}`, e, this.cfg.label);
    }
    if (created && this.cfg.fsync) await fsyncDirectory(this.dirAbs);
    let prefix = '';
    try {
      if (size > 0) {
        const last = Buffer.alloc(1);
        const { handle: reader } = await this.files.openForRead(final);
        try {
          await reader.read(last, 0, 1, size - 1);
          if (this.cfg.format === 'csv') {
            const header = await readCsvHeader(reader);
            if (header) {
              this.columns = header;
              this.columnSet = new Set(header);
            }
          }
        } finally {
          await reader.close();
        }
        if (last[0] !== 0x0a) prefix = this.cfg.format === 'csv' ? '\r\n' : '\n';
      }
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw ioError(`cannot inspect ${final}`, e, this.cfg.label);
    }
    if (size === 0) prefix = this.headerText();
    this.current = { n, final, target, fh, size, records: size > 0 ? 1 : 0, prefix };
  }

  private headerText(): string {
    return this.cfg.format === 'csv' && this.columns ? csvLine(this.columns.map(csvCell)) : '';
  }

  /** Closes the current file (synced) and opens the next number. */
  private async rotate(): Promise<void> {
    const cur = this.current!;
    await this.closeCurrent(true);
    await this.openFile(cur.n + 1);
  }

  private async closeCurrent(sync: boolean): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    this.current = null;
    try {
      if (sync && this.cfg.fsync) await cur.fh.datasync();
    } finally {
      await cur.fh.close();
    }
  }

  private async writeOut(text: string): Promise<number> {
    const cur = this.current!;
    const buf = Buffer.from(text, 'utf8');
    try {
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await cur.fh.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
      if (this.cfg.fsync && buf.length > 0) await cur.fh.datasync();
    } catch (e) {
      throw ioError(`writing ${cur.target} failed`, e, this.cfg.label);
    }
    cur.size += buf.length;
    return buf.length;
  }

  /** Serializes records to lines; unserializable ones are rejected. */
  private serialize(records: DataRecord[], rejected: RejectedRecord[]): (string | null)[] {
    const lines: (string | null)[] = new Array<string | null>(records.length);
    if (this.cfg.format === 'jsonl') {
      for (let i = 0; i < records.length; i++) {
        let line: string | undefined;
        try {
          line = JSON.stringify(records[i]);
        } catch (e) {
          rejected.push({ index: i, error: `cannot serialize record: ${(e as Error).message}` });
          lines[i] = null;
          continue;
        }
        if (line === undefined) {
          rejected.push({ index: i, error: 'record is not a JSON value' });
          lines[i] = null;
          continue;
        }
        lines[i] = `${line}\n`;
      }
      return lines;
    }
    if (this.columns === null) {
      // No schema and a new file: the header is the first batch's keys, in order of appearance.
      const seen = new Set<string>();
      for (const rec of records) for (const k in rec) if (rec[k] !== undefined) seen.add(k);
      this.columns = [...seen];
      this.columnSet = seen;
      if (this.current && this.current.size === 0) this.current.prefix = this.headerText();
    }
    const cols = this.columns;
    const colSet = this.columnSet!;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      let extra: string | null = null;
      for (const k in rec) {
        if (rec[k] !== undefined && !colSet.has(k)) {
          extra = k;
          break;
        }
      }
      if (extra !== null) {
        rejected.push({ index: i, error: `field "${extra}" is not a column of the CSV file (columns: ${cols.slice(0, 20).join(', ')})` });
        lines[i] = null;
        continue;
      }
      try {
        const cells = new Array<string>(cols.length);
        for (let j = 0; j < cols.length; j++) cells[j] = csvCell(rec[cols[j]!]);
        lines[i] = csvLine(cells);
      } catch (e) {
        rejected.push({ index: i, error: `cannot serialize record: ${(e as Error).message}` });
        lines[i] = null;
      }
    }
    return lines;
  }

  async writeBatch(records: DataRecord[]): Promise<WriteResult> {
    if (this.done) throw new DriverError(`${this.cfg.label}: writeBatch called after commit/abort`);
    const rejected: RejectedRecord[] = [];
    const lines = this.serialize(records, rejected);
    const limit = this.cfg.rotateBytes;
    let bytes = 0;
    let chunk = '';
    let chunkBytes = 0;
    for (const line of lines) {
      if (line === null) continue;
      const cur = this.current!;
      if (limit !== null && this.cfg.numbered) {
        const lineBytes = Buffer.byteLength(line, 'utf8');
        const pending = cur.size + Buffer.byteLength(cur.prefix, 'utf8') + chunkBytes;
        if (cur.records > 0 && pending + lineBytes > limit) {
          if (chunk.length > 0) bytes += await this.flush(chunk);
          chunk = '';
          chunkBytes = 0;
          await this.rotate();
        }
        chunkBytes += lineBytes;
      }
      chunk += line;
      this.current!.records++;
    }
    if (chunk.length > 0 || this.current!.prefix.length > 0) bytes += await this.flush(chunk);
    return { written: records.length - rejected.length, bytes, rejected };
  }

  private async flush(chunk: string): Promise<number> {
    const cur = this.current!;
    const text = cur.prefix + chunk;
    cur.prefix = '';
    return text.length > 0 ? this.writeOut(text) : 0;
  }

  async commit(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      if (this.current && this.current.prefix.length > 0 && this.mode === 'OVERWRITE') await this.flush('');
      if (this.mode === 'OVERWRITE') {
        const last = this.current?.n ?? 1;
        if (this.current) {
          await this.current.fh.sync();
          await this.current.fh.close();
          this.current = null;
        }
        // Each final name is checked again right before: rename replaces the entry, never writes through it.
        for (const t of this.temps) await fs.promises.rename(t.target, this.files.prepareWrite(t.final));
        if (this.cfg.numbered) {
          const re = numberedRegex(this.cfg.template, this.stream);
          for (const name of await fs.promises.readdir(this.dirAbs)) {
            const m = re.exec(name);
            if (m && Number(m[1]) > last) await fs.promises.rm(this.files.resolve(path.join(this.cfg.dir, name), 'write'), { force: true });
          }
        }
        if (this.cfg.fsync) await fsyncDirectory(this.dirAbs);
      } else {
        await this.closeCurrent(true);
      }
    } catch (e) {
      throw ioError(`committing ${this.nameFor(1)} failed`, e, this.cfg.label);
    } finally {
      if (this.lockKey !== null) activeTargets.delete(this.lockKey);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.current?.fh.close().catch(() => undefined);
      this.current = null;
      if (this.mode === 'OVERWRITE') for (const t of this.temps) await fs.promises.rm(t.target, { force: true });
    } finally {
      if (this.lockKey !== null) activeTargets.delete(this.lockKey);
    }
  }
}

/** Opens a writer of this driver, or of a preset of it (jsonl). */
export async function openFileWriter(config: FileDestinationConfig, options: WriterOptions, preset: FilePreset = FILE): Promise<StreamWriter> {
  const cfg = resolveConfig(config, preset);
  const label = cfg.label;
  if (!SUPPORTED_MODES.includes(options.writeMode)) {
    throw new DriverError(`${label}: unsupported write mode ${options.writeMode} (supported: ${SUPPORTED_MODES.join(', ')})`);
  }
  const files = options.ctx.files;
  const stream = sanitizeStream(options.stream.destinationName ?? options.stream.name);
  let dirAbs: string;
  try {
    // The folder must exist (no folders are created) and lie inside a writable root.
    dirAbs = path.dirname(
      targetInExistingFolder(files, path.join(cfg.dir, fileName(cfg.template, stream, 1)), () =>
        Object.assign(new Error(`no such directory: ${cfg.dir}`), { code: 'ENOENT' }),
      ),
    );
  } catch (e) {
    throw ioError(`cannot open the output in ${cfg.dir}`, e, label);
  }
  const exclusive = !(preset.shareAppend && options.writeMode === 'APPEND');
  const lockKey = exclusive ? path.join(dirAbs, fileName(cfg.template, stream, 0)) : null;
  const holder = lockKey === null ? undefined : activeTargets.get(lockKey);
  if (holder !== undefined) {
    throw new DriverError(
      `${label}: streams "${holder}" and "${options.stream.name}" would write the same file(s) ${fileName(cfg.template, stream, 1)}; add {stream} to filePattern`,
    );
  }
  const schema = options.stream.schema && options.stream.schema.length > 0 ? options.stream.schema.map((f) => f.name) : null;
  const writer = new FileWriter(cfg, files, dirAbs, options.writeMode, stream, lockKey, cfg.format === 'csv' ? schema : null);
  if (lockKey !== null) activeTargets.set(lockKey, options.stream.name);
  try {
    await writer.open();
  } catch (e) {
    if (lockKey !== null) activeTargets.delete(lockKey);
    throw e instanceof DriverError ? e : ioError('cannot open the output', e, label);
  }
  return writer;
}

function openWriter(config: FileDestinationConfig, options: WriterOptions): Promise<StreamWriter> {
  return openFileWriter(config, options);
}

async function check(config: FileDestinationConfig, ctx: DriverContext): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  // Outside the roots every answer is the same refusal; inside, these messages are ordinary.
  const problem = await writableFolder(ctx.files, cfg.dir);
  if (problem) return { ok: false, message: problem };
  const example = fileName(cfg.template, 'orders', 1);
  return {
    ok: true,
    message: `${cfg.dir} is writable; ${cfg.format} files like ${example}${cfg.rotateBytes !== null ? `, rotated after ${cfg.rotateBytes} bytes` : ''}`,
  };
}

/** Create/update checks: the output inside the workspace's writable files roots. */
function validate(config: FileDestinationConfig, ctx: DriverContext): ConfigError[] {
  try {
    resolveConfig(config);
  } catch {
    return []; // reported by check and at open
  }
  return pathProblems(ctx.files, 'path', config.path, 'write', config.filePattern !== undefined ? 'folder' : 'file');
}

async function discover(): Promise<Catalog> {
  return { streams: [] };
}

export const fileDestination: DestinationDriver<FileDestinationConfig> = {
  name: 'file',
  role: 'DESTINATION',
  title: 'Files (JSON Lines / CSV)',
  description: 'Writes streams to local JSON Lines or CSV files, with file name patterns, size rotation and atomic overwrite.',
  docs,
  configSchema: fileConfigSchema,
  supportedWriteModes: SUPPORTED_MODES,
  check,
  discover,
  validate,
  openWriter,
};

export default fileDestination;
