import crypto from 'node:crypto';
import { authSchema, authSecrets, HttpCredentials, scrubError, type HttpAuth } from './auth.js';
import { scrubSecrets } from '../../../security/secrets-redact.js';
import { HttpError, redactUrl, request, type RequestPolicy } from './client.js';
import {
  DriverError,
  type Catalog,
  type CheckResult,
  type DataRecord,
  type DestinationDriver,
  type JsonSchema,
  type RejectedRecord,
  type StreamWriter,
  type WriteMode,
  type WriteResult,
  type WriterOptions,
} from '../types.js';
import { requestLog } from '../context.js';

/**
 * Webhook destination: POSTs batches as JSON.
 *
 * Contract:
 * - Each request body is `{ "stream": <destination name>, "records": [...] }` with
 *   `Content-Type: application/json` and an `Idempotency-Key` (SHA-256 of the body, so a retried
 *   or re-sent batch carries the same key). `batchSize` splits a batch into several requests,
 *   sent one after another. `writeBatch` resolves once every request got a 2xx.
 * - Retries (shared HTTP client): network errors, timeouts, 408, 429 and 5xx, with exponential
 *   backoff and full jitter, honouring Retry-After; retries exhausted → a retryable DriverError
 *   (the job fails and is retried; requests already accepted may be sent again, hence the key).
 * - Redirects are not followed: a 3xx fails the sync (non-retryable), naming the location.
 * - 401/403 fail the sync at once (credentials, not records, are wrong). 413 splits the request
 *   in halves down to single records. Any other 4xx rejects every record of that request (each
 *   listed in `rejected` with the status and the start of the response body); the rest of the
 *   batch is still sent.
 * - Records that cannot be serialized (BigInt, circular) are rejected individually.
 * - APPEND only: a webhook cannot replace or upsert.
 */

export interface WebhookDestinationConfig {
  url: string;
  headers?: Record<string, string>;
  auth?: HttpAuth;
  batchSize?: number;
  timeoutMs?: number;
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number; maxRetryAfterMs?: number };
}

const LABEL = 'Webhook destination';

