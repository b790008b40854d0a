/**
 * Authentications (Algolia-style): named, reusable credentials that connectors reference.
 *
 * Contract:
 * - Types and their params (* = secret): BASIC (username, password*), API_KEY (name, in
 *   HEADER|QUERY, key*), BEARER (token*), OAUTH2_CLIENT_CREDENTIALS (tokenUrl, clientId,
 *   clientSecret*, scope?, audience?, clientAuthentication BASIC|BODY).
 * - Exactly one typed params object is given on create; at most one on update (none: only the
 *   name changes). Anything else is a ValidationError with the field's path.
 * - Secrets are stored as key-ring ciphertext bound to the row and field
 *   (`authentication:<id>:config.<field>`) and never returned: `masked` gives PLACEHOLDER.
 *   On update, PLACEHOLDER keeps the stored secret of the same type (its ciphertext is kept
 *   as is); a type change needs every secret anew.
 * - Deleting an authentication a connector references is IN_USE.
 * - `httpAuth` decrypts one for a driver (job start, check, discover, preview): nowhere else
 *   is a secret in clear.
 */
import { globalId } from '../../ids.js';
import type { PrismaClient } from '../../db/client.js';
import { authSecrets, type HttpAuth } from '../../engine/drivers/http/auth.js';
import type { Authentication, Prisma } from '../../generated/prisma/client.js';
import { ConflictError, InUseError, NotFoundError, ValidationError, type FieldError } from '../../errors.js';
import type { KeyRing } from '../../security/keyring.js';
import { newRowId } from '../../db/ids.js';
import { differingSecrets, maskSecrets, mergeSecrets, ownerOf, resealSecrets, sealSecrets, type ResealOptions } from '../connector/secrets.js';
import { requireWorkspaceId } from '../../tenancy/scope.js';
import type { EventService, Tx } from '../event/event.service.js';
import type { NewEvent } from '../event/event.types.js';

export type AuthenticationType = 'BASIC' | 'API_KEY' | 'BEARER' | 'OAUTH2_CLIENT_CREDENTIALS';

export interface BasicParams {
  username: string;
  password: string;
}
export interface ApiKeyParams {
  name: string;
  in?: 'HEADER' | 'QUERY' | null;
  key: string;
}
export interface BearerParams {
  token: string;
}
export interface OAuth2ClientCredentialsParams {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string | null;
  audience?: string | null;
  clientAuthentication?: 'BASIC' | 'BODY' | null;
}

/** One typed params object per type; exactly one (create) or at most one (update) is given. */
export interface AuthenticationParamsInput {
  basic?: BasicParams | null;
  apiKey?: ApiKeyParams | null;
  bearer?: BearerParams | null;
  oauth2ClientCredentials?: OAuth2ClientCredentialsParams | null;
}

export interface CreateAuthenticationInput extends AuthenticationParamsInput {
  name: string;
}

export interface UpdateAuthenticationInput extends AuthenticationParamsInput {
  id: string;
  name?: string | null;
  expectedVersion?: number | null;
}

/** Stored params (secret fields hold ciphertext), as returned by `masked` with placeholders. */
export type StoredParams = Record<string, string | null>;

export type AuthenticationRow = Authentication;

const FIELDS = {
  basic: 'BASIC',
  apiKey: 'API_KEY',
  bearer: 'BEARER',
  oauth2ClientCredentials: 'OAUTH2_CLIENT_CREDENTIALS',
} as const satisfies Record<keyof AuthenticationParamsInput, AuthenticationType>;

export type ParamsField = keyof typeof FIELDS;

/** The write-only params of each type. */
export const SECRET_FIELDS: Record<AuthenticationType, readonly string[]> = {
  BASIC: ['password'],
  API_KEY: ['key'],
  BEARER: ['token'],
  OAUTH2_CLIENT_CREDENTIALS: ['clientSecret'],
};

