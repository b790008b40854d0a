/**
 * The key ring: authenticated encryption of secrets at rest (AES-256-GCM, node:crypto).
 *
 * Contract:
 * - Ciphertext is a self-describing string `enc:v2:<keyId>:<iv>:<tag>:<ciphertext>` (base64url
 *   parts, 96-bit random IV, 128-bit tag), bound to its owner: the additional authenticated
 *   data is the header `enc:v2:<keyId>` plus the owner's binding `<table>:<row id>:<field path>`
 *   (`bindingOf`). So a ciphertext cannot be moved under another key id, nor copied into another
 *   row or another field: opening it there fails (KeyRingError naming the binding), it never
 *   yields the plaintext. Any change fails decryption.
 * - `enc:v1:<keyId>:…` is the earlier, unbound format (only the header is authenticated). It
 *   still decrypts (the binding is ignored), `needsReseal` is true for it, and the start-up
 *   migration (modules/secrets/secrets.service.ts, `bindAll`) re-seals every stored v1 value as v2.
 * - `encrypt` always uses the primary key; `decrypt` picks the key named in the value. A value
 *   without an `enc:v1:`/`enc:v2:` prefix is legacy clear text (stored before encryption
 *   existed) and is returned as is; `needsReseal` tells the caller to encrypt it at the next write.
 * - Errors name key ids and bindings, never key material or plaintext.
 * - Keys come from `SLUICE_SECRET_KEYS` (`id:base64-32-bytes,...`, first = primary; the
 *   operator owns them and rotation only re-encrypts under the primary), or else from the key
 *   file `<dataDir>/secret-keys.json`, generated on first start with mode 0600. The file is
 *   written atomically (temporary file, fsync, rename/link, directory fsync). An existing file
 *   readable or writable by group/others is refused at start (the key may have leaked; the
 *   error says to `chmod 600` it after checking), as is a file not owned by this user.
 * - File rotation (`beginFileRotation` → re-encrypt everything → `finishFileRotation`): a new
 *   primary is added and persisted first, old keys stay until every secret is re-encrypted,
 *   then the file keeps only the primary. Retired keys stay usable in this process (a request
 *   may have read a row before the rotation committed). A key id this process does not know is
 *   looked up again in the key file once (another process may have rotated).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The current, owner-bound format. */
export const CIPHERTEXT_PREFIX = 'enc:v2:';
/** The earlier format, not bound to an owner: still decrypts, re-sealed as v2 at start. */
export const UNBOUND_PREFIX = 'enc:v1:';
export const KEY_FILE_NAME = 'secret-keys.json';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

/** A secret could not be decrypted, or the key ring could not be set up. Never carries key material or plaintext. */
export class KeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

export interface SecretKey {
  id: string;
  key: Buffer;
}

/**
 * Keys given in configuration. The material is kept out of `JSON.stringify` and `inspect`,
 * so logging a config object never prints a key.
 */
export class ConfiguredKeys {
  readonly #keys: SecretKey[];
  constructor(keys: SecretKey[]) {
    this.#keys = keys;
  }
  get keys(): SecretKey[] {
    return this.#keys.map((k) => ({ id: k.id, key: Buffer.from(k.key) }));
  }
  get ids(): string[] {
    return this.#keys.map((k) => k.id);
  }
  toJSON(): string {
    return `[${this.#keys.length} key(s): ${this.ids.join(', ')}]`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

/**
 * Parses `id:base64key,id:base64key` (first = primary). Errors name the entry by position and
 * id only, never the key.
 */
export function parseKeyList(value: string): SecretKey[] {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (!entries.length) throw new KeyRingError('expected at least one key as id:base64-of-32-bytes');
  const out: SecretKey[] = [];
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    if (!KEY_ID.test(id)) throw new KeyRingError(`entry ${i + 1}: expected id:base64-of-32-bytes with an id of letters, digits, _ or - (at most 64)`);
    const key = decodeKey(entry.slice(colon + 1));
    if (!key) throw new KeyRingError(`key "${id}" (entry ${i + 1}): expected base64 (or base64url) of exactly ${KEY_BYTES} bytes`);
    if (out.some((k) => k.id === id)) throw new KeyRingError(`key id "${id}" is given twice`);
    out.push({ id, key });
  });
  return out;
}

function decodeKey(s: string): Buffer | null {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return null;
  const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === KEY_BYTES ? key : null;
}

/** A fresh key id: `k` + UTC date + random suffix, e.g. `k20260301-3f9a1c`. */
export function newKeyId(now = new Date()): string {
  const d = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `k${d}-${crypto.randomBytes(4).toString('hex')}`;
}

export function generateKey(): SecretKey {
  return { id: newKeyId(), key: crypto.randomBytes(KEY_BYTES) };
}

/** True when `value` is a key-ring ciphertext, bound (v2) or not (v1), as opposed to legacy clear text. */
export function isCiphertext(value: unknown): value is string {
  return typeof value === 'string' && (value.startsWith(CIPHERTEXT_PREFIX) || value.startsWith(UNBOUND_PREFIX));
}

/** True when `value` is a ciphertext bound to its owner (v2). */
export function isBound(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(CIPHERTEXT_PREFIX);
}

