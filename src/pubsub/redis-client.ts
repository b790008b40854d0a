/**
 * What every Redis user in Sluice (the pub/sub, the BullMQ queue) shares about its
 * connections. Contract: `closeRedis` always leaves the connection closed — politely with QUIT
 * when Redis answers within QUIT_TIMEOUT_MS, by dropping the socket otherwise — and never throws.
 */
import type { Redis } from 'ioredis';

export const QUIT_TIMEOUT_MS = 2_000;

/** Whatever was thrown, as an Error. */
export const toError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('QUIT timed out')), QUIT_TIMEOUT_MS);
      }),
    ]);
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An error reporter that never throws back at its caller: `onError` gets every error as an
 * Error, and an `onError` that throws is ignored (a failing reporter must not break delivery).
 */
export function safeReporter(onError: (err: Error) => void): (err: unknown) => void {
  return (err) => {
    try {
      onError(toError(err));
    } catch {
      // ignored, see above
    }
  };
}
