/**
 * Outbound HTTP for drivers (http source, json/csv sources reading URLs, webhook destination).
 *
 * Contract:
 * - `request(url, init, policy)` sends one logical request with up to `maxAttempts` attempts and
 *   resolves with the `Response` once its headers arrived with an accepted status (2xx, a 3xx
 *   when redirects are not followed in `manual` mode, or whatever `acceptStatus` allows). The
 *   per-attempt timeout covers connecting, redirects and the response headers; the body is then
 *   the caller's to stream (it stays bound to `policy.signal`).
 *   `requestJson` / `requestText` also read the body inside the attempt: the timeout covers the
 *   body, and a connection dropped mid-body is retried like any network error.
 * - Retried: network errors, attempt timeouts, 408, 429 and 5xx (except 501/505), with
 *   exponential backoff and full jitter (`random() * min(maxDelayMs, baseDelayMs * 2^(k-1))`);
 *   a `Retry-After` header (delta-seconds or HTTP date) replaces the computed delay, capped at
 *   `maxRetryAfterMs`. Exhausted retries throw an `HttpError` with `retryable: true`.
 * - Not retried: 401/403 and every other 4xx, 501/505, invalid URLs, guard refusals: an
 *   `HttpError`/`DriverError` with `retryable: false` naming the status and the URL (credentials
 *   and the query parameters listed in `secretQueryParams` are redacted; header values are never
 *   part of a message).
 * - Credentials in the URL (`https://user:pass@host/`) are sent as a Basic Authorization header.
 * - Redirects are followed manually (at most `maxRedirects`) so that `guardUrl` sees every hop
 *   and credentials (Authorization, Cookie, `sensitiveHeaders`) are dropped when the origin
 *   changes. `redirect: 'error'` (webhooks) fails at once on a 3xx; `'manual'` returns it.
 * - Aborting `policy.signal` stops at once, during an attempt or a backoff sleep, and rejects
 *   with the signal's reason (no retry).
 * - `guardUrl` is the single seam for an outbound-address policy (e.g. refusing private
 *   addresses): it runs before every attempt and every redirect hop. A policy without one uses
 *   the process-wide guard installed with `setOutboundGuard` (none by default), so a guard can
 *   be plugged in once for every driver. The installed guard may also bring a fetch
 *   `dispatcher` (src/security/outbound-guard.ts: an undici Agent that checks every address
 *   when the socket connects, so DNS rebinding between the check and the connection cannot
 *   reach a refused address); it applies to every request, even one with its own `guardUrl`,
 *   unless the policy names its own `dispatcher`. A connection refused by it (an error with
 *   code `ERR_OUTBOUND_REFUSED`) fails like a guard refusal: not retried.
 * - `onRequest` (optional) hears every request sent — each attempt and each redirect hop — once
 *   it has its response headers or failed: method, the URL as `redactUrlForLog` shows it, status
 *   (0 without a response), duration. Header and body values are never part of it. A throwing
 *   hook is ignored.
 */
import type { Dispatcher } from 'undici';
import { outboundGuard, outboundRefusal } from '../kit/outbound.js';
import { DriverError } from '../types.js';
import { readBodySnippet } from './body.js';

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  /** Re-sent on every attempt, so it must be a string or bytes (no streams). */
  body?: string | Uint8Array | null;
}

export interface RetryEvent {
  /** The attempt that failed (1-based). */
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  /** Short reason: `HTTP 503`, `timeout`, `ECONNRESET`, ... */
  reason: string;
  /** Redacted URL. */
  url: string;
}

/** One request sent (an attempt or a redirect hop), for logs. */
export interface RequestEvent {
  method: string;
  /** The URL without credentials, secret-looking query values as `***` (`redactUrlForLog`). */
  url: string;
  /** The response status; 0 when none came (network error, timeout, cancellation). */
  status: number;
  /** Milliseconds until the response headers arrived (or the request failed). */
  durationMs: number;
  /** The attempt it belongs to (1-based). */
  attempt: number;
  /** Why no response came: `timeout`, `aborted`, `ECONNREFUSED`, ... */
  error?: string;
}

