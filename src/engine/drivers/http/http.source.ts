import { scrubSecrets } from '../../../security/secrets-redact.js';
import { authSchema, authSecrets, HttpCredentials, scrubError, type AppliedAuth, type HttpAuth } from './auth.js';
import { redactUrl, requestJson, type RequestPolicy, type RetryEvent } from './client.js';
import { FieldSampler } from '../kit/inference.js';
import { getPath, project, sanitizeName, splitPath } from '../kit/records.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type ConfiguredStream,
  type DataRecord,
  type DriverContext,
  type JsonSchema,
  type JsonValue,
  type ReadOptions,
  type RecordError,
  type SourceDriver,
  type SourceMessage,
  type StreamStates,
} from '../types.js';
import { singleStreamRead } from '../kit/single-stream.js';
import { requestLog } from '../context.js';

/**
 * HTTP (REST JSON API) source.
 *
 * Contract:
 * - One stream. Each request's JSON response holds the records at `recordsPath` (default: the
 *   response is the array). Pages are fetched one at a time, only when the consumer asks for
 *   more (backpressure); a page is emitted as one `records` batch (split when larger than the
 *   preferred batch size) followed by one `state`.
 * - Pagination: none | page | offset | cursor (a token in the body) | link (RFC 8288
 *   `Link: <...>; rel="next"`). Reading stops on an empty page, a missing next token/link, a
 *   repeated cursor, or `maxPages` (a warning).
 * - FULL_REFRESH state is the position of the next page (`{ page }`, `{ offset }` or `{ next }`;
 *   `{ done: true }` after the single page of an unpaginated endpoint), so an interrupted job
 *   resumes where it stopped; a new run starts over (the control plane drops that state).
 * - INCREMENTAL: `incremental.param` carries the last cursor (max `cursorField` seen, or
 *   `initialValue`) to the API. State `{ cursor }` = max value seen so far; while a run is in
 *   flight it also carries `resume: { from, page|offset|next }` (the value sent and the next
 *   position) so an interrupted run continues the same query instead of trusting an order the
 *   API may not guarantee; the finished run leaves `{ cursor }` alone. Cursor values compare
 *   numerically when both are numbers, as instants when both are ISO dates, else as strings.
 * - Retries come from the shared HTTP client: 408/429/5xx and network errors with backoff
 *   (Retry-After honoured), 401/403 and other 4xx fail at once (non-retryable DriverError).
 * - A record that is not an object is emitted as `{ "_raw": <JSON> }` in the batch's `errors`.
 */

export type Pagination =
  | { type: 'none' }
  | { type: 'page'; pageParam?: string; sizeParam?: string; pageSize?: number; startPage?: number }
  | { type: 'offset'; offsetParam?: string; limitParam?: string; limit?: number }
  | { type: 'cursor'; cursorPath: string; cursorParam?: string }
  | { type: 'link' };

export interface HttpSourceConfig {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean>;
  body?: JsonValue;
  paramsIn?: 'query' | 'body';
  auth?: HttpAuth;
  recordsPath?: string;
  pagination?: Pagination;
  incremental?: { cursorField: string; param?: string; initialValue?: string | number };
  maxPages?: number;
  streamName?: string;
  uniqueIdColumn?: string;
  timeoutMs?: number;
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number; maxRetryAfterMs?: number };
}

const LABEL = 'HTTP source';

