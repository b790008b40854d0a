/**
 * HTTP authentication shared by the http source and the webhook destination.
 *
 * - Inline credentials (`auth` in the connector config): none, basic, bearer, apiKey. Secret
 *   fields carry `"secret": true`, so the API masks them (`auth.password`, `auth.token`,
 *   `auth.value`) and stores them encrypted.
 * - A connector may instead reference a stored authentication (Algolia `authenticationID`):
 *   the control plane resolves and decrypts it and hands it to the driver as `auth`, which then
 *   may also be `oauth2ClientCredentials` (not offered inline).
 * - OAuth2 client credentials (RFC 6749 §4.4): POST to `tokenUrl`, form-encoded
 *   `grant_type=client_credentials` (+ `scope`, `audience`), the client authenticated with HTTP
 *   Basic (default) or in the body. The access token is cached per (token URL, client,
 *   secret, scope, audience) in this thread until shortly before `expires_in` (5 minutes when
 *   the server gives none); `invalidate()` after a 401 drops it so the caller re-fetches once.
 *   Token requests never follow redirects (the body carries the secret), go through the shared
 *   HTTP client (outbound guard, retries of 5xx/429/network errors), and their errors name the
 *   OAuth `error` code and description only: never the secret, the token or the raw body.
 * - `scrub(text)` removes every credential value (and the fetched access token) from a message;
 *   `scrubError` does it for an error.
 */
import crypto from 'node:crypto';
import { scrubberFor, scrubSecrets } from '../../../security/secrets-redact.js';
import { HttpError, redactUrl, requestText, type RequestPolicy } from './client.js';
import { DriverError, type JsonSchema } from '../types.js';

export interface OAuth2ClientCredentials {
  type: 'oauth2ClientCredentials';
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string | null;
  audience?: string | null;
  /** How the client authenticates to the token endpoint (default basic). */
  clientAuth?: 'basic' | 'body' | null;
}

export type HttpAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password?: string }
  | { type: 'bearer'; token: string }
  | { type: 'apiKey'; name: string; value: string; in?: 'header' | 'query' }
  | OAuth2ClientCredentials;

export const authSchema: JsonSchema = {
  type: 'object',
  title: 'Authentication',
  description:
    'Inline credentials: none, basic (username/password), bearer (token) or apiKey (a header or query parameter). ' +
    'Secrets are write-only and stored encrypted. Credentials are never sent to another origin after a redirect. ' +
    'A connector that references an authentication (authenticationId) uses it instead.',
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
 * Adds static credentials of `auth` to `headers` (mutated) and `url` (mutated); returns which
 * header/query names are sensitive. Throws a DriverError for an incomplete config, and for
 * OAuth2 (which needs a token request: use `HttpCredentials`).
 */
export function applyAuth(auth: HttpAuth | null | undefined, headers: Record<string, string>, url: URL, label: string): AppliedAuth {
  const out: AppliedAuth = { sensitiveHeaders: [], secretQueryParams: [] };
  if (!auth || auth.type === 'none') return out;
  switch (auth.type) {
    case 'basic': {
      if (typeof auth.username !== 'string') throw new DriverError(`${label}: auth.username is required for basic authentication`);
      setHeader(headers, 'authorization', `Basic ${basicToken(auth.username, auth.password ?? '')}`);
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
    case 'oauth2ClientCredentials':
      throw new DriverError(`${label}: OAuth2 client credentials need a token request (use HttpCredentials)`);
    default:
      throw new DriverError(`${label}: unknown auth.type ${JSON.stringify((auth as { type: unknown }).type)}`);
  }
}

function basicToken(user: string, pass: string): string {
  return Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
}

/** Sets a header, replacing any same-named one regardless of case. */
function setHeader(headers: Record<string, string>, name: string, value: string): void {
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name.toLowerCase()) delete headers[k];
  headers[name] = value;
}

/** The secret values of an auth config (for scrubbing messages). */
export function authSecrets(auth: HttpAuth | null | undefined): string[] {
  if (!auth) return [];
  switch (auth.type) {
    case 'basic':
      return auth.password ? [auth.password, basicToken(auth.username ?? '', auth.password)] : [];
    case 'bearer':
      return auth.token ? [auth.token] : [];
    case 'apiKey':
      return auth.value ? [auth.value] : [];
    case 'oauth2ClientCredentials':
      return auth.clientSecret ? [auth.clientSecret, basicToken(formEncode(auth.clientId ?? ''), formEncode(auth.clientSecret))] : [];
    default:
      return [];
  }
}

// ---------------------------------------------------------------------------------------------
// OAuth2 client credentials.

interface CachedToken {
  token: string;
  type: string;
  /** Epoch ms after which the token is not used any more. */
  refreshAt: number;
}

const tokenCache = new Map<string, CachedToken>();
const inFlight = new Map<string, Promise<CachedToken>>();
/** Lifetime assumed when the token response has no `expires_in`. */
const DEFAULT_TOKEN_TTL_S = 300;

function cacheKey(a: OAuth2ClientCredentials): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([a.tokenUrl, a.clientId, a.clientSecret, a.scope ?? '', a.audience ?? '', a.clientAuth ?? 'basic']))
    .digest('base64url');
}

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B). */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

