import type Database from 'better-sqlite3';

/** What the destination reads of an existing table: existence, columns, unique keys. */

export function tableExists(db: Database.Database, table: string): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE`).get(table) !== undefined;
}

interface TableInfoRow {
  name: string;
  type: string;
  notnull: number;
  pk: number;
}

export function tableInfo(db: Database.Database, table: string): TableInfoRow[] {
  return db.prepare(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`).all(table) as TableInfoRow[];
}

/** Column sets (lower-cased, sorted) of the table's primary key and unique indexes. */
export function uniqueKeys(db: Database.Database, table: string): string[] {
  const keys: string[] = [];
  const pk = tableInfo(db, table)
    .filter((c) => c.pk > 0)
    .map((c) => c.name.toLowerCase());
  if (pk.length > 0) keys.push(pk.sort().join('\0'));
  const indexes = db.prepare(`SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND partial = 0`).all(table) as { name: string }[];
  for (const { name } of indexes) {
    const cols = db.prepare(`SELECT name FROM pragma_index_info(?)`).all(name) as { name: string | null }[];
    if (cols.every((c) => c.name !== null)) keys.push(cols.map((c) => c.name!.toLowerCase()).sort().join('\0'));
  }
  return keys;
}
