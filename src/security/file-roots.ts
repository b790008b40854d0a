/**
 * File roots: the only local paths a connector (or an upload) may read or write.
 *
 * Contract:
 * - Each workspace has one folder under the files root (`SLUICE_FILES_ROOT`, default
 *   `<data dir>/files`): `default/` for the default workspace, `<workspace id>/` for the others.
 *   Workspaces never see each other's folders.
 * - The default workspace may also use the operator's extra roots (`SLUICE_FILES_EXTRA_ROOTS`:
 *   absolute folders, each optionally suffixed `:ro` for read-only).
 * - A user path is relative to the workspace folder, or absolute inside one of the caller's roots.
 *   `..` that leaves the root, a symlink or hard link leading elsewhere, a device, FIFO or socket,
 *   `/proc`, `/sys`, `/dev`, and the data folder (other than the files root) are refused.
 * - Checks run twice: on the path (lexically and on its real path) when a caller resolves it,
 *   and on the opened descriptor (`openForRead` / `openForWrite`: regular file, one link, real
 *   path of the descriptor still inside the root), so a symlink swapped in after a connector was
 *   created is refused at open.
 * - Every refusal of a path outside the roots is the same `FileAccessError` message whatever is
 *   there (missing, a directory, a file): no existence probe. Inside the root, "does not exist"
 *   is an ordinary answer.
 *
 * This module is a primitive: it knows folders, not workspaces' rules. Callers say which
 * workspace is asking and whether it is the default one. The options are plain data so they
 * cross into job worker threads unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ExtraRoot {
  path: string;
  readOnly: boolean;
}

/** Plain, serialisable settings (from config), the same in the API process and job workers. */
export interface FileRootsOptions {
  /** Absolute: the files root holding one folder per workspace. */
  root: string;
  /** Absolute: Sluice's data folder, refused except for the files root inside it. */
  dataDir: string;
  /** Operator-added roots, for the default workspace only. */
  extraRoots: ExtraRoot[];
}

/** Who is asking: plain data so a job plan can carry it. */
export interface FileScope extends FileRootsOptions {
  workspaceId: string;
  /** The default workspace's folder is `default/` and it may use the extra roots. */
  isDefault: boolean;
}

export type AccessMode = 'read' | 'write';

/** A path outside the caller's roots, or a file that may not be opened. Not retryable. */
export class FileAccessError extends Error {
  readonly code = 'FILE_ACCESS_REFUSED';
  readonly retryable = false;
  constructor(
    readonly userPath: string,
    reason = 'is outside the files root of this workspace',
  ) {
    super(`path ${JSON.stringify(userPath)} ${reason}`);
    this.name = 'FileAccessError';
  }
}

const ALWAYS_REFUSED = ['/proc', '/sys', '/dev'];

/** Parses `SLUICE_FILES_EXTRA_ROOTS` (`/a,/b:ro`). Throws on a relative folder. */
export function parseExtraRoots(spec: string | undefined): ExtraRoot[] {
  if (!spec) return [];
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const readOnly = entry.endsWith(':ro');
      const p = readOnly ? entry.slice(0, -3) : entry;
      if (!path.isAbsolute(p)) throw new Error(`"${entry}" is not an absolute folder`);
      return { path: path.resolve(p), readOnly };
    });
}

/** The folder name of a workspace under the files root. */
export function workspaceFolderName(scope: Pick<FileScope, 'workspaceId' | 'isDefault'>): string {
  return scope.isDefault ? 'default' : scope.workspaceId;
}

