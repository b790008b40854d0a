import crypto from 'node:crypto';
import type pg from 'pg';
import {
  closeQuietly,
  connect,
  connectFailureMessage,
  connectionProperties,
  connectionRequirement,
  describeTarget,
  fieldTypeOfTypname,
  isDataError,
  isRetryable,
  pgErrorMessage,
  qi,
  qn,
  resolveConnection,
  truncateIdentifier,
  wrapPgError,
  type PgConnectionConfig,
  type PgError,
} from './common.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type DataRecord,
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
import { copyIn, CHUNK_BYTES } from './bulk-write.js';
import { pkConstraintName, relationExists, schemaExists, tableColumns, uniqueKeys, type ColumnRow } from './catalog.js';
import { compileLine, kindOfType, RecordFailure, SQL_TYPE, type Column, type LineFn } from './encoding.js';

/**
 * PostgreSQL destination (`pg` + `pg-copy-streams`).
 *
 * Contract:
 * - One table per stream in `schema` (created if absent): `table`, else the stream's
 *   destinationName, else its name. Created from `stream.schema` (integer → bigint, number →
 *   double precision, boolean, datetime → timestamptz, json → jsonb, string → text; NOT NULL for
 *   non-nullable fields; PRIMARY KEY when the stream has one) or, without a schema, from the
 *   first batch. Fields appearing later become columns (ALTER TABLE ADD COLUMN IF NOT EXISTS,
 *   committed before the batch's data).
 * - APPEND: one `COPY ... FROM STDIN (FORMAT csv)` per batch. UPSERT: COPY into a session temp
 *   table, then `INSERT ... SELECT ... ON CONFLICT (pk) DO UPDATE` of every stream column, in one
 *   transaction. MERGE: same staging, but per set of present keys an UPDATE of just those columns
 *   plus an INSERT of the missing keys, so absent fields keep their values. `writeBatch`
 *   resolves after COMMIT.
 * - OVERWRITE: batches are committed into `<table>__sluice_tmp`; `commit()` drops the old table
 *   and renames the new one in one transaction, so readers see either the old or the complete
 *   new table; `abort()` drops the temp table and leaves the old one untouched.
 * - A batch failing on some records (data or constraint errors) is retried by bisection with
 *   SAVEPOINTs down to single records; the failing ones are returned in `rejected`, the rest is
 *   committed.
 */

export interface PostgresDestinationConfig extends PgConnectionConfig {
  schema?: string;
  table?: string;
  createTable?: boolean;
}

const WHO = 'PostgreSQL destination';
const SUPPORTED_MODES: WriteMode[] = ['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE'];

export const postgresDestinationConfigSchema: JsonSchema = {
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
      description: 'Schema of the target tables; created if absent.',
      default: 'public',
    },
    table: {
      type: 'string',
      minLength: 1,
      title: 'Table',
      description: "Target table. Defaults to the stream's destination name, else the stream name (at most 63 bytes; longer names are cut).",
    },
    createTable: {
      type: 'boolean',
      title: 'Create tables',
      description:
        'Create missing tables from the stream schema. When false the table must exist, and OVERWRITE builds its replacement with CREATE TABLE (LIKE <table> INCLUDING ALL).',
      default: true,
    },
  },
};

