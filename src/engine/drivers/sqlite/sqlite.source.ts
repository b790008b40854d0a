import fs from 'node:fs';
import Database from 'better-sqlite3';
import { FileAccessError, type FileAccess } from '../../../security/file-roots.js';
import { fieldTypeOfDeclared } from './encoding.js';
import { openSqliteFile } from './open.js';
import { pathProblems } from '../kit/local-files.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfigError,
  type ConfiguredStream,
  type DriverContext,
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
 * SQLite source (better-sqlite3, read-only connection).
 *
 * Contract:
 * - The file is opened read-only (`fileMustExist`) inside the workspace's files roots
 *   (sqlite-open.ts). A custom query is exactly one statement that SQLite reports read-only and
 *   that returns rows as a subquery (a SELECT, WITH or VALUES): ATTACH, PRAGMA, DML and several
 *   statements are refused when the connector is saved (VALIDATION_FAILED) and at run (DriverError).
 * - One stream per table (all tables unless `tables` lists some; listed views are accepted)
 *   plus one per custom query.
 * - Keyset pages exactly like the PostgreSQL source: `WHERE (cursor, pk) > (?, ?) ORDER BY
 *   cursor, pk LIMIT n`. The key is the declared primary key, else (none, or a nullable one) the rowid.
 * - State after every page: INCREMENTAL `{ cursor, pk: [...] }`, FULL_REFRESH `{ pk: [...] }`
 *   (pk = the rowid when it is the key); cursor-only streams (views/queries with a
 *   cursorField but no key) page on cursor-value boundaries with `{ cursor, pk: [] }`; keyless
 *   full refreshes count rows: `{ rows: N }`. State values are the raw stored values, so they
 *   compare exactly on resume.
 * - Values follow the declared type: INTEGER values as numbers (beyond ±2^53 as decimal strings),
 *   BOOL columns as booleans (0/1), JSON columns parsed when they hold valid JSON, BLOBs as
 *   `\x<hex>` strings, everything else as stored.
 */

export interface SqliteQueryStream {
  name: string;
  sql: string;
  cursorField?: string;
  primaryKey?: string[];
}

export interface SqliteSourceConfig {
  path: string;
  tables?: string[];
  queries?: SqliteQueryStream[];
}

const WHO = 'SQLite source';

