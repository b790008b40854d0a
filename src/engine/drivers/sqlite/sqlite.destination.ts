import fs from 'node:fs';
import Database from 'better-sqlite3';
import { FileAccessError, type FileAccess } from '../../../security/file-roots.js';
import { pathProblems, existingTarget, folderOf, targetInExistingFolder, writableFolder } from '../kit/local-files.js';
import { openSqliteFile } from './open.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfigError,
  type DataRecord,
  type DriverContext,
  type DestinationDriver,
  type FieldSchema,
  type FieldType,
  type JsonSchema,
  type RejectedRecord,
  type StreamDescriptor,
  type StreamWriter,
  type WriteMode,
  type WriteResult,
  type WriterOptions,
} from '../types.js';
import { TypeInference } from '../kit/inference.js';
import { KIND } from '../kit/values.js';
import { tableExists, tableInfo, uniqueKeys } from './catalog.js';
import { sanitizeTableName, q, SQL_TYPE, fieldTypeOfDeclared, RecordFailure, isRecordLevel, wrapError, errorMessage, compileFill, type Column, type FillFn } from './encoding.js';

/**
 * SQLite destination (better-sqlite3).
 *
 * Contract:
 * - One table per stream (`table`, else the stream's destinationName, else its name),
 *   created from `stream.schema` (a STRICT table, so type and NOT NULL violations are
 *   enforced) or, without a schema, from the keys of the first batch. Columns appearing later
 *   are added with ALTER TABLE ADD COLUMN.
 * - APPEND / UPSERT / MERGE: each `writeBatch` is one transaction and resolves after it commits
 *   (journal WAL + synchronous=NORMAL by default: survives a process crash; an OS crash may
 *   lose the last commits). UPSERT replaces whole rows by primary key; MERGE updates only
 *   the columns present in each record.
 * - OVERWRITE: batches go to `<table>__sluice_tmp` (committed per batch, invisible under the
 *   real name); `commit()` swaps it in with DROP + RENAME in one transaction, so readers see
 *   either the old table or the complete new one. `abort()` drops the temp table.
 * - A record that violates a constraint or cannot be converted is returned in `rejected`;
 *   the rest of its batch is committed (per-record SAVEPOINTs after a failed batch attempt).
 */

export interface SqliteDestinationConfig {
  path: string;
  table?: string;
  journalMode?: 'WAL' | 'DELETE' | 'TRUNCATE' | 'PERSIST' | 'MEMORY';
}

const JOURNAL_MODES = ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY'] as const;

export const sqliteConfigSchema: JsonSchema = {
  type: 'object',
  title: 'SQLite database',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      title: 'Database file',
      description:
        "Path of the SQLite database file relative to the workspace's files folder (or absolute inside a writable files root); created if absent (its directory must exist).",
      examples: ['warehouse.db'],
    },
    table: {
      type: 'string',
      minLength: 1,
      title: 'Table',
      description:
        "Target table. Defaults to the stream's destination name, else the stream name. Characters outside [A-Za-z0-9_] become _.",
    },
    journalMode: {
      type: 'string',
      title: 'Journal mode',
      description: 'SQLite journal mode. WAL lets readers query while a sync writes.',
      enum: [...JOURNAL_MODES],
      default: 'WAL',
    },
  },
};

