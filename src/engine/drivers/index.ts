/**
 * Driver registry and config validation.
 *
 * `validateConfig` validates a connector config against its driver's JSON Schema with one
 * shared Ajv instance (validators compiled once per driver), fills in schema defaults on a
 * copy (the caller's object is never mutated) and reports errors as `{ path, message }` with
 * dotted paths (`columnTypes.price`).
 */
import AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { csvSource } from './file/csv.source.js';
import { jsonlDestination } from './file/jsonl.destination.js';
import { sqliteDestination } from './sqlite/sqlite.destination.js';
import { jsonSource } from './file/json.source.js';
import { httpSource } from './http/http.source.js';
import { generatorSource } from './generator.source.js';
import { nullDestination } from './null.destination.js';
import { fileDestination } from './file/file.destination.js';
import { webhookDestination } from './http/webhook.destination.js';
import { postgresSource } from './postgres/postgres.source.js';
import { postgresDestination } from './postgres/postgres.destination.js';
import { sqliteSource } from './sqlite/sqlite.source.js';
import type { ConfigError, ConnectorRole, DestinationDriver, Driver, JsonSchema, SourceDriver } from './types.js';

export * from './types.js';

export const drivers: Driver[] = [csvSource, sqliteDestination, jsonlDestination, jsonSource, httpSource, generatorSource, nullDestination, fileDestination, webhookDestination, postgresSource, postgresDestination, sqliteSource];

const byName = new Map<string, Driver>();
for (const d of drivers) {
  if (byName.has(d.name)) throw new Error(`duplicate driver name "${d.name}"`);
  byName.set(d.name, d);
}

export function getDriver(name: string): Driver | undefined {
  return byName.get(name);
}

export function getSourceDriver(name: string): SourceDriver | undefined {
  const d = byName.get(name);
  return d?.role === 'SOURCE' ? d : undefined;
}

export function getDestinationDriver(name: string): DestinationDriver | undefined {
  const d = byName.get(name);
  return d?.role === 'DESTINATION' ? d : undefined;
}

export function listDrivers(role?: ConnectorRole): Driver[] {
  return role ? drivers.filter((d) => d.role === role) : drivers.slice();
}

// ---------------------------------------------------------------------------------------------
// Config validation.

// ajv and ajv-formats are CommonJS; under NodeNext their default export is the module object,
// whose `.default` is the class/plugin (it is also the module itself at runtime).
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
addFormats(ajv);

const validators = new WeakMap<Driver, ValidateFunction>();

function validatorFor(driver: Driver): ValidateFunction {
  let v = validators.get(driver);
  if (!v) {
    v = ajv.compile(driver.configSchema);
    validators.set(driver, v);
  }
  return v;
}

export type ValidateConfigResult<C = Record<string, unknown>> = { ok: true; config: C } | { ok: false; errors: ConfigError[] };

function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function toConfigErrors(errors: ErrorObject[]): ConfigError[] {
  const out: ConfigError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const at = pointerToPath(e.instancePath);
    let item: ConfigError;
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'required':
        item = { path: join(at, String(p.missingProperty)), message: 'is required' };
        break;
      case 'additionalProperties': {
        const prop = String(p.additionalProperty);
        item = { path: join(at, prop), message: `unknown property "${prop}"` };
        break;
      }
      case 'enum':
        item = {
          path: at,
          message: `must be one of: ${((p.allowedValues as unknown[]) ?? []).map(describe).join(', ')}`,
        };
        break;
      case 'type':
        item = { path: at, message: `must be ${String(p.type)}` };
        break;
      case 'const':
        item = { path: at, message: `must be ${describe(p.allowedValue)}` };
        break;
      case 'pattern':
        item = { path: at, message: `has an invalid format (must match ${String(p.pattern)})` };
        break;
      default:
        item = { path: at, message: e.message ?? `fails ${e.keyword}` };
    }
    const key = `${item.path}\0${item.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(item);
    }
  }
  return out;
}

/**
 * Validates `config` against the driver's schema. On success returns a copy with schema
 * defaults filled in.
 */
export function validateConfig<C = Record<string, unknown>>(driver: Driver, config: unknown): ValidateConfigResult<C> {
  let copy: unknown;
  try {
    copy = config === undefined ? undefined : structuredClone(config);
  } catch {
    return { ok: false, errors: [{ path: '', message: 'must be plain JSON data' }] };
  }
  const validate = validatorFor(driver);
  if (validate(copy)) return { ok: true, config: copy as C };
  return { ok: false, errors: toConfigErrors(validate.errors ?? []) };
}

/**
 * Config property paths marked `"secret": true` in the driver's schema, e.g. `password` or
 * `auth.token`. Array items appear as `list[]`, map values (additionalProperties) as `map.*`.
 */
export function secretPaths(driver: Driver): string[] {
  return markedPaths(driver, 'secret');
}

/**
 * Config property paths marked `"origin": true`: the fields that decide where the driver's
 * requests or connections go (a URL, a host, a port, a database). Stored secrets do not
 * follow a change of them (ConnectorService.update).
 */
export function originPaths(driver: Driver): string[] {
  return markedPaths(driver, 'origin');
}

/**
 * The origin of a config, by origin path (top-level and nested properties, present ones only):
 * a URL is reduced to its origin (`https://host:port`; for other schemes, such as
 * `postgresql://`, the URL without credentials and fragment), any other value is kept as is.
 */
export function originOf(driver: Driver, config: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const path of originPaths(driver)) {
    let v: unknown = config;
    for (const seg of path.split('.')) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[seg] : undefined;
    if (v !== undefined && v !== null && v !== '') out.set(path, originValue(v));
  }
  return out;
}

function originValue(v: unknown): string {
  if (typeof v === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    try {
      const u = new URL(v);
      if (u.origin !== 'null') return u.origin;
      u.username = '';
      u.password = '';
      u.hash = '';
      return u.toString();
    } catch {
      // not a URL after all: compared as written
    }
  }
  return JSON.stringify(v);
}

function markedPaths(driver: Driver, keyword: 'secret' | 'origin'): string[] {
  const found = new Set<string>();
  const walk = (schema: unknown, at: string, depth: number): void => {
    if (!schema || typeof schema !== 'object' || depth > 20) return;
    const s = schema as JsonSchema;
    if (s[keyword] === true && at !== '') found.add(at);
    const props = s.properties;
    if (props && typeof props === 'object') {
      for (const [k, sub] of Object.entries(props as Record<string, unknown>)) walk(sub, join(at, k), depth + 1);
    }
    if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, join(at, '*'), depth + 1);
    if (s.items && typeof s.items === 'object') walk(s.items, `${at}[]`, depth + 1);
    for (const key of ['allOf', 'anyOf', 'oneOf']) {
      const branches = s[key];
      if (Array.isArray(branches)) for (const b of branches) walk(b, at, depth + 1);
    }
    for (const key of ['then', 'else']) walk(s[key], at, depth + 1);
  };
  walk(driver.configSchema, '', 0);
  return [...found];
}
