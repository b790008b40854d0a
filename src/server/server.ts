/**
 * The HTTP server: GraphQL over HTTP and SSE (graphql-yoga), graphql-ws on the same
 * `/graphql` path, GraphiQL, `/health` (alive), `/ready` (database reachable and
 * migrated) and `/metrics` (Prometheus). Every transport builds the same context.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleStreamOrSingleExecutionResult, type Plugin } from '@envelop/core';
import type { ExecutionResult } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { HardeningConfig } from '../config.js';
import { AppError, ValidationError } from '../errors.js';
import type { GraphQLContext } from '../graphql/context.js';
import { GraphQLError } from '../graphql/graphql-cjs.js';
import { getSchema } from './schema.js';
import { renderOfflineGraphiQL } from './graphiql.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services.js';
import { handlePush } from './push.js';
import { handleFileUpload } from './files.js';
import { closeSocketOnEnd, useLiveStreams } from './live.js';
import { acceptBody, corsOptions, createRateLimiter, hardeningPlugins, sendError, wsOperationLimit, wsServerOptions } from './hardening.js';
import { useScopeCheck } from '../modules/workspace/access.graphql.js';
import { Authenticator, UNAUTHENTICATED_MESSAGES } from '../modules/workspace/credentials.js';
import { isInstanceAdmin } from '../modules/workspace/workspace.service.js';
import { useGraphQLMetrics } from '../observability/graphql-metrics.js';
import { bindIterator, runAsSystem, runInWorkspace, type AuthContext } from '../tenancy/scope.js';

export interface ServerOptions {
  host: string;
  port: number;
  graphiql: boolean;
  /** GraphQL limits, rate limit, CSRF/CORS and graphql-ws limits (see hardening.ts). */
  hardening: HardeningConfig;
  /** Serve keyless requests from this machine (see credentials.ts). */
  localAccess: boolean;
  /** `POST /files/<name>` bodies above this are refused with 413 (see files.ts). */
  maxUploadBytes: number;
  log: Logger;
  services: Services;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting, closes WebSockets with 1001 and ends open HTTP/SSE responses. */
  close(): Promise<void>;
}

/**
 * A GraphQLError from any copy of `graphql`: Pothos, yoga and graphql-cjs.ts share one, but
 * project code importing `graphql` directly gets the ESM build under the test runner, and
 * `instanceof` only knows its own copy.
 */
function isGraphQLError(err: unknown): boolean {
  if (err instanceof GraphQLError) return true;
  for (let proto = err ? Object.getPrototypeOf(err) : null; proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor?.name === 'GraphQLError') return true;
  }
  return false;
}

