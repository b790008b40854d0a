import type pg from 'pg';
import {
  OID,
  closeQuietly,
  connect,
  connectFailureMessage,
  connectionProperties,
  connectionRequirement,
  describeTarget,
  fieldTypeOfOid,
  fieldTypeOfTypname,
  isRetryable,
  pgErrorMessage,
  qi,
  qn,
  resolveConnection,
  wrapPgError,
  type PgConnectionConfig,
} from './common.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfiguredStream,
  type DataRecord,
  type FieldType,
  type JsonSchema,
  type ReadOptions,
  type SourceDriver,
  type SourceMessage,
  type StreamDescriptor,
  type StreamState,
  type StreamStates,
} from '../types.js';

/**
 * PostgreSQL source (`pg`).
 *
 * Contract:
 * - One stream per table of `schema` (all base tables unless `tables` lists some; listed
 *   views, materialized views and foreign tables are accepted too) plus one per custom query.
 * - Reads page by page with keyset SELECTs (`WHERE (cursor, pk) > ($1, $2) ORDER BY cursor, pk
 *   LIMIT n`), never holding the table in memory nor a transaction open between pages. The
 *   next page is requested before the current one is handed over, so the database and the
 *   consumer work in parallel.
 * - A `state` follows every page and covers every row before it:
 *   - INCREMENTAL: `{ cursor, pk: [...] }` = the (cursor, primary key) of the last row read;
 *     resuming reads rows strictly after it in (cursor, pk) order, so rows sharing a cursor
 *     value are neither skipped nor repeated. Without a primary key, pages end on a cursor
 *     value boundary (every row with the page's last cursor value is in the page) and the
 *     state is `{ cursor, pk: [] }`. Rows with a NULL cursor are not read.
 *   - FULL_REFRESH with a primary key: `{ pk: [...] }`; heap table without one: `{ block: N }`
 *     (ctid block ranges, PostgreSQL 14+); anything else (views, keyless queries):
 *     `{ rows: N }` read through one server-side cursor in a REPEATABLE READ transaction.
 * - Values: integers as numbers (int8 beyond ±2^53 as decimal strings), numeric as numbers
 *   when the number prints back to the same decimal else strings, floats as numbers (NaN and
 *   ±Infinity as strings), booleans, date as `YYYY-MM-DD`, timestamp as ISO 8601 without zone,
 *   timestamptz as ISO 8601 UTC (`Z`), both with their full microsecond precision, json/jsonb
 *   parsed; every other type as its PostgreSQL text form.
 * - Aborting `options.signal` closes the connection and the iterator throws the signal's reason.
 */

export interface PostgresQueryStream {
  name: string;
  sql: string;
  cursorField?: string;
  primaryKey?: string[];
}

export interface PostgresSourceConfig extends PgConnectionConfig {
  schema?: string;
  tables?: string[];
  queries?: PostgresQueryStream[];
}

const WHO = 'PostgreSQL source';

export const postgresSourceConfigSchema: JsonSchema = {
  type: 'object',
  title: 'PostgreSQL',
  additionalProperties: false,
  anyOf: connectionRequirement,
  properties: {
    ...connectionProperties,
    schema: {
      type: 'string',
      minLength: 1,
      title: 'Schema',
      description: 'Schema whose tables become streams.',
      default: 'public',
    },
    tables: {
      type: 'array',
      title: 'Tables',
      description: 'Tables (or views) to expose as streams; defaults to every base table of the schema.',
      items: { type: 'string', minLength: 1 },
      uniqueItems: true,
      examples: [['orders', 'customers']],
    },
    queries: {
      type: 'array',
      title: 'Custom queries',
      description:
        'Extra streams defined by a SELECT. Full refresh only, unless cursorField is given (then incremental too). primaryKey makes reads resumable and breaks cursor ties.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'sql'],
        properties: {
          name: { type: 'string', minLength: 1, title: 'Stream name', description: 'Name of the stream.' },
          sql: { type: 'string', minLength: 1, title: 'SQL', description: 'A single SELECT statement (no trailing semicolon needed).' },
          cursorField: { type: 'string', minLength: 1, title: 'Cursor field', description: 'Column of the result usable as an incremental cursor.' },
          primaryKey: {
            type: 'array',
            items: { type: 'string', minLength: 1 },
            minItems: 1,
            title: 'Primary key',
            description: 'Column(s) of the result that identify a row.',
          },
        },
      },
    },
  },
};

