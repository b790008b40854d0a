/** Test fixtures for secrets at rest as older Sluice versions wrote them. */
import crypto from 'node:crypto';

/** A v1 (unbound) ciphertext, as Sluice sealed secrets before binding them to rows: only the header `enc:v1:<id>` is authenticated. */
export function sealV1(keyId: string, keyBase64: string, plaintext: string): string {
  const iv = crypto.randomBytes(12);
  const header = `enc:v1:${keyId}`;
  const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(keyBase64, 'base64'), iv, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(header, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${header}:${iv.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${ct.toString('base64url')}`;
}