export const webhookConfigSchema: JsonSchema = {
  type: 'object',
  title: 'Webhook',
  required: ['url'],
  additionalProperties: false,
  properties: {
    url: {
      type: 'string',
      minLength: 1,
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      origin: true,
      title: 'URL',
      description: 'http(s) endpoint receiving POST requests. Redirects are not followed.',
      examples: ['https://hooks.example.com/sluice'],
    },
    headers: {
      type: 'object',
      title: 'Headers',
      description: 'Extra request headers. Not write-only: put credentials in auth, not here.',
      additionalProperties: { type: 'string' },
    },
    auth: authSchema,
    batchSize: {
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      title: 'Records per request',
      description: 'Largest number of records per POST; a larger batch is split. Default: the whole batch in one request.',
    },
    timeoutMs: { type: 'integer', minimum: 100, default: 30000, title: 'Request timeout (ms)', description: 'Per attempt.' },
    retry: {
      type: 'object',
      title: 'Retries',
      description: 'Retries of network errors, timeouts, 408/429/5xx: exponential backoff with full jitter; Retry-After honoured up to maxRetryAfterMs.',
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

export const docs = `# Webhook (destination)

POSTs records as JSON to an http(s) endpoint.

\`\`\`json
{ "url": "https://hooks.example.com/sluice", "auth": { "type": "bearer", "token": "..." }, "batchSize": 500 }
\`\`\`

- **Payload**: \`{ "stream": "orders", "records": [ {...}, ... ] }\`, \`Content-Type: application/json\`,
  with an \`Idempotency-Key\` header (SHA-256 of the body) so the receiver can drop duplicates.
  \`batchSize\` caps the records per request.
- **Delivery**: at least once. Network errors, timeouts, 408, 429 and 5xx are retried with exponential
  backoff and jitter, honouring \`Retry-After\`; when retries run out the sync fails and is retried later.
- **Rejections**: any other 4xx rejects the records of that request (dead-lettered with the status);
  413 first splits the request. 401/403 stop the sync (fix the credentials). Redirects are not
  followed: a 3xx stops the sync.
- **auth**: none, basic, bearer or apiKey (header or query), as for the HTTP source; secrets are write-only
  and stored encrypted. A referenced authentication (\`authenticationId\`, OAuth2 client credentials included)
  replaces the inline \`auth\`.
- **Write mode**: APPEND only.
- **check** sends \`OPTIONS\` to the URL: any answer below 500 other than 401/403 and redirects counts
  as reachable (405 Method Not Allowed included); 5xx, redirects, credential refusals and connection
  failures do not.
`;

const SUPPORTED_MODES: WriteMode[] = ['APPEND'];

interface ResolvedConfig {
  /** The URL without credentials (an apiKey in the query is added per request). */
  url: URL;
  headers: Record<string, string>;
  credentials: HttpCredentials;
  batchSize: number | null;
  policy: RequestPolicy;
  shown: string;
}

/** A request's URL, headers and policy with the credentials applied. */
async function withCredentials(cfg: ResolvedConfig, headers: Record<string, string>): Promise<{ url: URL; headers: Record<string, string>; policy: RequestPolicy }> {
  const url = new URL(cfg.url);
  const h = { ...headers };
  const applied = await cfg.credentials.apply(h, url);
  return { url, headers: h, policy: { ...cfg.policy, secretQueryParams: applied.secretQueryParams, sensitiveHeaders: applied.sensitiveHeaders } };
}

/**
 * Sends one request with credentials; an OAuth2 token the endpoint refuses (401) is fetched
 * again once. Errors never carry a credential value.
 */
async function send(cfg: ResolvedConfig, method: string, headers: Record<string, string>, body: string | undefined, policy: Partial<RequestPolicy> = {}): Promise<Response> {
  try {
    return await cfg.credentials.withRefresh(async () => {
      const r = await withCredentials(cfg, headers);
      return request(r.url, { method, headers: r.headers, ...(body !== undefined ? { body } : {}) }, { ...r.policy, ...policy });
    });
  } catch (e) {
    throw e instanceof Error ? scrubError(e, cfg.credentials.scrub) : e;
  }
}

/** `onRequest`: hears every request (the job log, see requestLog in ../context.ts). */
function resolveConfig(raw: WebhookDestinationConfig, onRequest?: RequestPolicy['onRequest']): ResolvedConfig {
  if (!raw || typeof raw !== 'object') throw new DriverError(`${LABEL}: config must be an object`);
  if (typeof raw.url !== 'string' || raw.url === '') throw new DriverError(`${LABEL}: "url" is required`);
  let url: URL;
  try {
    url = new URL(raw.url);
  } catch {
    throw new DriverError(`${LABEL}: invalid URL ${JSON.stringify(redactUrl(raw.url))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DriverError(`${LABEL}: the URL must be http(s), got ${url.protocol}`);
  const headers: Record<string, string> = { ...(raw.headers ?? {}) };
  const auth = raw.auth ?? null;
  const retry = raw.retry ?? {};
  const timeoutMs = raw.timeoutMs ?? 30_000;
  return {
    url,
    headers,
    credentials: new HttpCredentials(auth, LABEL, { timeoutMs, onRequest }),
    batchSize: raw.batchSize ?? null,
    // A query parameter the apiKey replaces is not shown either.
    shown: redactUrl(url, auth?.type === 'apiKey' && auth.in === 'query' ? [auth.name] : []),
    policy: {
      label: LABEL,
      redirect: 'error',
      timeoutMs,
      onRequest,
      maxAttempts: retry.maxAttempts,
      baseDelayMs: retry.baseDelayMs,
      maxDelayMs: retry.maxDelayMs,
      maxRetryAfterMs: retry.maxRetryAfterMs,
    },
  };
}

function serializeRecords(records: DataRecord[], offset: number, rejected: RejectedRecord[]): { json: string[]; index: number[] } {
  const json: string[] = [];
  const index: number[] = [];
  for (let i = 0; i < records.length; i++) {
    let s: string | undefined;
    try {
      s = JSON.stringify(records[i]);
    } catch (e) {
      rejected.push({ index: offset + i, error: `cannot serialize record: ${(e as Error).message}` });
      continue;
    }
    if (s === undefined) {
      rejected.push({ index: offset + i, error: 'record is not a JSON value' });
      continue;
    }
    json.push(s);
    index.push(offset + i);
  }
  return { json, index };
}

class WebhookWriter implements StreamWriter {
  private done = false;
  private readonly streamJson: string;

  constructor(
    private readonly cfg: ResolvedConfig,
    stream: string,
  ) {
    this.streamJson = JSON.stringify(stream);
  }

  /** Sends records (already serialized) in one request; splits on 413. Returns bytes sent. */
  private async send(json: string[], index: number[], rejected: RejectedRecord[]): Promise<{ written: number; bytes: number }> {
    const body = `{"stream":${this.streamJson},"records":[${json.join(',')}]}`;
    const key = crypto.createHash('sha256').update(body).digest('base64url').slice(0, 43);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, */*;q=0.5',
      ...this.cfg.headers,
      'idempotency-key': key,
    };
    try {
      const res = await send(this.cfg, 'POST', headers, body);
      await res.body?.cancel().catch(() => undefined);
      return { written: json.length, bytes: Buffer.byteLength(body, 'utf8') };
    } catch (e) {
      if (!(e instanceof HttpError) || e.status < 400 || e.status >= 500 || e.status === 408 || e.status === 429) throw e;
      if (e.status === 401 || e.status === 403 || e.status === 407) throw e;
      if (e.status === 413 && json.length > 1) {
        const mid = json.length >> 1;
        const a = await this.send(json.slice(0, mid), index.slice(0, mid), rejected);
        const b = await this.send(json.slice(mid), index.slice(mid), rejected);
        return { written: a.written + b.written, bytes: a.bytes + b.bytes };
      }
      for (const i of index) rejected.push({ index: i, error: e.message });
      return { written: 0, bytes: 0 };
    }
  }

  async writeBatch(records: DataRecord[]): Promise<WriteResult> {
    if (this.done) throw new DriverError(`${LABEL}: writeBatch called after commit/abort`);
    const rejected: RejectedRecord[] = [];
    let written = 0;
    let bytes = 0;
    const size = this.cfg.batchSize ?? Math.max(1, records.length);
    for (let off = 0; off < records.length; off += size) {
      const part = records.length <= size ? records : records.slice(off, off + size);
      const { json, index } = serializeRecords(part, off, rejected);
      if (json.length === 0) continue;
      const r = await this.send(json, index, rejected);
      written += r.written;
      bytes += r.bytes;
    }
    rejected.sort((a, b) => a.index - b.index);
    return { written, bytes, rejected };
  }

  async commit(): Promise<void> {
    this.done = true;
  }

  async abort(): Promise<void> {
    this.done = true;
  }
}

async function openWriter(config: WebhookDestinationConfig, options: WriterOptions): Promise<StreamWriter> {
  const cfg = resolveConfig(config, requestLog(options.ctx, LABEL));
  if (!SUPPORTED_MODES.includes(options.writeMode)) {
    throw new DriverError(`${LABEL}: unsupported write mode ${options.writeMode} (supported: APPEND)`);
  }
  return new WebhookWriter(cfg, options.stream.destinationName ?? options.stream.name);
}

async function check(config: WebhookDestinationConfig): Promise<CheckResult> {
  let cfg: ResolvedConfig;
  try {
    cfg = resolveConfig(config);
  } catch (e) {
    return { ok: false, message: scrubSecrets((e as Error).message, authSecrets(config?.auth)) };
  }
  try {
    const probe = { redirect: 'manual' as const, maxAttempts: 2, timeoutMs: Math.min(cfg.policy.timeoutMs ?? 10_000, 10_000), acceptStatus: () => true };
    // OAuth2: a 401 may be a cached token revoked early; a new one is fetched once.
    const res = await cfg.credentials.withRefresh(
      () => send(cfg, 'OPTIONS', { ...cfg.headers }, undefined, probe),
      async (r) => {
        if (r.status !== 401) return false;
        await r.body?.cancel().catch(() => undefined);
        return true;
      },
    );
    await res.body?.cancel().catch(() => undefined);
    const s = res.status;
    if (s >= 500) return { ok: false, message: `${cfg.shown} answered OPTIONS with HTTP ${s}: the endpoint is failing` };
    if (s >= 300 && s < 400) {
      const loc = res.headers.get('location');
      return { ok: false, message: `${cfg.shown} redirects (HTTP ${s}${loc ? ` to ${redactUrl(new URL(loc, cfg.url))}` : ''}); webhooks do not follow redirects: use the final URL` };
    }
    if (s === 401 || s === 403) return { ok: false, message: `${cfg.shown} refused the credentials (HTTP ${s})` };
    return { ok: true, message: `${cfg.shown} is reachable (OPTIONS answered HTTP ${s})` };
  } catch (e) {
    return { ok: false, message: cfg.credentials.scrub(`Cannot reach ${cfg.shown}: ${(e as Error).message}`) };
  }
}

async function discover(): Promise<Catalog> {
  return { streams: [] };
}

export const webhookDestination: DestinationDriver<WebhookDestinationConfig> = {
  name: 'webhook',
  role: 'DESTINATION',
  title: 'Webhook',
  description: 'POSTs records as JSON batches to an http(s) endpoint, with retries, backoff and per-request rejection.',
  docs,
  configSchema: webhookConfigSchema,
  supportedWriteModes: SUPPORTED_MODES,
  check,
  discover,
  openWriter,
};

export default webhookDestination;