export const httpConfigSchema: JsonSchema = {
  type: 'object',
  title: 'HTTP API (JSON)',
  required: ['url'],
  additionalProperties: false,
  properties: {
    url: {
      type: 'string',
      minLength: 1,
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      origin: true,
      title: 'Endpoint URL',
      description: 'http(s) URL of the endpoint returning records as JSON. Query parameters in the URL are kept.',
      examples: ['https://api.example.com/v1/orders'],
    },
    method: { type: 'string', enum: ['GET', 'POST'], default: 'GET', title: 'Method', description: 'HTTP method.' },
    headers: {
      type: 'object',
      title: 'Headers',
      description: 'Extra request headers. Not write-only: put credentials in auth, not here.',
      additionalProperties: { type: 'string' },
    },
    query: {
      type: 'object',
      title: 'Query parameters',
      description: 'Added to every request (the first one only with link pagination, whose next links are used as given).',
      additionalProperties: { type: ['string', 'number', 'boolean'] },
    },
    body: { title: 'Request body', description: 'JSON body sent with POST (an object when paramsIn is body).' },
    paramsIn: {
      type: 'string',
      enum: ['query', 'body'],
      default: 'query',
      title: 'Parameter location',
      description: 'Where pagination and incremental parameters go: the query string, or top-level fields of the JSON body (POST only).',
    },
    auth: authSchema,
    recordsPath: {
      type: 'string',
      title: 'Records path',
      description: 'Dot path to the array of records in each response, e.g. data.items. Default: the response is the array.',
      examples: ['data', 'results', 'data.items'],
    },
    pagination: {
      type: 'object',
      title: 'Pagination',
      description:
        'none; page (pageParam/sizeParam/pageSize/startPage); offset (offsetParam/limitParam/limit); cursor (token at cursorPath in the body, ' +
        'sent back as cursorParam); link (the Link header rel="next"). Stops on an empty page or a missing next token/link.',
      required: ['type'],
      additionalProperties: false,
      properties: {
        type: { type: 'string', enum: ['none', 'page', 'offset', 'cursor', 'link'], default: 'none', title: 'Type', description: 'Pagination style.' },
        pageParam: { type: 'string', minLength: 1, title: 'Page parameter', description: 'page: name of the page number parameter (default page).' },
        sizeParam: { type: 'string', minLength: 1, title: 'Page size parameter', description: 'page: name of the page size parameter (omitted when unset).' },
        pageSize: { type: 'integer', minimum: 1, title: 'Page size', description: 'page: value sent as sizeParam.' },
        startPage: { type: 'integer', minimum: 0, title: 'First page', description: 'page: number of the first page (default 1).' },
        offsetParam: { type: 'string', minLength: 1, title: 'Offset parameter', description: 'offset: name of the offset parameter (default offset).' },
        limitParam: { type: 'string', minLength: 1, title: 'Limit parameter', description: 'offset: name of the limit parameter (default limit).' },
        limit: { type: 'integer', minimum: 1, title: 'Limit', description: 'offset: records per request; the offset advances by the records received (default 100).' },
        cursorPath: { type: 'string', minLength: 1, title: 'Cursor path', description: 'cursor: dot path of the next-page token in the response body, e.g. meta.next_cursor.' },
        cursorParam: { type: 'string', minLength: 1, title: 'Cursor parameter', description: 'cursor: parameter carrying the token (default cursor).' },
      },
      allOf: [{ if: { properties: { type: { const: 'cursor' } } }, then: { required: ['cursorPath'] } }],
    },
    incremental: {
      type: 'object',
      title: 'Incremental',
      description: 'Read only new/changed records: the largest cursorField value seen is sent as param on the next run.',
      required: ['cursorField'],
      additionalProperties: false,
      properties: {
        cursorField: { type: 'string', minLength: 1, title: 'Cursor field', description: 'Record field that grows with each change, e.g. updated_at or id.' },
        param: { type: 'string', minLength: 1, title: 'Parameter', description: 'Parameter receiving the last cursor value, e.g. updated_since. Default: cursorField.' },
        initialValue: { type: ['string', 'number'], title: 'Initial value', description: 'Sent on the first run (nothing is sent when unset).' },
      },
    },
    maxPages: {
      type: 'integer',
      minimum: 1,
      default: 10000,
      title: 'Page limit',
      description: 'Safety cap on requests per run; reaching it stops the run with a warning.',
    },
    streamName: { type: 'string', minLength: 1, title: 'Stream name', description: 'Name of the stream; defaults to the last segment of the URL path.' },
    uniqueIdColumn: { type: 'string', minLength: 1, title: 'Unique id field', description: "Field identifying a record; reported as the stream's primary key." },
    timeoutMs: {
      type: 'integer',
      minimum: 100,
      default: 30000,
      title: 'Request timeout (ms)',
      description: 'Per attempt, body included.',
    },
    retry: {
      type: 'object',
      title: 'Retries',
      description: 'Retries of 408/429/5xx and network errors: exponential backoff with full jitter; Retry-After is honoured up to maxRetryAfterMs.',
      additionalProperties: false,
      properties: {
        maxAttempts: { type: 'integer', minimum: 1, maximum: 20, default: 5, title: 'Attempts', description: 'Attempts per request, the first included.' },
        baseDelayMs: { type: 'integer', minimum: 0, default: 500, title: 'Base delay (ms)', description: 'First backoff ceiling; doubles per attempt.' },
        maxDelayMs: { type: 'integer', minimum: 0, default: 30000, title: 'Max delay (ms)', description: 'Largest backoff ceiling.' },
        maxRetryAfterMs: { type: 'integer', minimum: 0, default: 60000, title: 'Max Retry-After (ms)', description: 'Longest Retry-After wait honoured.' },
      },
    },
  },
};

