/**
 * Write-only, encrypted config fields: what a driver's spec marks `"secret": true`.
 *
 * - Stored: every non-empty secret string is key-ring ciphertext (`enc:v1:…`); a value without
 *   that prefix is legacy clear text from before encryption and is encrypted at the next write
 *   or key rotation.
 * - Returned: PLACEHOLDER instead of the value. Sending PLACEHOLDER back keeps the stored
 *   ciphertext unchanged; any other incoming value is plaintext and is encrypted (an incoming
 *   `enc:v1:…` string is a literal value, never decrypted).
 * - Decrypted only for a driver (`openSecrets`), right before it uses the config.
 *
 * Secret paths come from `secretPaths` (dots; `*` = every key of a map, `[]` = every item).
 */
import { getDriver, secretPaths } from '../../engine/drivers/index.js';
import type { FieldError } from '../../errors.js';
import { ValidationError } from '../../errors.js';
import { isCiphertext, type KeyRing } from '../../security/keyring.js';
import { PLACEHOLDER } from '../../security/secrets-redact.js';

export { PLACEHOLDER };

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

/** Where the driver's secret fields are in `config` (only those present). */
function locations(driverName: string, config: unknown): Location[] {
  const driver = getDriver(driverName);
  if (!driver || !config || typeof config !== 'object') return [];
  const out: Location[] = [];
  const seen = new Set<string>();
  for (const p of secretPaths(driver)) {
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
export function maskSecrets(driverName: string, config: unknown): unknown {
  if (!config || typeof config !== 'object') return config;
  const copy = structuredClone(config);
  for (const l of locations(driverName, copy)) if (present(get(l))) set(l, PLACEHOLDER);
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

/**
 * Replaces placeholders in `incoming` by the stored values from `stored` (raw: the stored
 * ciphertext stays ciphertext).
 */
export function keepSecrets(driverName: string, incoming: unknown, stored: unknown): unknown {
  if (!incoming || typeof incoming !== 'object') return incoming;
  const copy = structuredClone(incoming);
  for (const l of locations(driverName, copy)) if (get(l) === PLACEHOLDER) set(l, storedAt(stored, l.path));
  return copy;
}

export interface MergedConfig {
  /** Plaintext config to validate (placeholders replaced by the decrypted stored values). */
  config: unknown;
  /** Stored values kept through a placeholder, by concrete path. */
  kept: Map<string, string>;
}

/**
 * Step 1 of a write: `incoming` with placeholders resolved against `stored` (decrypted, for
 * validation). A placeholder where nothing is stored is a validation error.
 */
export function mergeSecrets(driverName: string, incoming: unknown, stored: unknown, ring: KeyRing): MergedConfig {
  const kept = new Map<string, string>();
  if (!incoming || typeof incoming !== 'object') return { config: incoming, kept };
  const copy = structuredClone(incoming);
  const errors: FieldError[] = [];
  for (const l of locations(driverName, copy)) {
    if (get(l) !== PLACEHOLDER) continue;
    const old = storedAt(stored, l.path);
    if (typeof old !== 'string' || old === '') {
      errors.push({ path: `config.${l.path}`, message: `the placeholder keeps a stored secret, but none is stored here: send the value` });
      continue;
    }
    kept.set(l.path, old);
    set(l, ring.decrypt(old));
  }
  if (errors.length) throw new ValidationError('invalid config', errors);
  return { config: copy, kept };
}

/**
 * Step 2 of a write: the validated plaintext config with every secret encrypted. A secret kept
 * through a placeholder keeps its stored ciphertext as is (legacy clear text gets encrypted).
 */
export function sealSecrets(driverName: string, config: unknown, ring: KeyRing, kept: Map<string, string> = new Map()): unknown {
  if (!config || typeof config !== 'object') return config;
  const copy = structuredClone(config);
  for (const l of locations(driverName, copy)) {
    const v = get(l);
    const old = kept.get(l.path);
    if (old !== undefined && isCiphertext(old)) set(l, old);
    else if (typeof v === 'string' && v !== '') set(l, ring.encrypt(v));
  }
  return copy;
}

/** The config a driver gets: every secret decrypted (legacy clear text passes through). */
export function openSecrets(driverName: string, config: unknown, ring: KeyRing): unknown {
  if (!config || typeof config !== 'object') return config;
  const copy = structuredClone(config);
  for (const l of locations(driverName, copy)) {
    const v = get(l);
    if (typeof v === 'string') set(l, ring.decrypt(v));
  }
  return copy;
}

/** Rotation: every secret re-encrypted under the primary key. `changed` counts rewritten values. */
export function resealSecrets(driverName: string, config: unknown, ring: KeyRing): { config: unknown; changed: number } {
  if (!config || typeof config !== 'object') return { config, changed: 0 };
  const copy = structuredClone(config);
  let changed = 0;
  for (const l of locations(driverName, copy)) {
    const v = get(l);
    if (typeof v === 'string' && v !== '' && ring.needsReseal(v)) {
      set(l, ring.reseal(v));
      changed++;
    }
  }
  return { config: copy, changed };
}

/** The plaintext secret values of a decrypted config (to scrub them from messages). */
export function secretValues(driverName: string, plainConfig: unknown): string[] {
  const out: string[] = [];
  for (const l of locations(driverName, plainConfig)) {
    const v = get(l);
    if (typeof v === 'string' && v !== '') out.push(v);
  }
  return out;
}
