import type pg from 'pg';
import { DriverError } from '../types.js';

const WHO = 'PostgreSQL destination';

/** What the destination reads of an existing table: columns, unique keys, constraints. */

export interface ColumnRow {
  name: string;
  typname: string;
  category: string;
  sqltype: string;
  notnull: boolean;
}

export async function tableColumns(client: pg.Client, schema: string, table: string): Promise<ColumnRow[] | null> {
  const res = await client.query<ColumnRow & { exists: boolean }>(
    `SELECT a.attname AS name, bt.typname::text AS typname, bt.typcategory::text AS category,
            format_type(a.atttypid, a.atttypmod) AS sqltype, a.attnotnull AS notnull
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
      ORDER BY a.attnum`,
    [schema, table],
  );
  if (res.rows.length > 0) return res.rows;
  const exists = await client.query(
    `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, table],
  );
  if (exists.rowCount && exists.rowCount > 0) {
    const kind = await client.query<{ k: string }>(
      `SELECT c.relkind::text AS k FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
      [schema, table],
    );
    const k = kind.rows[0]?.k;
    if (k !== 'r' && k !== 'p') throw new DriverError(`${WHO}: "${schema}"."${table}" exists and is not a table (relkind ${k})`);
    return [];
  }
  return null;
}

/** Column-name sets of the table's non-partial unique indexes (sorted, \0-joined). */
export async function uniqueKeys(client: pg.Client, schema: string, table: string): Promise<string[]> {
  const res = await client.query<{ cols: string[] }>(
    `SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
        AND k.ord <= i.indnkeyatts
      GROUP BY i.indexrelid`,
    [schema, table],
  );
  return res.rows.map((r) => [...r.cols].sort().join('\0'));
}

export async function pkConstraintName(client: pg.Client, schema: string, table: string): Promise<string | null> {
  const res = await client.query<{ name: string }>(
    `SELECT con.conname AS name FROM pg_catalog.pg_constraint con
       JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND con.contype = 'p'`,
    [schema, table],
  );
  return res.rows[0]?.name ?? null;
}

export async function relationExists(client: pg.Client, schema: string, name: string): Promise<boolean> {
  const res = await client.query(
    `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  );
  return (res.rowCount ?? 0) > 0;
}

export async function schemaExists(client: pg.Client, schema: string): Promise<boolean> {
  const res = await client.query(`SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1`, [schema]);
  return (res.rowCount ?? 0) > 0;
}