export const docs = `# PostgreSQL (destination)

Writes each stream into a table of a PostgreSQL schema, with COPY for throughput.

\`\`\`json
{
  "connectionString": "postgresql://sluice:secret@db.internal:5432/warehouse",
  "schema": "raw",
  "table": "orders",
  "createTable": true
}
\`\`\`

Instead of \`connectionString\`: \`host\`, \`port\` (5432), \`database\`, \`user\`, \`password\`, \`ssl\`
(\`disable\` | \`require\` | \`verify-full\`). \`connectionString\` and \`password\` are secrets.

- **Table**: \`table\`, else the stream's destination name, else the stream name, in \`schema\`
  (created if absent). Created from the stream schema: integer → bigint, number → double precision,
  boolean → boolean, datetime → timestamptz, json → jsonb, string → text; NOT NULL for non-nullable
  fields and a PRIMARY KEY when the stream has one. Without a schema the first batch decides the
  columns. New fields later become new nullable columns (\`ALTER TABLE ... ADD COLUMN\`). Columns of an
  existing table that the stream does not know are left alone (defaults on insert, untouched on update).
- **Write modes** (each batch is one transaction, committed before \`writeBatch\` resolves; schema
  changes — CREATE TABLE, ADD COLUMN — are committed just before the batch that needs them):
  - \`APPEND\`: \`COPY ... FROM STDIN\` (CSV).
  - \`UPSERT\` (needs a primary key): COPY into a temp table, then \`INSERT ... ON CONFLICT (pk) DO UPDATE\`
    of every stream column — the row is replaced. Within a batch the last record of a key wins.
  - \`MERGE\` (needs a primary key): partial update — only the fields present in a record are updated,
    the others keep their values; unknown keys are inserted (a new row missing a NOT NULL column is
    rejected). Records are grouped by the set of fields they carry: one COPY into a temp table, then one
    UPDATE and one INSERT per group. Several records of one key in a batch apply in order.
  - \`OVERWRITE\`: rows go to \`<table>__sluice_tmp\`; on commit the old table is dropped and the new one
    renamed in the same transaction, so readers see the old table until the new one is complete, never a
    mix. Abort drops the temp table and keeps the old one. Indexes, grants and views on the old table are
    not carried over (views depending on it make the swap fail, leaving the old table in place); with
    \`createTable: false\` the new table is \`CREATE TABLE ... (LIKE <table> INCLUDING ALL)\`, which keeps the
    hand-made definition (types, defaults, constraints, indexes).
- **Keys**: UPSERT/MERGE into an existing table without a unique index on the primary key create one
  (\`<table>__sluice_pk\`), or fail if duplicates prevent it.
- **Values**: objects and arrays into json/jsonb as JSON, JS arrays into PostgreSQL array columns as
  array literals, booleans into numeric columns as 1/0, numbers and booleans into text columns in their
  JSON text form (\`12345\`, \`1.5\`, \`true\`), Dates as ISO timestamps; a datetime without
  offset is read as UTC.
- **Rejected records**: a record breaking a constraint or a type (bad number, NOT NULL, duplicate key
  under APPEND/OVERWRITE, NUL byte in text, ...) is reported with PostgreSQL's message; the rest of the
  batch is committed (bisection with SAVEPOINTs).
`;

// ---------------------------------------------------------------------------------------------
// Config.

interface ResolvedConfig {
  connection: pg.ClientConfig;
  schema: string;
  table: string | null;
  createTable: boolean;
}

function resolveConfig(raw: PostgresDestinationConfig): ResolvedConfig {
  const connection = resolveConnection(raw, WHO);
  return {
    connection,
    schema: truncateIdentifier(raw.schema ?? 'public'),
    table: raw.table ? truncateIdentifier(raw.table) : null,
    createTable: raw.createTable ?? true,
  };
}

export function tmpTableName(table: string): string {
  const suffix = '__sluice_tmp';
  if (Buffer.byteLength(table) + suffix.length <= 63) return table + suffix;
  const hash = crypto.createHash('sha1').update(table).digest('hex').slice(0, 8);
  return `${truncateIdentifier(table, 63 - suffix.length - 9)}_${hash}${suffix}`;
}

// ---------------------------------------------------------------------------------------------
// Writer.

/** Records that are written together: one record, or the records of one key folded into one row. */
interface Unit {
  /** Indexes into the batch, in order. */
  idx: number[];
  /** The row to write. */
  rec: DataRecord;
  /** MERGE: index of the unit's key set. */
  group: number;
  /** Size of its CSV line once encoded (lines are not kept: re-encoding is cheaper than retaining them); -1 = cannot be encoded. */
  len: number;
}

interface Group {
  columns: Column[];
}

class PgWriter implements StreamWriter {
  private readonly columns: Column[] = [];
  private readonly byName = new Map<string, Column>();
  /** Columns the stream writes (declared fields and keys seen); other table columns are left alone. */
  private readonly streamColumns: Column[] = [];
  private readonly inStream = new Set<string>();
  private readonly declared = new Map<string, FieldSchema>();
  private targetExists: boolean;
  private line: LineFn | null = null;
  private stage: string | null = null;
  private stageColumns: Column[] = [];
  private keyOrder: string[] = [];
  private opSeq = 0;
  private done = false;
  private readonly keyed: boolean;

  constructor(
    private readonly client: pg.Client,
    private readonly cfg: ResolvedConfig,
    private readonly mode: WriteMode,
    private readonly table: string,
    private readonly target: string,
    private readonly pk: string[] | null,
    schema: FieldSchema[] | null,
    existing: ColumnRow[] | null,
  ) {
    this.keyed = pk !== null && (mode === 'UPSERT' || mode === 'MERGE');
    for (const f of schema ?? []) this.declared.set(f.name, f);
    this.targetExists = existing !== null;
    for (const c of existing ?? []) this.addColumn(c.name, c.sqltype, kindOfType(c.typname, c.category), false);
    for (const f of schema ?? []) {
      const col = this.byName.get(f.name);
      if (col) this.useInStream(col);
    }
  }

