/**
 * Inline HTTP authentication shared by the http source and the webhook destination.
 *
 * Deliberately isolated: a later change replaces inline credentials by a reference to a stored
 * authentication (Algolia-style `authenticationID`); only `authSchema` and `applyAuth` change.
 * Secret fields carry `"secret": true`, so the API masks them (`auth.password`, `auth.token`,
 * `auth.value`).
 */
import { DriverError, type JsonSchema } from './types.js';

export type HttpAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password?: string }
  | { type: 'bearer'; token: string }
  | { type: 'apiKey'; name: string; value: string; in?: 'header' | 'query' };

export const authSchema: JsonSchema = {
  type: 'object',
  title: 'Authentication',
  description:
    'Inline credentials: none, basic (username/password), bearer (token) or apiKey (a header or query parameter). ' +
    'Secrets are write-only. Credentials are never sent to another origin after a redirect.',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: ['none', 'basic', 'bearer', 'apiKey'], title: 'Type', description: 'Authentication scheme.', default: 'none' },
    username: { type: 'string', title: 'Username', description: 'basic: user name.' },
    password: { type: 'string', title: 'Password', description: 'basic: password.', secret: true },
    token: { type: 'string', minLength: 1, title: 'Token', description: 'bearer: token sent as `Authorization: Bearer <token>`.', secret: true },
    name: {
      type: 'string',
      minLength: 1,
      title: 'Key name',
      description: 'apiKey: header name (e.g. X-API-Key) or query parameter name (e.g. api_key).',
    },
    value: { type: 'string', minLength: 1, title: 'Key value', description: 'apiKey: the key.', secret: true },
    in: { type: 'string', enum: ['header', 'query'], title: 'Key location', description: 'apiKey: where the key goes.', default: 'header' },
  },
  allOf: [
    { if: { properties: { type: { const: 'basic' } } }, then: { required: ['username'] } },
    { if: { properties: { type: { const: 'bearer' } } }, then: { required: ['token'] } },
    { if: { properties: { type: { const: 'apiKey' } } }, then: { required: ['name', 'value'] } },
  ],
};

export interface AppliedAuth {
  /** Header names carrying credentials (dropped on cross-origin redirects). */
  sensitiveHeaders: string[];
  /** Query parameter names carrying credentials (redacted in messages). */
  secretQueryParams: string[];
}

/**
 * Adds the credentials of `auth` to `headers` (mutated) and `url` (mutated); returns which
 * header/query names are sensitive. Throws a DriverError for an incomplete config.
 */
export function applyAuth(auth: HttpAuth | null | undefined, headers: Record<string, string>, url: URL, label: string): AppliedAuth {
  const out: AppliedAuth = { sensitiveHeaders: [], secretQueryParams: [] };
  if (!auth || auth.type === 'none') return out;
  switch (auth.type) {
    case 'basic': {
      if (typeof auth.username !== 'string') throw new DriverError(`${label}: auth.username is required for basic authentication`);
      const token = Buffer.from(`${auth.username}:${auth.password ?? ''}`, 'utf8').toString('base64');
      setHeader(headers, 'authorization', `Basic ${token}`);
      return out;
    }
    case 'bearer':
      if (typeof auth.token !== 'string' || auth.token === '') throw new DriverError(`${label}: auth.token is required for bearer authentication`);
      setHeader(headers, 'authorization', `Bearer ${auth.token}`);
      return out;
    case 'apiKey': {
      if (typeof auth.name !== 'string' || auth.name === '' || typeof auth.value !== 'string') {
        throw new DriverError(`${label}: auth.name and auth.value are required for apiKey authentication`);
      }
      if ((auth.in ?? 'header') === 'query') {
        url.searchParams.set(auth.name, auth.value);
        out.secretQueryParams.push(auth.name);
      } else {
        setHeader(headers, auth.name, auth.value);
        out.sensitiveHeaders.push(auth.name.toLowerCase());
      }
      return out;
    }
    default:
      throw new DriverError(`${label}: unknown auth.type ${JSON.stringify((auth as { type: unknown }).type)}`);
  }
}

/** Sets a header, replacing any same-named one regardless of case. */
function setHeader(headers: Record<string, string>, name: string, value: string): void {
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name.toLowerCase()) delete headers[k];
  headers[name] = value;
}
