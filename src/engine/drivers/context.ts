/**
 * The one place a DriverContext is made, from plain data: the API process (check, discover,
 * preview) and job workers build it the same way from a workspace's FileScope.
 *
 * A job worker also gives the context its job log (`driverContext(scope, log)`); a driver that
 * has something for the job's log reaches it with `driverLog(ctx)`, and `requestLog(ctx)` is the
 * HTTP client's `onRequest` hook that logs every request. Outside a job both are no-ops, so the
 * driver contract (DriverContext) stays what it is.
 */
import { FileAccess, type FileScope } from '../../security/file-roots.js';
import type { RequestEvent } from './http/client.js';
import type { DriverContext } from './types.js';

export type DriverLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One line for the job's log. `data` must be plain JSON (no secrets: they are removed anyway). */
export interface DriverLogLine {
  level: DriverLogLevel;
  message: string;
  data?: Record<string, unknown>;
}

export type DriverLog = (line: DriverLogLine) => void;

const LOG = Symbol('sluice.driverLog');
type WithLog = DriverContext & { [LOG]?: DriverLog };
const noop: DriverLog = () => undefined;

export function driverContext(scope: FileScope, log?: DriverLog): DriverContext {
  const ctx: WithLog = { files: new FileAccess(scope) };
  if (log) ctx[LOG] = log;
  return ctx;
}

/** The same context writing to `log` (e.g. one per stage of a job). */
export function withDriverLog(ctx: DriverContext, log: DriverLog): DriverContext {
  return { ...ctx, [LOG]: log } as WithLog;
}

/** The job log of this driver call; a no-op outside jobs. */
export function driverLog(ctx: DriverContext | undefined): DriverLog {
  return (ctx as WithLog | undefined)?.[LOG] ?? noop;
}

/**
 * The HTTP client's `onRequest` hook writing one line per request to the job log (DEBUG when
 * answered below 400, WARN otherwise); undefined outside jobs.
 */
export function requestLog(ctx: DriverContext | undefined, label: string): ((e: RequestEvent) => void) | undefined {
  const log = (ctx as WithLog | undefined)?.[LOG];
  if (!log) return undefined;
  return (e) => {
    const outcome = e.status ? `HTTP ${e.status}` : `no response (${e.error ?? 'failed'})`;
    log({
      level: e.status && e.status < 400 ? 'debug' : 'warn',
      message: `${label}: ${e.method} ${e.url} → ${outcome} in ${e.durationMs} ms${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`,
      data: { http: { method: e.method, url: e.url, status: e.status, durationMs: e.durationMs, attempt: e.attempt, ...(e.error ? { error: e.error } : {}) } },
    });
  };
}