/** HTTP header field-name token (RFC 9110). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function requireName(name: string | null | undefined): string {
  const n = (name ?? '').trim();
  if (!n) throw new ValidationError('invalid name', [{ path: 'name', message: 'must not be empty' }]);
  if (n.length > 200) throw new ValidationError('invalid name', [{ path: 'name', message: 'at most 200 characters' }]);
  return n;
}

/** The one params object given, or null (none); more than one is a validation error. */
function pickParams(input: AuthenticationParamsInput, required: boolean): { field: ParamsField; type: AuthenticationType; params: Record<string, unknown> } | null {
  const given = (Object.keys(FIELDS) as ParamsField[]).filter((f) => input[f] != null);
  const all = Object.keys(FIELDS).join(', ');
  if (given.length > 1) {
    throw new ValidationError('one authentication type at a time', given.slice(1).map((f) => ({ path: f, message: `give exactly one of ${all}; ${given[0]} is already given` })));
  }
  if (given.length === 0) {
    if (required) throw new ValidationError('authentication params missing', [{ path: 'input', message: `give exactly one of ${all}` }]);
    return null;
  }
  const field = given[0]!;
  return { field, type: FIELDS[field], params: input[field] as unknown as Record<string, unknown> };
}

/**
 * Validates typed params; returns the normalized plaintext params (placeholders left in place
 * for secret fields, resolved by the caller).
 */
function normalize(field: ParamsField, type: AuthenticationType, p: Record<string, unknown>): StoredParams {
  const errors: FieldError[] = [];
  const str = (key: string, opts: { required?: boolean; max?: number; header?: boolean } = {}): string | null => {
    const v = p[key];
    if (v === undefined || v === null || v === '') {
      if (opts.required) errors.push({ path: `${field}.${key}`, message: 'is required' });
      return null;
    }
    if (typeof v !== 'string') {
      errors.push({ path: `${field}.${key}`, message: 'must be a string' });
      return null;
    }
    if (v.length > (opts.max ?? 4096)) errors.push({ path: `${field}.${key}`, message: `at most ${opts.max ?? 4096} characters` });
    // Values that end up in headers must not carry control characters (header injection).
    if (opts.header && CONTROL.test(v)) errors.push({ path: `${field}.${key}`, message: 'must not contain control characters' });
    return v;
  };
  let out: StoredParams;
  switch (type) {
    case 'BASIC': {
      const username = str('username', { required: true, max: 512, header: true });
      if (username?.includes(':')) errors.push({ path: `${field}.username`, message: 'must not contain ":" (RFC 7617)' });
      out = { username, password: str('password', { required: true, header: true }) };
      break;
    }
    case 'API_KEY': {
      const name = str('name', { required: true, max: 256 });
      const where = (p.in as string | null | undefined) ?? 'HEADER';
      if (where !== 'HEADER' && where !== 'QUERY') errors.push({ path: `${field}.in`, message: 'must be HEADER or QUERY' });
      if (name && where === 'HEADER' && !HEADER_NAME.test(name)) errors.push({ path: `${field}.name`, message: 'must be a valid HTTP header name' });
      out = { name, in: where, key: str('key', { required: true, header: where === 'HEADER' }) };
      break;
    }
    case 'BEARER':
      out = { token: str('token', { required: true, header: true }) };
      break;
    case 'OAUTH2_CLIENT_CREDENTIALS': {
      const tokenUrl = str('tokenUrl', { required: true, max: 2048 });
      if (tokenUrl) {
        let u: URL | null = null;
        try {
          u = new URL(tokenUrl);
        } catch {
          u = null;
        }
        if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) errors.push({ path: `${field}.tokenUrl`, message: 'must be an absolute http(s) URL' });
        else if (u.username || u.password) errors.push({ path: `${field}.tokenUrl`, message: 'must not carry credentials: use clientId and clientSecret' });
      }
      const clientAuthentication = (p.clientAuthentication as string | null | undefined) ?? 'BASIC';
      if (clientAuthentication !== 'BASIC' && clientAuthentication !== 'BODY') {
        errors.push({ path: `${field}.clientAuthentication`, message: 'must be BASIC or BODY' });
      }
      out = {
        tokenUrl,
        clientId: str('clientId', { required: true, max: 1024 }),
        clientSecret: str('clientSecret', { required: true }),
        scope: str('scope', { max: 2048 }),
        audience: str('audience', { max: 2048 }),
        clientAuthentication,
      };
      break;
    }
  }
  if (errors.length) throw new ValidationError('invalid authentication', errors);
  return out;
}

