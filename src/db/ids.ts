/**
 * Row ids made before the insert, for rows whose content depends on their id (secrets are
 * sealed bound to the row that holds them). The same kind of id the schema's `uuid(7)` default
 * gives (RFC 9562 UUIDv7: 48-bit Unix milliseconds, then random bits), so ordering by id keeps
 * following creation time.
 */
import crypto from 'node:crypto';

/** A fresh UUIDv7, e.g. `019a6f2c-3b1e-7c4d-9a2b-5e6f7a8b9c0d`. */
export function newRowId(now: number = Date.now()): string {
  const b = crypto.randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70; // version 7
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