export const docs = `# PostgreSQL (source)

Reads tables (and optional custom queries) of one PostgreSQL schema.

\`\`\`json
{
  "connectionString": "postgresql://sluice:secret@db.internal:5432/shop",
  "schema": "public",
  "tables": ["orders", "customers"],
  "queries": [
    { "name": "big_orders", "sql": "SELECT id, total, updated_at FROM orders WHERE total > 1000", "cursorField": "updated_at", "primaryKey": ["id"] }
  ]
}
\`\`\`

Instead of \`connectionString\`: \`host\`, \`port\` (5432), \`database\`, \`user\`, \`password\`, \`ssl\`
(\`disable\` | \`require\` | \`verify-full\`). \`connectionString\` and \`password\` are secrets.

- **Streams**: one per base table of \`schema\` (or the listed \`tables\`, which may also be views),
  plus one per custom query. Fields carry the real column types: int2/int4/int8 → integer,
  numeric/real/double → number, boolean, date/timestamp/timestamptz → datetime, json/jsonb → json,
  everything else (text, uuid, arrays, intervals, bytea, enums, ...) → string in PostgreSQL's text
  form. Domains map like their base type. Primary keys are reported.
- **Values**: int8 outside ±2^53 and numerics that a double cannot print back exactly are emitted
  as decimal strings (never rounded); NaN/Infinity as strings. Timestamps are ISO 8601 with full
  microsecond precision (timestamptz in UTC with \`Z\`, timestamp without zone); dates \`YYYY-MM-DD\`.
- **Sync modes**: FULL_REFRESH and INCREMENTAL (cursor = \`cursorField[0]\` of the configured stream).
  Custom queries support INCREMENTAL only when they declare a \`cursorField\`.
- **Reading**: keyset pages of \`batchSize\` rows — \`WHERE (cursor, pk) > ($1, $2) ORDER BY cursor, pk
  LIMIT n\` — so nothing is held in memory and no transaction stays open between pages. An index on
  \`(cursor, pk)\` (or the primary key for full refresh) keeps every page cheap.
- **State** (emitted after every page; resuming never skips or repeats a row):
  - INCREMENTAL: \`{ "cursor": <last cursor value>, "pk": [<last pk values>] }\`; rows with equal
    cursor values are ordered by primary key. Without a primary key every page ends on a
    cursor-value boundary and \`pk\` is \`[]\`. Rows whose cursor is NULL are not read.
  - FULL_REFRESH: \`{ "pk": [...] }\` (by primary key), \`{ "block": N }\` (table without primary
    key: ctid block ranges, PostgreSQL 14+), or \`{ "rows": N }\` (views and queries without keys:
    one server-side cursor in a REPEATABLE READ transaction; resuming skips N rows, which assumes a
    stable row order — give such queries an ORDER BY).
- Incremental reads see rows whose cursor moved past the saved one; deletes are not detected, and a
  row inserted later with a cursor value *below* the saved one is not read (use a cursor that only grows,
  e.g. a sequence or \`updated_at\` maintained by a trigger).
`;

// ---------------------------------------------------------------------------------------------
// Value parsing (per client, never global).

type Parser = (text: string) => unknown;

const identity: Parser = (s) => s;

function parseInteger(s: string): unknown {
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : s;
}

function parseFloatText(s: string): unknown {
  const n = Number(s);
  return Number.isFinite(n) ? n : s;
}

/** numeric → number when the double prints back as the same decimal, else the exact string. */
export function parseNumeric(s: string): unknown {
  const n = Number(s);
  if (!Number.isFinite(n)) return s;
  // At most 15 significant digits always survive a round trip through a double.
  if (s.length <= 15) return n;
  let t = s;
  if (t.includes('.')) {
    let end = t.length;
    while (t.charCodeAt(end - 1) === 48) end--;
    if (t.charCodeAt(end - 1) === 46) end--;
    t = t.slice(0, end);
  }
  if (t === '-0') t = '0';
  return String(n) === t ? n : s;
}

