/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): no GraphQL, no database.
 *
 * A secret is `whsec_` + base64 of 24–64 random bytes; the HMAC-SHA256 key is the decoded
 * bytes. The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the header
 * `webhook-signature` is a space-separated list of `v1,<base64 signature>` (one per active
 * secret, so receivers holding either secret verify during a rotation overlap).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
export const SECRET_BYTES = 32;

/** A new random secret: `whsec_` + base64 of `bytes` (24–64) random bytes. */
export function generateSecret(bytes = SECRET_BYTES): string {
  if (!Number.isInteger(bytes) || bytes < 24 || bytes > 64) throw new RangeError('a webhook secret has 24 to 64 bytes');
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/** The HMAC key of a secret (the `whsec_` prefix is optional). */
export function secretKey(secret: string): Buffer {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(raw, 'base64');
  if (key.length === 0) throw new Error('invalid webhook secret');
  return key;
}

/** `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. */
export function sign(secret: string, msgId: string, timestampSec: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${msgId}.${timestampSec}.${body}`).digest('base64');
  return `v1,${mac}`;
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  [name: string]: string;
}

/** The three Standard Webhooks headers, signed with every given secret (newest first). */
export function signedHeaders(secrets: string[], msgId: string, body: string, now: Date = new Date()): SignedHeaders {
  if (secrets.length === 0) throw new Error('no webhook secret');
  const ts = Math.floor(now.getTime() / 1000);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(ts),
    'webhook-signature': secrets.map((s) => sign(s, msgId, ts, body)).join(' '),
  };
}

/**
 * Verifies headers against a secret (what a receiver does; used by tests and the ping
 * self-check). Rejects timestamps outside `toleranceSec` of `now`.
 */
export function verify(secret: string, headers: Record<string, string | undefined>, body: string, now: Date = new Date(), toleranceSec = 300): boolean {
  const id = headers['webhook-id'];
  const ts = Number(headers['webhook-timestamp']);
  const sigs = headers['webhook-signature'];
  if (!id || !Number.isFinite(ts) || !sigs) return false;
  if (Math.abs(now.getTime() / 1000 - ts) > toleranceSec) return false;
  const expected = Buffer.from(sign(secret, id, ts, body));
  return sigs.split(' ').some((s) => {
    const got = Buffer.from(s);
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
