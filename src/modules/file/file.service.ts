/**
 * A workspace's own files: the folder under the files root that its connectors read and write
 * (src/security/file-roots.ts), filled by upload and emptied by delete, for users without
 * shell access to the server.
 *
 * Promises:
 * - A file name is a relative path inside the caller's workspace folder (`people.csv`,
 *   `in/2026/orders.csv`): no absolute path, no `.` or `..` segment, no empty segment, no
 *   control character; and through FileAccess it never resolves outside the folder (a symlinked
 *   folder leading out is refused). Every refusal is VALIDATION_FAILED and changes nothing.
 * - An upload is streamed to a temp file in the target's folder (never held in memory whole),
 *   fsync'ed, then renamed into place: a reader sees the old file or the new one, never a
 *   part. Over the size cap, interrupted, or failed: the temp file is removed and an existing
 *   file is untouched. Without `overwrite` an existing name is a CONFLICT, also when two
 *   uploads of one name race (the second loses).
 * - The listing walks the workspace folder recursively without following symlinks and shows
 *   regular files only (uploads in progress are hidden).
 * - A file named by a connector's config (`path`, or a json source's local `url`) cannot be
 *   deleted (IN_USE, naming the connectors): change or delete the connector first.
 * - Uploads and deletions write FILE_UPLOADED / FILE_DELETED events in the caller's workspace.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { globalId } from '../../ids.js';
import { ConflictError, InUseError, NotFoundError, ValidationError } from '../../errors.js';
import { FileAccess, FileAccessError, type FileRootsOptions } from '../../security/file-roots.js';
import type { EventService } from '../event/event.service.js';
import { DEFAULT_WORKSPACE_ID, currentAuth, requireWorkspaceId } from '../../tenancy/scope.js';
import { UploadAbortedError, UploadTooLargeError } from './file.errors.js';

export interface FileInfo {
  /** The path relative to the workspace folder, with `/` between folders. */
  name: string;
  /** The absolute path on the server (what a connector's config may name). */
  path: string;
  size: number;
  modifiedAt: Date;
}

export type FileOrder = 'NAME' | 'NEWEST';

export interface UploadOptions {
  overwrite: boolean;
  maxBytes: number;
}

/** Temp files of uploads in progress: hidden from the listing, refused as names. */
const TEMP_PREFIX = '.sluice-upload-';
const MAX_NAME_LENGTH = 1024;
const MAX_SEGMENT_BYTES = 255;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const invalidName = (message: string) => new ValidationError('invalid file name', [{ path: 'name', message }]);

/** The checked form of a user's file name (see the module contract); throws VALIDATION_FAILED. */
export function checkFileName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw invalidName('must not be empty');
  if (name.length > MAX_NAME_LENGTH) throw invalidName(`must be at most ${MAX_NAME_LENGTH} characters`);
  if (CONTROL.test(name)) throw invalidName('must not contain NUL or other control characters');
  if (name.startsWith('/')) throw invalidName('must be a path relative to your workspace folder, not an absolute path');
  for (const segment of name.split('/')) {
    if (segment === '') throw invalidName('must not contain an empty folder name (`//`, or a leading or trailing `/`)');
    if (segment === '.' || segment === '..') throw invalidName('must not contain `.` or `..` segments');
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw invalidName(`each folder or file name is at most ${MAX_SEGMENT_BYTES} bytes`);
    if (segment.startsWith(TEMP_PREFIX)) throw invalidName(`names starting with ${TEMP_PREFIX} are reserved`);
  }
  return name;
}

/** A FileAccess refusal (or a path the file system cannot hold) as the typed input error; the message never says what is outside. */
function asValidation(err: unknown): unknown {
  if (err instanceof FileAccessError) return invalidName(err.message);
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOTDIR' || code === 'EEXIST') return invalidName('a folder on the way is a file');
  if (code === 'ENAMETOOLONG') return invalidName('is too long for the file system');
  return err;
}

async function lstatOrNull(abs: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Makes a rename or link in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all of `chunk` (a write may take fewer bytes than asked). */
async function writeAll(handle: fs.promises.FileHandle, chunk: Buffer): Promise<void> {
  for (let off = 0; off < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

/** The folders between the deepest existing ancestor of `dir` and `dir` (the ones a write would create), deepest first. */
function missingFolders(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) {
    out.push(d);
    if (path.dirname(d) === d) break;
  }
  return out;
}

/**
 * Copies `body` into `handle`, one chunk at a time (the body is paused while a chunk is
 * written). Over `maxBytes` it stops reading and throws UploadTooLargeError; the body is left
 * paused, not destroyed, so the caller can still answer the client.
 */
function writeBody(body: Readable, handle: fs.promises.FileHandle, maxBytes: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let size = 0;
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) reject(err);
      else resolve(size);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      body.pause();
      if (size > maxBytes) return finish(new UploadTooLargeError(maxBytes));
      writeAll(handle, chunk).then(
        () => {
          if (!settled) body.resume();
        },
        (err: Error) => finish(err),
      );
    };
    // 'end' comes only after the last chunk's write resumed the body.
    const onEnd = () => finish(null);
    const onError = () => finish(new UploadAbortedError());
    const onClose = () => {
      if (!body.readableEnded) finish(new UploadAbortedError());
    };
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    body.resume();
  });
}