/** Absolute path of a workspace's own folder (not created). */
export function workspaceFilesDir(scope: FileScope): string {
  return path.join(scope.root, workspaceFolderName(scope));
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * The files a connector of one workspace may touch. Construct one per call site (cheap); it
 * creates the workspace folder on first use.
 */
export class FileAccess {
  readonly dir: string;
  private readonly roots: { path: string; readOnly: boolean }[];

  constructor(readonly scope: FileScope) {
    this.dir = workspaceFilesDir(scope);
    this.roots = [{ path: this.dir, readOnly: false }, ...(scope.isDefault ? scope.extraRoots : [])];
  }

  /** Creates the workspace folder (mode 0700) if needed. */
  ensureDir(): string {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return this.dir;
  }

  /**
   * The absolute path a user path names, after every check that can be made before opening:
   * refused when outside the roots (lexically or through a symlink), in a refused area, or
   * (for write) in a read-only root. The file itself need not exist.
   */
  resolve(userPath: string, mode: AccessMode): string {
    const { abs, root, real, realRoot } = this.locate(userPath, mode);
    if (abs === root.path || real === realRoot) throw new FileAccessError(userPath, 'is a folder, not a file');
    return abs;
  }

  /** The checks of `resolve`, for a file or a folder (the root itself included). */
  private locate(userPath: string, mode: AccessMode): { abs: string; root: ExtraRoot; real: string; realRoot: string } {
    if (typeof userPath !== 'string' || userPath.length === 0) throw new FileAccessError(String(userPath), 'is empty');
    if (userPath.includes('\0')) throw new FileAccessError(userPath.replace(/\0/g, '\\0'), 'contains a NUL byte');
    this.ensureDir();
    const abs = path.isAbsolute(userPath) ? path.resolve(userPath) : path.resolve(this.dir, userPath);
    const root = this.rootOf(abs);
    if (!root) throw new FileAccessError(userPath);
    if (mode === 'write' && root.readOnly) throw new FileAccessError(userPath, 'is in a read-only files root');
    // The real path of the deepest existing ancestor (or the file) must stay inside the same root.
    const real = this.realPathOf(abs);
    const realRoot = realOrSelf(root.path);
    if (!inside(real, realRoot) || this.refusedArea(real)) throw new FileAccessError(userPath);
    return { abs, root, real, realRoot };
  }

  /**
   * The lstat of an existing path (null when missing), a symlink replaced by its target's stat
   * once the target is known to lie inside the roots; a dangling link is refused (a writer
   * would create its target wherever it points).
   */
  private statInside(userPath: string, abs: string): fs.Stats | null {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return null;
    }
    if (!st.isSymbolicLink()) return st;
    let target: string;
    try {
      target = fs.realpathSync(abs);
    } catch {
      throw new FileAccessError(userPath);
    }
    if (!this.rootOf(target) || this.refusedArea(target)) throw new FileAccessError(userPath);
    return fs.statSync(abs);
  }

  /**
   * Opens a file for reading after `resolve`, then checks the descriptor: a regular file with
   * one link whose real path is inside the root. The caller owns (and closes) the handle.
   */
  async openForRead(userPath: string): Promise<{ handle: fs.promises.FileHandle; path: string; size: number }> {
    const abs = this.resolve(userPath, 'read');
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(abs, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw this.openError(userPath, err);
    }
    try {
      const st = await this.verifyDescriptor(userPath, handle.fd);
      return { handle, path: abs, size: st.size };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  /**
   * Checks a path for writing and returns it; parent folders inside the root are created.
   * An existing target must be a regular file with one link. Writers that replace files (temp
   * file + rename) create their temp files beside it: same folder, same root.
   */
  prepareWrite(userPath: string): string {
    const abs = this.resolve(userPath, 'write');
    fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
    // Re-check after creating folders (a symlinked ancestor would show now).
    const real = this.realPathOf(abs);
    if (!this.rootOf(real) || this.refusedArea(real)) throw new FileAccessError(userPath);
    this.checkExistingFile(userPath, abs);
    return abs;
  }

  /** Opens (creating when missing) a file for writing, with the checks of `prepareWrite` and on the descriptor. */
  async openForWrite(userPath: string, flags: 'a' | 'w' | 'r+' = 'a'): Promise<{ handle: fs.promises.FileHandle; path: string }> {
    const abs = this.prepareWrite(userPath);
    const f = fs.constants;
    const base = flags === 'a' ? f.O_WRONLY | f.O_CREAT | f.O_APPEND : flags === 'w' ? f.O_WRONLY | f.O_CREAT | f.O_TRUNC : f.O_RDWR | f.O_CREAT;
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(abs, base | f.O_NOFOLLOW | f.O_NONBLOCK, 0o600);
    } catch (err) {
      throw this.openError(userPath, err);
    }
    try {
      await this.verifyDescriptor(userPath, handle.fd);
      return { handle, path: abs };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  /** Re-checks a path just before a library opens it by name (e.g. SQLite). */
  checkExisting(userPath: string, mode: AccessMode): string {
    const abs = mode === 'write' ? this.prepareWrite(userPath) : this.resolve(userPath, mode);
    if (mode === 'read') {
      let st: fs.Stats;
      try {
        st = fs.statSync(abs);
      } catch (err) {
        throw this.openError(userPath, err);
      }
      if (st.isDirectory()) throw new FileAccessError(userPath, 'is a folder, not a file');
      if (!st.isFile()) throw new FileAccessError(userPath, 'is not a regular file');
      if (st.nlink > 1) throw new FileAccessError(userPath, 'has more than one hard link');
    }
    return abs;
  }

  /**
   * A folder inside the roots (the workspace folder itself included), for drivers that write
   * files named by a pattern into it. Refused like `resolve`; an existing path must be a folder.
   */
  resolveFolder(userPath: string, mode: AccessMode): string {
    const { abs } = this.locate(userPath, mode);
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(abs);
    } catch {
      st = null;
    }
    if (st && !st.isDirectory()) throw new FileAccessError(userPath, 'is not a folder');
    return abs;
  }

  /**
   * The checks a connector config gets when it is saved (no file is opened or created): the
   * path is inside the roots and, when something is there already, it is a regular file with
   * one link (a symlink must lead inside the roots). A missing file is fine.
   */
  inspect(userPath: string, mode: AccessMode): string {
    const abs = this.resolve(userPath, mode);
    this.checkExistingFile(userPath, abs);
    return abs;
  }

  /** What is at `abs`, if anything, must be a regular file with one link (links followed inside the roots only). */
  private checkExistingFile(userPath: string, abs: string): void {
    const st = this.statInside(userPath, abs);
    if (!st) return;
    if (st.isDirectory()) throw new FileAccessError(userPath, 'is a folder, not a file');
    if (!st.isFile()) throw new FileAccessError(userPath, 'is not a regular file');
    if (st.nlink > 1) throw new FileAccessError(userPath, 'has more than one hard link');
  }

  /**
   * Opens a file through a library that takes a file name (SQLite), with the checks of
   * `openForRead` / `openForWrite`: the file is first opened and checked here (for write it is
   * created empty when missing, so the library never creates files), then `open(abs)` runs,
   * then the path must still name the very file that was checked (same device and inode);
   * otherwise `close` undoes the library's open and the access is refused. Sidecar files the
   * library keeps beside it (`suffixes`, e.g. `-wal`) must be absent or pass the same checks.
   */
  async openByName<T>(
    userPath: string,
    mode: AccessMode,
    open: (abs: string) => T,
    close: (opened: T) => void,
    suffixes: readonly string[] = [],
  ): Promise<{ opened: T; path: string }> {
    const checked = mode === 'read' ? await this.openForRead(userPath) : await this.openForWrite(userPath, 'r+');
    const abs = checked.path;
    try {
      const before = await checked.handle.stat();
      for (const suffix of suffixes) this.inspect(`${abs}${suffix}`, mode);
      const opened = open(abs);
      let same = false;
      try {
        const now = fs.statSync(abs);
        const real = fs.realpathSync(abs);
        same = now.dev === before.dev && now.ino === before.ino && this.rootOf(real) !== null && !this.refusedArea(real);
      } catch {
        same = false;
      }
      if (!same) {
        close(opened);
        throw new FileAccessError(userPath, 'changed while it was being opened');
      }
      return { opened, path: abs };
    } finally {
      await checked.handle.close().catch(() => {});
    }
  }

  /** The user-facing form of an absolute path inside the workspace folder (relative to it). */
  display(abs: string): string {
    return inside(abs, this.dir) ? path.relative(this.dir, abs) || '.' : abs;
  }

  private async verifyDescriptor(userPath: string, fd: number): Promise<fs.Stats> {
    const st = await new Promise<fs.Stats>((resolve, reject) => fs.fstat(fd, (err, s) => (err ? reject(err) : resolve(s))));
    if (st.isDirectory()) throw new FileAccessError(userPath, 'is a folder, not a file');
    if (!st.isFile()) throw new FileAccessError(userPath, 'is not a regular file');
    if (st.nlink > 1) throw new FileAccessError(userPath, 'has more than one hard link');
    // Linux: the descriptor's own path, after every symlink the kernel followed.
    let real: string | null = null;
    try {
      real = await fs.promises.readlink(`/proc/self/fd/${fd}`);
    } catch {
      real = null;
    }
    if (real !== null && (!this.rootOf(real) || this.refusedArea(real))) throw new FileAccessError(userPath);
    return st;
  }

  private openError(userPath: string, err: unknown): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new FileAccessError(userPath, 'does not exist');
    if (code === 'ELOOP') return new FileAccessError(userPath);
    if (code === 'EISDIR') return new FileAccessError(userPath, 'is a folder, not a file');
    if (code === 'EACCES' || code === 'EPERM') return new FileAccessError(userPath, 'cannot be opened (permission denied)');
    return new FileAccessError(userPath, `cannot be opened (${code ?? (err as Error).message})`);
  }

  /** The root an absolute path is lexically (or really) inside, if any. */
  private rootOf(abs: string): { path: string; readOnly: boolean } | null {
    for (const r of this.roots) {
      if (inside(abs, r.path) || inside(abs, realOrSelf(r.path))) return r;
    }
    return null;
  }

  private refusedArea(real: string): boolean {
    if (ALWAYS_REFUSED.some((p) => inside(real, p))) return true;
    const data = realOrSelf(this.scope.dataDir);
    if (!inside(real, data)) return false;
    // Inside the data folder only the files root is open, and only when it is a sub-folder of it.
    const files = realOrSelf(this.scope.root);
    return !(files !== data && inside(files, data) && inside(real, files));
  }

  /** Real path of `abs`, or of its deepest existing ancestor joined with the rest. */
  private realPathOf(abs: string): string {
    let head = abs;
    const tail: string[] = [];
    for (;;) {
      try {
        const real = fs.realpathSync(head);
        return tail.length ? path.join(real, ...tail.reverse()) : real;
      } catch {
        const parent = path.dirname(head);
        if (parent === head) return abs;
        tail.push(path.basename(head));
        head = parent;
      }
    }
  }
}