/** The key id a ciphertext names, or null for anything else. */
export function keyIdOf(value: unknown): string | null {
  if (!isCiphertext(value)) return null;
  const id = value.slice(CIPHERTEXT_PREFIX.length).split(':', 1)[0] ?? ''; // both prefixes are 7 characters
  return KEY_ID.test(id) ? id : null;
}

/**
 * The binding of a stored secret: which row of which table holds it, in which field, e.g.
 * `connector:<id>:config.auth.token`, `authentication:<id>:config.clientSecret`,
 * `webhook:<id>:secret`. A ciphertext opens only under the binding it was sealed with.
 */
export function bindingOf(table: string, rowId: string, field: string): string {
  return `${table}:${rowId}:${field}`;
}

function checkBinding(binding: string): void {
  if (typeof binding !== 'string' || binding === '') throw new KeyRingError('a secret must be sealed and opened with its owner binding');
}

interface KeyFile {
  version: 1;
  /** Newest first; the first key is the primary. */
  keys: { id: string; key: string; createdAt: string }[];
}

export type KeySource = { kind: 'config' } | { kind: 'file'; path: string };

export class KeyRing {
  /** Persisted keys, primary first. */
  private keys: SecretKey[];
  /** Keys dropped by a rotation, still accepted for decryption in this process. */
  private readonly retired = new Map<string, Buffer>();
  /** The key file's entries (a ring from a key file only: set by `fromFile`). */
  private fileKeys: KeyFile['keys'] = [];

  private constructor(
    keys: SecretKey[],
    readonly source: KeySource,
  ) {
    if (!keys.length) throw new KeyRingError('the key ring has no key');
    this.keys = keys;
  }

  /** A ring over the given keys (first = primary), as configured by SLUICE_SECRET_KEYS. */
  static fromKeys(keys: SecretKey[]): KeyRing {
    return new KeyRing(
      keys.map((k) => ({ id: k.id, key: Buffer.from(k.key) })),
      { kind: 'config' },
    );
  }

