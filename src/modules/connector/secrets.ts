/**
 * Write-only, encrypted config fields: what a driver's spec marks `"secret": true`.
 *
 * - Stored: every non-empty secret string is key-ring ciphertext (`enc:v2:…`) bound to its row
 *   and field: `<owner>.<path>`, the owner being `<table>:<row id>:<column>` (`ownerOf`), e.g.
 *   `connector:<id>:config.auth.token`. Copied into another row or field it does not open. A
 *   value without a prefix is legacy clear text from before encryption, `enc:v1:…` an unbound
 *   ciphertext from before binding: both are sealed as v2 at the next write, key rotation or start.
 * - Returned: PLACEHOLDER instead of the value. Sending PLACEHOLDER back keeps the stored
 *   ciphertext unchanged; any other incoming value is plaintext and is encrypted (an incoming
 *   `enc:…` string is a literal value, never decrypted).
 * - Decrypted only for a driver (`openSecrets`), right before it uses the config.
 *
 * Every helper takes the secret paths (dots; `*` = every key of a map, `[]` = every item): a
 * driver's from `driverSecretPaths`, an authentication's from its type.
 */
import { getDriver, secretPaths } from '../../engine/drivers/index.js';
import type { FieldError } from '../../errors.js';
import { ValidationError } from '../../errors.js';
import { bindingOf, isCiphertext, KeyRingError, type KeyRing } from '../../security/keyring.js';
import { PLACEHOLDER } from '../../security/secrets-redact.js';

type Container = Record<string, unknown> | unknown[];

interface Location {
  parent: Container;
  key: string | number;
  /** Concrete path, e.g. `auth.token`, `headers.X-Key`, `list.0.password`. */
  path: string;
}

function segmentsOf(pattern: string): string[] {
  const out: string[] = [];
  for (const part of pattern.split('.')) {
    let p = part;
    let arrays = 0;
    while (p.endsWith('[]')) {
      p = p.slice(0, -2);
      arrays++;
    }
    if (p !== '') out.push(p);
    for (let i = 0; i < arrays; i++) out.push('[]');
  }
  return out;
}

function collect(node: unknown, segs: string[], i: number, at: string, out: Location[]): void {
  if (!node || typeof node !== 'object') return;
  const seg = segs[i]!;
  const last = i === segs.length - 1;
  const visit = (parent: Container, key: string | number) => {
    const path = at === '' ? String(key) : `${at}.${key}`;
    if (last) out.push({ parent, key, path });
    else collect((parent as Record<string | number, unknown>)[key], segs, i + 1, path, out);
  };
  if (seg === '[]') {
    if (Array.isArray(node)) node.forEach((_v, k) => visit(node, k));
    return;
  }
  if (Array.isArray(node)) return;
  const o = node as Record<string, unknown>;
  if (seg === '*') {
    for (const k of Object.keys(o)) visit(o, k);
    return;
  }
  if (Object.prototype.hasOwnProperty.call(o, seg)) visit(o, seg);
}

/** The owner of a row's secrets: `<table>:<row id>:<column>`; each field's binding appends `.<path>`. */
export function ownerOf(table: 'connector' | 'authentication', rowId: string, column = 'config'): string {
  return bindingOf(table, rowId, column);
}

const bindingAt = (owner: string, l: Location) => `${owner}.${l.path}`;

/** The secret paths of a driver's config (none for an unknown driver). */
export function driverSecretPaths(driverName: string): string[] {
  const driver = getDriver(driverName);
  return driver ? secretPaths(driver) : [];
}

/** Where the secret fields at `paths` are in `config` (only those present). */
function locations(paths: readonly string[], config: unknown): Location[] {
  if (!config || typeof config !== 'object') return [];
  const out: Location[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    const found: Location[] = [];
    collect(config, segmentsOf(p), 0, '', found);
    for (const l of found) {
      if (seen.has(l.path)) continue;
      seen.add(l.path);
      out.push(l);
    }
  }
  return out;
}

function get(l: Location): unknown {
  return (l.parent as Record<string | number, unknown>)[l.key];
}

