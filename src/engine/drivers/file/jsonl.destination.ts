import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { FileAccessError, type FileAccess } from '../../../security/file-roots.js';
import { pathProblems, existingTarget, folderOf, targetInExistingFolder, writableFolder } from '../kit/local-files.js';
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
import { FieldSampler } from '../kit/inference.js';
import { openFileWriter, type FilePreset } from './file.destination.js';

/**
 * JSON Lines file destination: a preset of the file destination (file.destination.ts) with its
 * own name and config (`path`, `fsync`), writing JSON Lines to exactly `path`. Writing is the
 * file destination's; checking and discovering (sampling the file's fields) are its own.
 *
 * Contract:
 * - APPEND: every `writeBatch` appends the whole batch (one JSON object per line) with a single
 *   write and, when `fsync` is true, fsyncs before resolving: a resolved batch is on disk.
 *   A torn last line left by an earlier crash is terminated before new lines are appended.
 * - OVERWRITE: lines go to `<path>.sluice-tmp`; `commit()` fsyncs it and renames it over `path`
 *   (atomic on POSIX file systems), so readers see the old file or the complete new one.
 *   `abort()` removes the temporary file.
 * - A record that cannot be serialized (BigInt, circular) is returned in `rejected`.
 * - Several streams may APPEND to one path (each batch is one append); OVERWRITE is one stream's.
 * - `path` lies inside the workspace's writable files roots; the file (and the temporary file,
 *   in the same folder) is opened through them, so links leading elsewhere are refused at open.
 */

export interface JsonlDestinationConfig {
  path: string;
  fsync?: boolean;
}

export const jsonlConfigSchema: JsonSchema = {
  type: 'object',
  title: 'JSON Lines file',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      title: 'Output file',
      description:
        "Path of the .jsonl file to write, relative to the workspace's files folder (or absolute inside a writable files root); its directory must exist.",
      examples: ['export/orders.jsonl'],
    },
    fsync: {
      type: 'boolean',
      title: 'fsync each batch',
      description: 'Flush every batch to disk before acknowledging it. Turn off for speed when losing the tail on a power cut is acceptable.',
      default: true,
    },
  },
};

export const docs = `# JSON Lines (destination)

Writes records to a file in the workspace's files folder, one JSON object per line.

\`\`\`json
{ "path": "export/orders.jsonl", "fsync": true }
\`\`\`

- **Path**: relative to the workspace's files folder, or absolute inside one of its writable files
  roots; \`..\`, links leading elsewhere, hard links and devices are refused.

- **APPEND**: each batch is appended in one write and (with \`fsync\`) flushed to disk before it
  is acknowledged.
- **OVERWRITE**: writes \`<path>.sluice-tmp\`, then renames it over \`path\` on commit, so readers
  never see a half-written file; an aborted sync leaves the old file untouched.
- Values are written as JSON (\`Date\` as ISO strings); records that cannot be serialized
  (BigInt, circular references) are rejected individually.
- All streams of a pipeline written to the same path share the file; use one destination per stream
  to keep them apart.
`;

const SUPPORTED_MODES: WriteMode[] = ['APPEND', 'OVERWRITE'];

interface ResolvedConfig {
  /** As the user wrote it (relative to the workspace's files folder, or absolute inside a root). */
  path: string;
  fsync: boolean;
}

function resolveConfig(raw: JsonlDestinationConfig): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError('JSONL destination: config must be an object');
  if (typeof raw.path !== 'string' || raw.path.length === 0) throw new DriverError('JSONL destination: "path" is required');
  return { path: raw.path, fsync: raw.fsync ?? true };
}

function refused(e: unknown): DriverError | null {
  return e instanceof FileAccessError ? new DriverError(`JSONL destination: ${e.message}`) : null;
}

function ioError(context: string, e: unknown): DriverError {
  const code = (e as NodeJS.ErrnoException).code;
  const permanent = code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EROFS';
  return new DriverError(`JSONL destination: ${context}: ${(e as Error).message}`, !permanent);
}