/** Rotation and start-up: the stored params with the secrets that need it re-sealed under the primary key, bound to the row. */
export function resealAuthentication(
  row: Pick<AuthenticationRow, 'id' | 'type' | 'config'>,
  ring: KeyRing,
  options: ResealOptions = {},
): { config: StoredParams; changed: number; unreadable: string[] } {
  return resealSecrets(SECRET_FIELDS[row.type], row.config ?? {}, ring, ownerOf('authentication', row.id), options) as { config: StoredParams; changed: number; unreadable: string[] };
}

export class AuthenticationService {
  constructor(
    private readonly db: PrismaClient,
    private readonly ring: KeyRing,
    /** Changes are recorded as events in their own transaction. */
    private readonly events: EventService,
  ) {}

  /** Runs `fn` in a transaction that also appends its event. */
  private write<T>(fn: (tx: Tx) => Promise<T>, event: (row: T) => NewEvent): Promise<T> {
    return this.events.transaction(async (tx, emit) => {
      const row = await fn(tx);
      await emit(event(row));
      return row;
    });
  }

  async get(id: string): Promise<AuthenticationRow> {
    const a = await this.db.authentication.findUnique({ where: { id } });
    if (!a) throw new NotFoundError('Authentication', id);
    return a;
  }

  /** Params for responses: non-secret values as stored, secrets as PLACEHOLDER. */
  masked(row: Pick<AuthenticationRow, 'type' | 'config'>): StoredParams {
    return maskSecrets(SECRET_FIELDS[row.type], row.config ?? {}) as StoredParams;
  }

  /** Encrypts the secret fields; a placeholder keeps the stored value of the same type. */
  private seal(id: string, field: ParamsField, type: AuthenticationType, plain: StoredParams, current: AuthenticationRow | null): StoredParams {
    const paths = SECRET_FIELDS[type];
    const otherType = current && current.type !== type;
    // Kept raw: the stored ciphertext stays as is; legacy clear text gets encrypted now.
    const merged = mergeSecrets(paths, plain, otherType ? null : current?.config, null, {
      title: 'invalid authentication',
      at: field,
      message: otherType ? `the placeholder keeps a stored secret, but this authentication is ${current.type}: send the value` : 'the placeholder keeps a stored secret, but none is stored: send the value',
    });
    return sealSecrets(paths, merged.config, this.ring, ownerOf('authentication', id), merged.kept, field) as StoredParams;
  }

  /**
   * Config as code (plan): the params validated exactly as create does (one typed params
   * object, required values, formats), normalized (defaults filled in, secrets in clear);
   * nothing is stored. Throws ValidationError with create's paths (`apiKey.key`, `input`).
   */
  normalizeParams(input: AuthenticationParamsInput): { field: ParamsField; type: AuthenticationType; params: StoredParams } {
    const picked = pickParams(input, true)!;
    return { field: picked.field, type: picked.type, params: normalize(picked.field, picked.type, picked.params) };
  }

  /**
   * Config as code (plan): the secret params of a stored authentication whose value differs
   * from `plain` (params of `type`, in clear), compared decrypted here; every secret of `type`
   * when the stored type is another. Only field names are returned, never a value.
   */
  changedSecrets(row: Pick<AuthenticationRow, 'id' | 'type' | 'config'>, type: AuthenticationType, plain: StoredParams): string[] {
    if (row.type !== type) return [...SECRET_FIELDS[type]];
    return differingSecrets(SECRET_FIELDS[type], row.config ?? {}, plain, this.ring, ownerOf('authentication', row.id));
  }

  async create(input: CreateAuthenticationInput): Promise<AuthenticationRow> {
    const name = requireName(input.name);
    const picked = pickParams(input, true)!;
    // The id exists before the insert: the secrets are sealed bound to it.
    const id = newRowId();
    const config = this.seal(id, picked.field, picked.type, normalize(picked.field, picked.type, picked.params), null);
    return this.write(
      (tx) => tx.authentication.create({ data: { id, workspaceId: requireWorkspaceId(), name, type: picked.type, config: config as Prisma.InputJsonValue } }),
      (row) => ({ type: 'AUTHENTICATION_CREATED', message: `authentication "${row.name}" (${row.type}) created`, data: { authenticationId: row.id, type: row.type } }),
    );
  }