/** The local paths a connector's config names: `path`, and a json source's `url` when local. */
function configPaths(config: unknown): string[] {
  if (!config || typeof config !== 'object' || Array.isArray(config)) return [];
  const c = config as Record<string, unknown>;
  const out: string[] = [];
  if (typeof c.path === 'string' && c.path) out.push(c.path);
  if (typeof c.url === 'string' && c.url) {
    if (c.url.startsWith('file:')) {
      try {
        out.push(fileURLToPath(c.url));
      } catch {
        // not a usable file URL: names nothing
      }
    } else if (!/^[a-z][a-z0-9+.-]*:/i.test(c.url)) out.push(c.url);
  }
  return out;
}

/** Sort key comparison: NAME ascending; NEWEST by modification time descending, then name. */
function compare(order: FileOrder, a: { m: number; n: string }, b: { m: number; n: string }): number {
  if (order === 'NEWEST' && a.m !== b.m) return b.m - a.m;
  return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

const keyOf = (f: FileInfo) => ({ m: f.modifiedAt.getTime(), n: f.name });

/** An opaque, stable cursor: the file's sort key (it stays valid if the file goes away). */
export function fileCursor(f: FileInfo): string {
  const k = keyOf(f);
  return Buffer.from(JSON.stringify([k.m, k.n])).toString('base64url');
}

function parseCursor(cursor: string, arg: string): { m: number; n: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'string') return { m: v[0], n: v[1] };
  } catch {
    // reported below
  }
  throw new ValidationError('invalid cursor', [{ path: arg, message: 'is not a cursor of the files list' }]);
}

/** A page of a listing sorted by `order`, between cursors (for a Relay connection; `inverted`: from the end, reversed). */
export function pageOf(sorted: FileInfo[], order: FileOrder, args: { after?: string | null; before?: string | null; limit: number; inverted: boolean }): FileInfo[] {
  const after = args.after ? parseCursor(args.after, 'after') : null;
  const before = args.before ? parseCursor(args.before, 'before') : null;
  const within = sorted.filter((f) => (!after || compare(order, keyOf(f), after) > 0) && (!before || compare(order, keyOf(f), before) < 0));
  return args.inverted ? within.reverse().slice(0, args.limit) : within.slice(0, args.limit);
}

export class FileService {
  constructor(
    private readonly events: EventService,
    private readonly roots: FileRootsOptions,
  ) {}

  /** The files of a workspace (the caller's by default). */
  access(workspaceId: string = requireWorkspaceId()): FileAccess {
    return new FileAccess({ ...this.roots, workspaceId, isDefault: workspaceId === DEFAULT_WORKSPACE_ID });
  }

  /** Creates the default workspace's folder (and the files root), so a user can drop files in at once. */
  ensureDefaultFolder(): string {
    return this.access(DEFAULT_WORKSPACE_ID).ensureDir();
  }

  /** Stores `body` as `name` in the caller's workspace folder (see the module contract). */
  async upload(name: string, body: Readable, options: UploadOptions): Promise<FileInfo & { overwritten: boolean }> {
    const rel = checkFileName(name);
    const files = this.access();
    files.ensureDir();
    // Folders this upload creates are removed again if it fails.
    const created = missingFolders(path.dirname(path.resolve(files.dir, rel)));
    let stored = false;
    try {
      return await this.store(files, rel, body, options).then((info) => ((stored = true), info));
    } finally {
      if (!stored) for (const d of created) await fs.promises.rmdir(d).catch(() => undefined);
    }
  }