/** The file destination's options this preset stands for. */
const PRESET: FilePreset = { label: 'JSONL destination', shareAppend: true };

function openWriter(config: JsonlDestinationConfig, options: WriterOptions): Promise<StreamWriter> {
  const cfg = resolveConfig(config);
  return openFileWriter({ path: cfg.path, format: 'jsonl', fsync: cfg.fsync }, options, PRESET);
}

/** Create/update checks: the output path inside the workspace's writable files roots. */
function validate(config: JsonlDestinationConfig, ctx: DriverContext): ConfigError[] {
  return pathProblems(ctx.files, 'path', config?.path, 'write');
}

async function check(config: JsonlDestinationConfig, ctx: DriverContext): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  // Outside the roots every answer is the same refusal; inside, these messages are ordinary.
  try {
    ctx.files.resolve(cfg.path, 'write');
  } catch (e) {
    if (e instanceof FileAccessError) return { ok: false, message: e.message };
    throw e;
  }
  const dir = folderOf(cfg.path);
  const dirProblem = await writableFolder(ctx.files, dir);
  if (dirProblem) return { ok: false, message: dirProblem };
  const existing = existingTarget(ctx.files, cfg.path);
  if (existing === null) return { ok: true, message: `${dir} is writable; ${path.basename(cfg.path)} will be created` };
  if (typeof existing === 'string') return { ok: false, message: existing };
  try {
    const { handle } = await ctx.files.openForWrite(cfg.path, 'a');
    await handle.close();
  } catch (e) {
    if (e instanceof FileAccessError) return { ok: false, message: e.message };
    return { ok: false, message: `${cfg.path} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  return { ok: true, message: `${cfg.path} exists (${existing.size} bytes) and is writable` };
}

const SAMPLE_LINES = 1000;
async function discover(config: JsonlDestinationConfig, ctx: DriverContext): Promise<Catalog> {
  const cfg = resolveConfig(config);
  let stat: fs.Stats;
  try {
    // Inside the roots (checked first), a file not written yet has no fields.
    stat = await fs.promises.stat(ctx.files.resolve(cfg.path, 'read'));
  } catch (e) {
    if (e instanceof FileAccessError) throw refused(e)!;
    return { streams: [] };
  }
  if (!stat.isFile()) throw new DriverError(`JSONL destination: ${cfg.path} is not a regular file`);
  const sampler = new FieldSampler();
  let input: fs.ReadStream;
  try {
    const { handle, path: abs } = await ctx.files.openForRead(cfg.path);
    input = fs.createReadStream(abs, { fd: handle, encoding: 'utf8' });
  } catch (e) {
    throw refused(e) ?? ioError(`cannot read ${cfg.path}`, e);
  }
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  try {
    let n = 0;
    for await (const line of lines) {
      if (++n > SAMPLE_LINES) break;
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      sampler.add(value as DataRecord);
    }
  } catch (e) {
    throw ioError(`cannot read ${cfg.path}`, e);
  } finally {
    lines.close();
    input.destroy();
  }
  const fields = sampler.fields();
  const base = path.basename(cfg.path, path.extname(cfg.path)).replace(/[^A-Za-z0-9_]/g, '_') || 'jsonl';
  return { streams: [{ name: base, fields, supportedSyncModes: ['FULL_REFRESH'] }] };
}

export const jsonlDestination: DestinationDriver<JsonlDestinationConfig> = {
  name: 'jsonl',
  role: 'DESTINATION',
  title: 'JSON Lines file',
  description: 'Writes records to a local JSON Lines file (append, or atomic overwrite).',
  docs,
  configSchema: jsonlConfigSchema,
  supportedWriteModes: SUPPORTED_MODES,
  check,
  discover,
  validate,
  openWriter,
};

export default jsonlDestination;
