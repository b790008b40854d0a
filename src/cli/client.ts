/**
 * The GraphQL client of the client commands (keys, export, apply): one POST per operation to
 * `--url` / SLUICE_URL with `--api-key` / SLUICE_API_KEY as a bearer token. Every way the call
 * can fail becomes one CliError line: the server cannot be reached, the key is refused, the
 * server answered something that is not GraphQL, or GraphQL errors.
 */
import { CliError } from './errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:4000';

export interface ClientOptions {
  url?: string | undefined;
  apiKey?: string | undefined;
}

/** A typed error of a mutation or query result (`... on Error { code message }`). */
export interface TypedError {
  __typename: string;
  code?: string | null;
  message?: string | null;
  fieldErrors?: { path?: string | null; message?: string | null }[] | null;
}

/** `http://host:4000` → `http://host:4000/graphql`; a URL already naming the endpoint is kept. */
export function graphqlEndpoint(url: string): string {
  let parsed: URL;
  try {
    // `127.0.0.1:4000` / `sluice.internal:4000`: http is meant.
    parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`);
  } catch {
    throw new CliError(`invalid Sluice URL ${JSON.stringify(url)}: expected e.g. ${DEFAULT_URL}`, 2);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`invalid Sluice URL ${JSON.stringify(url)}: expected http:// or https://`, 2);
  if (!/\/graphql\/?$/.test(parsed.pathname)) parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/graphql`;
  return parsed.toString();
}

/** Why fetch failed, from undici's `cause` (ECONNREFUSED, ENOTFOUND, a timeout …). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is `sluice serve` running there?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timed out';
    default:
      return cause?.message ?? (err as Error).message;
  }
}

export class SluiceClient {
  readonly endpoint: string;
  private readonly apiKey: string | undefined;

  constructor(options: ClientOptions = {}) {
    this.endpoint = graphqlEndpoint(options.url || process.env.SLUICE_URL || DEFAULT_URL);
    this.apiKey = options.apiKey || process.env.SLUICE_API_KEY || undefined;
  }

  /** Runs one operation; returns `data`, or throws a CliError. */
  async request<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let res: Response;
    try {
      res = await fetch(this.endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    } catch (err) {
      throw new CliError(`cannot reach Sluice at ${this.endpoint}: ${networkReason(err)}`);
    }
    const text = await res.text();
    let body: { data?: T | null; errors?: { message?: string; extensions?: { code?: string } }[] } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    const firstError = body?.errors?.[0]?.message;
    if (res.status === 401) {
      const hint = this.apiKey ? 'check SLUICE_API_KEY / --api-key' : 'set SLUICE_API_KEY or pass --api-key (keyless access is only for local requests to a local server)';
      throw new CliError(`Sluice at ${this.endpoint} refused the request (401): ${(firstError ?? 'unauthenticated').replace(/\.$/, '')}; ${hint}`);
    }
    if (!body || typeof body !== 'object') {
      throw new CliError(`${this.endpoint} did not answer as a Sluice GraphQL endpoint (HTTP ${res.status}${text ? `: ${text.slice(0, 200).trim()}` : ''})`);
    }
    if (body.errors?.length) {
      const messages = body.errors.map((e) => e.message ?? 'unknown error');
      throw new CliError(messages.length === 1 ? `Sluice: ${messages[0]}` : `Sluice:\n${messages.map((m) => `  - ${m}`).join('\n')}`);
    }
    if (!res.ok || body.data == null) throw new CliError(`Sluice at ${this.endpoint} answered HTTP ${res.status} without data`);
    return body.data;
  }
}

/** The fragment every result union needs for its typed errors. */
export const ERROR_FIELDS = `__typename ... on Error { code message } ... on ValidationError { fieldErrors { path message } }`;

/** Throws a CliError for a typed error result; returns the success payload otherwise. */
export function unwrap<T extends { __typename: string }>(result: T | TypedError | null | undefined, successType: string): T {
  if (!result) throw new CliError('Sluice returned no result');
  if (result.__typename === successType) return result as T;
  const e = result as TypedError;
  const lines = [`${e.code ?? e.__typename}: ${e.message ?? 'failed'}`];
  for (const f of e.fieldErrors ?? []) {
    const line = `${f.path ?? ''}: ${f.message ?? ''}`;
    if (!lines[0]!.includes(line)) lines.push(`  ${line}`);
  }
  throw new CliError(lines.join('\n'));
}
