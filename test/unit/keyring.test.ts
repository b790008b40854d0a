/**
 * The key ring: AES-256-GCM round trip, tamper detection, key ids, ciphertexts bound to their
 * owner (row and field) with unbound v1 values still opening, the key file (created atomically
 * with mode 0600, refused when group/others can read it) and file rotation.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { bindingOf, CIPHERTEXT_PREFIX, isBound, isCiphertext, KEY_FILE_NAME, keyIdOf, KeyRing, KeyRingError, parseKeyList, UNBOUND_PREFIX } from '../../src/security/keyring.js';
import { scrubSecrets } from '../../src/security/secrets-redact.js';
import { sealV1 } from '../helpers/keyring.js';

const b64 = () => crypto.randomBytes(32).toString('base64');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-keyring-'));
const posix = process.platform !== 'win32';
/** The binding most tests seal and open with. */
const B = bindingOf('connector', '0190d1a2-0000-7000-8000-000000000001', 'config.password');

describe('encryption', () => {
  const a1 = b64();
  const ring = KeyRing.fromKeys(parseKeyList(`a1:${a1},old:${b64()}`));

  it('round-trips under the primary key with a self-describing format', () => {
    for (const plain of ['s3cret-value', '', 'ünïcødé 🔑', 'x'.repeat(10_000)]) {
      const ct = ring.encrypt(plain, B);
      expect(ct.startsWith(`${CIPHERTEXT_PREFIX}a1:`)).toBe(true);
      expect(ct.split(':')).toHaveLength(6);
      expect(ct).not.toContain(plain || '\0');
      expect(keyIdOf(ct)).toBe('a1');
      expect(ring.decrypt(ct, B)).toBe(plain);
    }
    // A random IV per encryption.
    expect(ring.encrypt('same', B)).not.toBe(ring.encrypt('same', B));
  });

  it('binds a ciphertext to its row and field: anywhere else it fails, without the plaintext', () => {
    const rowA = bindingOf('connector', 'row-a', 'config.password');
    const ct = ring.encrypt('pw-of-row-a', rowA);
    expect(ct.startsWith('enc:v2:a1:')).toBe(true);
    expect(isBound(ct)).toBe(true);
    expect(ring.decrypt(ct, rowA)).toBe('pw-of-row-a');
    const elsewhere = [
      bindingOf('connector', 'row-b', 'config.password'), // another row
      bindingOf('connector', 'row-a', 'config.auth.token'), // another field of the same row
      bindingOf('authentication', 'row-a', 'config.password'), // another table, same id
      bindingOf('webhook', 'row-a', 'secret'),
      `${rowA}x`,
    ];
    for (const binding of elsewhere) {
      let err: unknown;
      try {
        ring.decrypt(ct, binding);
      } catch (e) {
        err = e;
      }
      expect(err, binding).toBeInstanceOf(KeyRingError);
      expect((err as Error).message).toContain(`the encrypted secret of ${binding} failed authentication with key "a1": it was sealed for another row or field`);
      expect((err as Error).message).not.toContain('pw-of-row-a');
    }
    // Moving it under the other key id, even at its own binding, fails too.
    expect(() => ring.decrypt(ct.replace(':a1:', ':old:'), rowA)).toThrow(/failed authentication with key "old"/);
    // A binding is required.
    expect(() => ring.encrypt('x', '')).toThrow(/owner binding/);
    expect(() => ring.decrypt(ct, '')).toThrow(/owner binding/);
  });

  it('still opens an unbound v1 ciphertext anywhere, and re-seals it bound', () => {
    const v1 = sealV1('a1', a1, 'from-before');
    expect(v1.startsWith(UNBOUND_PREFIX)).toBe(true);
    expect(isCiphertext(v1)).toBe(true);
    expect(isBound(v1)).toBe(false);
    expect(keyIdOf(v1)).toBe('a1');
    expect(ring.decrypt(v1, B)).toBe('from-before');
    expect(ring.decrypt(v1, bindingOf('webhook', 'w', 'secret'))).toBe('from-before');
    expect(ring.needsReseal(v1)).toBe(true);
    const v2 = ring.reseal(v1, B);
    expect(v2.startsWith(CIPHERTEXT_PREFIX)).toBe(true);
    expect(ring.needsReseal(v2)).toBe(false);
    expect(ring.reseal(v2, B)).toBe(v2);
    expect(ring.decrypt(v2, B)).toBe('from-before');
    expect(() => ring.decrypt(v2, bindingOf('webhook', 'w', 'secret'))).toThrow(KeyRingError);
    // v1 tampering is still detected (its header stays authenticated).
    expect(() => ring.decrypt(v1.replace(':a1:', ':old:'), B)).toThrow(/failed authentication with key "old"/);
    // A v1 header cannot be swapped for v2 (or back): the authenticated data differs.
    expect(() => ring.decrypt(v1.replace('enc:v1:', 'enc:v2:'), B)).toThrow(KeyRingError);
    expect(() => ring.decrypt(v2.replace('enc:v2:', 'enc:v1:'), B)).toThrow(KeyRingError);
  });

  it('treats a value without the prefix as legacy clear text', () => {
    expect(isCiphertext('hunter2')).toBe(false);
    expect(ring.decrypt('hunter2', B)).toBe('hunter2');
    expect(ring.needsReseal('hunter2')).toBe(true);
    const sealed = ring.reseal('hunter2', B);
    expect(isCiphertext(sealed)).toBe(true);
    expect(ring.decrypt(sealed, B)).toBe('hunter2');
    expect(ring.needsReseal(sealed)).toBe(false);
  });

  it('detects tampering of every part', () => {
    const ct = ring.encrypt('top secret', B);
    const parts = ct.split(':');
    for (const i of [3, 4, 5]) {
      const p = [...parts];
      const buf = Buffer.from(p[i]!, 'base64url');
      buf[0]! ^= 1;
      p[i] = buf.toString('base64url');
      expect(() => ring.decrypt(p.join(':'), B)).toThrow(KeyRingError);
    }
    // Moving a ciphertext under another key id fails (the header is authenticated).
    expect(() => ring.decrypt(ct.replace(':a1:', ':old:'), B)).toThrow(/failed authentication with key "old"/);
    expect(() => ring.decrypt(`${ct}AA`, B)).toThrow(KeyRingError);
    expect(() => ring.decrypt('enc:v1:a1:only', B)).toThrow(/malformed/);
  });

  it('names an unknown key id, never key material or plaintext', () => {
    const other = KeyRing.fromKeys(parseKeyList(`zz:${b64()}`));
    const ct = other.encrypt('the-plaintext', B);
    let msg = '';
    try {
      ring.decrypt(ct, B);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/key "zz".*not in the key ring.*a1, old/);
    expect(msg).not.toContain('the-plaintext');
  });

  it('decrypts with an older key and re-encrypts under the primary', () => {
    const oldKey = b64();
    const before = KeyRing.fromKeys(parseKeyList(`old:${oldKey}`));
    const ct = before.encrypt('v', B);
    const after = KeyRing.fromKeys(parseKeyList(`new:${b64()},old:${oldKey}`));
    expect(after.decrypt(ct, B)).toBe('v');
    expect(after.needsReseal(ct)).toBe(true);
    expect(keyIdOf(after.reseal(ct, B))).toBe('new');
  });
});