export const docs = `# SQLite (destination)

Writes each stream into a table of a SQLite database file in the workspace's files folder
(created if absent).

\`\`\`json
{ "path": "warehouse.db", "table": "orders", "journalMode": "WAL" }
\`\`\`

- **Path**: relative to the workspace's files folder, or absolute inside one of its writable files
  roots; \`..\`, links leading elsewhere, hard links and devices are refused.

- **Table**: \`table\`, else the stream's destination name, else the stream name (sanitized to
  [A-Za-z0-9_]). Created from the stream schema as a STRICT table (integer → INTEGER,
  number → REAL, boolean → INTEGER 0/1, datetime/string → TEXT, json → TEXT holding JSON) with
  NOT NULL for non-nullable fields and a PRIMARY KEY when the stream has one; without a schema,
  from the first batch's keys. New keys later become new nullable columns. Numbers and booleans
  written into a text column keep their JSON text form (\`12345\`, \`1.5\`, \`true\`).
- **Write modes**
  - \`APPEND\`: inserts rows.
  - \`UPSERT\`: insert, or replace every column of the row with the same primary key (needs a primary key).
  - \`MERGE\`: insert, or update only the columns present in the record; others keep their value (needs a primary key).
  - \`OVERWRITE\`: writes into \`<table>__sluice_tmp\`; on commit the old table is dropped and the
    new one renamed in one transaction, so readers never see a half-written table. Indexes
    created by hand on the old table are not carried over.
- **Durability**: each batch is one transaction, committed before the write is acknowledged.
- **Rejected records**: a record breaking a constraint (NOT NULL, type, ...) is reported as
  rejected with SQLite's message; the rest of the batch is kept.
`;

// ---------------------------------------------------------------------------------------------
// Config.

interface ResolvedConfig {
  path: string;
  table: string | null;
  journalMode: (typeof JOURNAL_MODES)[number];
}

function resolveConfig(raw: SqliteDestinationConfig): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError('SQLite destination: config must be an object');
  if (typeof raw.path !== 'string' || raw.path.length === 0) throw new DriverError('SQLite destination: "path" is required');
  const journalMode = (raw.journalMode ?? 'WAL').toUpperCase() as ResolvedConfig['journalMode'];
  if (!JOURNAL_MODES.includes(journalMode)) {
    throw new DriverError(`SQLite destination: journalMode must be one of ${JOURNAL_MODES.join(', ')}`);
  }
  return { path: raw.path, table: raw.table ? sanitizeTableName(raw.table) : null, journalMode };
}

async function openDatabase(cfg: ResolvedConfig, files: FileAccess): Promise<Database.Database> {
  let db: Database.Database;
  try {
    targetInExistingFolder(files, cfg.path, () => new DriverError(`SQLite destination: cannot open ${cfg.path}: its directory does not exist`));
    db = (await openSqliteFile(files, cfg.path, 'write', { timeout: 10_000 })).db;
  } catch (e) {
    if (e instanceof DriverError) throw e;
    if (e instanceof FileAccessError) throw new DriverError(`SQLite destination: ${e.message}`);
    throw wrapError(`cannot open ${cfg.path}`, e);
  }
  try {
    db.pragma(`journal_mode = ${cfg.journalMode}`);
    db.pragma(`synchronous = ${cfg.journalMode === 'WAL' ? 'NORMAL' : 'FULL'}`);
  } catch (e) {
    db.close();
    throw wrapError(`cannot configure ${cfg.path}`, e);
  }
  return db;
}


// ---------------------------------------------------------------------------------------------
// Writer.

const SUPPORTED_MODES: WriteMode[] = ['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE'];
const MAX_MERGE_STATEMENTS = 256;


/**
 * MERGE statements for one key set: UPDATE of the present columns by primary key, then INSERT
 * when no row matched (an INSERT ... ON CONFLICT would trip NOT NULL checks on absent columns
 * before reaching the conflict).
 */
interface MergeStatement {
  update: Database.Statement;
  updateFill: FillFn;
  updateWidth: number;
  insert: Database.Statement;
  insertFill: FillFn;
  insertWidth: number;
}

interface FullStatements {
  fill: FillFn;
  columns: Column[];
  single: Database.Statement;
  multi: Database.Statement | null;
  perMulti: number;
  one: unknown[];
  many: unknown[];
}

interface PendingColumn {
  name: string;
  declared: FieldType | null;
  inference: TypeInference;
}

class SqliteWriter implements StreamWriter {
  private readonly columns: Column[] = [];
  /** exact record key -> column */
  private readonly byName = new Map<string, Column>();
  /** lower-cased name -> column (SQLite identifiers are case-insensitive) */
  private readonly byLower = new Map<string, Column>();
  private readonly declared = new Map<string, FieldSchema>();
  private targetExists: boolean;
  private fullStatement: FullStatements | null = null;
  private readonly keyed: boolean;
  /** Key order of a recent record whose keys are all known columns (scan fast path). */
  private keyOrder: string[] = [];
  private readonly mergeStatements = new Map<string, MergeStatement>();
  private done = false;