  private get qTarget(): string {
    return qn(this.cfg.schema, this.target);
  }

  private addColumn(name: string, sqlType: string, kind: number, inStream: boolean): Column {
    const col: Column = { name, sqlType, kind };
    this.columns.push(col);
    this.byName.set(name, col);
    if (inStream) this.useInStream(col);
    return col;
  }

  private useInStream(col: Column): void {
    if (this.inStream.has(col.name)) return;
    this.inStream.add(col.name);
    this.streamColumns.push(col);
    this.line = null;
  }

  /** Creates the target (from the schema) and adds declared fields missing from an existing table. */
  async prepare(): Promise<void> {
    const fields = [...this.declared.values()];
    if (!this.targetExists) {
      if (fields.length === 0) return; // decided by the first batch
      await this.ddl(fields.map((f) => ({ name: f.name, type: f.type, notNull: !f.nullable })));
      return;
    }
    const missing = fields.filter((f) => !this.byName.has(f.name));
    if (missing.length > 0) await this.ddl(missing.map((f) => ({ name: f.name, type: f.type, notNull: false })));
    if (this.pk) {
      const absent = this.pk.filter((k) => !this.byName.has(k));
      if (absent.length > 0) {
        throw new DriverError(`${WHO}: primary key column(s) ${absent.join(', ')} do not exist in table ${this.cfg.schema}.${this.target}`);
      }
      if (this.keyed) await this.ensureUniqueKey(this.pk);
    }
  }

  private async ensureUniqueKey(pk: string[]): Promise<void> {
    const wanted = [...pk].sort().join('\0');
    if ((await uniqueKeys(this.client, this.cfg.schema, this.target)).includes(wanted)) return;
    const name = truncateIdentifier(`${this.target}__sluice_pk`);
    try {
      await this.client.query(`CREATE UNIQUE INDEX IF NOT EXISTS ${qi(name)} ON ${this.qTarget} (${pk.map(qi).join(', ')})`);
    } catch (e) {
      throw new DriverError(
        `${WHO}: table ${this.cfg.schema}.${this.target} has no unique key on (${pk.join(', ')}) and one cannot be created: ${pgErrorMessage(e)}`,
      );
    }
  }