function parseTimestamp(s: string): unknown {
  // 'YYYY-MM-DD HH:MM:SS[.ffffff]' (ISO DateStyle); BC and infinity stay as they are.
  if (s.length >= 19 && s.charCodeAt(10) === 32 && s.charCodeAt(4) === 45 && !s.endsWith(' BC')) return `${s.slice(0, 10)}T${s.slice(11)}`;
  return s;
}

function parseTimestamptz(s: string): unknown {
  if (s.length >= 22 && s.charCodeAt(10) === 32 && s.charCodeAt(4) === 45 && !s.endsWith(' BC')) {
    const t = `${s.slice(0, 10)}T${s.slice(11)}`;
    return t.endsWith('+00') ? `${t.slice(0, -3)}Z` : t;
  }
  return s;
}

function parseJson(s: string): unknown {
  return JSON.parse(s) as unknown;
}

const PARSERS = new Map<number, Parser>([
  [OID.bool, (s) => s === 't'],
  [OID.int2, Number],
  [OID.int4, Number],
  [OID.int8, parseInteger],
  [OID.float4, parseFloatText],
  [OID.float8, parseFloatText],
  [OID.numeric, parseNumeric],
  [OID.json, parseJson],
  [OID.jsonb, parseJson],
  [OID.date, identity],
  [OID.timestamp, parseTimestamp],
  [OID.timestamptz, parseTimestamptz],
]);

export const sourceTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number) => PARSERS.get(oid) ?? identity) as unknown as pg.CustomTypesConfig['getTypeParser'],
};

// ---------------------------------------------------------------------------------------------
// Config and introspection.

interface ResolvedConfig {
  connection: pg.ClientConfig;
  schema: string;
  tables: string[] | null;
  queries: PostgresQueryStream[];
}

function stripSql(sql: string): string {
  return sql.trim().replace(/;\s*$/, '').trim();
}

function resolveConfig(raw: PostgresSourceConfig): ResolvedConfig {
  const connection = resolveConnection(raw, WHO);
  const queries = (raw.queries ?? []).map((q) => ({ ...q, sql: stripSql(q.sql ?? '') }));
  const seen = new Set<string>();
  for (const q of queries) {
    if (!q.name || !q.sql) throw new DriverError(`${WHO}: every query needs a name and sql`);
    if (seen.has(q.name)) throw new DriverError(`${WHO}: duplicate query name "${q.name}"`);
    seen.add(q.name);
  }
  return { connection, schema: raw.schema ?? 'public', tables: raw.tables && raw.tables.length > 0 ? raw.tables : null, queries };
}

interface Column {
  name: string;
  type: FieldType;
  /** SQL type for casting parameters (tables only). */
  sqlType: string | null;
  nullable: boolean;
}

interface Relation {
  name: string;
  /** pg_class.relkind: r table, p partitioned, v view, m matview, f foreign */
  kind: string;
  columns: Column[];
  pk: string[] | null;
}

async function introspect(client: pg.Client, schema: string, names: string[] | null): Promise<Map<string, Relation>> {
  const cols = await client.query<{ table: string; kind: string; column: string; typname: string; sqltype: string; nullable: boolean }>(
    `SELECT c.relname AS "table", c.relkind::text AS kind, a.attname AS "column", bt.typname::text AS typname,
            format_type(a.atttypid, a.atttypmod) AS sqltype, NOT a.attnotnull AS nullable
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
      WHERE n.nspname = $1
        AND CASE WHEN $2::text[] IS NULL
                 THEN c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE '%\\_\\_sluice\\_tmp'
                 ELSE c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') END
      ORDER BY c.relname, a.attnum`,
    [schema, names],
  );
  const out = new Map<string, Relation>();
  for (const r of cols.rows) {
    let rel = out.get(r.table);
    if (!rel) {
      rel = { name: r.table, kind: r.kind, columns: [], pk: null };
      out.set(r.table, rel);
    }
    rel.columns.push({ name: r.column, type: fieldTypeOfTypname(r.typname), sqlType: r.sqltype, nullable: r.nullable });
  }
  if (out.size === 0) return out;
  const pks = await client.query<{ table: string; column: string }>(
    `SELECT c.relname AS "table", a.attname AS "column"
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE i.indisprimary AND n.nspname = $1 AND c.relname = ANY($2::text[])
      ORDER BY c.relname, k.ord`,
    [schema, [...out.keys()]],
  );
  for (const r of pks.rows) {
    const rel = out.get(r.table);
    if (rel) (rel.pk ??= []).push(r.column);
  }
  return out;
}

