import { encodeGlobalID, decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, it } from 'vitest';
import { globalId } from '../../src/ids.js';

describe('globalId', () => {
  it('is the id the schema emits (Pothos relay encoding), and decodes back', () => {
    for (const [type, id] of [
      ['Pipeline', '019a6f2c-3b1e-7c4d-9a2b-5e6f7a8b9c0d'],
      ['ConnectorDefinition', 'csv'],
      ['Event', '12345678901234567890'],
    ] as const) {
      expect(globalId(type, id)).toBe(encodeGlobalID(type, id));
      expect(decodeGlobalID(globalId(type, id))).toEqual({ typename: type, id });
    }
  });
});
