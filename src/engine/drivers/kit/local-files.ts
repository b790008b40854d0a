/**
 * Check-time answers about local paths, shared by the file drivers. Every path is first
 * resolved inside the caller's files roots (src/security/file-roots.ts): a path outside them
 * gets the one FileAccessError message whatever is there, so the friendlier messages below
 * ("File not found", "is a directory", ...) only ever describe files inside the roots.
 * Messages name the path as the user wrote it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FileAccessError, type AccessMode, type FileAccess } from '../../../security/file-roots.js';
import type { ConfigError } from '../types.js';

/**
 * Create/update check of one config field holding a local file path: inside the roots and,
 * when something is there, a regular file with one link (FileAccess.inspect).
 */
export function pathProblems(files: FileAccess, field: string, userPath: unknown, mode: AccessMode, kind: 'file' | 'folder' = 'file'): ConfigError[] {
  if (typeof userPath !== 'string') return [];
  const refused = attempt(() => (kind === 'file' ? files.inspect(userPath, mode) : files.resolveFolder(userPath, mode)));
  return typeof refused === 'string' ? [] : [{ path: field, message: refused.message }];
}

/** `fn`'s result, or its FileAccessError (other errors are thrown). */
function attempt(fn: () => string): string | FileAccessError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FileAccessError) return e;
    throw e;
  }
}

/** Why a file to read cannot be used, or its size. */
export async function readableFile(files: FileAccess, userPath: string): Promise<{ size: number } | string> {
  const abs = attempt(() => files.resolve(userPath, 'read'));
  if (abs instanceof FileAccessError) return abs.message;
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `File not found: ${userPath}`;
    if (code === 'EACCES') return `Permission denied while accessing ${userPath}`;
    if (code === 'ENOTDIR') return `Not a valid path (a parent is not a directory): ${userPath}`;
    return `Cannot access ${userPath}: ${code ?? (e as Error).message}`;
  }
  if (stat.isDirectory()) return `${userPath} is a directory, not a file`;
  if (!stat.isFile()) return `${userPath} is not a regular file`;
  try {
    await fs.promises.access(abs, fs.constants.R_OK);
  } catch {
    return `File is not readable (permission denied): ${userPath}`;
  }
  try {
    const opened = await files.openForRead(userPath);
    await opened.handle.close();
    return { size: opened.size };
  } catch (e) {
    if (e instanceof FileAccessError) return e.message;
    throw e;
  }
}

/** Why files cannot be written into a folder, or null. The folder is not created. */
export async function writableFolder(files: FileAccess, userDir: string): Promise<string | null> {
  const abs = attempt(() => files.resolveFolder(userDir, 'write'));
  if (abs instanceof FileAccessError) return abs.message;
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `Directory does not exist: ${userDir}` : `Cannot access directory ${userDir}: ${code ?? (e as Error).message}`;
  }
  if (!stat.isDirectory()) return `${userDir} is not a directory`;
  const probe = path.join(abs, `.sluice-probe-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  try {
    const { handle } = await files.openForWrite(probe, 'w');
    await handle.close();
    await fs.promises.unlink(probe);
  } catch (e) {
    if (e instanceof FileAccessError) return `Directory is not writable: ${userDir} (${e.message})`;
    return `Directory is not writable: ${userDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  return null;
}

/**
 * What is at a file to write (inside the roots): null when nothing is there yet, else its
 * size, or why it cannot be written.
 */
export function existingTarget(files: FileAccess, userPath: string): { size: number } | null | string {
  let abs: string;
  try {
    abs = files.inspect(userPath, 'write');
  } catch (e) {
    if (e instanceof FileAccessError) {
      // Inside the roots, a folder or device at the path is an ordinary answer.
      if (/folder|regular file/.test(e.message)) return `${userPath} exists and is not a regular file`;
      return e.message;
    }
    throw e;
  }
  try {
    return { size: fs.statSync(abs).size };
  } catch {
    return null;
  }
}

/** The user's folder part of a file path (`.` for a bare name). */
export function folderOf(userPath: string): string {
  return path.dirname(userPath);
}

/**
 * The checked absolute path of a file to write whose folder must already exist (drivers that
 * promise "its directory must exist" do not create folders); throws FileAccessError when the
 * path is refused, or `missingFolder()` when the folder is absent.
 */
export function targetInExistingFolder(files: FileAccess, userPath: string, missingFolder: () => Error): string {
  const abs = files.resolve(userPath, 'write');
  let isDir = false;
  try {
    isDir = fs.statSync(path.dirname(abs)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw missingFolder();
  return abs;
}