export const sqliteSourceConfigSchema: JsonSchema = {
  type: 'object',
  title: 'SQLite database (source)',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      title: 'Database file',
      description: "Path of the SQLite database file relative to the workspace's files folder (or absolute inside a files root); opened read-only.",
      examples: ['app.db'],
    },
    tables: {
      type: 'array',
      title: 'Tables',
      description: 'Tables (or views) to expose as streams; defaults to every table.',
      items: { type: 'string', minLength: 1 },
      uniqueItems: true,
    },
    queries: {
      type: 'array',
      title: 'Custom queries',
      description: 'Extra streams defined by a SELECT. Full refresh only, unless cursorField is given (then incremental too).',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'sql'],
        properties: {
          name: { type: 'string', minLength: 1, title: 'Stream name', description: 'Name of the stream.' },
          sql: { type: 'string', minLength: 1, title: 'SQL', description: 'A single read-only SELECT (or WITH / VALUES) statement; ATTACH, PRAGMA and writes are refused.' },
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

export const docs = `# SQLite (source)

Reads tables (and optional custom queries) of a SQLite database in the workspace's files folder,
opened read-only.

\`\`\`json
{
  "path": "app.db",
  "tables": ["orders", "customers"],
  "queries": [{ "name": "recent", "sql": "SELECT id, total, updated_at FROM orders WHERE total > 0", "cursorField": "updated_at", "primaryKey": ["id"] }]
}
\`\`\`

- **Path**: relative to the workspace's files folder, or absolute inside one of its files roots.
- **Custom queries**: exactly one read-only statement (SELECT, WITH or VALUES); \`ATTACH\`, \`PRAGMA\`,
  writes and several statements are refused. Extension loading is off.
- **Streams**: one per table (or per listed table/view) plus one per custom query. Field types come
  from the declared column types (SQLite affinity: INT → integer, CHAR/CLOB/TEXT → string,
  REAL/FLOA/DOUB/NUMERIC → number, BOOL → boolean, DATE/TIME → datetime, JSON → json). Declared
  primary keys are reported; an INTEGER PRIMARY KEY is never null.
- **Values**: as stored (SQLite is dynamically typed): integers beyond ±2^53 become decimal strings,
  BOOL columns give booleans for 0/1, JSON columns are parsed when they hold valid JSON (else kept as
  text), BLOBs become \`\\x<hex>\` strings.
- **Sync modes**: FULL_REFRESH and INCREMENTAL (cursor = \`cursorField[0]\`; custom queries need their own
  \`cursorField\`). Rows whose cursor is NULL are not read incrementally.
- **Reading**: keyset pages of \`batchSize\` rows — \`WHERE (cursor, pk) > (?, ?) ORDER BY cursor, pk LIMIT n\`
  — keyed by the declared primary key, else (no key, or one that may hold NULLs) by the rowid. Nothing
  is held in memory and no read transaction stays open between pages (except keyless views/queries,
  read through one statement).
- **State** after every page; resuming never skips or repeats a row:
  - INCREMENTAL: \`{ "cursor": <last cursor value>, "pk": [<last key values>] }\` (rows with equal cursor
    values are ordered by key). Views/queries without a key page on cursor-value boundaries (\`pk: []\`).
  - FULL_REFRESH: \`{ "pk": [...] }\` (the rowid when the rowid is the key), or \`{ "rows": N }\` for
    views/queries without a key (resuming skips N rows, assuming a stable order).
  - State values are the raw stored values (e.g. 0/1 for booleans).
- \`VACUUM\` may renumber the rowids of tables without an INTEGER PRIMARY KEY; reset the state after it.
`;

// ---------------------------------------------------------------------------------------------
// Config and schema.

interface ResolvedConfig {
  path: string;
  tables: string[] | null;
  queries: SqliteQueryStream[];
}

function resolveConfig(raw: SqliteSourceConfig): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError(`${WHO}: config must be an object`);
  if (typeof raw.path !== 'string' || raw.path.length === 0) throw new DriverError(`${WHO}: "path" is required`);
  const queries = (raw.queries ?? []).map((q) => ({ ...q, sql: (q.sql ?? '').trim().replace(/;\s*$/, '').trim() }));
  const seen = new Set<string>();
  for (const q of queries) {
    if (!q.name || !q.sql) throw new DriverError(`${WHO}: every query needs a name and sql`);
    if (seen.has(q.name)) throw new DriverError(`${WHO}: duplicate query name "${q.name}"`);
    seen.add(q.name);
  }
  return { path: raw.path, tables: raw.tables && raw.tables.length > 0 ? raw.tables : null, queries };
}

function qi(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

async function openDatabase(cfg: ResolvedConfig, files: FileAccess): Promise<Database.Database> {
  let db: Database.Database | null = null;
  try {
    // Inside the roots (checked first), a missing file is an ordinary answer.
    if (!fs.existsSync(files.resolve(cfg.path, 'read'))) throw new DriverError(`${WHO}: file not found: ${cfg.path}`);
    db = (await openSqliteFile(files, cfg.path, 'read', { timeout: 10_000 })).db;
    db.prepare('SELECT count(*) FROM sqlite_master').get(); // fails fast on a non-database file
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof DriverError) throw e;
    if (e instanceof FileAccessError) throw new DriverError(`${WHO}: ${e.message}`);
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB') throw new DriverError(`${WHO}: ${cfg.path} is not a SQLite database`);
    throw new DriverError(`${WHO}: cannot open ${cfg.path}: ${(e as Error).message}`, code.startsWith('SQLITE_BUSY'));
  }
}

// ---------------------------------------------------------------------------------------------
// Custom queries: one read-only statement.

/** True when `sql` holds more than one statement (a `;` outside strings, identifiers and comments followed by more SQL). */
export function hasSeveralStatements(sql: string): boolean {
  let i = 0;
  const n = sql.length;
  let ended = false;
  while (i < n) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close === -1 ? n : close + 2;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (ended && c !== ';') return true;
    if (c === ';') {
      ended = true;
      i++;
      continue;
    }
    const closer = c === "'" ? "'" : c === '"' ? '"' : c === '`' ? '`' : c === '[' ? ']' : null;
    if (closer !== null) {
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(closer, j);
        if (k === -1) return false; // unterminated: SQLite's own error
        if (closer !== ']' && sql[k + 1] === closer) {
          j = k + 2; // doubled quote
          continue;
        }
        i = k + 1;
        break;
      }
      continue;
    }
    i++;
  }
  return false;
}