/** Tokens are used until this long before they expire: 10 % of the lifetime, 1 s to 60 s. */
function refreshMarginS(lifetimeS: number): number {
  return Math.min(60, Math.max(1, lifetimeS * 0.1));
}

/** Drops every cached token (tests). */
export function clearTokenCache(): void {
  tokenCache.clear();
  inFlight.clear();
}

async function fetchToken(a: OAuth2ClientCredentials, label: string, policy: RequestPolicy): Promise<CachedToken> {
  const what = `${label}: OAuth2 token request to ${redactUrl(a.tokenUrl)}`;
  let url: URL;
  try {
    url = new URL(a.tokenUrl);
  } catch {
    throw new DriverError(`${label}: invalid OAuth2 token URL`);
  }
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (a.scope) form.set('scope', a.scope);
  if (a.audience) form.set('audience', a.audience);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if ((a.clientAuth ?? 'basic') === 'body') {
    form.set('client_id', a.clientId);
    form.set('client_secret', a.clientSecret);
  } else {
    headers.authorization = `Basic ${basicToken(formEncode(a.clientId), formEncode(a.clientSecret))}`;
  }
  let status: number;
  let text: string;
  try {
    const res = await requestText(url, { method: 'POST', headers, body: form.toString() }, {
      ...policy,
      label: `${label} (OAuth2 token)`,
      redirect: 'error',
      // 4xx answers carry an OAuth error document: read it here instead of failing with the raw body.
      acceptStatus: (s) => s < 500 && s !== 408 && s !== 429,
      maxBodyBytes: 1024 * 1024,
    });
    status = res.response.status;
    text = res.text;
  } catch (e) {
    const err = e as DriverError;
    throw new DriverError(scrubSecrets(err.message, authSecrets(a)), err.retryable ?? false);
  }
  let body: Record<string, unknown> | null = null;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    body = null;
  }
  if (status < 200 || status >= 300) {
    const code = typeof body?.error === 'string' ? body.error : null;
    const desc = typeof body?.error_description === 'string' ? body.error_description.slice(0, 200) : null;
    const detail = code ? `: ${code}${desc ? ` (${desc})` : ''}` : '';
    const refused = status === 400 || status === 401 || status === 403 ? ' (client credentials refused)' : '';
    throw new DriverError(scrubSecrets(`${what} failed with HTTP ${status}${refused}${detail}`, authSecrets(a)), false);
  }
  const token = body?.access_token;
  if (typeof token !== 'string' || token === '') throw new DriverError(`${what}: the response has no access_token`);
  const tokenType = typeof body?.token_type === 'string' ? body.token_type : 'Bearer';
  if (tokenType.toLowerCase() !== 'bearer') throw new DriverError(`${what}: unsupported token_type "${tokenType.slice(0, 40)}" (Bearer only)`);
  const raw = body?.expires_in;
  const expiresIn = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : null;
  const lifetime = expiresIn !== null && expiresIn > 0 ? expiresIn : DEFAULT_TOKEN_TTL_S;
  return { token, type: 'Bearer', refreshAt: Date.now() + (lifetime - refreshMarginS(lifetime)) * 1000 };
}