describe('SLUICE_SECRET_KEYS', () => {
  it('parses id:base64 entries, first = primary', () => {
    const cfg = loadConfig({ SLUICE_SECRET_KEYS: `k2:${b64()}, k1:${b64()}` });
    expect(cfg.secretKeys?.ids).toEqual(['k2', 'k1']);
    expect(KeyRing.open({ keys: cfg.secretKeys, dataDir: tmp() }).primaryId).toBe('k2');
    // The key material never shows in JSON or inspect output.
    expect(JSON.stringify(cfg)).not.toMatch(/[A-Za-z0-9+/]{43}=/);
  });

  it('rejects bad keys without echoing the value', () => {
    const bad = `k1:${crypto.randomBytes(16).toString('base64')}`;
    for (const v of [bad, 'nocolon', `bad id:${b64()}`, `k1:${b64()},k1:${b64()}`]) {
      let err: unknown;
      try {
        loadConfig({ SLUICE_SECRET_KEYS: v });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('SLUICE_SECRET_KEYS=<redacted>');
      expect((err as Error).message).not.toContain(v.slice(3));
    }
    expect(loadConfig({}).secretKeys).toBeNull();
  });
});

describe('key file', () => {
  it('is generated once with mode 0600 and reused', () => {
    const dir = tmp();
    const a = KeyRing.open({ keys: null, dataDir: dir });
    const file = path.join(dir, KEY_FILE_NAME);
    if (posix) expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const ct = a.encrypt('x', B);
    const b = KeyRing.open({ keys: null, dataDir: dir });
    expect(b.primaryId).toBe(a.primaryId);
    expect(b.decrypt(ct, B)).toBe('x');
    // No temporary files are left behind.
    expect(fs.readdirSync(dir)).toEqual([KEY_FILE_NAME]);
  });

  it.runIf(posix)('refuses a file readable by group or others', () => {
    const dir = tmp();
    KeyRing.open({ keys: null, dataDir: dir });
    const file = path.join(dir, KEY_FILE_NAME);
    fs.chmodSync(file, 0o644);
    expect(() => KeyRing.open({ keys: null, dataDir: dir })).toThrow(/accessible by group or others \(mode 0644\).*chmod 600/);
    fs.chmodSync(file, 0o600);
    expect(() => KeyRing.open({ keys: null, dataDir: dir })).not.toThrow();
  });

  it('rejects a corrupt file clearly', () => {
    const dir = tmp();
    const file = path.join(dir, KEY_FILE_NAME);
    fs.writeFileSync(file, '{"version":1,"keys":[{"id":"a","key":"short"}]}', { mode: 0o600 });
    expect(() => KeyRing.open({ keys: null, dataDir: dir })).toThrow(/key "a" is not base64 of 32 bytes/);
    fs.writeFileSync(file, 'not json', { mode: 0o600 });
    expect(() => KeyRing.open({ keys: null, dataDir: dir })).toThrow(/not valid JSON/);
  });

  it('rotates: a new primary, old keys kept until finished, then dropped from the file', () => {
    const dir = tmp();
    const file = path.join(dir, KEY_FILE_NAME);
    const ring = KeyRing.open({ keys: null, dataDir: dir });
    const first = ring.primaryId;
    const old = ring.encrypt('payload', B);

    const next = ring.beginFileRotation();
    expect(next).not.toBe(first);
    expect(ring.primaryId).toBe(next);
    const ids = (JSON.parse(fs.readFileSync(file, 'utf8')) as { keys: { id: string }[] }).keys.map((k) => k.id);
    expect(ids).toEqual([next, first]);
    if (posix) expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // Another process starting mid-rotation can read both generations.
    const other = KeyRing.open({ keys: null, dataDir: dir });
    expect(other.decrypt(old, B)).toBe('payload');

    const resealed = ring.reseal(old, B);
    expect(keyIdOf(resealed)).toBe(next);
    expect(ring.finishFileRotation()).toEqual([first]);
    const after = JSON.parse(fs.readFileSync(file, 'utf8')) as { keys: { id: string }[] };
    expect(after.keys.map((k) => k.id)).toEqual([next]);
    if (posix) expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual([KEY_FILE_NAME]);

    // This process still reads what it wrote before (retired keys stay in memory)…
    expect(ring.decrypt(old, B)).toBe('payload');
    // …a fresh one only knows the new key, and says which key is missing.
    const fresh = KeyRing.open({ keys: null, dataDir: dir });
    expect(fresh.decrypt(resealed, B)).toBe('payload');
    expect(() => fresh.decrypt(old, B)).toThrow(new RegExp(`key "${first}"`));
  });

  it('a process that missed a rotation picks the new key up from the file', () => {
    const dir = tmp();
    const a = KeyRing.open({ keys: null, dataDir: dir });
    const b = KeyRing.open({ keys: null, dataDir: dir });
    a.beginFileRotation();
    const ct = a.encrypt('fresh', B);
    a.finishFileRotation();
    expect(b.decrypt(ct, B)).toBe('fresh');
  });

  it('configured keys: rotation targets the configured primary and leaves files alone', () => {
    const dir = tmp();
    const ring = KeyRing.open({ keys: loadConfig({ SLUICE_SECRET_KEYS: `p:${b64()}` }).secretKeys, dataDir: dir });
    expect(ring.beginFileRotation()).toBe('p');
    expect(ring.finishFileRotation()).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('scrubSecrets', () => {
  it('removes raw, URL-encoded and base64 forms', () => {
    const s = 'p@ss word/+';
    const text = `a ${s} b ${encodeURIComponent(s)} c ${new URLSearchParams({ k: s }).toString()} d ${Buffer.from(s).toString('base64')}`;
    const out = scrubSecrets(text, [s]);
    expect(out).not.toContain(s);
    expect(out).not.toContain(encodeURIComponent(s));
    expect(out).not.toContain(Buffer.from(s).toString('base64'));
    expect(out).toContain('***');
    // Very short values are left alone.
    expect(scrubSecrets('a b c', ['a'])).toBe('a b c');
  });
});
