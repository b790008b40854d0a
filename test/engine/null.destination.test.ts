import { describe, expect, it, afterAll } from 'vitest';
import { estimateBytes, nullDestination } from '../../src/engine/drivers/null.destination.js';
import { DriverError, type ConfiguredStream, type WriteMode } from '../../src/engine/drivers/types.js';
import { testFiles } from '../helpers/files.js';

// These drivers open no local file; the context is what every driver call gets.
const { ctx, cleanup: cleanupFiles } = testFiles();
afterAll(cleanupFiles);

const stream: ConfiguredStream = { name: 's', syncMode: 'FULL_REFRESH' };

describe('null destination', () => {
  it('accepts every write mode, counts records and estimates bytes', async () => {
    expect(nullDestination.supportedWriteModes).toEqual(['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE']);
    const batch = Array.from({ length: 100 }, (_, i) => ({ id: i, s: 'abc' }));
    for (const writeMode of nullDestination.supportedWriteModes as WriteMode[]) {
      const w = await nullDestination.openWriter({}, { writeMode, stream, ctx });
      const r = await w.writeBatch(batch);
      expect(r.written).toBe(100);
      expect(r.rejected).toEqual([]);
      const exact = batch.reduce((n, rec) => n + JSON.stringify(rec).length + 1, 0);
      expect(Math.abs(r.bytes - exact) / exact).toBeLessThan(0.1);
      await w.commit();
      await expect(w.writeBatch(batch)).rejects.toThrow(DriverError);
    }
  });

  it('reports 0 bytes with countBytes false, and survives unserializable records', async () => {
    const w = await nullDestination.openWriter({ countBytes: false }, { writeMode: 'APPEND', stream, ctx });
    expect(await w.writeBatch([{ a: 1 }])).toEqual({ written: 1, bytes: 0, rejected: [] });
    await w.abort();
    expect(estimateBytes([{ big: 1n } as unknown as Record<string, unknown>])).toBe(0);
    expect(estimateBytes([])).toBe(0);
    expect(await nullDestination.check({}, ctx)).toMatchObject({ ok: true });
  });
});