/** A valid access token for these client credentials: cached, or fetched (one request at a time per key). */
async function accessToken(a: OAuth2ClientCredentials, label: string, policy: RequestPolicy): Promise<CachedToken> {
  const key = cacheKey(a);
  const cached = tokenCache.get(key);
  if (cached && cached.refreshAt > Date.now()) return cached;
  let p = inFlight.get(key);
  if (!p) {
    p = fetchToken(a, label, policy)
      .then((t) => {
        tokenCache.set(key, t);
        return t;
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, p);
  }
  return p;
}

function checkOAuth2(a: OAuth2ClientCredentials, label: string): void {
  if (typeof a.tokenUrl !== 'string' || !/^https?:\/\//i.test(a.tokenUrl)) throw new DriverError(`${label}: OAuth2 tokenUrl must be an http(s) URL`);
  if (typeof a.clientId !== 'string' || a.clientId === '') throw new DriverError(`${label}: OAuth2 clientId is required`);
  if (typeof a.clientSecret !== 'string' || a.clientSecret === '') throw new DriverError(`${label}: OAuth2 clientSecret is required`);
}

/**
 * `e` with every credential value removed from its message: `e` itself when `scrub` changes
 * nothing, else a copy (an HttpError stays one, with its status; `retryable` is kept). A thrown
 * non-Error becomes an Error.
 */
export function scrubError(e: unknown, scrub: (text: string) => string): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  const message = scrub(err.message);
  if (message === err.message) return err;
  if (err instanceof HttpError) return new HttpError(message, err.retryable, err.status, err.url, err.attempts);
  return new DriverError(message, (err as DriverError).retryable ?? false);
}

/**
 * Credentials for a series of requests: static ones as `applyAuth`, OAuth2 with a cached token.
 * Usage: `apply` before each request, inside `withRefresh` (or after a 401, `invalidate()` and,
 * when it returns true, apply again and retry once).
 */
export class HttpCredentials {
  private readonly secrets: Set<string>;
  /** Scrubber over `secrets`; rebuilt after a new token joins them. */
  private scrubber: ((text: string) => string) | null = null;

  constructor(
    private readonly auth: HttpAuth | null | undefined,
    private readonly label: string,
    /** Token requests: cancellation, timeout, retries, request logging. */
    private readonly tokenPolicy: Pick<RequestPolicy, 'signal' | 'timeoutMs' | 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs' | 'maxRetryAfterMs' | 'guardUrl' | 'onRequest'> = {},
  ) {
    if (auth?.type === 'oauth2ClientCredentials') checkOAuth2(auth, label);
    this.secrets = new Set(authSecrets(auth));
  }

  /** True when a 401 may be cured by fetching a new token. */
  get refreshable(): boolean {
    return this.auth?.type === 'oauth2ClientCredentials';
  }

  async apply(headers: Record<string, string>, url: URL): Promise<AppliedAuth> {
    const a = this.auth;
    if (a?.type !== 'oauth2ClientCredentials') return applyAuth(a, headers, url, this.label);
    const t = await accessToken(a, this.label, { maxAttempts: 3, timeoutMs: 30_000, ...this.tokenPolicy });
    if (!this.secrets.has(t.token)) {
      this.secrets.add(t.token);
      this.scrubber = null;
    }
    setHeader(headers, 'authorization', `Bearer ${t.token}`);
    return { sensitiveHeaders: [], secretQueryParams: [] };
  }

  /** Forgets the cached token after the API refused it; true when a retry may help. */
  invalidate(): boolean {
    const a = this.auth;
    if (a?.type !== 'oauth2ClientCredentials') return false;
    tokenCache.delete(cacheKey(a));
    return true;
  }

  /**
   * `attempt()` (which applies these credentials), run once more when the API refused the
   * OAuth2 token and a new one may help: the attempt threw an HttpError 401, or `refused` says
   * its result is a refusal.
   */
  async withRefresh<T>(attempt: () => Promise<T>, refused?: (result: T) => Promise<boolean>): Promise<T> {
    let result: T;
    try {
      result = await attempt();
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 401 && this.invalidate())) throw e;
      return attempt();
    }
    if (refused && (await refused(result)) && this.invalidate()) return attempt();
    return result;
  }

  /** `text` without any credential value (configured secrets and fetched tokens). */
  readonly scrub = (text: string): string => {
    this.scrubber ??= scrubberFor(this.secrets);
    return this.scrubber(text);
  };
}
