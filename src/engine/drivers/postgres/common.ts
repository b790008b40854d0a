/**
 * Shared pieces of the PostgreSQL source and destination: connection config (JSON Schema and
 * resolution to a `pg` client config), session setup, identifier quoting, type mapping and
 * error classification. No driver logic lives here.
 */
import net from 'node:net';
import pg from 'pg';
import { answerLookup, outboundGuard, outboundRefusal, type DatabaseTarget, type ResolvedAddress } from '../kit/outbound.js';
import { DriverError, type FieldType, type JsonSchema } from '../types.js';

export interface PgConnectionConfig {
  connectionString?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  ssl?: 'disable' | 'require' | 'verify-full';
}

const SSL_MODES = ['disable', 'require', 'verify-full'] as const;

/** JSON Schema properties of the connection (shared by source and destination). */
export const connectionProperties: Record<string, JsonSchema> = {
  connectionString: {
    type: 'string',
    minLength: 1,
    secret: true,
    origin: true,
    title: 'Connection string',
    description:
      'libpq-style URL, e.g. postgresql://user:password@host:5432/db?sslmode=require. Use either this or host/port/database/user/password.',
    examples: ['postgresql://sluice:secret@db.internal:5432/warehouse'],
  },
  host: { type: 'string', minLength: 1, origin: true, title: 'Host', description: 'Server host name or IP address.', examples: ['127.0.0.1'] },
  port: { type: 'integer', minimum: 1, maximum: 65535, origin: true, title: 'Port', description: 'Server port (default 5432).' },
  database: { type: 'string', minLength: 1, origin: true, title: 'Database', description: 'Database name.', examples: ['warehouse'] },
  user: { type: 'string', minLength: 1, title: 'User', description: 'Role to connect as.', examples: ['sluice'] },
  password: { type: 'string', secret: true, title: 'Password', description: 'Password of the role (omit for trust/peer auth).' },
  ssl: {
    type: 'string',
    enum: [...SSL_MODES],
    title: 'TLS',
    description:
      'disable: plain TCP; require: TLS without certificate verification; verify-full: TLS with certificate and host name verification against the system CAs. With a connection string, its sslmode wins when present.',
  },
};

/** `connectionString`, or `host` + `database` + `user`. */
export const connectionRequirement: JsonSchema[] = [{ required: ['connectionString'] }, { required: ['host', 'database', 'user'] }];

export function resolveConnection(raw: PgConnectionConfig, who: string): pg.ClientConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError(`${who}: config must be an object`);
  const ssl =
    raw.ssl === undefined ? undefined : raw.ssl === 'disable' ? false : raw.ssl === 'require' ? { rejectUnauthorized: false } : { rejectUnauthorized: true };
  if (raw.ssl !== undefined && !SSL_MODES.includes(raw.ssl)) throw new DriverError(`${who}: ssl must be one of ${SSL_MODES.join(', ')}`);
  const base: pg.ClientConfig = {
    connectionTimeoutMillis: 15_000,
    application_name: 'sluice',
    keepAlive: true,
  };
  if (raw.connectionString) {
    const mixed = (['host', 'database', 'user', 'password'] as const).filter((k) => raw[k] !== undefined);
    if (mixed.length > 0) {
      throw new DriverError(`${who}: give either connectionString or host/port/database/user/password, not both (also set: ${mixed.join(', ')})`);
    }
    return { ...base, connectionString: raw.connectionString, ...(ssl !== undefined ? { ssl } : {}) };
  }
  if (!raw.host || !raw.database || !raw.user) {
    throw new DriverError(`${who}: connectionString, or host, database and user, are required`);
  }
  return {
    ...base,
    host: raw.host,
    port: raw.port ?? 5432,
    database: raw.database,
    user: raw.user,
    ...(raw.password !== undefined ? { password: raw.password } : {}),
    ...(ssl !== undefined ? { ssl } : {}),
  };
}

/** Where we connect to, for messages (never includes the password). */
export function describeTarget(cfg: pg.ClientConfig): string {
  if (cfg.connectionString) {
    try {
      const u = new URL(cfg.connectionString);
      const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
      return `${u.hostname || 'localhost'}:${u.port || 5432}${db ? `/${db}` : ''}`;
    } catch {
      return 'the configured server';
    }
  }
  return `${cfg.host}:${cfg.port}/${cfg.database}`;
}

/** The server and database a client config connects to, once pg's defaults are applied (no I/O). */
export function pgTarget(cfg: pg.ClientConfig): DatabaseTarget {
  const c = new pg.Client(cfg);
  return { host: c.host, port: c.port, database: c.database ?? c.user ?? '' };
}

/** A socket whose connection goes only to `addresses()` (checked by the guard), whatever DNS says later. */
function pinnedSocket(addresses: () => readonly ResolvedAddress[]): net.Socket {
  const socket = new net.Socket();
  const connect = socket.connect.bind(socket) as (options: net.TcpSocketConnectOpts) => net.Socket;
  // pg calls connect(port, host); IP literals never reach `lookup` and were checked as they are.
  (socket as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port, host) =>
    connect({ port, host, lookup: (hostname, opts, callback) => answerLookup(hostname, addresses(), opts, callback) });
  return socket;
}