  constructor(
    private readonly db: Database.Database,
    private readonly mode: WriteMode,
    private readonly table: string,
    private readonly target: string,
    private readonly pk: string[] | null,
    schema: FieldSchema[] | null,
  ) {
    this.keyed = pk !== null && (mode === 'UPSERT' || mode === 'MERGE');
    for (const f of schema ?? []) this.declared.set(f.name, f);
    this.targetExists = tableExists(db, target);
    if (this.targetExists) {
      for (const c of tableInfo(db, target)) {
        // A declared type stored as the same SQL type (boolean as INTEGER, datetime/json as TEXT)
        // keeps its conversions, so a later job writes what the job that created the table wrote.
        const declared = this.declared.get(c.name)?.type;
        this.addKnownColumn(c.name, declared && SQL_TYPE[declared] === c.type.toUpperCase() ? declared : fieldTypeOfDeclared(c.type));
      }
      const missing = (schema ?? []).filter((f) => !this.byLower.has(f.name.toLowerCase()));
      if (missing.length > 0) {
        db.transaction(() => {
          for (const f of missing) {
            db.exec(`ALTER TABLE ${q(target)} ADD COLUMN ${q(f.name)} ${SQL_TYPE[f.type]}`);
          }
        }).immediate();
        for (const f of missing) this.addKnownColumn(f.name, f.type);
      }
      if (pk && (mode === 'UPSERT' || mode === 'MERGE')) this.ensureUniqueKey(pk);
    } else if (schema && schema.length > 0) {
      this.createTable(schema.map((f) => ({ name: f.name, type: f.type, notNull: !f.nullable })), true);
      this.targetExists = true;
      for (const f of schema) this.addKnownColumn(f.name, f.type);
    }
  }

  private addKnownColumn(name: string, type: FieldType): Column {
    const col: Column = { name, type, kind: KIND[type] };
    this.columns.push(col);
    this.byName.set(name, col);
    this.byLower.set(name.toLowerCase(), col);
    this.fullStatement = null;
    return col;
  }

  private ensureUniqueKey(pk: string[]): void {
    const wanted = pk.map((c) => c.toLowerCase()).sort().join('\0');
    if (uniqueKeys(this.db, this.target).includes(wanted)) return;
    const missing = pk.filter((c) => !this.byLower.has(c.toLowerCase()));
    if (missing.length > 0) {
      throw new DriverError(`SQLite destination: primary key column(s) ${missing.join(', ')} do not exist in table "${this.target}"`);
    }
    try {
      this.db.exec(`CREATE UNIQUE INDEX IF NOT EXISTS ${q(`${this.target}__sluice_pk`)} ON ${q(this.target)} (${pk.map(q).join(', ')})`);
    } catch (e) {
      throw new DriverError(
        `SQLite destination: table "${this.target}" has no unique key on (${pk.join(', ')}) and one cannot be created: ${(e as Error).message}`,
      );
    }
  }

  private createTable(cols: { name: string; type: FieldType; notNull: boolean }[], strict: boolean): void {
    const pkLower = new Set((this.pk ?? []).map((c) => c.toLowerCase()));
    const defs = cols.map((c) => `${q(c.name)} ${SQL_TYPE[c.type]}${c.notNull || pkLower.has(c.name.toLowerCase()) ? ' NOT NULL' : ''}`);
    if (this.pk) defs.push(`PRIMARY KEY (${this.pk.map(q).join(', ')})`);
    this.db.exec(`CREATE TABLE ${q(this.target)} (${defs.join(', ')})${strict ? ' STRICT' : ''}`);
  }