export const docs = `# HTTP API (source)

Reads records from a REST endpoint that answers JSON, following its pagination.

\`\`\`json
{
  "url": "https://api.example.com/v1/orders",
  "query": { "status": "paid" },
  "auth": { "type": "bearer", "token": "..." },
  "recordsPath": "data",
  "pagination": { "type": "cursor", "cursorPath": "meta.next_cursor", "cursorParam": "cursor" },
  "incremental": { "cursorField": "updated_at", "param": "updated_since" },
  "uniqueIdColumn": "id"
}
\`\`\`

- **Requests**: \`method\` GET (default) or POST with a JSON \`body\`; \`headers\`, \`query\` on every
  request. Pagination/incremental parameters go to the query string, or the body with \`paramsIn: "body"\`.
- **auth**: \`none\`, \`basic\` (username/password), \`bearer\` (token), \`apiKey\` (\`name\` + \`value\`, in a
  header or the query). Secrets are write-only, stored encrypted and never sent to another origin.
  A connector referencing a stored authentication (\`authenticationId\`: basic, API key, bearer or OAuth2
  client credentials, whose token is fetched, cached until it expires and fetched again after a 401)
  uses it instead of the inline \`auth\`.
- **Records**: the array at \`recordsPath\` in each response (default: the response itself); a
  \`null\` there counts as an empty page. Non-object items are dead-lettered.
- **Pagination**: \`page\` (\`pageParam\`, \`sizeParam\` + \`pageSize\`, \`startPage\`), \`offset\` (\`offsetParam\`,
  \`limitParam\`, \`limit\`; the offset advances by the records received), \`cursor\` (token at \`cursorPath\`
  in the body, sent as \`cursorParam\`), \`link\` (the \`Link: <url>; rel="next"\` header, same origin only).
  Stops on an empty page, a missing/repeated token or link, or after \`maxPages\` (with a warning).
- **Incremental**: with \`incremental.cursorField\`, the largest value seen is the stream's cursor and is
  sent as \`incremental.param\` on the next run (\`initialValue\` on the first). The API decides whether
  that bound is inclusive; an inclusive bound re-reads the boundary records (use UPSERT).
- **Errors**: 408/429/5xx and network errors are retried with exponential backoff and jitter, honouring
  \`Retry-After\`; 401/403 and other 4xx stop the sync at once.
- **State**: after each page. Full refresh: the next page's position (an interrupted job resumes there).
  Incremental: \`{ "cursor": <max> }\`, plus the in-flight query position while a run is under way.
- **discover** fetches the first page and infers fields and types from its records (the job runner calls it
  before each sync, so expect one extra request per sync).
`;

interface ResolvedConfig {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  query: Record<string, string>;
  body: JsonValue | undefined;
  paramsIn: 'query' | 'body';
  auth: HttpAuth | null;
  recordsPath: string[];
  pagination: NormalizedPagination;
  incremental: { cursorField: string; param: string; initialValue: string | number | null } | null;
  maxPages: number;
  streamName: string;
  uniqueIdColumn: string | null;
  policy: RequestPolicy;
}

