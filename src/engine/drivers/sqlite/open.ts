/**
 * Opening SQLite database files for the SQLite source and destination, inside the caller's
 * files roots.
 *
 * Contract: better-sqlite3 opens files by name, so the file is first opened and checked by the
 * files root (regular file, one link, real path inside the roots; for writing it is created
 * empty when missing, so SQLite never creates a file itself), then opened by SQLite, then the
 * path must still name the checked file (FileAccess.openByName). The journal, WAL and
 * shared-memory files SQLite keeps beside it must be absent or pass the same checks. Readers
 * open read-only with `fileMustExist`; extension loading stays off (better-sqlite3 leaves
 * the SQL function `load_extension()` unauthorised and Sluice never calls `loadExtension`).
 */
import Database from 'better-sqlite3';
import type { AccessMode, FileAccess } from '../../../security/file-roots.js';

const SIDECARS = ['-journal', '-wal', '-shm'] as const;

export async function openSqliteFile(
  files: FileAccess,
  userPath: string,
  mode: AccessMode,
  options: { timeout: number },
): Promise<{ db: Database.Database; path: string }> {
  const settings: Database.Options = mode === 'read' ? { ...options, readonly: true, fileMustExist: true } : { ...options, fileMustExist: true };
  const { opened, path } = await files.openByName(
    userPath,
    mode,
    (abs) => new Database(abs, settings),
    (db) => db.close(),
    SIDECARS,
  );
  return { db: opened, path };
}