  private async store(files: FileAccess, rel: string, body: Readable, options: UploadOptions): Promise<FileInfo & { overwritten: boolean }> {
    let target: string;
    let tempRel: string;
    try {
      target = files.prepareWrite(rel);
      tempRel = path.posix.join(path.posix.dirname(rel), `${TEMP_PREFIX}${randomUUID()}`);
    } catch (err) {
      throw asValidation(err);
    }
    const before = await lstatOrNull(target);
    if (before && !options.overwrite) throw new ConflictError(`file "${rel}" already exists; add ?overwrite=true to replace it`);

    let temp: string | null = null;
    try {
      const opened = await files.openForWrite(tempRel, 'w').catch((err: unknown) => Promise.reject(asValidation(err)));
      temp = opened.path;
      let size: number;
      try {
        size = await writeBody(body, opened.handle, options.maxBytes);
        await opened.handle.sync();
      } finally {
        await opened.handle.close();
      }
      // A racing upload may have taken the name meanwhile (and hold it linked twice for an instant).
      if (!options.overwrite && (await lstatOrNull(target))) throw new ConflictError(`file "${rel}" already exists; add ?overwrite=true to replace it`);
      // The target is checked again now: its folder may have changed while the body arrived.
      try {
        files.prepareWrite(rel);
      } catch (err) {
        if (!options.overwrite && (await lstatOrNull(target))) throw new ConflictError(`file "${rel}" already exists; add ?overwrite=true to replace it`);
        throw asValidation(err);
      }
      let overwritten = false;
      if (options.overwrite) {
        overwritten = (await lstatOrNull(target)) !== null;
        await fs.promises.rename(temp, target);
      } else {
        // link() fails when the name exists: no replace even when two uploads race.
        try {
          await fs.promises.link(temp, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ConflictError(`file "${rel}" already exists; add ?overwrite=true to replace it`);
          throw err;
        }
        await fs.promises.unlink(temp);
      }
      temp = null;
      await syncDir(path.dirname(target));
      const st = await fs.promises.stat(target);
      const info: FileInfo = { name: rel, path: target, size: st.size, modifiedAt: st.mtime };
      const auth = currentAuth();
      await this.events.append({
        type: 'FILE_UPLOADED',
        message: `file "${rel}" uploaded (${size} bytes${overwritten ? ', replacing the previous one' : ''})`,
        data: { name: rel, size, overwritten, apiKeyId: auth?.apiKeyId ?? null, keyPrefix: auth?.keyPrefix ?? null },
      });
      return { ...info, overwritten };
    } finally {
      if (temp) await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    }
  }

  /** Every regular file of the caller's workspace folder, sorted by `order`. */
  async list(order: FileOrder): Promise<FileInfo[]> {
    const files = this.access();
    const root = files.ensureDir();
    const out: FileInfo[] = [];
    const pending: string[] = [''];
    while (pending.length) {
      const rel = pending.pop()!;
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(path.join(root, rel), { withFileTypes: true });
      } catch {
        continue; // removed while listing
      }
      for (const e of entries) {
        const childRel = rel ? `${rel}/${e.name}` : e.name;
        // Dirent types come from the folder entry itself: a symlink is never followed.
        if (e.isDirectory()) pending.push(childRel);
        else if (e.isFile() && !e.name.startsWith(TEMP_PREFIX)) {
          const abs = path.join(root, childRel);
          const st = await lstatOrNull(abs);
          if (st?.isFile()) out.push({ name: childRel, path: abs, size: st.size, modifiedAt: st.mtime });
        }
      }
    }
    return out.sort((a, b) => compare(order, keyOf(a), keyOf(b)));
  }


  /** Removes a file of the caller's workspace folder (see the module contract). */
  async delete(name: string): Promise<FileInfo> {
    const rel = checkFileName(name);
    const files = this.access();
    let target: string;
    try {
      target = files.resolve(rel, 'write');
    } catch (err) {
      throw asValidation(err);
    }
    const st = await lstatOrNull(target);
    if (!st) throw new NotFoundError('File', rel);
    if (st.isDirectory()) throw invalidName('is a folder, not a file; delete the files in it');
    const info: FileInfo = { name: rel, path: target, size: st.size, modifiedAt: st.mtime };
    await this.events.transaction(async (tx, emit) => {
      const connectors = await tx.connector.findMany({ where: { workspaceId: requireWorkspaceId() }, select: { id: true, name: true, config: true } });
      const users = connectors.filter((c) => configPaths(c.config).some((p) => (path.isAbsolute(p) ? path.resolve(p) : path.resolve(files.dir, p)) === target));
      if (users.length) {
        throw new InUseError(
          `file "${rel}" is used by connector(s): ${users.map((u) => u.name).join(', ')}`,
          users.map((u) => globalId('Connector', u.id)),
        );
      }
      await emit({ type: 'FILE_DELETED', message: `file "${rel}" deleted`, data: { name: rel, size: st.size } });
      // Last: a failed unlink rolls the event back.
      try {
        await fs.promises.unlink(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('File', rel);
        throw err;
      }
    });
    await this.removeEmptyFolders(files.dir, path.dirname(target));
    return info;
  }

  /** Removes folders left empty by a delete, up to (not including) the workspace folder. */
  private async removeEmptyFolders(root: string, dir: string): Promise<void> {
    for (let d = dir; d !== root && d.startsWith(`${root}${path.sep}`); d = path.dirname(d)) {
      try {
        await fs.promises.rmdir(d);
      } catch {
        return; // not empty (or gone): stop
      }
    }
  }
}