function set(l: Location, v: unknown): void {
  (l.parent as Record<string | number, unknown>)[l.key] = v;
}

const present = (v: unknown) => v !== null && v !== undefined && v !== '';

/** The config with every secret value replaced by PLACEHOLDER (for responses). */
export function maskSecrets(paths: readonly string[], config: unknown): unknown {
  if (!config || typeof config !== 'object') return config;
  const copy = structuredClone(config);
  for (const l of locations(paths, copy)) if (present(get(l))) set(l, PLACEHOLDER);
  return copy;
}

/** The stored value at the same concrete path in `stored`, if any. */
function storedAt(stored: unknown, path: string): unknown {
  let cur: unknown = stored;
  for (const seg of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

export interface MergedConfig {
  /** Plaintext config to validate (placeholders replaced by the decrypted stored values). */
  config: unknown;
  /** Stored values kept through a placeholder, by concrete path. */
  kept: Map<string, string>;
}

/** How a placeholder with nothing stored behind it is reported (a ValidationError). */
export interface MissingSecret {
  /** The ValidationError's message. */
  title: string;
  /** Prefix of the field error paths. */
  at: string;
  /** The field error's message. */
  message: string;
}

const MISSING_IN_CONFIG: MissingSecret = {
  title: 'invalid config',
  at: 'config',
  message: 'the placeholder keeps a stored secret, but none is stored here: send the value',
};

/** A stored secret that does not open where it is (a KeyRingError) as a validation error at `path`. */
function unreadable<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof KeyRingError)) throw err;
    throw new ValidationError('stored secret unreadable', [{ path, message: `the stored secret cannot be decrypted (${err.message}): send the value` }]);
  }
}

/**
 * Step 1 of a write: `incoming` with placeholders resolved against `stored`: decrypted with
 * `open.ring` for the row `open.owner` (for validation), or raw when `open` is null. A
 * placeholder where nothing is stored, or where the stored value does not decrypt, is a
 * validation error, reported as `missing` says.
 */
export function mergeSecrets(
  paths: readonly string[],
  incoming: unknown,
  stored: unknown,
  open: { ring: KeyRing; owner: string } | null,
  missing: MissingSecret = MISSING_IN_CONFIG,
): MergedConfig {
  const kept = new Map<string, string>();
  if (!incoming || typeof incoming !== 'object') return { config: incoming, kept };
  const copy = structuredClone(incoming);
  const errors: FieldError[] = [];
  for (const l of locations(paths, copy)) {
    if (get(l) !== PLACEHOLDER) continue;
    const old = storedAt(stored, l.path);
    if (typeof old !== 'string' || old === '') {
      errors.push({ path: `${missing.at}.${l.path}`, message: missing.message });
      continue;
    }
    kept.set(l.path, old);
    set(l, open ? unreadable(`${missing.at}.${l.path}`, () => open.ring.decrypt(old, bindingAt(open.owner, l))) : old);
  }
  if (errors.length) throw new ValidationError(missing.title, errors);
  return { config: copy, kept };
}

/**
 * Step 2 of a write: the validated plaintext config of the row `owner` with every secret
 * sealed for its field. A secret kept through a placeholder keeps its stored ciphertext when it
 * is current (v2 under the primary key); older forms (clear text, v1, an old key) are re-sealed
 * for the field (`errorAt` prefixes the path of the validation error when one does not decrypt).
 */
export function sealSecrets(paths: readonly string[], config: unknown, ring: KeyRing, owner: string, kept: Map<string, string> = new Map(), errorAt = 'config'): unknown {
  if (!config || typeof config !== 'object') return config;
  const copy = structuredClone(config);
  for (const l of locations(paths, copy)) {
    const v = get(l);
    const old = kept.get(l.path);
    if (old !== undefined && isCiphertext(old)) set(l, unreadable(`${errorAt}.${l.path}`, () => ring.reseal(old, bindingAt(owner, l))));
    else if (typeof v === 'string' && v !== '') set(l, ring.encrypt(v, bindingAt(owner, l)));
  }
  return copy;
}