const NOT_READ_ONLY = 'must be a single read-only SELECT statement (ATTACH, PRAGMA, writes and several statements are refused)';

/**
 * Why a custom query is refused, or null. `strict` (the real database): the statement must
 * compile. Otherwise (a config being saved, checked against an empty database) unknown tables,
 * columns or functions are left to the run, but the shape is judged.
 */
function queryProblem(db: Database.Database, sql: string, strict: boolean): string | null {
  if (hasSeveralStatements(sql)) return NOT_READ_ONLY;
  const syntaxOnly = (e: unknown) => {
    const m = (e as Error).message;
    return /syntax error|incomplete input|more than one statement|unrecognized token/i.test(m);
  };
  try {
    const stmt = db.prepare(sql);
    if (!stmt.readonly || !stmt.reader) return NOT_READ_ONLY;
  } catch (e) {
    if (syntaxOnly(e) || strict) return syntaxOnly(e) ? NOT_READ_ONLY : `is not a valid SELECT: ${(e as Error).message}`;
  }
  try {
    db.prepare(`SELECT * FROM (${sql}\n) AS sluice_q`);
  } catch (e) {
    if (syntaxOnly(e)) return NOT_READ_ONLY;
    if (strict) return `is not a valid SELECT: ${(e as Error).message}`;
  }
  return null;
}

/** Create/update checks: the database path inside the files roots, each custom query one read-only statement. */
function validate(config: SqliteSourceConfig, ctx: DriverContext): ConfigError[] {
  const errors = pathProblems(ctx.files, 'path', config?.path, 'read');
  const queries = Array.isArray(config?.queries) ? config.queries : [];
  if (queries.length > 0) {
    const scratch = new Database(':memory:');
    try {
      queries.forEach((q, i) => {
        if (typeof q?.sql !== 'string') return;
        const problem = queryProblem(scratch, q.sql.trim().replace(/;\s*$/, '').trim(), false);
        if (problem) errors.push({ path: `queries.${i}.sql`, message: problem });
      });
    } finally {
      scratch.close();
    }
  }
  return errors;
}

interface Column {
  name: string;
  type: FieldType;
  nullable: boolean;
}

/** Everything `read` needs to know about one stream. */
interface StreamSource {
  name: string;
  /** FROM item. */
  from: string;
  columns: Column[];
  pk: string[] | null;
  /** Expression of the rowid when the table has one (and no declared key takes its place). */
  rowid: string | null;
  defaultCursor: string | null;
  isQuery: boolean;
}

interface ColumnInfoRow {
  name: string;
  type: string;
  notnull: number;
  pk: number;
}

