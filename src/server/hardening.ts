/**
 * GraphQL hardening: limits on what one request may ask for and how often a caller may ask,
 * built from the configuration (SLUICE_* variables, see src/config.ts `HardeningConfig`).
 *
 * Every refusal is a GraphQL error with a stable `extensions.code`:
 *
 * | limit                                   | code                      | where / HTTP status                    |
 * | --------------------------------------- | ------------------------- | -------------------------------------- |
 * | selection depth (SLUICE_MAX_DEPTH)      | DEPTH_LIMIT_EXCEEDED      | validation                             |
 * | aliases (SLUICE_MAX_ALIASES)            | ALIAS_LIMIT_EXCEEDED      | validation                             |
 * | lexical tokens (SLUICE_MAX_TOKENS)      | TOKEN_LIMIT_EXCEEDED      | parsing (the document is not parsed on) |
 * | directives (SLUICE_MAX_DIRECTIVES)      | DIRECTIVE_LIMIT_EXCEEDED  | validation                             |
 * | cost (SLUICE_MAX_COST)                  | COST_LIMIT_EXCEEDED       | validation                             |
 * | `first`/`last` outside 0..100           | PAGE_SIZE_EXCEEDED (>100), BAD_USER_INPUT (<0) | before execution, literals and variables alike |
 * | introspection off (SLUICE_INTROSPECTION)| INTROSPECTION_DISABLED    | validation                             |
 * | body size (SLUICE_MAX_BODY_BYTES)       | PAYLOAD_TOO_LARGE         | HTTP 413, before anything is parsed    |
 * | CSRF header missing                     | CSRF_PREVENTED            | HTTP 403                               |
 * | rate (SLUICE_RATE_LIMIT per window)     | RATE_LIMITED (+ retryAfter seconds) | HTTP 429 + Retry-After; graphql-ws: the operation's result |
 * | graphql-ws operations per socket        | TOO_MANY_SUBSCRIPTIONS    | graphql-ws `error` message             |
 *
 * Batching is off (yoga answers an array body with 400, code BAD_REQUEST). graphql-ws: no
 * `connection_init` within SLUICE_WS_INIT_TIMEOUT_MS closes the socket with 4408; a message
 * above SLUICE_WS_MAX_MESSAGE_BYTES closes it with 1009. Browser origins other than the
 * server's own (and SLUICE_CORS_ORIGINS) get no CORS grant and cannot open a WebSocket.
 * "Did you mean …?" suggestions are removed from every error message.
 */
import type http from 'node:http';
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { handleStreamOrSingleExecutionResult, type Plugin as EnvelopPlugin } from '@envelop/core';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import type { ExecutionArgs, ExecutionResult, GraphQLField, ValidationContext, ValidationRule } from 'graphql';
import type { Plugin as YogaPlugin } from 'graphql-yoga';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { HardeningConfig } from '../config.js';
import { PAGE } from '../graphql/common.graphql.js';
import { GraphQLError, graphqlCjs } from '../graphql/graphql-cjs.js';

/** graphql-js functions applied to the schema: the libraries' copy (see graphql-cjs.ts). */
const {
  NoSchemaIntrospectionCustomRule,
  TypeInfo,
  getArgumentValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isObjectType,
  visit,
  visitWithTypeInfo,
} = graphqlCjs;

/** The `extensions.code` of each refusal. */
const HardeningCode = {
  depth: 'DEPTH_LIMIT_EXCEEDED',
  aliases: 'ALIAS_LIMIT_EXCEEDED',
  tokens: 'TOKEN_LIMIT_EXCEEDED',
  directives: 'DIRECTIVE_LIMIT_EXCEEDED',
  cost: 'COST_LIMIT_EXCEEDED',
  pageSize: 'PAGE_SIZE_EXCEEDED',
  badInput: 'BAD_USER_INPUT',
  introspection: 'INTROSPECTION_DISABLED',
  bodyTooLarge: 'PAYLOAD_TOO_LARGE',
  csrf: 'CSRF_PREVENTED',
  rateLimited: 'RATE_LIMITED',
  tooManySubscriptions: 'TOO_MANY_SUBSCRIPTIONS',
} as const;

/** Headers any one of which marks a request as not a browser's "simple" (CSRF-able) request. */
export const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'graphql-preflight'];

/** Largest `first` / `last` of a connection (the same bound Pothos uses, see PAGE). */
const MAX_PAGE_SIZE = PAGE.maxSize;

// ---------------------------------------------------------------------------------------------
// Document limits (graphql-armor)

/** graphql-armor prefixes its messages with "Syntax Error: " even for validation limits. */
const armorMessage = (err: GraphQLError) => err.message.replace(/^Syntax Error: /, '');