type NormalizedPagination =
  | { type: 'none' }
  | { type: 'page'; pageParam: string; sizeParam: string | null; pageSize: number | null; startPage: number }
  | { type: 'offset'; offsetParam: string; limitParam: string; limit: number }
  | { type: 'cursor'; cursorPath: string[]; cursorParam: string }
  | { type: 'link' };

function normalizePagination(p: Pagination | undefined): NormalizedPagination {
  if (!p || p.type === 'none') return { type: 'none' };
  switch (p.type) {
    case 'page':
      return { type: 'page', pageParam: p.pageParam ?? 'page', sizeParam: p.sizeParam ?? null, pageSize: p.pageSize ?? null, startPage: p.startPage ?? 1 };
    case 'offset':
      return { type: 'offset', offsetParam: p.offsetParam ?? 'offset', limitParam: p.limitParam ?? 'limit', limit: p.limit ?? 100 };
    case 'cursor':
      if (typeof p.cursorPath !== 'string' || p.cursorPath.trim() === '') throw new DriverError(`${LABEL}: pagination.cursorPath is required for cursor pagination`);
      return { type: 'cursor', cursorPath: splitPath(p.cursorPath), cursorParam: p.cursorParam ?? 'cursor' };
    case 'link':
      return { type: 'link' };
    default:
      throw new DriverError(`${LABEL}: unknown pagination.type ${JSON.stringify((p as { type: unknown }).type)}`);
  }
}