interface QueryShape {
  columns: Column[];
}

async function describeQuery(client: pg.Client, q: PostgresQueryStream): Promise<QueryShape> {
  let res: pg.QueryArrayResult;
  try {
    res = await client.query({ text: `SELECT * FROM (${q.sql}\n) AS sluice_q LIMIT 0`, rowMode: 'array' });
  } catch (e) {
    throw new DriverError(`${WHO}: query "${q.name}" is not a valid SELECT: ${pgErrorMessage(e)}`);
  }
  const names = res.fields.map((f) => f.name);
  const dups = names.filter((n, i) => names.indexOf(n) !== i);
  if (dups.length > 0) throw new DriverError(`${WHO}: query "${q.name}" returns duplicate column name(s) ${[...new Set(dups)].join(', ')}; alias them`);
  const columns = res.fields.map((f) => ({ name: f.name, type: fieldTypeOfOid(f.dataTypeID), sqlType: null, nullable: true }));
  for (const k of [...(q.cursorField ? [q.cursorField] : []), ...(q.primaryKey ?? [])]) {
    if (!names.includes(k)) throw new DriverError(`${WHO}: query "${q.name}" has no column "${k}" (columns: ${names.join(', ')})`);
  }
  return { columns };
}

/** Everything `read` needs to know about one stream. */
interface StreamSource {
  name: string;
  /** FROM item (aliased). */
  from: string;
  columns: Column[];
  pk: string[] | null;
  /** Heap relation: ctid block ranges usable. */
  heap: boolean;
  /** Qualified name for pg_relation_size (tables only). */
  regclass: string | null;
  defaultCursor: string | null;
}

