/**
 * Reading a little of a response body for a message or a log (an error's detail, a webhook
 * receiver's answer), shared by the http client and webhook deliveries.
 *
 * Contract: resolves to at most `limit` bytes of the body decoded as UTF-8 (a character cut at
 * the limit may decode as U+FFFD); never rejects (a failing or stalled body yields what arrived);
 * gives up after `timeoutMs` when given; always releases the connection (the rest of the body
 * is cancelled, never downloaded).
 */
export async function readBodySnippet(res: Response, limit: number, timeoutMs?: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  const timer = timeoutMs === undefined ? null : setTimeout(() => void reader.cancel().catch(() => undefined), Math.max(timeoutMs, 1));
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.length;
    }
  } catch {
    // Only decoration for a message.
  } finally {
    if (timer) clearTimeout(timer);
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(parts).toString('utf8', 0, Math.min(size, limit));
}
