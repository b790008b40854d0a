/**
 * The upload endpoint: `POST /files/<name>[?overwrite=true]` stores the request body as
 * `<name>` in the caller's workspace folder (src/modules/file/file.service.ts).
 *
 * Contract:
 * - The caller is authenticated as for GraphQL (API key, or trusted local access) and needs a
 *   WRITE key; the upload counts against the same rate limit as GraphQL operations; a browser
 *   page of a foreign origin is refused; a request a browser could send cross-site without a
 *   preflight (no content type, or a form / text/plain type, and none of the CSRF headers) is
 *   refused (CSRF_PREVENTED), so send e.g. `content-type: text/csv` or
 *   `application/octet-stream`.
 * - `<name>` is URL-encoded and may hold sub-folders (`in/orders.csv` or `in%2Forders.csv`).
 * - The body is streamed to disk, capped at SLUICE_MAX_UPLOAD_BYTES (413, nothing kept).
 * - 201 `{ name, size, path, modifiedAt }`. Errors are JSON `{ code, message, error }` (`error`
 *   repeats the message, as the push endpoint answers) with a fitting status: 400
 *   VALIDATION_FAILED, 401 UNAUTHENTICATED, 403 FORBIDDEN / CSRF_PREVENTED, 405, 409 CONFLICT,
 *   413 PAYLOAD_TOO_LARGE, 429 RATE_LIMITED, 507 INSUFFICIENT_STORAGE.
 * - Every authenticated attempt writes an AUDIT_MUTATION event (`uploadFile`) with its outcome.
 */
import type http from 'node:http';
import type { HardeningConfig } from '../config.js';
import { ConflictError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { UploadAbortedError, UploadTooLargeError } from '../modules/file/file.errors.js';
import { audit } from '../modules/workspace/access.graphql.js';
import { UNAUTHENTICATED_MESSAGES, type Authenticator } from '../modules/workspace/credentials.js';
import { runInWorkspace, scopeIncludes, type AuthContext } from '../tenancy/scope.js';
import type { Services } from '../services.js';
import { CSRF_HEADERS, originAllowed, rateLimitKey, type RateLimiter } from './hardening.js';

export interface UploadRoute {
  authenticator: Authenticator;
  hardening: HardeningConfig;
  /** The rate limiter GraphQL uses (null: no limit). */
  limiter: RateLimiter | null;
  maxUploadBytes: number;
  services: Services;
  log: Logger;
}

/** Content types a browser sends cross-site without a preflight. */
const SIMPLE_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];

/**
 * Answers with a JSON body. When the request body was not read (a refusal before or during the
 * upload), the rest of it is read and dropped for a few seconds, so the client gets to read the
 * answer, and the connection is closed.
 */
function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const unread = !req.readableEnded;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...(unread ? { connection: 'close' } : {}), ...headers }).end(JSON.stringify(body));
  if (unread) {
    req.resume();
    setTimeout(() => req.socket.destroy(), 5000).unref();
  }
}

const failure = (code: string, message: string, extra: Record<string, unknown> = {}) => ({ code, message, error: message, ...extra });