  /** Creates the table or adds columns, in its own committed transaction. */
  private async ddl(cols: { name: string; type: FieldType; notNull: boolean }[]): Promise<void> {
    const client = this.client;
    await client.query('BEGIN');
    try {
      if (!this.targetExists) {
        const pkSet = new Set(this.pk ?? []);
        const defs = cols.map((c) => `${qi(c.name)} ${SQL_TYPE[c.type]}${c.notNull || pkSet.has(c.name) ? ' NOT NULL' : ''}`);
        if (this.pk) defs.push(`PRIMARY KEY (${this.pk.map(qi).join(', ')})`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${this.qTarget} (${defs.join(', ')})`);
      }
      // Also after CREATE: another writer may have created the table first, with other columns.
      for (const c of cols) {
        await client.query(`ALTER TABLE ${this.qTarget} ADD COLUMN IF NOT EXISTS ${qi(c.name)} ${SQL_TYPE[c.type]}`);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw wrapPgError(WHO, `cannot ${this.targetExists ? 'add columns to' : 'create'} table ${this.cfg.schema}.${this.target}`, e);
    }
    // Re-read the real definition (another writer may have created it with other types).
    const actual = (await tableColumns(client, this.cfg.schema, this.target)) ?? [];
    this.targetExists = true;
    for (const c of actual) {
      if (!this.byName.has(c.name)) this.addColumn(c.name, c.sqltype, kindOfType(c.typname, c.category), false);
    }
    for (const c of cols) {
      const col = this.byName.get(c.name);
      if (col) this.useInStream(col);
    }
    this.stageColumns = []; // recreate the staging table with the new columns
  }

  /** New keys of the batch (not yet columns), with inferred or declared types. */
  private scan(records: DataRecord[]): { name: string; type: FieldType }[] {
    const pending = new Map<string, TypeInference | FieldType>();
    let order = this.keyOrder;
    for (const rec of records) {
      let j = 0;
      let same = true;
      for (const k in rec) {
        if (k !== order[j++]) {
          same = false;
          break;
        }
      }
      if (same && j === order.length) continue;
      let allKnown = true;
      for (const k in rec) {
        const v = rec[k];
        if (this.inStream.has(k)) continue;
        if (v === undefined) {
          allKnown = false;
          continue;
        }
        const col = this.byName.get(k);
        if (col) {
          this.useInStream(col);
          continue;
        }
        allKnown = false;
        let p = pending.get(k);
        if (p === undefined) {
          const d = this.declared.get(k);
          p = d ? d.type : new TypeInference();
          pending.set(k, p);
        }
        if (p instanceof TypeInference) p.add(v);
      }
      if (allKnown) {
        const keys: string[] = [];
        for (const k in rec) keys.push(k);
        this.keyOrder = order = keys;
      }
    }
    if (!this.targetExists && this.pk) {
      for (const k of this.pk) if (!pending.has(k)) pending.set(k, this.declared.get(k)?.type ?? new TypeInference());
    }
    return [...pending.entries()].map(([name, p]) => ({ name, type: p instanceof TypeInference ? p.type() : p }));
  }

  private lineFn(): LineFn {
    return (this.line ??= compileLine(this.streamColumns));
  }

  /** The session temp table used by UPSERT/MERGE: every stream column plus an operation id. */
  private async ensureStage(): Promise<void> {
    if (this.stage !== null && this.stageColumns.length === this.streamColumns.length) return;
    const name = this.stage ?? `sluice_stage_${crypto.randomBytes(6).toString('hex')}`;
    const cols = this.streamColumns.slice();
    const defs = cols.map((c) => `${qi(c.name)} ${c.sqlType}`);
    defs.push(`"__sluice_op" integer`);
    await this.client.query(`DROP TABLE IF EXISTS pg_temp.${qi(name)}`);
    await this.client.query(`CREATE TEMPORARY TABLE ${qi(name)} (${defs.join(', ')}) ON COMMIT DELETE ROWS`);
    this.stage = name;
    this.stageColumns = cols;
  }

  private checkKey(rec: DataRecord): void {
    for (const k of this.pk!) {
      const v = rec[k];
      if (v === null || v === undefined) throw new RecordFailure(`missing value for primary key column "${k}"`);
    }
  }

  private keyOf(rec: DataRecord): string {
    const pk = this.pk!;
    if (pk.length === 1) {
      const v = rec[pk[0]!];
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
    return JSON.stringify(pk.map((k) => rec[k] as unknown).map((v) => (typeof v === 'object' ? v : String(v))));
  }

  /** Groups (by key) and folds records into units; MERGE also groups units by key set. */
  private units(records: DataRecord[], indexes: number[]): { units: Unit[]; groups: Group[] } {
    if (!this.keyed) return { units: indexes.map((i) => ({ idx: [i], rec: records[i]!, group: 0, len: 0 })), groups: [] };
    const byKey = new Map<string, Unit>();
    const units: Unit[] = [];
    for (const i of indexes) {
      const rec = records[i]!;
      const key = this.keyOf(rec);
      const u = byKey.get(key);
      if (u === undefined) {
        const nu: Unit = { idx: [i], rec, group: 0, len: 0 };
        byKey.set(key, nu);
        units.push(nu);
      } else {
        u.idx.push(i);
        if (this.mode === 'MERGE') {
          const merged: DataRecord = { ...u.rec };
          for (const k in rec) if (rec[k] !== undefined) merged[k] = rec[k];
          u.rec = merged;
        } else {
          u.rec = rec;
        }
      }
    }
    if (this.mode !== 'MERGE') return { units, groups: [] };
    const groups: Group[] = [];
    const bySig = new Map<string, number>();
    for (const u of units) {
      let sig = '';
      for (const k in u.rec) if (u.rec[k] !== undefined && this.inStream.has(k)) sig += `${k}\0`;
      let g = bySig.get(sig);
      if (g === undefined) {
        g = groups.length;
        bySig.set(sig, g);
        const present = new Set(sig.split('\0'));
        groups.push({ columns: this.streamColumns.filter((c) => present.has(c.name)) });
      }
      u.group = g;
    }
    return { units, groups };
  }

  /**
   * CSV chunks of `units`, encoded on the fly; a unit that cannot be encoded is rejected (once)
   * and skipped. `suffix` appends the staging op id.
   */
  private *chunks(units: Unit[], rejected: RejectedRecord[], suffix: ((u: Unit) => string) | null): Generator<Buffer> {
    const line = this.lineFn();
    // Lines are written straight into a buffer: cheaper than growing a string rope and
    // flattening it for the socket.
    let buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let off = 0;
    for (const u of units) {
      if (u.len < 0) continue;
      let l: string;
      try {
        l = line(u.rec);
      } catch (e) {
        u.len = -1;
        for (const i of u.idx) rejected.push({ index: i, error: (e as Error).message });
        continue;
      }
      u.len = l.length + 1;
      const text = suffix === null ? `${l}\n` : `${l},${suffix(u)}\n`;
      const max = text.length * 3; // UTF-8 bytes per UTF-16 unit
      if (off + max > buf.length) {
        if (off > 0) yield buf.subarray(0, off);
        buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, max));
        off = 0;
      }
      off += buf.write(text, off);
    }
    if (off > 0) yield buf.subarray(0, off);
  }

  /** Writes units in the current transaction/savepoint; throws on the first failure. */
  private async apply(units: Unit[], groups: Group[], rejected: RejectedRecord[]): Promise<void> {
    if (units.length === 0) return;
    const client = this.client;
    const cols = this.streamColumns;
    if (!this.keyed) {
      await copyIn(client, `COPY ${this.qTarget} (${cols.map((c) => qi(c.name)).join(', ')}) FROM STDIN WITH (FORMAT csv)`, this.chunks(units, rejected, null));
      return;
    }
    if (this.stage === null || this.stageColumns.length !== this.streamColumns.length) {
      throw new DriverError(`${WHO}: internal error: staging table not prepared`);
    }
    const stage = qi(this.stage);
    const base = ++this.opSeq * 1024;
    // One op id per MERGE group (ids beyond 1024 groups share the last one: same columns then
    // cannot be guaranteed, so such batches go group by group through the fallback).
    const opOf = (u: Unit) => String(base + Math.min(u.group, 1023));
    const names = this.stageColumns.map((c) => qi(c.name));
    await copyIn(client, `COPY pg_temp.${stage} (${names.join(', ')}, "__sluice_op") FROM STDIN WITH (FORMAT csv)`, this.chunks(units, rejected, opOf));
    const pk = this.pk!;
    const pkList = pk.map(qi).join(', ');
    const join = pk.map((k) => `t.${qi(k)} = s.${qi(k)}`).join(' AND ');
    if (this.mode === 'UPSERT') {
      const set = cols.filter((c) => !pk.includes(c.name)).map((c) => `${qi(c.name)} = EXCLUDED.${qi(c.name)}`);
      await client.query(
        `INSERT INTO ${this.qTarget} AS t (${names.join(', ')}) SELECT ${names.join(', ')} FROM pg_temp.${stage} WHERE "__sluice_op" = $1
         ON CONFLICT (${pkList}) DO ${set.length > 0 ? `UPDATE SET ${set.join(', ')}` : 'NOTHING'}`,
        [base],
      );
      return;
    }
    const used = new Set(units.map((u) => Math.min(u.group, 1023)));
    for (let g = 0; g < groups.length && g < 1024; g++) {
      if (!used.has(g)) continue;
      const gcols = groups[g]!.columns;
      const gnames = gcols.map((c) => qi(c.name));
      const op = base + g;
      const set = gcols.filter((c) => !pk.includes(c.name)).map((c) => `${qi(c.name)} = s.${qi(c.name)}`);
      if (set.length > 0) {
        await client.query(`UPDATE ${this.qTarget} AS t SET ${set.join(', ')} FROM pg_temp.${stage} AS s WHERE s."__sluice_op" = $1 AND ${join}`, [op]);
      }
      await client.query(
        `INSERT INTO ${this.qTarget} (${gnames.join(', ')}) SELECT ${gnames.map((n) => `s.${n}`).join(', ')} FROM pg_temp.${stage} AS s
          WHERE s."__sluice_op" = $1 AND NOT EXISTS (SELECT 1 FROM ${this.qTarget} AS t WHERE ${join})`,
        [op],
      );
    }
  }

  async writeBatch(records: DataRecord[]): Promise<WriteResult> {
    if (this.done) throw new DriverError(`${WHO}: writeBatch called after commit/abort`);
    if (records.length === 0) return { written: 0, bytes: 0, rejected: [] };
    const client = this.client;

    // 1. Schema changes, committed on their own.
    const pending = this.scan(records);
    if (pending.length > 0 || !this.targetExists) {
      if (!this.targetExists && !this.cfg.createTable) {
        throw new DriverError(`${WHO}: table ${this.cfg.schema}.${this.target} does not exist and createTable is false`);
      }
      await this.ddl(pending.map((p) => ({ name: p.name, type: p.type, notNull: false })));
      if (this.keyed && this.pk) await this.ensureUniqueKey(this.pk);
    }

    // The staging table must exist outside the batch transaction (a rollback would drop it).
    if (this.keyed) await this.ensureStage();

    // 2. Records that cannot be written at all are rejected up front.
    const rejected: RejectedRecord[] = [];
    let ok: number[] | null = null;
    if (this.streamColumns.length === 0 || this.keyed) {
      ok = [];
      for (let i = 0; i < records.length; i++) {
        try {
          if (this.streamColumns.length === 0) throw new RecordFailure('record has no fields');
          this.checkKey(records[i]!);
          ok.push(i);
        } catch (e) {
          rejected.push({ index: i, error: (e as Error).message });
        }
      }
    }
    const { units, groups } = this.units(records, ok ?? records.map((_, i) => i));
    if (this.mode === 'MERGE' && groups.length > 1024) {
      // Pathological key-set variety: keep every group on its own op id via the fallback path.
      return this.fallback(records, units, groups, rejected);
    }

    // 3. Fast path: the whole batch in one transaction (a lone COPY is its own transaction).
    try {
      if (!this.keyed) {
        await this.apply(units, groups, rejected);
      } else {
        await client.query('BEGIN');
        try {
          await this.apply(units, groups, rejected);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }
      return this.result(records.length, units, rejected);
    } catch (e) {
      if (!isDataError(e)) throw wrapPgError(WHO, `writing to ${this.cfg.schema}.${this.target} failed`, e);
    }
    return this.fallback(records, units, groups, rejected);
  }

  /** Some record is bad: bisect with savepoints in one transaction, keep the good ones. */
  private async fallback(records: DataRecord[], all: Unit[], groups: Group[], rejected: RejectedRecord[]): Promise<WriteResult> {
    const client = this.client;
    const units = all.filter((u) => u.len >= 0);
    const failed = new Set<Unit>();
    await client.query('BEGIN');
    try {
      const attempt = async (part: Unit[]): Promise<boolean> => {
        await client.query('SAVEPOINT sluice_sp');
        try {
          await this.apply(part, groups, rejected);
          await client.query('RELEASE SAVEPOINT sluice_sp');
          return true;
        } catch (e) {
          await client.query('ROLLBACK TO SAVEPOINT sluice_sp');
          await client.query('RELEASE SAVEPOINT sluice_sp');
          if (!isDataError(e)) throw e;
          if (part.length === 1) {
            failed.add(part[0]!);
            await this.single(part[0]!, records, rejected, e);
          }
          return false;
        }
      };
      const bisect = async (part: Unit[], knownBad: boolean): Promise<void> => {
        if (part.length === 0) return;
        if (!knownBad || part.length === 1) {
          if ((await attempt(part)) || part.length === 1) return;
        }
        const mid = part.length >> 1;
        await bisect(part.slice(0, mid), false);
        await bisect(part.slice(mid), false);
      };
      if (this.mode === 'MERGE' && groups.length > 1024) {
        for (let g = 0; g < groups.length; g += 1024) {
          const slice = units.filter((u) => u.group >= g && u.group < g + 1024).map((u) => ({ ...u, group: u.group - g }));
          await bisect(slice, false);
        }
      } else {
        await bisect(units, true);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw wrapPgError(WHO, `writing to ${this.cfg.schema}.${this.target} failed`, e);
    }
    return this.result(records.length, units.filter((u) => !failed.has(u)), rejected);
  }

  /**
   * A unit that failed alone. If it folds several records (same key in one batch), replay them
   * one by one, so the good ones still apply in order; otherwise reject its record.
   */
  private async single(u: Unit, records: DataRecord[], rejected: RejectedRecord[], error: unknown): Promise<void> {
    if (u.idx.length === 1) {
      rejected.push({ index: u.idx[0]!, error: describeRecordError(error) });
      return;
    }
    for (const i of u.idx) {
      const { units, groups } = this.units(records, [i]);
      await this.client.query('SAVEPOINT sluice_sp1');
      try {
        await this.apply(units, groups, rejected);
        await this.client.query('RELEASE SAVEPOINT sluice_sp1');
      } catch (e) {
        await this.client.query('ROLLBACK TO SAVEPOINT sluice_sp1');
        await this.client.query('RELEASE SAVEPOINT sluice_sp1');
        if (!isDataError(e)) throw e;
        rejected.push({ index: i, error: describeRecordError(e) });
      }
    }
  }

  private result(total: number, written: Unit[], rejected: RejectedRecord[]): WriteResult {
    let bytes = 0;
    for (const u of written) if (u.len > 0) bytes += u.len;
    rejected.sort((a, b) => a.index - b.index);
    return { written: total - rejected.length, bytes, rejected };
  }

  async commit(): Promise<void> {
    if (this.done) return;
    try {
      if (this.mode === 'OVERWRITE') await this.swap();
    } finally {
      await this.close();
    }
  }

  /** OVERWRITE: replace the table by the temp table in one transaction. */
  private async swap(): Promise<void> {
    const client = this.client;
    const schema = this.cfg.schema;
    await client.query('BEGIN');
    try {
      const tmpExists = await relationExists(client, schema, this.target);
      const oldExists = await relationExists(client, schema, this.table);
      if (tmpExists) {
        if (oldExists) {
          await client.query(`LOCK TABLE ${qn(schema, this.table)} IN ACCESS EXCLUSIVE MODE`);
          await client.query(`DROP TABLE ${qn(schema, this.table)}`);
        }
        await client.query(`ALTER TABLE ${qn(schema, this.target)} RENAME TO ${qi(this.table)}`);
        const pkName = await pkConstraintName(client, schema, this.table);
        const wanted = truncateIdentifier(`${this.table}_pkey`);
        if (pkName && pkName !== wanted && !(await relationExists(client, schema, wanted))) {
          await client.query(`ALTER TABLE ${qn(schema, this.table)} RENAME CONSTRAINT ${qi(pkName)} TO ${qi(wanted)}`);
        }
      } else if (oldExists) {
        await client.query(`TRUNCATE ${qn(schema, this.table)}`);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw wrapPgError(WHO, `replacing ${schema}.${this.table} failed`, e);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    try {
      if (this.mode === 'OVERWRITE') await this.client.query(`DROP TABLE IF EXISTS ${qn(this.cfg.schema, this.target)}`);
    } catch (e) {
      throw wrapPgError(WHO, `dropping ${this.cfg.schema}.${this.target} failed`, e);
    } finally {
      await this.close();
    }
  }

  private async close(): Promise<void> {
    this.done = true;
    await closeQuietly(this.client);
  }
}

function describeRecordError(e: unknown): string {
  const err = e as PgError;
  let msg = pgErrorMessage(e);
  const col = err.column ?? /column ([^:]+):/.exec(err.where ?? '')?.[1];
  if (col && !msg.includes(`"${col}"`)) msg += ` (column ${col})`;
  return msg;
}

async function openWriter(config: PostgresDestinationConfig, options: WriterOptions): Promise<StreamWriter> {
  const cfg = resolveConfig(config);
  const { writeMode, stream } = options;
  if (!SUPPORTED_MODES.includes(writeMode)) {
    throw new DriverError(`${WHO}: unsupported write mode ${writeMode} (supported: ${SUPPORTED_MODES.join(', ')})`);
  }
  const pk = stream.primaryKey && stream.primaryKey.length > 0 ? stream.primaryKey : null;
  if ((writeMode === 'UPSERT' || writeMode === 'MERGE') && !pk) {
    throw new DriverError(`${WHO}: write mode ${writeMode} needs a primary key, and stream "${stream.name}" has none`);
  }
  const schema = stream.schema && stream.schema.length > 0 ? stream.schema : null;
  if (pk && schema) {
    const missing = pk.filter((k) => !schema.some((f) => f.name === k));
    if (missing.length > 0) {
      throw new DriverError(`${WHO}: primary key field(s) ${missing.join(', ')} are not in the schema of stream "${stream.name}"`);
    }
  }
  const table = cfg.table ?? truncateIdentifier(stream.destinationName ?? stream.name);
  const target = writeMode === 'OVERWRITE' ? tmpTableName(table) : table;
  let client: pg.Client;
  try {
    client = await connect(cfg.connection);
  } catch (e) {
    throw new DriverError(`${WHO}: ${connectFailureMessage(e, cfg.connection)}`, isRetryable(e));
  }
  try {
    if (!(await schemaExists(client, cfg.schema))) {
      if (!cfg.createTable) throw new DriverError(`${WHO}: schema "${cfg.schema}" does not exist and createTable is false`);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(cfg.schema)}`);
      } catch (e) {
        if (!(await schemaExists(client, cfg.schema))) throw e; // lost a race: fine
      }
    }
    let existing: ColumnRow[] | null;
    if (writeMode === 'OVERWRITE') {
      await client.query(`DROP TABLE IF EXISTS ${qn(cfg.schema, target)}`);
      if (!cfg.createTable) {
        if ((await tableColumns(client, cfg.schema, table)) === null) {
          throw new DriverError(`${WHO}: table ${cfg.schema}.${table} does not exist and createTable is false`);
        }
        await client.query(`CREATE TABLE ${qn(cfg.schema, target)} (LIKE ${qn(cfg.schema, table)} INCLUDING ALL)`);
        existing = await tableColumns(client, cfg.schema, target);
      } else {
        existing = null;
      }
    } else {
      existing = await tableColumns(client, cfg.schema, table);
      if (existing === null && !cfg.createTable) throw new DriverError(`${WHO}: table ${cfg.schema}.${table} does not exist and createTable is false`);
    }
    const writer = new PgWriter(client, cfg, writeMode, table, target, pk, schema, existing);
    await writer.prepare();
    return writer;
  } catch (e) {
    await closeQuietly(client);
    throw wrapPgError(WHO, `cannot prepare table ${cfg.schema}.${target}`, e);
  }
}

