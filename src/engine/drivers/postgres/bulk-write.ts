import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** COPY FROM STDIN in bounded chunks, with a failure that never leaves the connection stuck. */

export const CHUNK_BYTES = 256 * 1024;

/** Swallows whatever a failed COPY stream still tries to send. */
const BLACK_HOLE = {
  stream: { write: () => true, once: () => undefined },
  sendCopyFail: () => undefined,
};

/**
 * Runs one `COPY ... FROM STDIN`, writing the chunks as they are produced: the producer (CSV
 * encoding) runs while the server parses the previous chunks, so both cores work. After a
 * server error, pg-copy-streams drops its connection and would crash on its pending writes;
 * we point it at a black hole instead, so nothing more reaches the socket (what was already
 * sent is discarded by the server, which ignores CopyData after an error).
 */
export async function copyIn(client: pg.Client, sql: string, chunks: Iterable<Buffer>): Promise<void> {
  const q = copyFrom(sql, { highWaterMark: 4 * CHUNK_BYTES });
  const patched = q as unknown as { handleError(e: unknown): void; connection: unknown };
  const original = patched.handleError.bind(q);
  let failure: unknown = null;
  patched.handleError = (e: unknown) => {
    failure = e ?? new Error('COPY failed');
    original(e);
    patched.connection = BLACK_HOLE;
  };
  const done = new Promise<void>((resolve, reject) => {
    q.on('error', (e) => {
      failure ??= e;
      reject(e);
    });
    q.on('finish', () => resolve());
  });
  done.catch(() => undefined);
  client.query(q);
  try {
    for (const chunk of chunks) {
      if (failure !== null) break;
      if (!q.write(chunk)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            q.off('drain', go);
            q.off('error', go);
            resolve();
          };
          q.on('drain', go);
          q.on('error', go);
        });
      } else {
        // Let the socket flush and the server start on this chunk while we encode the next.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  } catch (e) {
    // The producer failed (not a record problem, those are caught inside): abandon the COPY.
    if (failure === null) {
      q.destroy(e as Error);
      await done.catch(() => undefined);
    }
    throw e;
  }
  if (failure === null) q.end();
  await done;
}