export interface RequestPolicy {
  /** Attempts in total, the first one included. Default 5. */
  maxAttempts?: number;
  /** First backoff ceiling in ms; doubles per attempt. Default 500. */
  baseDelayMs?: number;
  /** Upper bound of the backoff ceiling in ms. Default 30 000. */
  maxDelayMs?: number;
  /** Longest wait honoured from a Retry-After header, in ms. Default 60 000. */
  maxRetryAfterMs?: number;
  /** Per-attempt timeout in ms (see the module comment for what it covers). Default 30 000. */
  timeoutMs?: number;
  /** `follow` (default): follow redirects manually; `manual`: return the 3xx; `error`: fail on a 3xx. */
  redirect?: 'follow' | 'manual' | 'error';
  /** Default 5. */
  maxRedirects?: number;
  /** Caller cancellation. */
  signal?: AbortSignal;
  /** Outbound-address policy seam: throw (ideally a DriverError) to refuse a URL. */
  guardUrl?: (url: URL) => Promise<void>;
  /** Fetch dispatcher (undici); default: the installed guard's, else fetch's global one. */
  dispatcher?: Dispatcher;
  /** Prefix of error messages, e.g. `HTTP source`. */
  label?: string;
  /** Query parameters whose values are redacted in messages (e.g. an API key). */
  secretQueryParams?: string[];
  /** Extra header names dropped on a cross-origin redirect (Authorization and Cookie always are). */
  sensitiveHeaders?: string[];
  /** Statuses returned as-is instead of being treated as failures (e.g. `s => s < 500` for a probe). */
  acceptStatus?: (status: number) => boolean;
  /** Called before each backoff sleep (logging). */
  onRetry?: (event: RetryEvent) => void;
  /** Called after every request sent (logging); see the module comment. */
  onRequest?: (event: RequestEvent) => void;
  /** Body size limit for requestJson/requestText in bytes. Default 64 MiB. */
  maxBodyBytes?: number;
  /** Random source in [0, 1) for the jitter; tests pin it. */
  random?: () => number;
}

/** An HTTP failure with its status (0 for network errors and timeouts). */
export class HttpError extends DriverError {
  constructor(
    message: string,
    retryable: boolean,
    readonly status: number,
    readonly url: string,
    readonly attempts: number,
  ) {
    super(message, retryable);
    this.name = 'HttpError';
  }
}

// The guard seam is shared with the database drivers (outbound.ts); re-exported for callers of this module.
export { setOutboundGuard, type GuardFn, type OutboundGuardHook } from '../kit/outbound.js';

const DEFAULTS = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
  timeoutMs: 30_000,
  maxRedirects: 5,
  maxBodyBytes: 64 * 1024 * 1024,
};

const USER_AGENT = 'sluice/0.1 (+https://github.com/sluice)';
const ALWAYS_SENSITIVE = ['authorization', 'proxy-authorization', 'cookie'];
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Whether a status is worth retrying. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * Parses a Retry-After value into milliseconds from `now`: delta-seconds (`120`, also `1.5`)
 * or an HTTP date. Returns null when absent or unparsable; never negative.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (v === '') return null;
  if (/^\d+(?:\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

/** Full-jitter exponential backoff for the attempt that just failed (1-based). */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.floor(random() * ceiling);
}

/** The URL without credentials, with the listed query parameters' values replaced by `***`. */
export function redactUrl(url: string | URL, secretQueryParams: readonly string[] = []): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return '<invalid URL>';
  }
  if (u.username || u.password) {
    u.username = '';
    u.password = '';
  }
  if (secretQueryParams.length > 0) {
    let changed = false;
    const params = new URLSearchParams(u.search);
    for (const name of secretQueryParams) {
      if (params.has(name)) {
        params.set(name, '***');
        changed = true;
      }
    }
    if (changed) u.search = params.toString().replace(/%2A%2A%2A/g, '***');
  }
  return u.toString();
}

/**
 * Query parameter names whose values are treated as secrets in logs even when no credential
 * names them: token, key, secret, password, signature, auth, credential, session and the like
 * (`access_token`, `api_key`, `X-Amz-Signature`, `sig`, ...).
 */
const SECRET_NAME_PARTS = 'token|key|secret|passw|pwd|signature|auth|credential|session';
const SECRET_QUERY_NAME = new RegExp(`${SECRET_NAME_PARTS}|^sig$`, 'i');

/** `redactUrl`, also hiding the value of every query parameter whose name looks secret. */
export function redactUrlForLog(url: string | URL, secretQueryParams: readonly string[] = []): string {
  let names: string[] = [...secretQueryParams];
  try {
    names = names.concat([...new URL(String(url)).searchParams.keys()].filter((k) => SECRET_QUERY_NAME.test(k)));
  } catch {
    // redactUrl reports an invalid URL.
  }
  return redactUrl(url, [...new Set(names)]);
}