  /**
   * Finds keys of the batch that are not columns yet (and records whose keys differ from the
   * column names only by case, which are rewritten to the column names).
   */
  private scanBatch(records: DataRecord[]): { pending: PendingColumn[]; rows: DataRecord[] } {
    let rows = records;
    const pending = new Map<string, PendingColumn>();
    const byName = this.byName;
    let order = this.keyOrder;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      // Fast path: keys in the same order as a record already known to hold only known columns.
      let j = 0;
      let same = true;
      for (const k in rec) {
        if (k !== order[j++]) {
          same = false;
          break;
        }
      }
      if (same) continue;
      let alias = false;
      let allKnown = true;
      for (const k in rec) {
        if (byName.has(k)) continue;
        allKnown = false;
        const lower = k.toLowerCase();
        if (this.byLower.has(lower)) {
          alias = true;
          continue;
        }
        let p = pending.get(lower);
        if (p === undefined) {
          const v = rec[k];
          if (v === undefined) continue;
          p = { name: k, declared: this.declared.get(k)?.type ?? null, inference: new TypeInference() };
          pending.set(lower, p);
        } else if (p.name !== k) {
          alias = true;
        }
        p.inference.add(rec[k]);
      }
      if (allKnown) {
        const keys: string[] = [];
        for (const k in rec) keys.push(k);
        if (keys.length >= order.length) this.keyOrder = order = keys;
      }
      if (alias) {
        if (rows === records) rows = records.slice();
        const out: DataRecord = {};
        for (const k in rec) {
          const name = this.byLower.get(k.toLowerCase())?.name ?? pending.get(k.toLowerCase())?.name ?? k;
          out[name] = rec[k];
        }
        rows[i] = out;
      }
    }
    if (!this.targetExists && this.pk) {
      for (const k of this.pk) {
        if (!pending.has(k.toLowerCase())) {
          pending.set(k.toLowerCase(), { name: k, declared: this.declared.get(k)?.type ?? null, inference: new TypeInference() });
        }
      }
    }
    return { pending: [...pending.values()], rows };
  }

  /** Applies schema changes (DDL and in-memory columns); runs inside the batch transaction. */
  private applySchema(pending: PendingColumn[]): void {
    if (pending.length === 0) return;
    const cols = pending.map((p) => ({ name: p.name, type: p.declared ?? p.inference.type(), notNull: false }));
    if (!this.targetExists) {
      this.createTable(cols, false);
      this.targetExists = true;
    } else {
      for (const c of cols) this.db.exec(`ALTER TABLE ${q(this.target)} ADD COLUMN ${q(c.name)} ${SQL_TYPE[c.type]}`);
    }
    for (const c of cols) this.addKnownColumn(c.name, c.type);
    this.resetStatements();
  }

  /** Runs `body` in one write transaction with the batch's schema changes; undoes them in memory if it fails. */
  private inTransaction(pending: PendingColumn[], body: () => void): void {
    const before = { count: this.columns.length, targetExists: this.targetExists };
    try {
      this.db
        .transaction(() => {
          this.applySchema(pending);
          body();
        })
        .immediate();
    } catch (e) {
      if (this.columns.length > before.count) {
        for (const col of this.columns.splice(before.count)) {
          this.byName.delete(col.name);
          this.byLower.delete(col.name.toLowerCase());
        }
      }
      this.keyOrder = [];
      this.targetExists = before.targetExists;
      this.resetStatements();
      throw e;
    }
  }

  private conflictClause(names: string[]): string {
    if (!this.pk || this.mode === 'APPEND') return '';
    const pkLower = new Set(this.pk.map((c) => c.toLowerCase()));
    const updates = names.filter((n) => !pkLower.has(n.toLowerCase())).map((n) => `${q(n)} = excluded.${q(n)}`);
    return ` ON CONFLICT (${this.pk.map(q).join(', ')}) DO ${updates.length > 0 ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
  }

  private insertSql(columns: Column[], rows = 1): string {
    const names = columns.map((c) => c.name);
    const tuple = `(${names.map(() => '?').join(', ')})`;
    const values = rows === 1 ? tuple : new Array<string>(rows).fill(tuple).join(', ');
    return `INSERT INTO ${q(this.target)} (${names.map(q).join(', ')}) VALUES ${values}${this.conflictClause(names)}`;
  }

  /** Cached statements over all columns: one row, and many rows per statement (fewer JS<->C calls). */
  private full(): FullStatements {
    if (this.fullStatement === null) {
      const columns = this.columns.slice();
      if (columns.length === 0) throw new RecordFailure('record has no fields');
      const perMulti = Math.max(1, Math.min(64, Math.floor(16_000 / columns.length)));
      this.fullStatement = {
        columns,
        single: this.db.prepare(this.insertSql(columns)),
        multi: perMulti > 1 ? this.db.prepare(this.insertSql(columns, perMulti)) : null,
        perMulti,
        fill: compileFill(columns),
        one: new Array<unknown>(columns.length),
        many: new Array<unknown>(columns.length * perMulti),
      };
    }
    return this.fullStatement;
  }

  private mergeStatement(rec: DataRecord): MergeStatement {
    let sig = '';
    for (const k in rec) if (rec[k] !== undefined) sig += `${k}\0`;
    let entry = this.mergeStatements.get(sig);
    if (entry === undefined) {
      const columns: Column[] = [];
      for (const k in rec) {
        if (rec[k] === undefined) continue;
        const col = this.byName.get(k);
        if (col) columns.push(col);
      }
      if (columns.length === 0) throw new RecordFailure('record has no fields');
      const pkLower = new Set(this.pk!.map((c) => c.toLowerCase()));
      const keyColumns = this.pk!.map((k) => this.byLower.get(k.toLowerCase())!);
      const setColumns = columns.filter((c) => !pkLower.has(c.name.toLowerCase()));
      // A key-only record touches nothing but still must not insert over an existing row.
      const assignments =
        setColumns.length > 0 ? setColumns.map((c) => `${q(c.name)} = ?`) : [`${q(keyColumns[0]!.name)} = ${q(keyColumns[0]!.name)}`];
      const update = this.db.prepare(
        `UPDATE ${q(this.target)} SET ${assignments.join(', ')} WHERE ${keyColumns.map((c) => `${q(c.name)} = ?`).join(' AND ')}`,
      );
      if (this.mergeStatements.size >= MAX_MERGE_STATEMENTS) this.mergeStatements.clear();
      entry = {
        update,
        updateFill: compileFill([...setColumns, ...keyColumns]),
        updateWidth: setColumns.length + keyColumns.length,
        insert: this.db.prepare(this.insertSql(columns)),
        insertFill: compileFill(columns),
        insertWidth: columns.length,
      };
      this.mergeStatements.set(sig, entry);
    }
    return entry;
  }

  private checkKey(rec: DataRecord): void {
    for (const k of this.pk!) {
      const v = rec[k];
      if (v === null || v === undefined) throw new RecordFailure(`missing value for primary key column "${k}"`);
    }
  }

  /** Writes one record; returns its approximate size. Throws on a per-record problem. */
  private writeOne(rec: DataRecord): number {
    if (this.keyed) this.checkKey(rec);
    if (this.mode === 'MERGE') {
      const m = this.mergeStatement(rec);
      const keyParams = new Array<unknown>(m.updateWidth);
      const updated = m.updateFill(rec, keyParams, 0);
      if (m.update.run(keyParams).changes > 0) return updated;
      const params = new Array<unknown>(m.insertWidth);
      const bytes = m.insertFill(rec, params, 0);
      m.insert.run(params);
      return bytes;
    }
    const f = this.full();
    const bytes = f.fill(rec, f.one, 0);
    f.single.run(f.one);
    return bytes;
  }

  /** Writes all rows (multi-row statements where possible); throws on the first failure. */
  private writeAll(rows: DataRecord[]): number {
    let bytes = 0;
    let i = 0;
    if (this.mode !== 'MERGE') {
      const f = this.full();
      const per = f.perMulti;
      const width = f.columns.length;
      if (f.multi !== null) {
        for (; i + per <= rows.length; i += per) {
          for (let r = 0; r < per; r++) {
            const rec = rows[i + r]!;
            if (this.keyed) this.checkKey(rec);
            bytes += f.fill(rec, f.many, r * width);
          }
          f.multi.run(f.many);
        }
      }
    }
    for (; i < rows.length; i++) bytes += this.writeOne(rows[i]!);
    return bytes;
  }

  async writeBatch(records: DataRecord[]): Promise<WriteResult> {
    if (this.done) throw new DriverError('SQLite destination: writeBatch called after commit/abort');
    if (records.length === 0) return { written: 0, bytes: 0, rejected: [] };
    const { pending, rows } = this.scanBatch(records);
    let bytes = 0;
    try {
      this.inTransaction(pending, () => {
        bytes = this.writeAll(rows);
      });
      return { written: rows.length, bytes, rejected: [] };
    } catch (e) {
      if (!isRecordLevel(e)) throw wrapError(`writing to "${this.target}" failed`, e);
    }
    // Some record failed: redo the batch with one SAVEPOINT per record, keeping the good ones.
    const rejected: RejectedRecord[] = [];
    bytes = 0;
    const one = this.db.transaction((rec: DataRecord) => this.writeOne(rec));
    try {
      this.inTransaction(pending, () => {
        for (let i = 0; i < rows.length; i++) {
          try {
            bytes += one(rows[i]!);
          } catch (e) {
            if (!isRecordLevel(e)) throw e;
            rejected.push({ index: i, error: errorMessage(e) });
          }
        }
      });
    } catch (e) {
      throw wrapError(`writing to "${this.target}" failed`, e);
    }
    return { written: rows.length - rejected.length, bytes, rejected };
  }

  private resetStatements(): void {
    this.fullStatement = null;
    this.mergeStatements.clear();
  }

  async commit(): Promise<void> {
    if (this.done) return;
    try {
      if (this.mode === 'OVERWRITE') {
        const db = this.db;
        db.pragma('legacy_alter_table = ON');
        db.transaction(() => {
          if (tableExists(db, this.target)) {
            db.exec(`DROP TABLE IF EXISTS ${q(this.table)}`);
            db.exec(`ALTER TABLE ${q(this.target)} RENAME TO ${q(this.table)}`);
          } else if (tableExists(db, this.table)) {
            db.exec(`DELETE FROM ${q(this.table)}`);
          }
        }).immediate();
      }
    } catch (e) {
      throw wrapError(`replacing "${this.table}" failed`, e);
    }
    this.close();
  }

  async abort(): Promise<void> {
    if (this.done) return;
    try {
      if (this.mode === 'OVERWRITE') this.db.exec(`DROP TABLE IF EXISTS ${q(this.target)}`);
    } finally {
      this.close();
    }
  }

  private close(): void {
    this.done = true;
    this.resetStatements();
    this.db.close();
  }
}

async function openWriter(config: SqliteDestinationConfig, options: WriterOptions): Promise<StreamWriter> {
  const cfg = resolveConfig(config);
  const { writeMode, stream } = options;
  if (!SUPPORTED_MODES.includes(writeMode)) {
    throw new DriverError(`SQLite destination: unsupported write mode ${writeMode} (supported: ${SUPPORTED_MODES.join(', ')})`);
  }
  const pk = stream.primaryKey && stream.primaryKey.length > 0 ? stream.primaryKey : null;
  if ((writeMode === 'UPSERT' || writeMode === 'MERGE') && !pk) {
    throw new DriverError(`SQLite destination: write mode ${writeMode} needs a primary key, and stream "${stream.name}" has none`);
  }
  const schema = stream.schema && stream.schema.length > 0 ? stream.schema : null;
  if (pk && schema) {
    const missing = pk.filter((k) => !schema.some((f) => f.name === k));
    if (missing.length > 0) {
      throw new DriverError(`SQLite destination: primary key field(s) ${missing.join(', ')} are not in the schema of stream "${stream.name}"`);
    }
  }
  const table = cfg.table ?? sanitizeTableName(stream.destinationName ?? stream.name);
  const target = writeMode === 'OVERWRITE' ? `${table}__sluice_tmp` : table;
  const db = await openDatabase(cfg, options.ctx.files);
  try {
    if (writeMode === 'OVERWRITE') db.exec(`DROP TABLE IF EXISTS ${q(target)}`);
    return new SqliteWriter(db, writeMode, table, target, pk, schema);
  } catch (e) {
    db.close();
    throw wrapError(`cannot prepare table "${target}"`, e);
  }
}

// ---------------------------------------------------------------------------------------------
// check / discover.

/** Create/update checks: the database path inside the workspace's writable files roots. */
function validate(config: SqliteDestinationConfig, ctx: DriverContext): ConfigError[] {
  return pathProblems(ctx.files, 'path', config?.path, 'write');
}

async function check(config: SqliteDestinationConfig, ctx: DriverContext): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  // Outside the roots every answer is the same refusal; inside, these messages are ordinary.
  const file = cfg.path;
  try {
    ctx.files.resolve(file, 'write');
  } catch (e) {
    if (e instanceof FileAccessError) return { ok: false, message: e.message };
    throw e;
  }
  const dirProblem = await writableFolder(ctx.files, folderOf(file));
  if (dirProblem) return { ok: false, message: dirProblem };
  const existing = existingTarget(ctx.files, file);
  if (existing === null) return { ok: true, message: `${file} does not exist yet and will be created` };
  if (typeof existing === 'string') return { ok: false, message: existing };
  let db: Database.Database | null = null;
  try {
    db = (await openSqliteFile(ctx.files, file, 'write', { timeout: 2_000 })).db;
    const tables = (db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'`).get() as { n: number }).n;
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return { ok: true, message: `${file} is a writable SQLite database with ${tables} table(s)` };
  } catch (e) {
    if (e instanceof FileAccessError) return { ok: false, message: e.message };
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB') return { ok: false, message: `${file} is not a SQLite database` };
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      return { ok: false, message: `${file} is locked by another writer; cannot start a write transaction` };
    }
    if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN')) {
      return { ok: false, message: `${file} cannot be opened for writing (${code})` };
    }
    return { ok: false, message: `${file}: ${errorMessage(e)}` };
  } finally {
    db?.close();
  }
}