/** Masks unexpected errors for clients; logs them with the request id. */
function useMaskedUnexpectedErrors(): Plugin<GraphQLContext> {
  const mask = (ctx: GraphQLContext) => ({ result, setResult }: { result: ExecutionResult; setResult: (r: ExecutionResult) => void }) => {
    if (!result.errors?.length) return;
    setResult({
      ...result,
      errors: result.errors.map((err) => {
        const original = err.originalError;
        if (!original || isGraphQLError(original)) return err;
        if (original instanceof AppError) {
          const fieldErrors = original instanceof ValidationError ? { fieldErrors: original.fieldErrors } : {};
          return new GraphQLError(original.message, { nodes: err.nodes, path: err.path, extensions: { code: original.code, ...fieldErrors } });
        }
        ctx.log.error({ err: original, path: err.path?.join('.') }, 'unexpected error');
        return new GraphQLError('Unexpected error.', {
          nodes: err.nodes,
          path: err.path,
          extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: ctx.requestId },
        });
      }),
    });
  };
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, mask(args.contextValue)),
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, mask(args.contextValue)),
    }),
  };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { log, services } = options;

  // Refused keys are logged there (prefix and reason, never the key).
  const authenticator = new Authenticator(services.workspaces, options.localAccess, log);
  // One caller budget for GraphQL operations and uploads.
  const limiter = createRateLimiter(options.hardening.rateLimit, options.hardening.rateLimitWindowMs);

  const makeContext = (requestId: string, auth: AuthContext | undefined): GraphQLContext => {
    // Every path into yoga authenticates first; a context without a caller is a wiring bug.
    if (!auth) throw new Error('request reached GraphQL without authentication');
    return {
      requestId,
      log: log.child({ requestId, key: auth.keyPrefix }),
      db: services.database.prisma,
      services,
      auth,
    };
  };

  const yoga = createYoga<{ req?: http.IncomingMessage; requestId?: string; auth?: AuthContext }, GraphQLContext>({
    schema: getSchema(),
    graphqlEndpoint: '/graphql',
    graphiql: options.graphiql ? { subscriptionsProtocol: 'WS', title: 'Sluice GraphiQL' } : false,
    renderGraphiQL: renderOfflineGraphiQL,
    landingPage: false,
    maskedErrors: false,
    batching: false,
    cors: corsOptions(options.hardening),
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      error: (...args) => log.error(args.map(String).join(' ')),
    },
    context: ({ request, requestId, auth }) => makeContext(requestId ?? request.headers.get('x-request-id') ?? randomUUID(), auth),
    plugins: [useMaskedUnexpectedErrors(), ...hardeningPlugins(options.hardening, limiter), useScopeCheck(), useLiveStreams(services.liveConnections), useGraphQLMetrics(services.metrics)],
  });

  /**
   * `GET /metrics`: Prometheus text from this process's registry (services.metrics). The
   * metrics are process-wide — every workspace's jobs, records, subscriptions and deliveries
   * together, not per workspace — so they are instance data: served to keyless local access
   * (loopback, when local access is on: the same rule as GraphQL, see credentials.ts) or to an
   * ADMIN key of the default workspace (the instance operator, as for creating workspaces);
   * no key or a refused one → 401, any other valid key → 403.
   */
  const serveMetrics = async (req: http.IncomingMessage, res: http.ServerResponse, requestId: string) => {
    res.setHeader('x-request-id', requestId);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'Use GET /metrics.', { code: 'METHOD_NOT_ALLOWED' }, { allow: 'GET, HEAD' });
      return;
    }
    const credentials = await authenticator.resolve(req, undefined, requestId);
    if (!credentials.ok) {
      sendError(res, 401, UNAUTHENTICATED_MESSAGES[credentials.reason], { code: 'UNAUTHENTICATED' }, { 'www-authenticate': 'Bearer realm="sluice"' });
      return;
    }
    if (!isInstanceAdmin(credentials.auth)) {
      sendError(res, 403, 'Metrics cover every workspace: only an ADMIN key of the default workspace may read them.', { code: 'FORBIDDEN', requiredScope: 'ADMIN' });
      return;
    }
    const body = await services.metrics.scrape();
    res.writeHead(200, { 'content-type': services.metrics.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
  };

  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path === '/ready') {
      const checks = await Promise.all([
        services.database.ping().then(
          () => true,
          () => false,
        ),
        services.database.migrationsApplied().catch(() => false),
      ]);
      const ready = checks.every(Boolean);
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: ready ? 'ready' : 'not ready', database: checks[0], migrations: checks[1] }));
      return;
    }
    if (path === '/') {
      res.writeHead(302, { location: '/graphql' }).end();
      return;
    }
    if (path === '/metrics') {
      const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
      serveMetrics(req, res, requestId).catch((err: unknown) => {
        log.error({ err, requestId }, 'metrics scrape failed');
        if (!res.headersSent) sendError(res, 500, 'Unexpected error.', { code: 'INTERNAL_SERVER_ERROR', requestId });
      });
      return;
    }
    const push = /^\/pipelines\/([^/]+)\/records$/.exec(path ?? '');
    if (push) {
      runAsSystem(() => handlePush(req, res, push[1]!, services)).catch((err: unknown) => {
        const requestId = randomUUID();
        log.error({ err, requestId }, 'push failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Unexpected error.', code: 'INTERNAL_SERVER_ERROR', requestId }));
      });
      return;
    }
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
    res.setHeader('x-request-id', requestId);
    const upload = /^\/files(?:\/(.*))?$/.exec(path ?? '');
    if (upload) {
      const route = { authenticator, hardening: options.hardening, limiter, maxUploadBytes: options.maxUploadBytes, services, log };
      handleFileUpload(req, res, upload[1] ?? '', requestId, route).catch((err: unknown) => {
        log.error({ err, requestId }, 'upload failed');
        if (!res.headersSent) sendError(res, 500, 'Unexpected error.', { code: 'INTERNAL_SERVER_ERROR', requestId }, { connection: 'close' });
        else res.destroy();
      });
      return;
    }
    let credentials;
    try {
      credentials = await authenticator.resolve(req, undefined, requestId);
    } catch (err) {
      log.error({ err, requestId }, 'authentication failed');
      sendError(res, 500, 'Unexpected error.', { code: 'INTERNAL_SERVER_ERROR', requestId });
      return;
    }
    if (!credentials.ok) {
      sendError(res, 401, UNAUTHENTICATED_MESSAGES[credentials.reason], { code: 'UNAUTHENTICATED' }, { 'www-authenticate': 'Bearer realm="sluice"' });
      return;
    }
    const auth = credentials.auth;
    // Bodies over SLUICE_MAX_BODY_BYTES: 413 before anything is parsed (hardening.ts).
    if (!(await acceptBody(req, res, options.hardening.maxBodyBytes))) return;
    void runInWorkspace(auth, () => yoga(req, res, { requestId, auth }));
  });

  const wss = new WebSocketServer({ server, path: '/graphql', ...wsServerOptions(options.hardening) });
  useServer<Record<string, unknown>, { requestId: string; auth?: AuthContext }>(
    {
      connectionInitWaitTimeout: options.hardening.wsInitTimeoutMs,
      onConnect: async (ctx) => {
        ctx.extra.requestId = randomUUID();
        const params = ctx.connectionParams ?? {};
        const presented = params.authorization ?? params.Authorization ?? params.apiKey;
        const credentials = await authenticator.resolve(ctx.extra.request, presented, ctx.extra.requestId);
        if (credentials.ok) {
          ctx.extra.auth = credentials.auth;
          // Revocation or expiry of the key closes the socket with 4403 (live.ts).
          closeSocketOnEnd(services.liveConnections, credentials.auth, ctx.extra.socket);
          return true;
        }
        // graphql-ws codes: 4401 Unauthorized (no credentials), 4403 Forbidden (refused credentials).
        if (credentials.reason === 'missing') ctx.extra.socket.close(4401, 'Unauthorized');
        return false;
      },
      // Operations run in the caller's workspace; a subscription's stream stays bound to it
      // (async iterators resume in their consumer's context, see scope.ts).
      execute: (args) => {
        const { auth } = args.contextValue as GraphQLContext;
        return runInWorkspace(auth, () => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args)) as never;
      },
      subscribe: async (args) => {
        const { auth } = args.contextValue as GraphQLContext;
        const scope = { kind: 'workspace' as const, auth };
        const result = await runInWorkspace(auth, () => (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args));
        const it = result as AsyncIterator<unknown> & Partial<AsyncIterable<unknown>>;
        return (it && typeof it === 'object' && Symbol.asyncIterator in it ? bindIterator(it, scope) : result) as never;
      },
      onSubscribe: async (ctx, _id, payload) => {
        const overCap = wsOperationLimit(ctx, options.hardening);
        if (overCap) return overCap;
        const auth = ctx.extra.auth;
        if (!auth || !(await authenticator.stillValid(auth))) {
          log.warn({ reason: 'revoked or expired', keyPrefix: auth?.keyPrefix, requestId: `${ctx.extra.requestId}:${_id}` }, 'API key refused');
          ctx.extra.socket.close(4403, 'Forbidden: the API key was revoked');
          // graphql-cjs's GraphQLError: the class graphql-ws recognises.
          return [new GraphQLError('The API key is unknown, revoked or expired.', { extensions: { code: 'UNAUTHENTICATED' } })];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          requestId: `${ctx.extra.requestId}:${_id}`,
          auth,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (err) {
          return [err as GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length) return errors;
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
    },
    wss,
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostForUrl}:${address.port}/graphql`;

  return {
    url,
    port: address.port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      wss.close();
      server.closeIdleConnections();
      // SSE and other streaming responses end now; in-flight requests had their chance.
      setTimeout(() => server.closeAllConnections(), 1000).unref();
      await closed;
    },
  };
}