  async update(input: UpdateAuthenticationInput): Promise<AuthenticationRow> {
    const current = await this.get(input.id);
    const name = input.name == null ? current.name : requireName(input.name);
    const picked = pickParams(input, false);
    const data: Prisma.AuthenticationUpdateManyMutationInput = { name, version: { increment: 1 } };
    if (picked) {
      data.type = picked.type;
      data.config = this.seal(current.id, picked.field, picked.type, normalize(picked.field, picked.type, picked.params), current) as Prisma.InputJsonValue;
    } else {
      // Any write encrypts what is still legacy clear text (or unbound, or under an old key); a value that does not open stays as it is.
      data.config = resealAuthentication(current, this.ring, { skipUnreadable: true }).config as Prisma.InputJsonValue;
    }
    const res = await this.write(
      (tx) => tx.authentication.updateMany({ where: { id: current.id, version: input.expectedVersion ?? current.version }, data }),
      () => ({ type: 'AUTHENTICATION_UPDATED', message: `authentication "${name}" updated`, data: { authenticationId: current.id, type: data.type ?? current.type } }),
    );
    if (res.count === 0) {
      const now = await this.db.authentication.findUnique({ where: { id: current.id } });
      if (!now) throw new NotFoundError('Authentication', current.id);
      throw new ConflictError(`authentication was changed concurrently (version ${now.version})`, now.version);
    }
    return this.get(current.id);
  }

  async delete(id: string): Promise<AuthenticationRow> {
    const a = await this.get(id);
    return this.write(async (tx) => {
      const users = await tx.connector.findMany({ where: { authenticationId: id }, select: { id: true, name: true }, orderBy: { name: 'asc' } });
      if (users.length) {
        throw new InUseError(
          `authentication "${a.name}" is used by ${users.length} connector(s): ${users.map((u) => u.name).join(', ')}`,
          users.map((u) => globalId('Connector', u.id)),
        );
      }
      await tx.authentication.delete({ where: { id } });
      return a;
    }, (row) => ({ type: 'AUTHENTICATION_DELETED', message: `authentication "${row.name}" deleted`, data: { authenticationId: row.id, type: row.type } }));
  }

  /**
   * The decrypted credentials of an authentication for a driver, and its secret values (to
   * scrub from messages). `db` may be a transaction. Throws NotFoundError / KeyRingError.
   */
  async httpAuth(id: string, db: Pick<PrismaClient, 'authentication'> = this.db): Promise<{ auth: HttpAuth; secrets: string[] }> {
    const row = await db.authentication.findUnique({ where: { id } });
    if (!row) throw new NotFoundError('Authentication', id);
    return this.toHttpAuth(row);
  }

  toHttpAuth(row: Pick<AuthenticationRow, 'id' | 'type' | 'config'>): { auth: HttpAuth; secrets: string[] } {
    const auth = this.decrypted(row);
    return { auth, secrets: authSecrets(auth) };
  }

  private decrypted(row: Pick<AuthenticationRow, 'id' | 'type' | 'config'>): HttpAuth {
    const c = (row.config ?? {}) as StoredParams;
    const owner = ownerOf('authentication', row.id);
    const secret = (f: string) => (typeof c[f] === 'string' ? this.ring.decrypt(c[f], `${owner}.${f}`) : '');
    const s = (f: string) => (typeof c[f] === 'string' ? c[f] : '');
    switch (row.type) {
      case 'BASIC':
        return { type: 'basic', username: s('username'), password: secret('password') };
      case 'API_KEY':
        return { type: 'apiKey', name: s('name'), value: secret('key'), in: c.in === 'QUERY' ? 'query' : 'header' };
      case 'BEARER':
        return { type: 'bearer', token: secret('token') };
      case 'OAUTH2_CLIENT_CREDENTIALS':
        return {
          type: 'oauth2ClientCredentials',
          tokenUrl: s('tokenUrl'),
          clientId: s('clientId'),
          clientSecret: secret('clientSecret'),
          scope: c.scope ?? null,
          audience: c.audience ?? null,
          clientAuth: c.clientAuthentication === 'BODY' ? 'body' : 'basic',
        };
    }
  }
}