function resolveConfig(raw: HttpSourceConfig): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError(`${LABEL}: config must be an object`);
  if (typeof raw.url !== 'string' || raw.url === '') throw new DriverError(`${LABEL}: "url" is required`);
  let url: URL;
  try {
    url = new URL(raw.url);
  } catch {
    throw new DriverError(`${LABEL}: invalid URL ${JSON.stringify(redactUrl(raw.url))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DriverError(`${LABEL}: the URL must be http(s), got ${url.protocol}`);
  const method = (raw.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'POST') throw new DriverError(`${LABEL}: "method" must be GET or POST`);
  const paramsIn = raw.paramsIn ?? 'query';
  if (paramsIn === 'body') {
    if (method !== 'POST') throw new DriverError(`${LABEL}: paramsIn "body" needs method POST`);
    const b = raw.body ?? {};
    if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new DriverError(`${LABEL}: paramsIn "body" needs a JSON object body`);
  }
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.query ?? {})) query[k] = String(v);
  const inc = raw.incremental;
  if (inc && (typeof inc.cursorField !== 'string' || inc.cursorField === '')) throw new DriverError(`${LABEL}: incremental.cursorField is required`);
  const segs = url.pathname.split('/').filter((s) => s !== '');
  const retry = raw.retry ?? {};
  return {
    url,
    method,
    headers: { ...(raw.headers ?? {}) },
    query,
    body: raw.body,
    paramsIn,
    auth: raw.auth ?? null,
    recordsPath: splitPath(raw.recordsPath),
    pagination: normalizePagination(raw.pagination),
    incremental: inc ? { cursorField: inc.cursorField, param: inc.param ?? inc.cursorField, initialValue: inc.initialValue ?? null } : null,
    maxPages: Math.max(1, Math.floor(raw.maxPages ?? 10_000)),
    streamName: sanitizeName(raw.streamName ?? decodeURIComponent(segs[segs.length - 1] ?? url.hostname), 'http'),
    uniqueIdColumn: raw.uniqueIdColumn ?? null,
    policy: {
      label: LABEL,
      timeoutMs: raw.timeoutMs ?? 30_000,
      maxAttempts: retry.maxAttempts,
      baseDelayMs: retry.baseDelayMs,
      maxDelayMs: retry.maxDelayMs,
      maxRetryAfterMs: retry.maxRetryAfterMs,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Requests.

/** Where the next request starts. `next` is a token (cursor) or an absolute URL (link). */
interface Position {
  page?: number;
  offset?: number;
  next?: string;
}

interface PageResult {
  items: unknown[];
  bytes: number;
  /** Position of the following page, or null when this was the last. */
  following: Position | null;
  url: string;
}

function linkNext(header: string | null, base: URL): URL | null {
  if (!header) return null;
  const re = /<([^>]*)>((?:\s*;\s*[^;,]+)*)/g;
  for (let m = re.exec(header); m !== null; m = re.exec(header)) {
    const params = m[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) {
      try {
        return new URL(m[1]!, base);
      } catch {
        return null;
      }
    }
  }
  return null;
}

function describeKeys(body: unknown): string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return '';
  const arrays = Object.entries(body as Record<string, unknown>)
    .filter(([, v]) => Array.isArray(v))
    .map(([k]) => k);
  return arrays.length > 0 ? ` (arrays at: ${arrays.slice(0, 10).join(', ')})` : ` (keys: ${Object.keys(body).slice(0, 10).join(', ')})`;
}

class Client {
  private readonly logs: string[] = [];
  readonly credentials: HttpCredentials;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly signal?: AbortSignal,
    /** Hears every request (the job log, see requestLog in ../context.ts). */
    private readonly onRequest?: RequestPolicy['onRequest'],
  ) {
    this.credentials = new HttpCredentials(cfg.auth, LABEL, { signal, timeoutMs: cfg.policy.timeoutMs, onRequest });
  }

  takeLogs(): string[] {
    return this.logs.splice(0);
  }

  /** Fetches the page at `pos`, sending `since` as the incremental parameter when not null. */
  async fetchPage(pos: Position, since: string | number | null): Promise<PageResult> {
    const { cfg } = this;
    const p = cfg.pagination;
    const headers: Record<string, string> = { accept: 'application/json', ...cfg.headers };
    let url: URL;
    let bodyObj: unknown = cfg.body;
    // Typed values: numbers stay numbers in a JSON body; the query string gets their text.
    const params: Record<string, string | number> = {};
    if (p.type === 'link' && pos.next !== undefined) {
      url = new URL(pos.next);
    } else {
      url = new URL(cfg.url);
      for (const [k, v] of Object.entries(cfg.query)) url.searchParams.set(k, v);
      if (cfg.incremental && since !== null) params[cfg.incremental.param] = since;
      if (p.type === 'page') {
        params[p.pageParam] = pos.page ?? p.startPage;
        if (p.sizeParam !== null && p.pageSize !== null) params[p.sizeParam] = p.pageSize;
      } else if (p.type === 'offset') {
        params[p.offsetParam] = pos.offset ?? 0;
        params[p.limitParam] = p.limit;
      } else if (p.type === 'cursor' && pos.next !== undefined) {
        params[p.cursorParam] = pos.next;
      }
    }
    if (cfg.paramsIn === 'body') bodyObj = { ...((cfg.body ?? {}) as Record<string, JsonValue>), ...params };
    else for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
    const body = cfg.method === 'POST' ? JSON.stringify(bodyObj ?? {}) : undefined;
    // Each attempt puts the credentials on a copy of the bare request: a retry after a refused
    // OAuth2 token (expired or revoked early) applies the new one. The page is the first
    // attempt's URL, requested with the first attempt's policy.
    let first: { url: URL; applied: AppliedAuth; policy: RequestPolicy } | undefined;
    const res = await this.credentials.withRefresh(async () => {
      const h = { ...headers };
      const u = new URL(url);
      const applied = await this.credentials.apply(h, u);
      if (body !== undefined) h['content-type'] ??= 'application/json';
      first ??= {
        url: u,
        applied,
        policy: {
          ...cfg.policy,
          signal: this.signal,
          onRequest: this.onRequest,
          secretQueryParams: applied.secretQueryParams,
          sensitiveHeaders: applied.sensitiveHeaders,
          onRetry: (e: RetryEvent) => {
            this.logs.push(`${LABEL}: attempt ${e.attempt}/${e.maxAttempts} of ${e.url} failed (${e.reason}); retrying in ${e.delayMs} ms`);
          },
        },
      };
      return requestJson(u, { method: cfg.method, headers: h, body }, first.policy);
    });
    url = first!.url;
    const shown = redactUrl(url, first!.applied.secretQueryParams);
    const items = this.extract(res.body, shown);
    let following: Position | null = null;
    if (items.length > 0) {
      switch (p.type) {
        case 'page':
          following = { page: (pos.page ?? p.startPage) + 1 };
          break;
        case 'offset':
          following = { offset: (pos.offset ?? 0) + items.length };
          break;
        case 'cursor': {
          const token = getPath(res.body, p.cursorPath);
          if (token !== null && token !== undefined && token !== '' && (typeof token === 'string' || typeof token === 'number')) {
            const t = String(token);
            if (t !== pos.next) following = { next: t };
            else this.logs.push(`${LABEL}: ${shown} returned the same cursor again; stopping`);
          }
          break;
        }
        case 'link': {
          const next = linkNext(res.response.headers.get('link'), url);
          if (next !== null) {
            if (next.origin !== cfg.url.origin) {
              this.logs.push(`${LABEL}: the next link points to another origin (${next.origin}); stopping (credentials are never sent elsewhere)`);
            } else if (next.toString() !== url.toString()) following = { next: next.toString() };
          }
          break;
        }
        default:
          break;
      }
    }
    return { items, bytes: res.bytes, following, url: shown };
  }

  private extract(body: unknown, shown: string): unknown[] {
    const segs = this.cfg.recordsPath;
    const at = segs.length === 0 ? body : getPath(body, segs);
    if (Array.isArray(at)) return at;
    if (at === null && segs.length > 0) return [];
    if (segs.length === 0) {
      throw new DriverError(`${LABEL}: the response of ${shown} is ${at === null ? 'null' : typeof at === 'object' ? 'an object' : typeof at}, not an array of records; set recordsPath${describeKeys(body)}`);
    }
    if (at === undefined) throw new DriverError(`${LABEL}: recordsPath "${segs.join('.')}" not found in the response of ${shown}${describeKeys(body)}`);
    throw new DriverError(`${LABEL}: recordsPath "${segs.join('.')}" in the response of ${shown} is not an array`);
  }
}

// ---------------------------------------------------------------------------------------------
// Cursor values.

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** Compares cursor values: numbers numerically, ISO dates as instants, otherwise as strings. */
export function compareCursor(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string' && ISO_DATE.test(a) && ISO_DATE.test(b)) {
    const ta = Date.parse(a);
    const tb = Date.parse(b);
    if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return ta - tb;
  }
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function cursorValue(v: unknown): string | number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v !== '') return v;
  return null;
}

interface IncrementalState {
  cursor: string | number | null;
  resume: (Position & { from: string | number | null }) | null;
}

function parseState(state: unknown, stream: string, incremental: boolean): { position: Position; inc: IncrementalState; done: boolean } {
  const empty = { position: {}, inc: { cursor: null, resume: null }, done: false };
  if (state === undefined || state === null) return empty;
  const bad = () =>
    new DriverError(`${LABEL}: invalid state for stream "${stream}": ${JSON.stringify(state).slice(0, 200)}`);
  if (typeof state !== 'object' || Array.isArray(state)) throw bad();
  const s = state as Record<string, unknown>;
  const pos = (o: Record<string, unknown>): Position => {
    const p: Position = {};
    if (o.page !== undefined) {
      if (typeof o.page !== 'number' || !Number.isSafeInteger(o.page) || o.page < 0) throw bad();
      p.page = o.page;
    }
    if (o.offset !== undefined) {
      if (typeof o.offset !== 'number' || !Number.isSafeInteger(o.offset) || o.offset < 0) throw bad();
      p.offset = o.offset;
    }
    if (o.next !== undefined) {
      if (typeof o.next !== 'string') throw bad();
      p.next = o.next;
    }
    return p;
  };
  if (incremental) {
    const cursor = s.cursor === undefined || s.cursor === null ? null : cursorValue(s.cursor);
    if (s.cursor !== undefined && s.cursor !== null && cursor === null) throw bad();
    let resume: IncrementalState['resume'] = null;
    if (s.resume !== undefined && s.resume !== null) {
      if (typeof s.resume !== 'object' || Array.isArray(s.resume)) throw bad();
      const r = s.resume as Record<string, unknown>;
      resume = { ...pos(r), from: r.from === undefined || r.from === null ? null : cursorValue(r.from) };
    }
    return { position: {}, inc: { cursor, resume }, done: false };
  }
  return { position: pos(s), inc: { cursor: null, resume: null }, done: s.done === true };
}

// ---------------------------------------------------------------------------------------------
// Driver.

function toRecords(items: unknown[], selected: string[] | null): { records: DataRecord[]; errors: RecordError[] } {
  const records: DataRecord[] = new Array(items.length);
  const errors: RecordError[] = [];
  for (let i = 0; i < items.length; i++) {
    const v = items[i];
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      records[i] = selected ? project(v as DataRecord, selected) : (v as DataRecord);
    } else {
      let raw: string;
      try {
        raw = JSON.stringify(v) ?? String(v);
      } catch {
        raw = String(v);
      }
      records[i] = { _raw: raw };
      errors.push({ index: i, error: `item ${i} of the page is ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}, not an object` });
    }
  }
  return { records, errors };
}

async function check(config: HttpSourceConfig): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: scrubError(e, (t) => scrubSecrets(t, authSecrets(config?.auth))).message };
  }
  let client: Client | null = null;
  try {
    client = new Client(cfg);
    const page = await client.fetchPage({}, cfg.incremental?.initialValue ?? null);
    const first = page.items.find((v) => v !== null && typeof v === 'object' && !Array.isArray(v)) as DataRecord | undefined;
    const fields = first ? Object.keys(first) : [];
    if (first && cfg.uniqueIdColumn !== null && !fields.includes(cfg.uniqueIdColumn)) {
      return { ok: false, message: `uniqueIdColumn "${cfg.uniqueIdColumn}" is not a field of the first record (fields: ${fields.slice(0, 20).join(', ')})` };
    }
    if (first && cfg.incremental && !fields.includes(cfg.incremental.cursorField)) {
      return { ok: false, message: `incremental.cursorField "${cfg.incremental.cursorField}" is not a field of the first record (fields: ${fields.slice(0, 20).join(', ')})` };
    }
    return {
      ok: true,
      message: `${page.url} answered with ${page.items.length} record(s) on the first page${fields.length > 0 ? `; fields: ${fields.slice(0, 20).join(', ')}${fields.length > 20 ? ', ...' : ''}` : ''}`,
    };
  } catch (e) {
    return { ok: false, message: scrubError(e, client?.credentials.scrub ?? ((t) => scrubSecrets(t, authSecrets(cfg.auth)))).message };
  }
}

async function discover(config: HttpSourceConfig, ctx?: DriverContext): Promise<Catalog> {
  const cfg = resolveConfig(config);
  const client = new Client(cfg, undefined, requestLog(ctx, LABEL));
  let page: PageResult;
  try {
    page = await client.fetchPage({}, cfg.incremental?.initialValue ?? null);
  } catch (e) {
    throw scrubError(e, client.credentials.scrub);
  }
  const sampler = new FieldSampler();
  for (const v of page.items.slice(0, 1000)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) sampler.add(v as DataRecord);
  }
  if (cfg.uniqueIdColumn !== null && sampler.records > 0 && !sampler.has(cfg.uniqueIdColumn)) {
    throw new DriverError(`${LABEL}: uniqueIdColumn "${cfg.uniqueIdColumn}" is not a field of the records of ${page.url}`);
  }
  return {
    streams: [
      {
        name: cfg.streamName,
        fields: sampler.fields(),
        supportedSyncModes: cfg.incremental ? ['FULL_REFRESH', 'INCREMENTAL'] : ['FULL_REFRESH'],
        defaultCursorField: cfg.incremental ? [cfg.incremental.cursorField] : null,
        sourceDefinedPrimaryKey: cfg.uniqueIdColumn !== null ? [cfg.uniqueIdColumn] : null,
      },
    ],
  };
}

async function* read(config: HttpSourceConfig, streams: ConfiguredStream[], state: StreamStates, options: ReadOptions): AsyncGenerator<SourceMessage> {
  const cfg = resolveConfig(config);
  const signal = options.signal;
  signal?.throwIfAborted();
  const pick = singleStreamRead(LABEL, 'endpoint', cfg.streamName, streams, options);
  yield* pick.warnings;
  const configured = pick.configured;
  if (!configured) return;
  const stream = cfg.streamName;
  const incremental = configured.syncMode === 'INCREMENTAL';
  if (incremental && !cfg.incremental) {
    throw new DriverError(`${LABEL}: stream "${stream}" is INCREMENTAL but the connector has no incremental.cursorField`);
  }
  const cursorField = configured.cursorField?.[0] ?? cfg.incremental?.cursorField ?? null;
  const parsed = parseState(state?.[stream], stream, incremental);
  if (parsed.done) return;
  const { batchSize, selected } = pick;
  const client = new Client(cfg, signal, requestLog(options.ctx, LABEL));

  // Incremental: `since` is the bound sent with every request of this run.
  let max: string | number | null = parsed.inc.cursor;
  let since: string | number | null = null;
  let pos: Position = parsed.position;
  if (incremental) {
    if (parsed.inc.resume) {
      since = parsed.inc.resume.from;
      const { from: _from, ...rest } = parsed.inc.resume;
      pos = rest;
    } else since = max ?? cfg.incremental!.initialValue;
  }
  const incState = (following: Position | null): JsonValue =>
    following === null ? { cursor: max } : { cursor: max, resume: { from: since, ...(following as Record<string, JsonValue>) } };

  let pages = 0;
  let missingCursorWarned = false;
  try {
    for (;;) {
      if (pages >= cfg.maxPages) {
        yield {
          type: 'log',
          level: 'warn',
          message: `${LABEL}: stopped after maxPages (${cfg.maxPages}) requests; raise maxPages if the endpoint really has more pages`,
        };
        break;
      }
      pages++;
      let page: PageResult;
      try {
        page = await client.fetchPage(pos, since);
      } finally {
        for (const m of client.takeLogs()) yield { type: 'log', level: 'warn', message: client.credentials.scrub(m) };
      }
      signal?.throwIfAborted();
      const { records, errors } = toRecords(page.items, selected);
      if (incremental && cursorField !== null) {
        for (const v of page.items) {
          if (v === null || typeof v !== 'object') continue;
          const c = cursorValue((v as Record<string, unknown>)[cursorField]);
          if (c === null) {
            if (!missingCursorWarned && !Array.isArray(v)) {
              missingCursorWarned = true;
              yield { type: 'log', level: 'warn', message: `${LABEL}: records without a usable "${cursorField}" value do not move the cursor (reported once)` };
            }
            continue;
          }
          if (max === null || compareCursor(c, max) > 0) max = c;
        }
      }
      for (let i = 0; i < records.length; i += batchSize) {
        const slice = records.length <= batchSize ? records : records.slice(i, i + batchSize);
        const errs = errors.filter((e) => e.index >= i && e.index < i + batchSize).map((e) => ({ index: e.index - i, error: e.error }));
        const bytes = Math.round((page.bytes * slice.length) / Math.max(1, records.length));
        yield errs.length > 0 ? { type: 'records', stream, records: slice, bytes, errors: errs } : { type: 'records', stream, records: slice, bytes };
      }
      const following = cfg.pagination.type === 'none' ? null : page.following;
      if (incremental) yield { type: 'state', stream, state: incState(following) };
      else if (following !== null) yield { type: 'state', stream, state: { ...following } };
      else yield { type: 'state', stream, state: { done: true } };
      if (following === null) return;
      pos = following;
      signal?.throwIfAborted();
    }
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    if (e instanceof DriverError) throw scrubError(e, client.credentials.scrub);
    throw new DriverError(client.credentials.scrub(`${LABEL}: ${(e as Error).message}`), true);
  }
  // maxPages reached: the last state stands. An incremental stream continues the same query from
  // that position on its next run; a full refresh starts over.
}

export const httpSource: SourceDriver<HttpSourceConfig> = {
  name: 'http',
  role: 'SOURCE',
  title: 'HTTP API (JSON)',
  description: 'Reads records from a REST JSON endpoint with pagination (page, offset, cursor, Link header), auth, retries and incremental cursors.',
  docs,
  configSchema: httpConfigSchema,
  check,
  discover,
  read,
};

export default httpSource;