/** The same names (SECRET_QUERY_NAME) as query parameters inside any text. */
const SECRET_QUERY_IN_TEXT = new RegExp(`([?&;](?:[\\w.\\-[\\]]*?(?:${SECRET_NAME_PARTS})[\\w.\\-[\\]]*|sig)=)[^&#\\s"'<>]*`, 'gi');

/** `text` with the values of secret-looking query parameters of every URL in it replaced by `***`. */
export function scrubSecretQueryValues(text: string): string {
  return text.includes('=') ? text.replace(SECRET_QUERY_IN_TEXT, '$1***') : text;
}

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Sleeps `ms`, rejecting with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function statusText(res: Response): string {
  return res.statusText ? `${res.status} ${res.statusText}` : String(res.status);
}

/** At most `limit` bytes of a body, whitespace folded, for an error message (": text", or ""). */
async function snippet(res: Response, limit = 300): Promise<string> {
  const text = (await readBodySnippet(res, limit)).replace(/\s+/g, ' ').trim();
  return text.length === 0 ? '' : `: ${text.length >= limit ? `${text.slice(0, limit - 3)}...` : text}`;
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

function networkReason(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause;
  if (cause && typeof cause === 'object') {
    const code = cause.code ?? (cause as { errno?: string }).errno;
    return code ? `${code}` : cause.message || err.message;
  }
  return err.message || String(e);
}

function isNetworkError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.message === 'fetch failed' || e.message === 'terminated') return true;
  const code = (e as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^(?:E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code);
}

interface Resolved {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
  timeoutMs: number;
  maxRedirects: number;
  maxBodyBytes: number;
  redirect: 'follow' | 'manual' | 'error';
  label: string;
  secret: string[];
  sensitive: Set<string>;
  random: () => number;
}

function resolvePolicy(p: RequestPolicy): Resolved {
  const num = (v: number | undefined, d: number, min: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.max(min, v) : d);
  return {
    maxAttempts: Math.floor(num(p.maxAttempts, DEFAULTS.maxAttempts, 1)),
    baseDelayMs: num(p.baseDelayMs, DEFAULTS.baseDelayMs, 0),
    maxDelayMs: num(p.maxDelayMs, DEFAULTS.maxDelayMs, 0),
    maxRetryAfterMs: num(p.maxRetryAfterMs, DEFAULTS.maxRetryAfterMs, 0),
    timeoutMs: num(p.timeoutMs, DEFAULTS.timeoutMs, 1),
    maxRedirects: Math.floor(num(p.maxRedirects, DEFAULTS.maxRedirects, 0)),
    maxBodyBytes: num(p.maxBodyBytes, DEFAULTS.maxBodyBytes, 1),
    redirect: p.redirect ?? 'follow',
    label: p.label ?? 'HTTP',
    secret: p.secretQueryParams ?? [],
    sensitive: new Set([...ALWAYS_SENSITIVE, ...(p.sensitiveHeaders ?? []).map((h) => h.toLowerCase())]),
    random: p.random ?? Math.random,
  };
}

/** What one attempt produced: a value, or a failure with its retry decision. */
type Outcome<T> =
  | { ok: true; value: T }
  | { ok: false; retry: boolean; reason: string; error: DriverError; retryAfterMs: number | null };

/**
 * One attempt: guard, fetch, follow redirects, classify the status, then (optionally) consume
 * the body, all under the attempt's timeout.
 */