function loadSources(db: Database.Database, cfg: ResolvedConfig, wanted: Set<string> | null): Map<string, StreamSource> {
  const list = db.prepare(`SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'`).all() as { name: string; type: string; wr: number }[];
  const rels = list.filter((r) => {
    if (/^sqlite_/i.test(r.name)) return false;
    if (cfg.tables) return cfg.tables.includes(r.name) && (r.type === 'table' || r.type === 'view');
    return r.type === 'table' && !r.name.endsWith('__sluice_tmp');
  });
  rels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out = new Map<string, StreamSource>();
  const names = new Set(rels.map((r) => r.name));
  for (const rel of rels) {
    if (wanted && !wanted.has(rel.name)) continue;
    const info = db.prepare(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`).all(rel.name) as ColumnInfoRow[];
    const pkCols = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
    const rowidAlias = rel.wr === 0 && pkCols.length === 1 && pkCols[0]!.type.toUpperCase() === 'INTEGER';
    const columns = info.map((c) => ({
      name: c.name,
      type: fieldTypeOfDeclared(c.type),
      nullable: c.notnull === 0 && !(c.pk > 0 && (rowidAlias || rel.wr === 1)),
    }));
    let rowid: string | null = null;
    if (rel.type === 'table' && rel.wr === 0) {
      const taken = new Set(info.map((c) => c.name.toLowerCase()));
      rowid = ['rowid', '_rowid_', 'oid'].find((n) => !taken.has(n)) ?? null;
    }
    out.set(rel.name, {
      name: rel.name,
      from: qi(rel.name),
      columns,
      pk: pkCols.length > 0 ? pkCols.map((c) => c.name) : null,
      rowid,
      defaultCursor: null,
      isQuery: false,
    });
  }
  for (const q of cfg.queries) {
    if (names.has(q.name)) throw new DriverError(`${WHO}: query name "${q.name}" is also a table name`);
    if (wanted && !wanted.has(q.name)) continue;
    out.set(q.name, describeQuery(db, q));
  }
  return out;
}

function describeQuery(db: Database.Database, q: SqliteQueryStream): StreamSource {
  const problem = queryProblem(db, q.sql, true);
  if (problem) throw new DriverError(`${WHO}: query "${q.name}" ${problem}`);
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(`SELECT * FROM (${q.sql}\n) AS sluice_q`);
  } catch (e) {
    throw new DriverError(`${WHO}: query "${q.name}" is not a valid SELECT: ${(e as Error).message}`);
  }
  const cols = stmt.columns();
  const names = cols.map((c) => c.name);
  const dups = names.filter((n, i) => names.indexOf(n) !== i);
  if (dups.length > 0) throw new DriverError(`${WHO}: query "${q.name}" returns duplicate column name(s) ${[...new Set(dups)].join(', ')}; alias them`);
  for (const k of [...(q.cursorField ? [q.cursorField] : []), ...(q.primaryKey ?? [])]) {
    if (!names.includes(k)) throw new DriverError(`${WHO}: query "${q.name}" has no column "${k}" (columns: ${names.join(', ')})`);
  }
  // Expression columns have no declared type: look at the first row.
  let sample: unknown[] | undefined;
  if (cols.some((c) => c.type === null)) sample = (stmt.raw(true).get() as unknown[] | undefined) ?? undefined;
  const columns = cols.map((c, i) => {
    let type: FieldType = 'string';
    if (c.type !== null) type = fieldTypeOfDeclared(c.type);
    else if (sample !== undefined) {
      const v = sample[i];
      type = typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : 'string';
    }
    return { name: c.name, type, nullable: true };
  });
  return {
    name: q.name,
    from: `(${q.sql}\n) AS sluice_q`,
    columns,
    pk: q.primaryKey && q.primaryKey.length > 0 ? q.primaryKey : null,
    rowid: null,
    defaultCursor: q.cursorField ?? null,
    isQuery: true,
  };
}

// ---------------------------------------------------------------------------------------------
// check / discover.

async function check(config: SqliteSourceConfig, ctx: DriverContext): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  let db: Database.Database;
  try {
    db = await openDatabase(cfg, ctx.files);
  } catch (e) {
    return { ok: false, message: (e as Error).message.replace(`${WHO}: `, '') };
  }
  try {
    db.prepare('SELECT 1').get();
    const sources = loadSources(db, { ...cfg, queries: [] }, null);
    if (cfg.tables) {
      const missing = cfg.tables.filter((t) => !sources.has(t));
      if (missing.length > 0) {
        const all = [...loadSources(db, { ...cfg, tables: null, queries: [] }, null).keys()];
        return { ok: false, message: `Table(s) not found in ${cfg.path}: ${missing.join(', ')} (available: ${all.length > 0 ? all.slice(0, 30).join(', ') : 'none'})` };
      }
    }
    for (const q of cfg.queries) {
      if (sources.has(q.name)) return { ok: false, message: `Query name "${q.name}" is also a table name` };
      try {
        describeQuery(db, q);
      } catch (e) {
        return { ok: false, message: (e as Error).message.replace(`${WHO}: `, '') };
      }
    }
    const queries = cfg.queries.length > 0 ? ` and ${cfg.queries.length} custom quer${cfg.queries.length === 1 ? 'y' : 'ies'}` : '';
    return { ok: true, message: `${cfg.path} is a readable SQLite database; ${sources.size} table(s)${queries}` };
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB') return { ok: false, message: `${cfg.path} is not a SQLite database` };
    return { ok: false, message: `${cfg.path}: ${(e as Error).message}` };
  } finally {
    db.close();
  }
}

async function discover(config: SqliteSourceConfig, ctx: DriverContext): Promise<Catalog> {
  const cfg = resolveConfig(config);
  const db = await openDatabase(cfg, ctx.files);
  try {
    const streams: StreamDescriptor[] = [...loadSources(db, cfg, null).values()].map((s) => ({
      name: s.name,
      fields: s.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })),
      supportedSyncModes: !s.isQuery || s.defaultCursor !== null ? ['FULL_REFRESH', 'INCREMENTAL'] : ['FULL_REFRESH'],
      defaultCursorField: s.defaultCursor ? [s.defaultCursor] : null,
      sourceDefinedPrimaryKey: s.pk,
    }));
    return { streams };
  } catch (e) {
    if (e instanceof DriverError) throw e;
    throw new DriverError(`${WHO}: cannot read the schema of ${cfg.path}: ${(e as Error).message}`);
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Reading.

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Raw stored value → JSON-safe value (used for state too: it must compare exactly on resume). */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  return v;
}

function asBoolean(v: unknown): unknown {
  if (typeof v === 'bigint') return v === 0n ? false : v === 1n ? true : plain(v);
  if (v === 0) return false;
  if (v === 1) return true;
  return plain(v);
}

function asJson(v: unknown): unknown {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  return plain(v);
}

type Builder = (row: unknown[], size: { n: number }) => DataRecord;

/** Row array → record, with per-type conversion; constant keys keep V8's inline caches monomorphic. */
function compileBuilder(columns: Column[]): Builder {
  const body = columns
    .map((c, i) => {
      const fn = c.type === 'boolean' ? 'asBoolean' : c.type === 'json' ? 'asJson' : 'plain';
      return `v = row[${i}]; if (typeof v === 'string') n += v.length; else n += 8; rec[${JSON.stringify(c.name)}] = ${
        fn === 'plain' ? `(typeof v === 'bigint' || (v !== null && typeof v === 'object')) ? plain(v) : v` : `${fn}(v)`
      };`;
    })
    .join('\n');
  const init = `{ ${columns.map((c) => `${JSON.stringify(c.name)}: null`).join(', ')} }`;
  const factory = new Function(
    'plain',
    'asBoolean',
    'asJson',
    `"use strict"; return function build(row, size) { let v; let n = 0; const rec = ${init};\n${body}\nsize.n += n; return rec; };`,
  ) as (p: typeof plain, b: typeof asBoolean, j: typeof asJson) => Builder;
  return factory(plain, asBoolean, asJson);
}

/** State values → bind parameters. */
function bindable(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return v;
}

interface Page {
  rows: unknown[][];
  state: StreamState;
}

function badState(stream: string, expected: string, state: unknown): DriverError {
  return new DriverError(`${WHO}: invalid state for stream "${stream}": expected ${expected}, got ${JSON.stringify(state)}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function* readStream(
  db: Database.Database,
  source: StreamSource,
  configured: ConfiguredStream,
  state: StreamState | undefined,
  batchSize: number,
  signal: AbortSignal | undefined,
): Generator<SourceMessage> {
  const stream = source.name;
  const names = source.columns.map((c) => c.name);
  let out = source.columns;
  if (configured.fields && configured.fields.length > 0) {
    const unknown = configured.fields.filter((f) => !names.includes(f));
    if (unknown.length > 0) yield { type: 'log', level: 'warn', message: `${WHO}: stream "${stream}" has no field(s) ${unknown.join(', ')}; ignored` };
    out = configured.fields.filter((f) => names.includes(f)).map((f) => source.columns.find((c) => c.name === f)!);
    if (out.length === 0) throw new DriverError(`${WHO}: none of the selected fields of stream "${stream}" exist`);
  }
  let cursor: string | null = null;
  if (configured.syncMode === 'INCREMENTAL') {
    cursor = configured.cursorField?.[0] ?? source.defaultCursor;
    if (!cursor) throw new DriverError(`${WHO}: stream "${stream}" is INCREMENTAL but has no cursorField`);
    if (!names.includes(cursor)) throw new DriverError(`${WHO}: cursor field "${cursor}" is not a column of stream "${stream}"`);
  }
  // Key expressions (SQL) and their select-list aliases.
  const keyExprs: string[] = [];
  if (cursor) keyExprs.push(qi(cursor));
  let keyed = true;
  // A declared key that may hold NULLs (SQLite allows it outside INTEGER PRIMARY KEY and WITHOUT
  // ROWID tables) cannot page reliably: the rowid takes its place.
  const nullablePk = source.pk !== null && source.pk.some((k) => source.columns.find((c) => c.name === k)?.nullable !== false);
  if (source.pk && !(nullablePk && source.rowid)) {
    for (const k of source.pk) if (k !== cursor) keyExprs.push(qi(k));
  } else if (source.rowid) {
    keyExprs.push(source.rowid);
  } else keyed = false;
  const select = [...out.map((c) => qi(c.name)), ...keyExprs.map((e, i) => `${e} AS "__sluice_k${i}"`)].join(', ');
  const width = out.length;
  const build = compileBuilder(out);
  const st = isRecord(state) ? state : null;
  if (state !== undefined && state !== null && st === null) throw badState(stream, 'an object', state);

  const stateOf = (row: unknown[]): StreamState => {
    const vals = keyExprs.map((_, i) => plain(row[width + i]) as StreamState);
    if (cursor === null) return { pk: vals };
    return { cursor: vals[0]!, pk: vals.slice(1) };
  };

  let pages: Generator<Page>;
  if (keyed) {
    let start: unknown[] | null = null;
    if (st && cursor !== null && 'cursor' in st) {
      if (!Array.isArray(st.pk) || st.pk.length !== keyExprs.length - 1 || st.cursor === null) {
        throw badState(stream, `{ cursor, pk: [${keyExprs.length - 1} value(s)] }`, state);
      }
      start = [st.cursor, ...st.pk];
    } else if (st && cursor === null && 'pk' in st && !('cursor' in st)) {
      if (!Array.isArray(st.pk) || st.pk.length !== keyExprs.length) throw badState(stream, `{ pk: [${keyExprs.length} value(s)] }`, state);
      start = st.pk;
    } else if (st && Object.keys(st).length > 0) {
      yield { type: 'log', level: 'warn', message: `${WHO}: state of stream "${stream}" does not match its sync mode; reading from the beginning` };
    }
    const cols = keyExprs.join(', ');
    // Rows whose key is NULL cannot be paged (only possible for custom query keys): not read.
    const notNull = keyExprs.map((e) => `${e} IS NOT NULL`).join(' AND ');
    const after = keyExprs.length === 1 ? `${keyExprs[0]} > ?` : `(${cols}) > (${keyExprs.map(() => '?').join(', ')})`;
    const first = db.prepare(`SELECT ${select} FROM ${source.from} WHERE ${notNull} ORDER BY ${cols} LIMIT ?`).raw(true).safeIntegers(true);
    const next = db.prepare(`SELECT ${select} FROM ${source.from} WHERE ${notNull} AND ${after} ORDER BY ${cols} LIMIT ?`).raw(true).safeIntegers(true);
    pages = (function* (): Generator<Page> {
      let rows = (start ? next.all(...start.map(bindable), batchSize) : first.all(batchSize)) as unknown[][];
      while (rows.length > 0) {
        const last = rows[rows.length - 1]!;
        yield { rows, state: stateOf(last) };
        if (rows.length < batchSize) return;
        rows = next.all(...keyExprs.map((_, i) => last[width + i]), batchSize) as unknown[][];
      }
    })();
  } else if (cursor !== null) {
    let start: unknown;
    if (st && 'cursor' in st && st.cursor !== null) start = st.cursor;
    const c = qi(cursor);
    const q = (after: boolean) => {
      const cond = `${c} IS NOT NULL${after ? ` AND ${c} > ?` : ''}`;
      return db
        .prepare(
          `SELECT ${select} FROM ${source.from} WHERE ${cond}
             AND ${c} <= (SELECT max(${c}) FROM (SELECT ${c} FROM ${source.from} WHERE ${cond} ORDER BY ${c} LIMIT ?) AS sluice_b)
           ORDER BY ${c}`,
        )
        .raw(true)
        .safeIntegers(true);
    };
    const first = q(false);
    const next = q(true);
    pages = (function* (): Generator<Page> {
      // Parameters: the cursor appears in both the outer and the inner condition.
      let rows = (start !== undefined ? next.all(bindable(start), bindable(start), batchSize) : first.all(batchSize)) as unknown[][];
      while (rows.length > 0) {
        const last = rows[rows.length - 1]!;
        yield { rows, state: { cursor: plain(last[width]) as StreamState, pk: [] } };
        if (rows.length < batchSize) return;
        rows = next.all(last[width], last[width], batchSize) as unknown[][];
      }
    })();
  } else {
    let skip = 0;
    if (st && 'rows' in st) {
      if (typeof st.rows !== 'number' || !Number.isSafeInteger(st.rows) || st.rows < 0) throw badState(stream, '{ rows: <non-negative integer> }', state);
      skip = st.rows;
    }
    const stmt = db.prepare(`SELECT ${select} FROM ${source.from} LIMIT -1 OFFSET ?`).raw(true).safeIntegers(true);
    pages = (function* (): Generator<Page> {
      const it = stmt.iterate(skip) as IterableIterator<unknown[]>;
      let done = skip;
      try {
        for (;;) {
          const rows: unknown[][] = [];
          while (rows.length < batchSize) {
            const r = it.next();
            if (r.done) break;
            rows.push(r.value);
          }
          if (rows.length === 0) return;
          done += rows.length;
          yield { rows, state: { rows: done } };
          if (rows.length < batchSize) return;
        }
      } finally {
        it.return?.();
      }
    })();
  }

  let emitted = false;
  const size = { n: 0 };
  try {
    for (const page of pages) {
      signal?.throwIfAborted();
      const rows = page.rows;
      const records = new Array<DataRecord>(rows.length);
      size.n = 0;
      for (let i = 0; i < rows.length; i++) records[i] = build(rows[i]!, size);
      yield { type: 'records', stream, records, bytes: size.n };
      yield { type: 'state', stream, state: page.state };
      emitted = true;
    }
  } finally {
    pages.return(undefined);
  }
  if (!emitted) yield { type: 'state', stream, state: state ?? {} };
}

async function* read(config: SqliteSourceConfig, streams: ConfiguredStream[], state: StreamStates, options: ReadOptions): AsyncGenerator<SourceMessage> {
  const cfg = resolveConfig(config);
  const signal = options.signal;
  signal?.throwIfAborted();
  const batchSize = Math.max(1, Math.floor(options.batchSize) || 1000);
  const db = await openDatabase(cfg, options.ctx.files);
  try {
    const sources = loadSources(db, cfg, new Set(streams.map((s) => s.name)));
    for (const configured of streams) {
      const source = sources.get(configured.name);
      if (!source) {
        yield { type: 'log', level: 'warn', message: `${WHO}: unknown stream "${configured.name}" ignored (no such table or query in ${cfg.path})` };
        continue;
      }
      for (const msg of readStream(db, source, configured, state?.[configured.name], batchSize, signal)) {
        yield msg;
        // Give the event loop a turn between pages (reads are synchronous) and honour aborts.
        if (msg.type === 'state') {
          await new Promise<void>((resolve) => setImmediate(resolve));
          signal?.throwIfAborted();
        }
      }
    }
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    if (e instanceof DriverError) throw e;
    const code = (e as { code?: string }).code ?? '';
    throw new DriverError(`${WHO}: reading ${cfg.path} failed: ${(e as Error).message}`, /^SQLITE_(BUSY|LOCKED|IOERR)/.test(code));
  } finally {
    db.close();
  }
}

export const sqliteSource: SourceDriver<SqliteSourceConfig> = {
  name: 'sqlite-source',
  role: 'SOURCE',
  title: 'SQLite',
  description: 'Reads tables and custom queries of a local SQLite database with keyset pagination, full refresh and cursor-based incremental sync.',
  docs,
  configSchema: sqliteSourceConfigSchema,
  check,
  discover,
  validate,
  read,
};

export default sqliteSource;