  /** The ring of `<dataDir>/secret-keys.json`, created (mode 0600) when missing. */
  static fromFile(file: string): KeyRing {
    let data = readKeyFile(file);
    if (!data) {
      const k = generateKey();
      const created: KeyFile = { version: 1, keys: [{ id: k.id, key: k.key.toString('base64'), createdAt: new Date().toISOString() }] };
      // link() fails when another process created the file first: then use theirs.
      if (!writeKeyFile(file, created, { exclusive: true })) data = readKeyFile(file);
      else data = created;
      if (!data) throw new KeyRingError(`could not create the secret key file ${file}`);
    }
    const ring = new KeyRing(data.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64') })), { kind: 'file', path: file });
    ring.fileKeys = data.keys;
    return ring;
  }

  /** Configured keys when given, else the data directory's key file. */
  static open(options: { keys: ConfiguredKeys | null | undefined; dataDir: string }): KeyRing {
    if (options.keys) return KeyRing.fromKeys(options.keys.keys);
    return KeyRing.fromFile(path.join(options.dataDir, KEY_FILE_NAME));
  }

  get primaryId(): string {
    return this.keys[0]!.id;
  }

  /** Ids of the persisted keys, primary first. */
  get keyIds(): string[] {
    return this.keys.map((k) => k.id);
  }

  /** `plaintext` sealed under the primary key, bound to `binding` (see `bindingOf`). */
  encrypt(plaintext: string, binding: string): string {
    checkBinding(binding);
    const { id, key } = this.keys[0]!;
    const iv = crypto.randomBytes(IV_BYTES);
    const header = `${CIPHERTEXT_PREFIX}${id}`;
    const cipher = crypto.createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(header, binding));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${header}:${iv.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${ct.toString('base64url')}`;
  }

  /**
   * The plaintext of a ciphertext stored at `binding`. A v2 value sealed for another binding
   * (another row or field) fails with a KeyRingError; a v1 value (unbound) opens anywhere;
   * legacy clear text (no prefix) is returned as is.
   */
  decrypt(value: string, binding: string): string {
    checkBinding(binding);
    if (!isCiphertext(value)) return value;
    const bound = isBound(value);
    const prefix = bound ? CIPHERTEXT_PREFIX : UNBOUND_PREFIX;
    const parts = value.slice(prefix.length).split(':');
    const [id, ivS, tagS, ctS] = parts;
    if (parts.length !== 4 || !id || !KEY_ID.test(id) || !B64URL.test(ivS!) || !B64URL.test(tagS!) || !B64URL.test(ctS!)) {
      throw new KeyRingError(`malformed encrypted secret (${binding})`);
    }
    const key = this.keyFor(id);
    const iv = Buffer.from(ivS!, 'base64url');
    const tag = Buffer.from(tagS!, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new KeyRingError(`malformed encrypted secret (key "${id}", ${binding})`);
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      const header = `${prefix}${id}`;
      decipher.setAAD(bound ? aad(header, binding) : Buffer.from(header, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(ctS!, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new KeyRingError(
        bound
          ? `the encrypted secret of ${binding} failed authentication with key "${id}": it was sealed for another row or field, or was tampered with`
          : `an encrypted secret (${binding}) failed authentication with key "${id}" (tampered, truncated or encrypted with another key of that id)`,
      );
    }
  }

  /** Whether a stored value should be (re-)encrypted: clear text, unbound (v1), or not under the primary key. */
  needsReseal(value: string): boolean {
    return !isBound(value) || keyIdOf(value) !== this.primaryId;
  }

  /** The value stored at `binding`, sealed under the primary key for it (unchanged when it already is). */
  reseal(value: string, binding: string): string {
    return this.needsReseal(value) ? this.encrypt(this.decrypt(value, binding), binding) : value;
  }

  private keyFor(id: string): Buffer {
    const found = this.keys.find((k) => k.id === id)?.key ?? this.retired.get(id);
    if (found) return found;
    if (this.source.kind === 'file') {
      // Another process may have rotated: look at the file once more.
      const data = readKeyFile(this.source.path);
      const k = data?.keys.find((x) => x.id === id);
      if (k) {
        const key = Buffer.from(k.key, 'base64');
        this.retired.set(id, key);
        return key;
      }
    }
    const where = this.source.kind === 'file' ? `the key file ${this.source.path}` : 'SLUICE_SECRET_KEYS';
    throw new KeyRingError(`an encrypted secret uses key "${id}", which is not in the key ring (${where} has: ${this.keyIds.join(', ')})`);
  }

  /**
   * Rotation with a key file, step 1: a new primary key, persisted with the old ones (which
   * keep decrypting until everything is re-encrypted). Returns the new key id. With configured
   * keys nothing changes: the configured primary is the target.
   */
  beginFileRotation(): string {
    if (this.source.kind !== 'file') return this.primaryId;
    const k = generateKey();
    const entries = [{ id: k.id, key: k.key.toString('base64'), createdAt: new Date().toISOString() }, ...this.fileKeys];
    writeKeyFile(this.source.path, { version: 1, keys: entries }, { exclusive: false });
    this.fileKeys = entries;
    this.keys = [k, ...this.keys];
    return k.id;
  }

  /** Rotation step 2 (after every secret was re-encrypted and committed): the file keeps only the primary. */
  finishFileRotation(): string[] {
    if (this.source.kind !== 'file') return [];
    const [primary, ...old] = this.keys;
    const entries = this.fileKeys.filter((e) => e.id === primary!.id);
    writeKeyFile(this.source.path, { version: 1, keys: entries }, { exclusive: false });
    this.fileKeys = entries;
    for (const k of old) this.retired.set(k.id, k.key);
    this.keys = [primary!];
    return old.map((k) => k.id);
  }
}

/** The additional authenticated data of a v2 ciphertext (a key id never contains ':'). */
function aad(header: string, binding: string): Buffer {
  return Buffer.from(`${header}:${binding}`, 'utf8');
}

function readKeyFile(file: string): KeyFile | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new KeyRingError(`cannot read the secret key file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let text: string;
  try {
    checkPermissions(file, fs.fstatSync(fd));
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KeyRingError(`the secret key file ${file} is not valid JSON`);
  }
  const p = parsed as Partial<KeyFile>;
  if (!p || p.version !== 1 || !Array.isArray(p.keys) || p.keys.length === 0) {
    throw new KeyRingError(`the secret key file ${file} is not a version-1 key file with at least one key`);
  }
  const seen = new Set<string>();
  p.keys.forEach((k, i) => {
    const id = (k as { id?: unknown })?.id;
    if (typeof id !== 'string' || !KEY_ID.test(id)) throw new KeyRingError(`the secret key file ${file}: key ${i + 1} has an invalid id`);
    if (seen.has(id)) throw new KeyRingError(`the secret key file ${file}: key id "${id}" appears twice`);
    seen.add(id);
    if (typeof k.key !== 'string' || !decodeKey(k.key)) throw new KeyRingError(`the secret key file ${file}: key "${id}" is not base64 of ${KEY_BYTES} bytes`);
  });
  return p as KeyFile;
}

function checkPermissions(file: string, st: fs.Stats): void {
  if (process.platform === 'win32') return;
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new KeyRingError(
      `the secret key file ${file} is accessible by group or others (mode ${mode}); refusing to use it. ` +
        `If nobody else could have read it, restrict it with: chmod 600 ${file}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    throw new KeyRingError(`the secret key file ${file} belongs to another user (uid ${st.uid}); refusing to use it`);
  }
}

/**
 * Writes the key file atomically with mode 0600: a temporary file in the same directory,
 * fsync, then rename (or link when `exclusive`: fails if the file exists, returning false),
 * then fsync of the directory.
 */
function writeKeyFile(file: string, data: KeyFile, opts: { exclusive: boolean }): boolean {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
    fs.writeFileSync(fd, `${JSON.stringify(data, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  let written = true;
  try {
    if (opts.exclusive) {
      try {
        fs.linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        written = false;
      }
    } else {
      fs.renameSync(tmp, file);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  syncDir(dir);
  return written;
}

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not supported everywhere (e.g. Windows); the rename itself is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
