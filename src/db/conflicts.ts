/**
 * Transaction conflicts the database resolves by aborting one side: a deadlock (40P01) or a
 * serialisation failure (40001). Such a transaction changed nothing and may simply be run
 * again. Prisma reports them as P2034, or (raw queries, driver adapters) with the PostgreSQL
 * code on the error's cause.
 */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

export function isTransactionConflict(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false;
  const e = err as { code?: unknown; originalCode?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };
  if (e.code === 'P2034') return true;
  if (typeof e.code === 'string' && RETRYABLE_SQLSTATES.has(e.code)) return true;
  if (typeof e.originalCode === 'string' && RETRYABLE_SQLSTATES.has(e.originalCode)) return true;
  return isTransactionConflict(e.cause, depth + 1) || isTransactionConflict(e.meta?.driverAdapterError, depth + 1);
}