// ---------------------------------------------------------------------------------------------
// check / discover.

async function check(config: PostgresDestinationConfig): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  let client: pg.Client;
  try {
    client = await connect(cfg.connection);
  } catch (e) {
    return { ok: false, message: connectFailureMessage(e, cfg.connection) };
  }
  const where = describeTarget(cfg.connection);
  try {
    await client.query('SELECT 1');
    const version = (await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;
    if (await schemaExists(client, cfg.schema)) {
      const priv = await client.query<{ ok: boolean }>(`SELECT has_schema_privilege($1, 'CREATE') AND has_schema_privilege($1, 'USAGE') AS ok`, [cfg.schema]);
      if (!priv.rows[0]!.ok && cfg.createTable) return { ok: false, message: `No CREATE privilege on schema "${cfg.schema}" at ${where}` };
      if (cfg.table) {
        const cols = await tableColumns(client, cfg.schema, cfg.table);
        if (cols === null && !cfg.createTable) return { ok: false, message: `Table ${cfg.schema}.${cfg.table} does not exist and createTable is false` };
        if (cols !== null) {
          const p = await client.query<{ ok: boolean }>(`SELECT has_table_privilege(format('%I.%I', $1::text, $2::text), 'INSERT') AS ok`, [cfg.schema, cfg.table]);
          if (!p.rows[0]!.ok) return { ok: false, message: `No INSERT privilege on ${cfg.schema}.${cfg.table}` };
        }
      }
      return { ok: true, message: `Connected to ${where} (PostgreSQL ${version}); schema "${cfg.schema}" is writable` };
    }
    if (!cfg.createTable) return { ok: false, message: `Schema "${cfg.schema}" does not exist and createTable is false` };
    const priv = await client.query<{ ok: boolean }>(`SELECT has_database_privilege(current_database(), 'CREATE') AS ok`);
    if (!priv.rows[0]!.ok) return { ok: false, message: `Schema "${cfg.schema}" does not exist and the role may not create schemas in this database` };
    return { ok: true, message: `Connected to ${where} (PostgreSQL ${version}); schema "${cfg.schema}" does not exist yet and will be created` };
  } catch (e) {
    return { ok: false, message: `${where}: ${pgErrorMessage(e)}` };
  } finally {
    await closeQuietly(client);
  }
}

