/**
 * Standard Webhooks signing, checked against the reference `standardwebhooks` package.
 */
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { activeSecrets, retryDelay, RETRY_SCHEDULE } from '../../src/modules/webhook/delivery.service.js';
import { generateSecret, secretKey, sign, signedHeaders, verify } from '../../src/modules/webhook/signing.js';

const body = JSON.stringify({ type: 'CONNECTOR_CREATED', timestamp: '2026-01-01T00:00:00.000Z', data: { a: 1 } });

describe('webhook signing', () => {
  it('generates whsec_ secrets of 24 to 64 random bytes', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(a).not.toBe(b);
    expect(secretKey(a).length).toBe(32);
    expect(secretKey(generateSecret(24)).length).toBe(24);
    expect(secretKey(generateSecret(64)).length).toBe(64);
    expect(() => generateSecret(16)).toThrow();
    expect(() => generateSecret(65)).toThrow();
  });

  it('produces the signature the reference library produces and verifies', () => {
    const secret = generateSecret();
    const now = new Date();
    const headers = signedHeaders([secret], 'msg_1', body, now);
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(now.getTime() / 1000)));
    expect(headers['webhook-signature']).toBe(new Webhook(secret).sign('msg_1', now, body));
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(verify(secret, headers, body)).toBe(true);
  });

  it('is rejected for a tampered body, a wrong secret or a stale timestamp', () => {
    const secret = generateSecret();
    const headers = signedHeaders([secret], 'msg_2', body);
    const wh = new Webhook(secret);
    expect(() => wh.verify(body.replace('"a":1', '"a":2'), headers)).toThrow();
    expect(verify(secret, headers, body.replace('"a":1', '"a":2'))).toBe(false);
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
    const stale = signedHeaders([secret], 'msg_2', body, new Date(Date.now() - 10 * 60_000));
    expect(() => wh.verify(body, stale)).toThrow(/too old/i);
    expect(verify(secret, stale, body)).toBe(false);
    const future = signedHeaders([secret], 'msg_2', body, new Date(Date.now() + 10 * 60_000));
    expect(() => wh.verify(body, future)).toThrow(/too new/i);
  });

  it('signs with every active secret during a rotation overlap', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const now = new Date();
    const secrets = activeSecrets({ secret: newSecret, previousSecret: oldSecret, previousSecretExpiresAt: new Date(now.getTime() + 1000) }, now);
    expect(secrets).toEqual([newSecret, oldSecret]);
    const headers = signedHeaders(secrets, 'msg_3', body, now);
    const parts = headers['webhook-signature'].split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(sign(newSecret, 'msg_3', Math.floor(now.getTime() / 1000), body));
    expect(new Webhook(oldSecret).verify(body, headers)).toBeTruthy();
    expect(new Webhook(newSecret).verify(body, headers)).toBeTruthy();
    // After the overlap only the new secret signs.
    const later = activeSecrets({ secret: newSecret, previousSecret: oldSecret, previousSecretExpiresAt: new Date(now.getTime() - 1) }, now);
    expect(later).toEqual([newSecret]);
  });

  it('backs off exponentially with jitter', () => {
    const base = 5000;
    expect(retryDelay(1, base, () => 0.5)).toBe(5000);
    expect(retryDelay(2, base, () => 0.5)).toBe(30_000);
    expect(retryDelay(5, base, () => 0.5)).toBe(3_600_000);
    expect(retryDelay(99, base, () => 0.5)).toBe(RETRY_SCHEDULE.at(-1)! * base);
    expect(retryDelay(1, base, () => 0)).toBe(4000);
    expect(retryDelay(1, base, () => 0.9999)).toBeLessThanOrEqual(6000);
    const total = RETRY_SCHEDULE.reduce((a, m) => a + m * base, 0);
    expect(total).toBeGreaterThan(24 * 3_600_000); // retries span more than a day
  });
});