/** The `<name>` of the URL, decoded; null when it is not valid percent-encoding. */
function decodeName(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** Handles `/files/<rawName>` (rawName: the URL path after `/files/`, still encoded). */
export async function handleFileUpload(req: http.IncomingMessage, res: http.ServerResponse, rawName: string, requestId: string, route: UploadRoute): Promise<void> {
  if (req.method !== 'POST') {
    return send(req, res, 405, failure('METHOD_NOT_ALLOWED', 'use POST to upload a file (list files with the `files` query, delete them with deleteFile)'), { allow: 'POST' });
  }
  if (!originAllowed(req.headers.origin, req.headers.host, route.hardening)) {
    return send(req, res, 403, failure('FORBIDDEN', 'this origin may not call the server'));
  }
  const credentials = await route.authenticator.resolve(req);
  if (!credentials.ok) {
    return send(req, res, 401, failure('UNAUTHENTICATED', UNAUTHENTICATED_MESSAGES[credentials.reason]), { 'www-authenticate': 'Bearer realm="sluice"' });
  }
  const auth = credentials.auth;
  if (route.limiter) {
    const retryAfter = await route.limiter.consume(rateLimitKey({ auth, req }));
    if (retryAfter !== null) {
      return send(req, res, 429, failure('RATE_LIMITED', `Too many requests: try again in ${retryAfter} s.`, { retryAfter }), { 'retry-after': String(retryAfter) });
    }
  }
  await runInWorkspace(auth, () => upload(req, res, rawName, requestId, auth, route));
}

async function upload(req: http.IncomingMessage, res: http.ServerResponse, rawName: string, requestId: string, auth: AuthContext, route: UploadRoute): Promise<void> {
  let outcome = 'ERROR';
  try {
    if (!scopeIncludes(auth.scope, 'WRITE')) {
      outcome = 'FORBIDDEN';
      return send(req, res, 403, failure('FORBIDDEN', `this ${auth.scope} key may not upload files (needs WRITE); nothing was written`, { requiredScope: 'WRITE' }));
    }
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if ((!type || SIMPLE_TYPES.includes(type)) && !CSRF_HEADERS.some((h) => req.headers[h] !== undefined)) {
      outcome = 'CSRF_PREVENTED';
      return send(
        req,
        res,
        403,
        failure('CSRF_PREVENTED', `send the file with a content type such as text/csv or application/octet-stream (not ${type || 'none'}), or one of the headers ${CSRF_HEADERS.join(', ')}`),
      );
    }
    const name = decodeName(rawName);
    const overwriteParam = new URL(req.url ?? '/', 'http://x').searchParams.get('overwrite');
    const overwrite = overwriteParam === 'true' || overwriteParam === '1';
    const bad =
      name === null
        ? new ValidationError('invalid file name', [{ path: 'name', message: 'is not valid URL encoding' }])
        : overwriteParam !== null && !['true', 'false', '1', '0'].includes(overwriteParam)
          ? new ValidationError('invalid query', [{ path: 'overwrite', message: 'must be true or false' }])
          : null;
    if (bad) {
      outcome = bad.code;
      return send(req, res, 400, failure(bad.code, bad.message, { fieldErrors: bad.fieldErrors }));
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > route.maxUploadBytes) throw new UploadTooLargeError(route.maxUploadBytes);
    const file = await route.services.files.upload(name!, req, { overwrite, maxBytes: route.maxUploadBytes });
    outcome = 'OK';
    return send(req, res, 201, { name: file.name, size: file.size, path: file.path, modifiedAt: file.modifiedAt.toISOString() });
  } catch (err) {
    if (err instanceof ValidationError) {
      outcome = err.code;
      return send(req, res, 400, failure(err.code, err.message, { fieldErrors: err.fieldErrors }));
    }
    if (err instanceof ConflictError) {
      outcome = err.code;
      return send(req, res, 409, failure(err.code, err.message));
    }
    if (err instanceof UploadTooLargeError) {
      outcome = err.code;
      return send(req, res, 413, failure(err.code, err.message, { maxBytes: err.maxBytes }));
    }
    const errno = (err as NodeJS.ErrnoException | null)?.code;
    if (errno === 'ENOSPC' || errno === 'EDQUOT') {
      outcome = 'INSUFFICIENT_STORAGE';
      return send(req, res, 507, failure('INSUFFICIENT_STORAGE', 'the server has no room for the file; nothing was written'));
    }
    if (err instanceof UploadAbortedError) {
      outcome = 'ABORTED';
      req.socket.destroy();
      return;
    }
    throw err;
  } finally {
    await audit({ auth, services: route.services, requestId }, 'uploadFile', outcome).catch((err: unknown) => route.log.error({ err, requestId }, 'audit write failed'));
  }
}