async function discover(config: PostgresDestinationConfig): Promise<Catalog> {
  const cfg = resolveConfig(config);
  let client: pg.Client;
  try {
    client = await connect(cfg.connection);
  } catch (e) {
    throw new DriverError(`${WHO}: ${connectFailureMessage(e, cfg.connection)}`, isRetryable(e));
  }
  try {
    const res = await client.query<{ table: string; column: string; typname: string; nullable: boolean; pk: boolean; pkpos: number | null }>(
      `SELECT c.relname AS "table", a.attname AS "column", bt.typname::text AS typname, NOT a.attnotnull AS nullable,
              array_position(con.conkey, a.attnum) AS pkpos
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
         LEFT JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE '%\\_\\_sluice\\_tmp'
        ORDER BY c.relname, a.attnum`,
      [cfg.schema],
    );
    const streams = new Map<string, StreamDescriptor & { pkpos: [string, number][] }>();
    for (const r of res.rows) {
      let s = streams.get(r.table);
      if (!s) {
        s = { name: r.table, fields: [], supportedSyncModes: ['FULL_REFRESH'], sourceDefinedPrimaryKey: null, pkpos: [] };
        streams.set(r.table, s);
      }
      s.fields.push({ name: r.column, type: fieldTypeOfTypname(r.typname), nullable: r.nullable });
      if (r.pkpos !== null) s.pkpos.push([r.column, r.pkpos]);
    }
    return {
      streams: [...streams.values()].map(({ pkpos, ...s }) => ({
        ...s,
        sourceDefinedPrimaryKey: pkpos.length > 0 ? pkpos.sort((a, b) => a[1] - b[1]).map((p) => p[0]) : null,
      })),
    };
  } catch (e) {
    throw wrapPgError(WHO, 'discover failed', e);
  } finally {
    await closeQuietly(client);
  }
}

export const postgresDestination: DestinationDriver<PostgresDestinationConfig> = {
  name: 'postgres-destination',
  role: 'DESTINATION',
  title: 'PostgreSQL',
  description: 'Writes streams into PostgreSQL tables with COPY: append, atomic overwrite, upsert and partial-update merge.',
  docs,
  configSchema: postgresDestinationConfigSchema,
  supportedWriteModes: SUPPORTED_MODES,
  check,
  discover,
  openWriter,
};

export default postgresDestination;