/**
 * Opens a client and fixes the session settings the drivers rely on: UTC time zone (so
 * timestamptz text is unambiguous), ISO date style and shortest-exact float output.
 *
 * With an outbound guard installed (outbound.ts) the target host is resolved and judged first
 * (loopback, private, link-local, metadata addresses refused unless allow-listed; Sluice's own
 * state database always) and the socket connects only to the addresses judged; the TLS
 * handshake still verifies the configured host name. A refusal rejects with the guard's
 * error (code ERR_OUTBOUND_REFUSED): `connectFailureMessage` words it, `isRetryable` is false.
 */
export async function connect(cfg: pg.ClientConfig, types?: pg.CustomTypesConfig): Promise<pg.Client> {
  const guard = outboundGuard();
  let checked: readonly ResolvedAddress[] = [];
  const client = new pg.Client({
    ...cfg,
    ...(types ? { types } : {}),
    ...(guard?.checkDatabase ? { stream: () => pinnedSocket(() => checked) } : {}),
  });
  // An idle client whose server goes away emits 'error'; without a listener that would crash
  // the process. The next query on it fails and reports the problem instead.
  client.on('error', () => undefined);
  if (guard?.checkDatabase) checked = await guard.checkDatabase({ host: client.host, port: client.port, database: client.database ?? '' });
  try {
    await client.connect();
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3`);
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
  return client;
}

export async function closeQuietly(client: pg.Client | null | undefined): Promise<void> {
  if (!client) return;
  await client.end().catch(() => undefined);
}

/** Quotes an identifier. */
export function qi(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/** Quotes a schema-qualified name. */
export function qn(schema: string, name: string): string {
  return `${qi(schema)}.${qi(name)}`;
}

/** PostgreSQL truncates identifiers to 63 bytes; we do it ourselves so names stay predictable. */
export function truncateIdentifier(name: string, max = 63): string {
  if (Buffer.byteLength(name) <= max) return name;
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Types.

export const OID = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  json: 114,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  jsonb: 3802,
} as const;

/** Logical field type of a (base) PostgreSQL type name, as in pg_type.typname. */
export function fieldTypeOfTypname(typname: string): FieldType {
  switch (typname) {
    case 'int2':
    case 'int4':
    case 'int8':
      return 'integer';
    case 'numeric':
    case 'float4':
    case 'float8':
      return 'number';
    case 'bool':
      return 'boolean';
    case 'timestamp':
    case 'timestamptz':
    case 'date':
      return 'datetime';
    case 'json':
    case 'jsonb':
      return 'json';
    default:
      return 'string';
  }
}

/** Logical field type of a result column's type OID (custom queries). */
export function fieldTypeOfOid(oid: number): FieldType {
  switch (oid) {
    case OID.int2:
    case OID.int4:
    case OID.int8:
      return 'integer';
    case OID.numeric:
    case OID.float4:
    case OID.float8:
      return 'number';
    case OID.bool:
      return 'boolean';
    case OID.date:
    case OID.timestamp:
    case OID.timestamptz:
      return 'datetime';
    case OID.json:
    case OID.jsonb:
      return 'json';
    default:
      return 'string';
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

export interface PgError extends Error {
  code?: string;
  detail?: string;
  hint?: string;
  column?: string;
  constraint?: string;
  where?: string;
}

/** SQLSTATE classes that mean "this record's data is the problem". */
export function isDataError(e: unknown): boolean {
  const code = (e as PgError | null)?.code;
  if (typeof code !== 'string') return false;
  return (
    code.startsWith('22') || // data exception
    code.startsWith('23') || // integrity constraint violation
    code === '21000' || // cardinality violation
    code === '42804' || // datatype mismatch
    code === '54000' // program limit exceeded (e.g. index row too large)
  );
}

const RETRYABLE_CODE = /^(08|40|53|57P|55P03|58)/;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export function isRetryable(e: unknown): boolean {
  const code = (e as PgError | null)?.code;
  if (typeof code === 'string' && (RETRYABLE_CODE.test(code) || NETWORK_CODES.has(code))) return true;
  const msg = (e as Error | null)?.message ?? '';
  return /Connection terminated|timeout expired|Client has encountered a connection error/i.test(msg);
}

export function pgErrorMessage(e: unknown): string {
  const err = e as PgError;
  const msg = err instanceof Error ? err.message : String(e);
  const parts = [msg];
  if (err?.detail) parts.push(`(${err.detail})`);
  const text = parts.join(' ');
  return typeof err?.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? `${err.code}: ${text}` : text;
}

export function wrapPgError(who: string, context: string, e: unknown): DriverError {
  if (e instanceof DriverError) return e;
  return new DriverError(`${who}: ${context}: ${pgErrorMessage(e)}`, isRetryable(e));
}

/** A human message for a failed connection attempt. */
export function connectFailureMessage(e: unknown, cfg: pg.ClientConfig): string {
  const err = e as PgError;
  const where = describeTarget(cfg);
  const refusal = outboundRefusal(e);
  if (refusal) return `Connection to ${where} refused: ${refusal.message}`;
  switch (err?.code) {
    case '28P01':
    case '28000':
      return `Authentication failed at ${where}: ${err.message}`;
    case '3D000':
      return `Database does not exist at ${where}: ${err.message}`;
    case 'ECONNREFUSED':
      return `Connection refused by ${where}: is PostgreSQL running and accepting TCP connections?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Unknown host in ${where}: ${err.message}`;
    default:
      return `Cannot connect to ${where}: ${pgErrorMessage(e)}`;
  }
}