/** Reports graphql-armor's rejection as a validation error carrying `code`. */
const reportWithCode = (code: string) => (ctx: ValidationContext | null, err: GraphQLError) => {
  ctx?.reportError(new GraphQLError(armorMessage(err), { extensions: { code } }));
};

/** The token limit runs inside the parser: it must throw to stop parsing, so it throws its own coded error. */
const throwWithCode = (code: string) => (_ctx: ValidationContext | null, err: GraphQLError) => {
  throw new GraphQLError(armorMessage(err), { extensions: { code, http: { status: 400 } } });
};

const SUGGESTION = /\s*Did you mean [^?]*\?/g;
const HAS_SUGGESTION = /Did you mean /;

/** Removes "Did you mean …?" from a message (validation and variable-coercion errors alike). */
function withoutSuggestions(message: string): string {
  return message.replace(SUGGESTION, '').trim();
}

/**
 * Removes every "Did you mean …?": validation errors (`Did you mean "x"?`, `Did you mean the
 * enum value "X"?`) and errors that execution reports (variable coercion: `Field "x" is not
 * defined by type "EventFilter". Did you mean "types"?`). Messages are edited in place. (It
 * covers graphql-armor's block-field-suggestions, which is therefore off.)
 */
function useNoSuggestions(): EnvelopPlugin {
  const strip = (errors: readonly Error[] | undefined) => {
    for (const e of errors ?? []) if (HAS_SUGGESTION.test(e.message)) e.message = withoutSuggestions(e.message);
  };
  return {
    onValidate: () => ({ result }) => strip(result),
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, ({ result }) => strip(result.errors)) }),
    onSubscribe: () => ({ onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, ({ result }) => strip(result.errors)) }),
  };
}

/** Refuses `__schema` / `__type` (not `__typename`) with code INTROSPECTION_DISABLED. */
const NoIntrospectionRule: ValidationRule = (context) =>
  NoSchemaIntrospectionCustomRule(
    Object.create(context, {
      reportError: {
        value: (err: GraphQLError) =>
          context.reportError(new GraphQLError(err.message, { nodes: err.nodes, extensions: { code: HardeningCode.introspection } })),
      },
    }) as ValidationContext,
  );

// ---------------------------------------------------------------------------------------------
// Page sizes

const connectionFields = new WeakMap<GraphQLField<unknown, unknown>, boolean>();

/** A Relay connection field: `first` and `last` arguments, a type with `edges` and `pageInfo`. */
function isConnectionField(field: GraphQLField<unknown, unknown>): boolean {
  let known = connectionFields.get(field);
  if (known === undefined) {
    const type = getNamedType(field.type);
    const fields = isObjectType(type) ? type.getFields() : {};
    known = field.args.some((a) => a.name === 'first') && field.args.some((a) => a.name === 'last') && 'edges' in fields && 'pageInfo' in fields;
    connectionFields.set(field, known);
  }
  return known;
}

/**
 * `first` / `last` of every connection field the operation selects, literal or variable,
 * outside 0..max. Variables that do not coerce are left to execution, which reports them.
 */
function pageSizeErrors(args: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName' | 'variableValues'>, max: number = MAX_PAGE_SIZE): GraphQLError[] {
  const operation = getOperationAST(args.document, args.operationName ?? undefined);
  if (!operation) return [];
  const vars = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
  if (vars.errors) return [];
  const typeInfo = new TypeInfo(args.schema);
  const errors: GraphQLError[] = [];
  visit(
    args.document,
    visitWithTypeInfo(typeInfo, {
      OperationDefinition: (node) => (node === operation ? undefined : false),
      Field: (node) => {
        const field = typeInfo.getFieldDef();
        if (!field || !isConnectionField(field)) return;
        let values: Record<string, unknown>;
        try {
          values = getArgumentValues(field, node, vars.coerced);
        } catch {
          return; // execution reports it
        }
        for (const name of ['first', 'last'] as const) {
          const value = values[name];
          if (typeof value !== 'number') continue;
          const argNode = node.arguments?.find((a) => a.name.value === name) ?? node;
          const at = `${typeInfo.getParentType()?.name ?? '?'}.${field.name}`;
          if (value > max) {
            errors.push(
              new GraphQLError(`"${name}" of ${at} is ${value}; a page has at most ${max} items.`, {
                nodes: [argNode],
                extensions: { code: HardeningCode.pageSize, argument: name, maximum: max },
              }),
            );
          } else if (value < 0) {
            errors.push(
              new GraphQLError(`"${name}" of ${at} is ${value}; it must not be negative.`, {
                nodes: [argNode],
                extensions: { code: HardeningCode.badInput, argument: name },
              }),
            );
          }
        }
      },
    }),
  );
  return errors;
}

