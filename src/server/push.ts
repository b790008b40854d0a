/**
 * The push endpoint of SUBSCRIPTION pipelines: `POST /pipelines/<pipeline id>/records`
 * with `Authorization: Bearer <push token>`, a JSON array (or one object) or NDJSON body.
 * Answers 202 only after the records are committed to the database: a crash after the
 * answer loses nothing. Errors are JSON `{ error, code }` with a fitting HTTP status.
 */
import type http from 'node:http';
import { ConflictError, ValidationError } from '../errors.js';
import type { Services } from '../services.js';

export const MAX_PUSH_BYTES = 32 * 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function send(res: http.ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** The pipeline id from the path: a UUID or a Relay global id (`Pipeline:<uuid>` in base64). */
function pipelineIdOf(raw: string): string | null {
  const id = decodeURIComponent(raw);
  if (UUID.test(id)) return id;
  const decoded = Buffer.from(id, 'base64').toString('utf8');
  const m = /^Pipeline:(.+)$/.exec(decoded);
  return m && UUID.test(m[1]!) ? m[1]! : null;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_PUSH_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON array / object or NDJSON into records; throws ValidationError naming the bad line or index. */
export function parseRecords(body: string, contentType: string): Record<string, unknown>[] {
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (/ndjson|jsonl|json-seq|x-json-stream/.test(contentType)) {
    const out: Record<string, unknown>[] = [];
    const lines = body.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line) continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (err) {
        throw new ValidationError('invalid NDJSON', [{ path: `line ${i + 1}`, message: (err as Error).message }]);
      }
      if (!isObject(v)) throw new ValidationError('invalid record', [{ path: `line ${i + 1}`, message: 'each line must be a JSON object' }]);
      out.push(v);
    }
    return out;
  }
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (err) {
    throw new ValidationError('invalid JSON', [{ path: 'body', message: (err as Error).message }]);
  }
  const list = Array.isArray(v) ? v : [v];
  list.forEach((r, i) => {
    if (!isObject(r)) throw new ValidationError('invalid record', [{ path: `[${i}]`, message: 'each record must be a JSON object' }]);
  });
  return list as Record<string, unknown>[];
}

export async function handlePush(req: http.IncomingMessage, res: http.ServerResponse, rawId: string, services: Services): Promise<void> {
  if (req.method !== 'POST') return send(res, 405, { error: 'use POST', code: 'METHOD_NOT_ALLOWED' }, { allow: 'POST' });
  const auth = req.headers.authorization ?? '';
  const token = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
  const id = pipelineIdOf(rawId);
  const pipeline = id ? await services.database.prisma.pipeline.findUnique({ where: { id } }) : null;
  // Unknown pipeline and wrong token answer the same, so the endpoint does not reveal which pipelines exist.
  if (!token || !pipeline || !services.triggers.verifyPushToken(pipeline, token)) {
    return send(res, 401, { error: 'a valid push token is required (Authorization: Bearer <token>)', code: 'UNAUTHENTICATED' }, { 'www-authenticate': 'Bearer' });
  }
  const contentType = String(req.headers['content-type'] ?? 'application/json');
  if (!/json|ndjson|jsonl/.test(contentType)) {
    return send(res, 415, { error: 'send application/json (an array of objects) or application/x-ndjson', code: 'UNSUPPORTED_MEDIA_TYPE' });
  }
  const body = await readBody(req);
  if (!body) return send(res, 413, { error: `body larger than ${MAX_PUSH_BYTES} bytes`, code: 'PAYLOAD_TOO_LARGE' });
  const url = new URL(req.url ?? '/', 'http://x');
  const streams = pipeline.streams as unknown as { name: string }[];
  const stream = url.searchParams.get('stream') ?? streams[0]?.name ?? 'default';
  if (!streams.some((s) => s.name === stream)) {
    return send(res, 400, { error: `the pipeline has no stream "${stream}"`, code: 'VALIDATION_FAILED' });
  }
  try {
    const records = parseRecords(body.toString('utf8'), contentType);
    if (!records.length) return send(res, 400, { error: 'no records in the body', code: 'VALIDATION_FAILED' });
    const result = await services.triggers.acceptPush(pipeline, stream, records);
    return send(res, 202, { accepted: result.accepted, stream, jobId: result.jobId ? Buffer.from(`Job:${result.jobId}`).toString('base64') : null });
  } catch (err) {
    if (err instanceof ValidationError) return send(res, 400, { error: err.message, code: err.code, fieldErrors: err.fieldErrors });
    if (err instanceof ConflictError) return send(res, 409, { error: err.message, code: err.code });
    throw err;
  }
}