async function discover(config: SqliteDestinationConfig, ctx: DriverContext): Promise<Catalog> {
  const cfg = resolveConfig(config);
  let db: Database.Database;
  try {
    // Inside the roots (checked first), a database not created yet has no tables.
    if (!fs.existsSync(ctx.files.resolve(cfg.path, 'read'))) return { streams: [] };
    db = (await openSqliteFile(ctx.files, cfg.path, 'read', { timeout: 5_000 })).db;
  } catch (e) {
    if (e instanceof FileAccessError) throw new DriverError(`SQLite destination: ${e.message}`);
    throw wrapError(`cannot open ${cfg.path}`, e);
  }
  try {
    const tables = db
      .prepare(
        `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '%\\_\\_sluice\\_tmp' ESCAPE '\\' ORDER BY name`,
      )
      .all() as { name: string }[];
    const streams: StreamDescriptor[] = tables.map(({ name }) => {
      const info = tableInfo(db, name);
      const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
      const rowidAlias = pk.length === 1 && pk[0]!.type.toUpperCase() === 'INTEGER';
      return {
        name,
        fields: info.map((c) => ({
          name: c.name,
          type: fieldTypeOfDeclared(c.type),
          nullable: c.notnull === 0 && !(rowidAlias && c.pk > 0),
        })),
        supportedSyncModes: ['FULL_REFRESH'],
        sourceDefinedPrimaryKey: pk.length > 0 ? pk.map((c) => c.name) : null,
      };
    });
    return { streams };
  } catch (e) {
    throw wrapError(`cannot read the schema of ${cfg.path}`, e);
  } finally {
    db.close();
  }
}

export const sqliteDestination: DestinationDriver<SqliteDestinationConfig> = {
  name: 'sqlite',
  role: 'DESTINATION',
  title: 'SQLite',
  description: 'Writes streams into tables of a local SQLite database, with append, overwrite, upsert and merge.',
  docs,
  configSchema: sqliteConfigSchema,
  supportedWriteModes: SUPPORTED_MODES,
  check,
  discover,
  validate,
  openWriter,
};

export default sqliteDestination;