async function loadSources(client: pg.Client, cfg: ResolvedConfig, wanted: Set<string> | null): Promise<Map<string, StreamSource>> {
  const out = new Map<string, StreamSource>();
  const tableNames = cfg.tables ?? null;
  const rels = await introspect(client, cfg.schema, tableNames);
  for (const rel of rels.values()) {
    if (wanted && !wanted.has(rel.name)) continue;
    out.set(rel.name, {
      name: rel.name,
      from: `${qn(cfg.schema, rel.name)} AS sluice_t`,
      columns: rel.columns,
      pk: rel.pk,
      heap: rel.kind === 'r' || rel.kind === 'm',
      regclass: qn(cfg.schema, rel.name),
      defaultCursor: null,
    });
  }
  for (const q of cfg.queries) {
    if (rels.has(q.name)) throw new DriverError(`${WHO}: query name "${q.name}" is also a table name`);
    if (wanted && !wanted.has(q.name)) continue;
    const shape = await describeQuery(client, q);
    out.set(q.name, {
      name: q.name,
      from: `(${q.sql}\n) AS sluice_t`,
      columns: shape.columns,
      pk: q.primaryKey && q.primaryKey.length > 0 ? q.primaryKey : null,
      heap: false,
      regclass: null,
      defaultCursor: q.cursorField ?? null,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// check / discover.

async function check(config: PostgresSourceConfig): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  let client: pg.Client;
  try {
    client = await connect(cfg.connection, sourceTypes);
  } catch (e) {
    return { ok: false, message: connectFailureMessage(e, cfg.connection) };
  }
  try {
    await client.query('SELECT 1');
    const version = (await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;
    const schemaRow = await client.query(`SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1`, [cfg.schema]);
    if (schemaRow.rowCount === 0) return { ok: false, message: `Schema "${cfg.schema}" does not exist in ${describeTarget(cfg.connection)}` };
    const rels = await introspect(client, cfg.schema, cfg.tables);
    if (cfg.tables) {
      const missing = cfg.tables.filter((t) => !rels.has(t));
      if (missing.length > 0) {
        const all = await introspect(client, cfg.schema, null);
        const avail = [...all.keys()];
        return {
          ok: false,
          message: `Table(s) not found in schema "${cfg.schema}": ${missing.join(', ')} (available: ${avail.length > 0 ? avail.slice(0, 30).join(', ') : 'none'})`,
        };
      }
    }
    const denied = (
      await client.query<{ name: string }>(
        `SELECT t AS name FROM unnest($2::text[]) AS t WHERE NOT has_table_privilege(format('%I.%I', $1::text, t), 'SELECT')`,
        [cfg.schema, [...rels.keys()]],
      )
    ).rows.map((r) => r.name);
    if (denied.length > 0) return { ok: false, message: `No SELECT privilege on: ${denied.join(', ')}` };
    for (const q of cfg.queries) {
      if (rels.has(q.name)) return { ok: false, message: `Query name "${q.name}" is also a table name` };
      try {
        await describeQuery(client, q);
      } catch (e) {
        return { ok: false, message: (e as Error).message };
      }
    }
    const queries = cfg.queries.length > 0 ? ` and ${cfg.queries.length} custom quer${cfg.queries.length === 1 ? 'y' : 'ies'}` : '';
    return {
      ok: true,
      message: `Connected to ${describeTarget(cfg.connection)} (PostgreSQL ${version}); schema "${cfg.schema}": ${rels.size} table(s)${queries}`,
    };
  } catch (e) {
    return { ok: false, message: `${describeTarget(cfg.connection)}: ${pgErrorMessage(e)}` };
  } finally {
    await closeQuietly(client);
  }
}

async function discover(config: PostgresSourceConfig): Promise<Catalog> {
  const cfg = resolveConfig(config);
  let client: pg.Client;
  try {
    client = await connect(cfg.connection, sourceTypes);
  } catch (e) {
    throw new DriverError(`${WHO}: ${connectFailureMessage(e, cfg.connection)}`, isRetryable(e));
  }
  try {
    const sources = await loadSources(client, cfg, null);
    const streams: StreamDescriptor[] = [...sources.values()].map((s) => ({
      name: s.name,
      fields: s.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })),
      supportedSyncModes: s.regclass !== null || s.defaultCursor !== null ? ['FULL_REFRESH', 'INCREMENTAL'] : ['FULL_REFRESH'],
      defaultCursorField: s.defaultCursor ? [s.defaultCursor] : null,
      sourceDefinedPrimaryKey: s.pk,
    }));
    return { streams };
  } catch (e) {
    throw wrapPgError(WHO, 'discover failed', e);
  } finally {
    await closeQuietly(client);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading.

interface Page {
  rows: unknown[][];
  bytes: number;
  state: StreamState;
}

type Runner = (text: string, values: unknown[]) => Promise<{ rows: unknown[][]; bytes: number }>;

/** Builds a record from a row array: constant keys keep V8's inline caches monomorphic. */
function compileRecord(names: string[]): (row: unknown[]) => DataRecord {
  const body = names.map((n, i) => `${JSON.stringify(n)}: row[${i}]`).join(',\n');
  return new Function('row', `"use strict"; return {\n${body}\n};`) as (row: unknown[]) => DataRecord;
}

function noop(): void {}

/** One query in flight ahead of the consumer; the caller awaits it after yielding the current page. */
function ahead<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

interface ReadPlan {
  source: StreamSource;
  select: string;
  /** Index of each key column in the select list. */
  keyIdx: Map<string, number>;
  limit: number;
  run: Runner;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function cast(plan: ReadPlan, column: string): string {
  const t = plan.source.columns.find((c) => c.name === column)?.sqlType;
  return t ? `::${t}` : '';
}

/** Keyset pages over `keys` (cursor first when incremental), strictly after `start`. */
async function* keysetPages(plan: ReadPlan, keys: string[], cursor: string | null, start: unknown[] | null): AsyncGenerator<Page> {
  const cols = keys.map(qi).join(', ');
  const notNull = keys.map((k) => `${qi(k)} IS NOT NULL`).join(' AND ');
  const after = (offset: number) =>
    keys.length === 1
      ? `${qi(keys[0]!)} > $${offset}${cast(plan, keys[0]!)}`
      : `(${cols}) > (${keys.map((k, i) => `$${offset + i}${cast(plan, k)}`).join(', ')})`;
  const first = `SELECT ${plan.select} FROM ${plan.source.from} WHERE ${notNull} ORDER BY ${cols} LIMIT $1`;
  const next = `SELECT ${plan.select} FROM ${plan.source.from} WHERE ${notNull} AND ${after(2)} ORDER BY ${cols} LIMIT $1`;
  const idx = keys.map((k) => plan.keyIdx.get(k)!);
  const stateOf = (row: unknown[]): StreamState => {
    const vals = idx.map((i) => row[i] as StreamState);
    return cursor === null ? { pk: vals } : { cursor: vals[0]!, pk: vals.slice(1) };
  };
  let pending = ahead(start ? plan.run(next, [plan.limit, ...start]) : plan.run(first, [plan.limit]));
  for (;;) {
    const res = await pending;
    if (res.rows.length === 0) return;
    const last = res.rows[res.rows.length - 1]!;
    const more = res.rows.length >= plan.limit;
    if (more) pending = ahead(plan.run(next, [plan.limit, ...idx.map((i) => last[i])]));
    yield { rows: res.rows, bytes: res.bytes, state: stateOf(last) };
    if (!more) return;
  }
}

/** Cursor-only pages that always end on a cursor value boundary (no key to break ties). */
async function* cursorGroupPages(plan: ReadPlan, cursor: string, start: unknown | undefined): AsyncGenerator<Page> {
  const c = qi(cursor);
  const cs = cast(plan, cursor);
  const q = (after: boolean) => {
    const cond = `${c} IS NOT NULL${after ? ` AND ${c} > $2${cs}` : ''}`;
    return `SELECT ${plan.select} FROM ${plan.source.from} WHERE ${cond}
              AND ${c} <= (SELECT max(${c}) FROM (SELECT ${c} FROM ${plan.source.from} WHERE ${cond} ORDER BY ${c} LIMIT $1) AS sluice_b)
            ORDER BY ${c}`;
  };
  const first = q(false);
  const next = q(true);
  const ci = plan.keyIdx.get(cursor)!;
  let pending = ahead(start !== undefined ? plan.run(next, [plan.limit, start]) : plan.run(first, [plan.limit]));
  for (;;) {
    const res = await pending;
    if (res.rows.length === 0) return;
    const last = res.rows[res.rows.length - 1]!;
    const more = res.rows.length >= plan.limit;
    if (more) pending = ahead(plan.run(next, [plan.limit, last[ci]]));
    yield { rows: res.rows, bytes: res.bytes, state: { cursor: last[ci] as StreamState, pk: [] } };
    if (!more) return;
  }
}

/** Heap table without a key: ctid block ranges (TID range scans, PostgreSQL 14+). */
async function* blockPages(plan: ReadPlan, client: pg.Client, startBlock: number): AsyncGenerator<Page> {
  const sizeSql = `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::bigint)::float8 AS blocks,
                          GREATEST(c.reltuples, 0)::float8 AS tuples, c.relpages::float8 AS pages
                     FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass`;
  const size = async () => (await client.query<{ blocks: number; tuples: number; pages: number }>(sizeSql, [plan.source.regclass])).rows[0]!;
  let info = await size();
  let blocks = info.blocks;
  let perBlock = info.pages > 0 && info.tuples > 0 ? info.tuples / info.pages : 50;
  const span = () => Math.max(1, Math.min(1 << 20, Math.round(plan.limit / Math.max(perBlock, 0.01))));
  const sql = `SELECT ${plan.select} FROM ${plan.source.from} WHERE ctid >= $1::tid AND ctid < $2::tid`;
  const range = (from: number, n: number) => plan.run(sql, [`(${from},0)`, `(${from + n},0)`]);
  let at = startBlock;
  let n = span();
  let pending: Promise<{ rows: unknown[][]; bytes: number }> | null = at < blocks ? ahead(range(at, n)) : null;
  while (pending) {
    const res = await pending;
    pending = null;
    at += n;
    if (res.rows.length > 0) perBlock = perBlock * 0.5 + (res.rows.length / n) * 0.5;
    else perBlock = perBlock * 0.5;
    n = span();
    if (at >= blocks) {
      info = await size();
      blocks = info.blocks;
    }
    if (at < blocks) pending = ahead(range(at, n));
    yield { rows: res.rows, bytes: res.bytes, state: { block: at } };
  }
}

/** No usable key: one server-side cursor in a snapshot; state counts rows. */
async function* portalPages(plan: ReadPlan, client: pg.Client, skip: number): AsyncGenerator<Page> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  let open = true;
  try {
    await client.query(`DECLARE sluice_cursor NO SCROLL CURSOR FOR SELECT ${plan.select} FROM ${plan.source.from}`);
    if (skip > 0) await client.query(`MOVE FORWARD ${skip} IN sluice_cursor`);
    let done = skip;
    const fetch = `FETCH FORWARD ${plan.limit} FROM sluice_cursor`;
    let pending = ahead(plan.run(fetch, []));
    for (;;) {
      const res = await pending;
      if (res.rows.length === 0) break;
      done += res.rows.length;
      const more = res.rows.length >= plan.limit;
      if (more) pending = ahead(plan.run(fetch, []));
      yield { rows: res.rows, bytes: res.bytes, state: { rows: done } };
      if (!more) break;
    }
    open = false;
    await client.query('COMMIT');
  } finally {
    if (open) await client.query('ROLLBACK').catch(noop);
  }
}

function badState(stream: string, expected: string, state: unknown): DriverError {
  return new DriverError(`${WHO}: invalid state for stream "${stream}": expected ${expected}, got ${JSON.stringify(state)}`);
}

async function* readStream(
  client: pg.Client,
  serverVersion: number,
  source: StreamSource,
  configured: ConfiguredStream,
  state: StreamState | undefined,
  options: ReadOptions,
  bytesCounter: { n: number },
): AsyncGenerator<SourceMessage> {
  const stream = source.name;
  const batchSize = Math.max(1, Math.floor(options.batchSize) || 1000);
  const names = source.columns.map((c) => c.name);
  const logs: SourceMessage[] = [];

  // Output fields (selection order), then key columns needed for state.
  let outFields = names;
  if (configured.fields && configured.fields.length > 0) {
    const unknown = configured.fields.filter((f) => !names.includes(f));
    if (unknown.length > 0) logs.push({ type: 'log', level: 'warn', message: `${WHO}: stream "${stream}" has no field(s) ${unknown.join(', ')}; ignored` });
    outFields = configured.fields.filter((f) => names.includes(f));
    if (outFields.length === 0) throw new DriverError(`${WHO}: none of the selected fields of stream "${stream}" exist`);
  }

  const incremental = configured.syncMode === 'INCREMENTAL';
  let cursor: string | null = null;
  if (incremental) {
    cursor = configured.cursorField?.[0] ?? source.defaultCursor;
    if (!cursor) throw new DriverError(`${WHO}: stream "${stream}" is INCREMENTAL but has no cursorField`);
    if (!names.includes(cursor)) throw new DriverError(`${WHO}: cursor field "${cursor}" is not a column of stream "${stream}"`);
  }
  const pk = source.pk;
  const keys = [...(cursor ? [cursor] : []), ...(pk ?? []).filter((k) => k !== cursor)];
  const select = [...outFields, ...keys.filter((k) => !outFields.includes(k))];
  const keyIdx = new Map(keys.map((k) => [k, select.indexOf(k)]));
  const build = compileRecord(outFields);

  // One prepared statement per distinct text, so PostgreSQL plans each page query once.
  const statements = new Map<string, string>();
  const run: Runner = async (text, values) => {
    let n = statements.get(text);
    if (n === undefined) {
      n = `sluice_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`;
      statements.set(text, n);
    }
    const mark = bytesCounter.n;
    const res = await client.query({ name: n, text, values, rowMode: 'array' });
    return { rows: res.rows, bytes: bytesCounter.n - mark };
  };
  const plan: ReadPlan = { source, select: select.map(qi).join(', '), keyIdx, limit: batchSize, run };

  const st = isRecord(state) ? state : null;
  if (state !== undefined && state !== null && st === null) throw badState(stream, 'an object', state);
  let pages: AsyncGenerator<Page>;
  if (cursor !== null) {
    if (pk && pk.length > 0) {
      let start: unknown[] | null = null;
      if (st && 'cursor' in st) {
        const pkv = st.pk;
        if (!Array.isArray(pkv) || pkv.length !== keys.length - 1 || st.cursor === null) throw badState(stream, `{ cursor, pk: [${keys.length - 1} value(s)] }`, state);
        start = [st.cursor, ...pkv];
      } else if (st && Object.keys(st).length > 0) {
        logs.push({ type: 'log', level: 'warn', message: `${WHO}: state of stream "${stream}" is not an incremental state; reading from the beginning` });
      }
      pages = keysetPages(plan, keys, cursor, start);
    } else {
      let start: unknown | undefined;
      if (st && 'cursor' in st && st.cursor !== null) start = st.cursor;
      pages = cursorGroupPages(plan, cursor, start);
    }
  } else if (pk && pk.length > 0) {
    let start: unknown[] | null = null;
    if (st && 'pk' in st && !('cursor' in st)) {
      if (!Array.isArray(st.pk) || st.pk.length !== pk.length) throw badState(stream, `{ pk: [${pk.length} value(s)] }`, state);
      start = st.pk;
    }
    pages = keysetPages(plan, keys, null, start);
  } else if (source.heap && serverVersion >= 140000) {
    let block = 0;
    if (st && 'block' in st) {
      if (typeof st.block !== 'number' || !Number.isSafeInteger(st.block) || st.block < 0) throw badState(stream, '{ block: <non-negative integer> }', state);
      block = st.block;
    }
    pages = blockPages(plan, client, block);
  } else {
    let skip = 0;
    if (st && 'rows' in st) {
      if (typeof st.rows !== 'number' || !Number.isSafeInteger(st.rows) || st.rows < 0) throw badState(stream, '{ rows: <non-negative integer> }', state);
      skip = st.rows;
    }
    pages = portalPages(plan, client, skip);
  }

  for (const l of logs) yield l;
  let emitted = false;
  try {
    for await (const page of pages) {
      options.signal?.throwIfAborted();
      const rows = page.rows;
      const n = rows.length;
      for (let off = 0; off < n; off += batchSize) {
        const end = Math.min(n, off + batchSize);
        const records = new Array<DataRecord>(end - off);
        for (let i = off; i < end; i++) records[i - off] = build(rows[i]!);
        const bytes = Math.round((page.bytes * end) / n) - Math.round((page.bytes * off) / n);
        yield { type: 'records', stream, records, bytes };
      }
      yield { type: 'state', stream, state: page.state };
      emitted = true;
    }
  } finally {
    await pages.return(undefined);
  }
  if (!emitted) yield { type: 'state', stream, state: state ?? {} };
}

async function* read(config: PostgresSourceConfig, streams: ConfiguredStream[], state: StreamStates, options: ReadOptions): AsyncGenerator<SourceMessage> {
  const cfg = resolveConfig(config);
  const signal = options.signal;
  signal?.throwIfAborted();
  let client: pg.Client;
  try {
    client = await connect(cfg.connection, sourceTypes);
  } catch (e) {
    throw new DriverError(`${WHO}: ${connectFailureMessage(e, cfg.connection)}`, isRetryable(e));
  }
  const bytesCounter = { n: 0 };
  (client as unknown as { connection: NodeJS.EventEmitter }).connection.on('dataRow', (m: { length: number }) => {
    bytesCounter.n += m.length;
  });
  const onAbort = () => void client.end().catch(noop);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const serverVersion = Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
    const sources = await loadSources(client, cfg, new Set(streams.map((s) => s.name)));
    for (const configured of streams) {
      const source = sources.get(configured.name);
      if (!source) {
        yield { type: 'log', level: 'warn', message: `${WHO}: unknown stream "${configured.name}" ignored (no such table or query in schema "${cfg.schema}")` };
        continue;
      }
      yield* readStream(client, serverVersion, source, configured, state?.[configured.name], options, bytesCounter);
      signal?.throwIfAborted();
    }
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw wrapPgError(WHO, 'read failed', e);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await closeQuietly(client);
  }
}

export const postgresSource: SourceDriver<PostgresSourceConfig> = {
  name: 'postgres-source',
  role: 'SOURCE',
  title: 'PostgreSQL',
  description: 'Reads tables and custom queries of a PostgreSQL schema with keyset pagination, full refresh and cursor-based incremental sync.',
  docs,
  configSchema: postgresSourceConfigSchema,
  check,
  discover,
  read,
};

export default postgresSource;