function usePageSizeLimit(max: number): EnvelopPlugin {
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const errors = pageSizeErrors(args, max);
      if (errors.length) setResultAndStopExecution({ errors });
    },
    onSubscribe: ({ args, setResultAndStopExecution }) => {
      const errors = pageSizeErrors(args, max);
      if (errors.length) setResultAndStopExecution({ errors });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Rate limiting

/** What the rate limiter reads from the GraphQL context (HTTP and graphql-ws alike). */
interface RateLimitContext {
  auth?: { apiKeyId: string | null } | null;
  /** Node's request: yoga's server context over HTTP, the upgrade request over graphql-ws. */
  req?: http.IncomingMessage;
  /** The Fetch request: present over HTTP (and SSE) only. */
  request?: unknown;
}

/** The caller: its API key, or (without one) its remote address. */
export function rateLimitKey(ctx: RateLimitContext): string {
  const keyId = ctx.auth?.apiKeyId;
  return keyId ? `key:${keyId}` : `local:${ctx.req?.socket?.remoteAddress ?? 'unknown'}`;
}

export interface RateLimiter {
  /** Counts one operation for `key`; returns the seconds to wait when over the limit, else null. */
  consume(key: string): Promise<number | null>;
}

/** In-memory, per process (rate-limiter-flexible: a Redis-backed limiter drops in for several instances). */
export function createRateLimiter(points: number, windowMs: number): RateLimiter | null {
  if (points <= 0) return null;
  const limiter = new RateLimiterMemory({ points, duration: windowMs / 1000 });
  return {
    consume: async (key) => {
      try {
        await limiter.consume(key);
        return null;
      } catch (res) {
        if (res instanceof RateLimiterRes || (res && typeof res === 'object' && 'msBeforeNext' in res)) {
          return Math.max(1, Math.ceil((res as RateLimiterRes).msBeforeNext / 1000));
        }
        throw res;
      }
    },
  };
}

function rateLimitedError(retryAfter: number, overHttp: boolean): GraphQLError {
  return new GraphQLError(`Too many requests: try again in ${retryAfter} s.`, {
    extensions: {
      code: HardeningCode.rateLimited,
      retryAfter,
      ...(overHttp ? { http: { status: 429, headers: { 'Retry-After': String(retryAfter) } } } : {}),
    },
  });
}

/**
 * One point per operation, checked when the context (with the caller's auth) exists and
 * before anything executes. Over HTTP: 429 with Retry-After; over graphql-ws: the
 * operation's result is the RATE_LIMITED error.
 */
function useRateLimit(limiter: RateLimiter): EnvelopPlugin {
  const check = async (ctx: RateLimitContext, stop: (r: ExecutionResult) => void) => {
    const retryAfter = await limiter.consume(rateLimitKey(ctx));
    if (retryAfter !== null) stop({ errors: [rateLimitedError(retryAfter, ctx.request != null)] });
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => check(args.contextValue as RateLimitContext, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => check(args.contextValue as RateLimitContext, setResultAndStopExecution),
  };
}

// ---------------------------------------------------------------------------------------------
// CSRF, CORS and origins

/** yoga's CSRF prevention, with a code on its 403 error. */
function useCsrfPrevention(): YogaPlugin {
  const inner = useCSRFPrevention({ requestHeaders: CSRF_HEADERS });
  return {
    onRequestParse(payload) {
      try {
        return inner.onRequestParse?.(payload);
      } catch (err) {
        throw new GraphQLError(
          `${(err as Error).message}: send a JSON body (content-type application/json) or one of the headers ${CSRF_HEADERS.join(', ')}.`,
          { extensions: { code: HardeningCode.csrf, http: { status: 403 } } },
        );
      }
    },
  };
}

/**
 * yoga's `cors` option: by default yoga grants every origin (credentials included), which a
 * CSRF defence relying on preflights cannot allow. Same-origin pages (GraphiQL) need no grant.
 */
export function corsOptions(config: HardeningConfig): false | { origin: string[]; credentials: boolean; methods: string[] } {
  return config.corsOrigins.length ? { origin: config.corsOrigins, credentials: false, methods: ['GET', 'POST'] } : false;
}

/** A browser page of another origin (not in SLUICE_CORS_ORIGINS) may not talk to the server; other clients send no Origin. */
export function originAllowed(origin: string | undefined, host: string | undefined, config: HardeningConfig): boolean {
  if (!origin) return true;
  if (config.corsOrigins.includes(origin)) return true;
  try {
    return !!host && new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Assembly

/** A plugin for yoga's `plugins` list, whatever its context type. */
type AnyPlugin = YogaPlugin<any>;

/**
 * The yoga/envelop plugins, in order: request-level checks (CSRF), parse/validate limits, then
 * the checks before execution (rate limit first, so a refused caller costs nothing more).
 * `limiter`: the caller budget, shared with the server's other routes (uploads) when given.
 */
export function hardeningPlugins(config: HardeningConfig, limiter = createRateLimiter(config.rateLimit, config.rateLimitWindowMs)): AnyPlugin[] {
  const plugins: AnyPlugin[] = [useCsrfPrevention()];
  // Each limit reports a validation error with its own code (instead of armor's generic
  // throw); the token limit has to stop the parser, so it throws its own coded error. 0: off.
  const reject = (code: string) => ({ propagateOnRejection: false, onReject: [reportWithCode(code)] });
  const armor = new EnvelopArmor({
    blockFieldSuggestion: { enabled: false }, // useNoSuggestions removes them all
    maxTokens: { enabled: config.maxTokens > 0, n: config.maxTokens, onReject: [throwWithCode(HardeningCode.tokens)] },
    maxDepth: { enabled: config.maxDepth > 0, n: config.maxDepth, ...reject(HardeningCode.depth) },
    maxAliases: { enabled: config.maxAliases > 0, n: config.maxAliases, ...reject(HardeningCode.aliases) },
    maxDirectives: { enabled: config.maxDirectives > 0, n: config.maxDirectives, ...reject(HardeningCode.directives) },
    costLimit: { enabled: config.maxCost > 0, maxCost: config.maxCost, ...reject(HardeningCode.cost) },
  });
  plugins.push(...(armor.protect().plugins as AnyPlugin[]), useNoSuggestions());
  if (!config.introspection) plugins.push({ onValidate: ({ addValidationRule }) => addValidationRule(NoIntrospectionRule) });
  if (limiter) plugins.push(useRateLimit(limiter));
  plugins.push(usePageSizeLimit(MAX_PAGE_SIZE));
  return plugins;
}

/** Options for `new WebSocketServer({ server, path, ...wsServerOptions(config) })`. */
export function wsServerOptions(config: HardeningConfig) {
  return {
    /** A bigger message closes the socket with 1009 (Message Too Big). */
    maxPayload: config.wsMaxMessageBytes,
    verifyClient: (info: { origin: string; req: http.IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
      if (originAllowed(info.origin || undefined, info.req.headers.host, config)) done(true);
      else done(false, 403, 'Origin not allowed');
    },
  };
}

/**
 * graphql-ws `onSubscribe` guard: at most `wsMaxSubscriptions` operations at once per socket
 * (an error for the operation over the cap, the others go on). graphql-ws registers an
 * operation in `ctx.subscriptions` before `onSubscribe` and removes it when it completes or the
 * client completes it, so the count is the socket's live operations, this one included.
 */
export function wsOperationLimit(ctx: { subscriptions: Record<string, unknown> }, config: HardeningConfig): GraphQLError[] | undefined {
  const active = Object.keys(ctx.subscriptions).length;
  if (active <= config.wsMaxSubscriptions) return undefined;
  return [
    new GraphQLError(`At most ${config.wsMaxSubscriptions} operations may run at once on one connection.`, {
      extensions: { code: HardeningCode.tooManySubscriptions, limit: config.wsMaxSubscriptions },
    }),
  ];
}

/** Writes a GraphQL-shaped JSON error response (for refusals before yoga sees the request). */
export function sendError(res: http.ServerResponse, status: number, message: string, extensions: Record<string, unknown>, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify({ errors: [{ message, extensions }] }));
}

/**
 * Reads a GraphQL request's body within `maxBytes` before yoga parses anything: a larger
 * Content-Length, or more streamed (chunked) bytes, is answered 413 PAYLOAD_TOO_LARGE and the
 * connection closed. Returns false when it answered; otherwise the body is handed to yoga
 * (as `req.body`, which yoga's Node adapter reads instead of the consumed stream).
 */
export async function acceptBody(req: http.IncomingMessage, res: http.ServerResponse, maxBytes: number): Promise<boolean> {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return true;
  const tooLarge = () => {
    sendError(res, 413, `The request body is larger than ${maxBytes} bytes.`, { code: HardeningCode.bodyTooLarge, maxBytes }, { connection: 'close' });
    // The rest of the body is read and dropped (so the client gets to read the answer rather
    // than a reset), for a few seconds at most; `connection: close` ends the socket after it.
    req.resume();
    setTimeout(() => req.socket.destroy(), 5000).unref();
    return false;
  };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge();
  return new Promise<boolean>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (ok: boolean) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onError);
      resolve(ok);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      done(tooLarge());
    };
    const onEnd = () => {
      if (size > 0) (req as http.IncomingMessage & { body?: Buffer }).body = Buffer.concat(chunks, size);
      done(true);
    };
    const onError = () => done(false); // the client went away
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onError);
  });
}