/**
 * The config a driver gets: every secret of the row `owner` decrypted (legacy clear text passes
 * through). A ciphertext that does not open for its field throws KeyRingError.
 */
export function openSecrets(paths: readonly string[], config: unknown, ring: KeyRing, owner: string): unknown {
  if (!config || typeof config !== 'object') return config;
  const copy = structuredClone(config);
  for (const l of locations(paths, copy)) {
    const v = get(l);
    if (typeof v === 'string') set(l, ring.decrypt(v, bindingAt(owner, l)));
  }
  return copy;
}

export interface ResealOptions {
  /** Which stored values to re-seal (default: `ring.needsReseal`: clear text, v1, an old key). */
  needs?: (value: string) => boolean;
  /** Leave a value that does not decrypt as it is and list its binding in `unreadable` (default: throw the KeyRingError). */
  skipUnreadable?: boolean;
}

/**
 * Every secret of the row `owner` that needs it re-sealed under the primary key for its field.
 * `changed` counts rewritten values; `unreadable` lists the bindings left as they were.
 */
export function resealSecrets(
  paths: readonly string[],
  config: unknown,
  ring: KeyRing,
  owner: string,
  options: ResealOptions = {},
): { config: unknown; changed: number; unreadable: string[] } {
  const unreadableAt: string[] = [];
  if (!config || typeof config !== 'object') return { config, changed: 0, unreadable: unreadableAt };
  const needs = options.needs ?? ((v: string) => ring.needsReseal(v));
  const copy = structuredClone(config);
  let changed = 0;
  for (const l of locations(paths, copy)) {
    const v = get(l);
    if (typeof v !== 'string' || v === '' || !needs(v)) continue;
    const binding = bindingAt(owner, l);
    let plain: string;
    try {
      plain = ring.decrypt(v, binding);
    } catch (err) {
      if (!(err instanceof KeyRingError) || !options.skipUnreadable) throw err;
      unreadableAt.push(binding);
      continue;
    }
    set(l, ring.encrypt(plain, binding));
    changed++;
  }
  return { config: copy, changed, unreadable: unreadableAt };
}

/** The plaintext secret values of a decrypted config (to scrub them from messages). */
export function secretValues(paths: readonly string[], plainConfig: unknown): string[] {
  const out: string[] = [];
  for (const l of locations(paths, plainConfig)) {
    const v = get(l);
    if (typeof v === 'string' && v !== '') out.push(v);
  }
  return out;
}

/**
 * Config as code: the key paths (segments; array indices as digit strings) of the present,
 * non-empty secret values of `config`. The dotted form of each (`segments.join('.')`) is the
 * concrete path `differingSecrets` reports.
 */
export function secretFieldPaths(paths: readonly string[], config: unknown): string[][] {
  return locations(paths, config)
    .filter((l) => present(get(l)))
    .map((l) => l.path.split('.'));
}

/**
 * Config as code: the concrete paths of the secrets of row `owner` whose stored value (in
 * `stored`, decrypted here) differs from the plaintext value in `plain`, present on one side
 * only included. A stored value that does not decrypt counts as different. No value leaves
 * this function.
 */
export function differingSecrets(paths: readonly string[], stored: unknown, plain: unknown, ring: KeyRing, owner: string): string[] {
  const out: string[] = [];
  const all = new Map<string, Location>();
  for (const l of locations(paths, stored)) if (present(get(l))) all.set(l.path, l);
  for (const l of locations(paths, plain)) if (present(get(l)) && !all.has(l.path)) all.set(l.path, l);
  for (const [path, l] of all) {
    const old = storedAt(stored, path);
    const next = storedAt(plain, path);
    if (!present(old) || !present(next) || typeof old !== 'string' || typeof next !== 'string') {
      if (present(old) !== present(next) || old !== next) out.push(path);
      continue;
    }
    let clear: string | null;
    try {
      clear = ring.decrypt(old, bindingAt(owner, l));
    } catch (err) {
      if (!(err instanceof KeyRingError)) throw err;
      clear = null;
    }
    if (clear !== next) out.push(path);
  }
  return out.sort();
}