async function attemptOnce<T>(
  url: URL,
  init: HttpRequestInit,
  policy: RequestPolicy,
  r: Resolved,
  attempt: number,
  consume: ((res: Response, signal: AbortSignal) => Promise<T>) | null,
): Promise<Outcome<T>> {
  const controller = new AbortController();
  const caller = policy.signal;
  let timedOut = false;
  const onCallerAbort = () => controller.abort(caller!.reason);
  if (caller) {
    if (caller.aborted) throw caller.reason;
    caller.addEventListener('abort', onCallerAbort, { once: true });
  }
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`attempt timed out after ${r.timeoutMs} ms`, 'TimeoutError'));
  }, r.timeoutMs);
  let keepCallerLink = false;
  const installed = outboundGuard();
  const guard = policy.guardUrl ?? installed?.guardUrl ?? null;
  const dispatcher = policy.dispatcher ?? installed?.dispatcher;
  let current = url;
  const redacted = () => redactUrl(current, r.secret);
  const method0 = (init.method ?? 'GET').toUpperCase();
  // The request in flight, reported to `onRequest` once it answered or failed.
  let sent: { method: string; url: URL; started: number } | null = null;
  const report = (status: number, error?: string) => {
    const s = sent;
    sent = null;
    if (!s || !policy.onRequest) return;
    try {
      policy.onRequest({
        method: s.method,
        url: redactUrlForLog(s.url, r.secret),
        status,
        durationMs: Math.round(performance.now() - s.started),
        attempt,
        ...(error !== undefined ? { error } : {}),
      });
    } catch {
      // Logging never fails a request.
    }
  };
  try {
    let method = method0;
    let body = init.body ?? null;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
    headers['user-agent'] ??= USER_AGENT;
    let res: Response;
    for (let hop = 0; ; hop++) {
      if (guard) {
        try {
          await guard(current);
        } catch (e) {
          if (caller?.aborted) throw caller.reason;
          const msg = e instanceof Error ? e.message : String(e);
          throw e instanceof DriverError ? e : new DriverError(`${r.label}: request to ${redacted()} refused: ${msg}`, false);
        }
      }
      sent = { method, url: current, started: performance.now() };
      res = await fetch(current, {
        method,
        headers,
        body: method === 'GET' || method === 'HEAD' ? undefined : ((body ?? undefined) as RequestInit['body']),
        redirect: 'manual',
        signal: controller.signal,
        ...(dispatcher ? { dispatcher } : {}),
      } as RequestInit);
      report(res.status);
      if (!REDIRECTS.has(res.status) || r.redirect === 'manual' || policy.acceptStatus?.(res.status)) break;
      const location = res.headers.get('location');
      if (location === null) break;
      await discard(res);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new HttpError(`${r.label}: ${method} ${redacted()} redirected to an invalid location`, false, res.status, redacted(), attempt);
      }
      if (r.redirect === 'error') {
        throw new HttpError(
          `${r.label}: ${method} ${redacted()} answered ${statusText(res)} redirecting to ${redactUrl(next, r.secret)}; redirects are not followed`,
          false,
          res.status,
          redacted(),
          attempt,
        );
      }
      if (hop >= r.maxRedirects) {
        throw new HttpError(`${r.label}: ${method0} ${redactUrl(url, r.secret)}: more than ${r.maxRedirects} redirects`, false, res.status, redacted(), attempt);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new HttpError(`${r.label}: ${method} ${redacted()} redirected to unsupported scheme ${next.protocol}`, false, res.status, redacted(), attempt);
      }
      if (next.origin !== current.origin) {
        for (const h of Object.keys(headers)) if (r.sensitive.has(h)) delete headers[h];
      }
      if (res.status === 303 ? method !== 'HEAD' : (res.status === 301 || res.status === 302) && method === 'POST') {
        method = 'GET';
        body = null;
        delete headers['content-type'];
        delete headers['content-length'];
      }
      current = next;
    }
    const status = res.status;
    const accepted = policy.acceptStatus?.(status) ?? false;
    if (!accepted && status >= 400) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      const detail = await snippet(res);
      const retry = isRetryableStatus(status);
      const what = status === 401 || status === 403 ? ' (authentication refused)' : '';
      const error = new HttpError(`${r.label}: ${method} ${redacted()} failed with HTTP ${statusText(res)}${what}${detail}`, retry, status, redacted(), attempt);
      return { ok: false, retry, reason: `HTTP ${status}`, error, retryAfterMs };
    }
    if (consume === null) {
      keepCallerLink = true;
      return { ok: true, value: res as unknown as T };
    }
    return { ok: true, value: await consume(res, controller.signal) };
  } catch (e) {
    if (sent) report(0, caller?.aborted ? 'aborted' : timedOut ? 'timeout' : isNetworkError(e) ? networkReason(e) : 'failed');
    if (caller?.aborted) throw caller.reason;
    if (e instanceof DriverError) throw e;
    const refusal = outboundRefusal(e);
    if (refusal) throw new DriverError(`${r.label}: request to ${redacted()} refused: ${refusal.message}`, false);
    if (timedOut) {
      const error = new HttpError(`${r.label}: ${method0} ${redacted()} timed out after ${r.timeoutMs} ms`, true, 0, redacted(), attempt);
      return { ok: false, retry: true, reason: 'timeout', error, retryAfterMs: null };
    }
    if (isNetworkError(e)) {
      const reason = networkReason(e);
      const error = new HttpError(`${r.label}: ${method0} ${redacted()} failed: network error (${reason})`, true, 0, redacted(), attempt);
      return { ok: false, retry: true, reason, error, retryAfterMs: null };
    }
    // Unexpected: scrub the raw URLs (they may carry secrets) from the message.
    let text = (e as Error).message ?? String(e);
    for (const raw of [current.toString(), url.toString()]) text = text.split(raw).join(redactUrl(raw, r.secret));
    throw new DriverError(`${r.label}: ${method0} ${redacted()} failed: ${text}`, false);
  } finally {
    clearTimeout(timer);
    // A streamed body stays cancellable by the caller; otherwise drop the listener now.
    if (caller && !keepCallerLink) caller.removeEventListener('abort', onCallerAbort);
  }
}

async function send<T>(
  url: string | URL,
  init: HttpRequestInit,
  policy: RequestPolicy,
  consume: ((res: Response, signal: AbortSignal) => Promise<T>) | null,
): Promise<T> {
  const r = resolvePolicy(policy);
  let target: URL;
  try {
    target = new URL(String(url));
  } catch {
    throw new DriverError(`${r.label}: invalid URL ${JSON.stringify(redactUrl(String(url), r.secret))}`, false);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new DriverError(`${r.label}: unsupported URL scheme ${target.protocol} (http and https only)`, false);
  }
  policy.signal?.throwIfAborted();
  if (target.username !== '' || target.password !== '') {
    // Credentials in the URL become a Basic Authorization header (fetch refuses them in URLs).
    const user = decodeURIComponent(target.username);
    const pass = decodeURIComponent(target.password);
    target.username = '';
    target.password = '';
    const headers = { ...(init.headers ?? {}) };
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) {
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
    }
    init = { ...init, headers };
  }
  for (let attempt = 1; ; attempt++) {
    const out = await attemptOnce(target, init, policy, r, attempt, consume);
    if (out.ok) return out.value;
    if (!out.retry) throw out.error;
    if (attempt >= r.maxAttempts) {
      const e = out.error;
      throw new HttpError(
        r.maxAttempts > 1 ? `${e.message} (gave up after ${attempt} attempts)` : e.message,
        true,
        e instanceof HttpError ? e.status : 0,
        redactUrl(target, r.secret),
        attempt,
      );
    }
    const delayMs =
      out.retryAfterMs !== null ? Math.min(r.maxRetryAfterMs, out.retryAfterMs) : backoffDelay(attempt, r.baseDelayMs, r.maxDelayMs, r.random);
    policy.onRetry?.({ attempt, maxAttempts: r.maxAttempts, delayMs, reason: out.reason, url: redactUrl(target, r.secret) });
    await sleep(delayMs, policy.signal);
  }
}

/**
 * Sends a request with retries; resolves with the response once its headers are in. The caller
 * must consume or cancel the body.
 */
export function request(url: string | URL, init: HttpRequestInit = {}, policy: RequestPolicy = {}): Promise<Response> {
  return send(url, init, policy, null);
}

async function readBody(res: Response, limit: number, label: string, url: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await discard(res);
    throw new DriverError(`${label}: response from ${url} is ${declared} bytes, above the ${limit}-byte limit`, false);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      reader.cancel().catch(() => undefined);
      throw new DriverError(`${label}: response from ${url} is larger than the ${limit}-byte limit`, false);
    }
    parts.push(value);
  }
  return Buffer.concat(parts, size);
}

export interface TextResponse {
  response: Response;
  text: string;
  bytes: number;
}

/** Like `request`, but reads the whole body (bounded by `maxBodyBytes`) inside the attempt. */
export function requestText(url: string | URL, init: HttpRequestInit = {}, policy: RequestPolicy = {}): Promise<TextResponse> {
  const r = resolvePolicy(policy);
  return send(url, init, policy, async (res) => {
    const buf = await readBody(res, r.maxBodyBytes, r.label, redactUrl(res.url || String(url), r.secret));
    return { response: res, text: buf.toString('utf8'), bytes: buf.length };
  });
}

export interface JsonResponse {
  response: Response;
  body: unknown;
  bytes: number;
}

/** Like `requestText`, then parses the body as JSON (an empty body is `null`). */
export async function requestJson(url: string | URL, init: HttpRequestInit = {}, policy: RequestPolicy = {}): Promise<JsonResponse> {
  const { response, text, bytes } = await requestText(url, init, policy);
  if (text.trim() === '') return { response, body: null, bytes };
  try {
    return { response, body: JSON.parse(text) as unknown, bytes };
  } catch (e) {
    const label = policy.label ?? 'HTTP';
    const type = response.headers.get('content-type') ?? 'no content type';
    throw new DriverError(
      `${label}: response from ${redactUrl(String(url), policy.secretQueryParams)} is not valid JSON (${type}): ${(e as Error).message}`,
      false,
    );
  }
}
