import { describe, expect, it, afterAll } from 'vitest';
import { generatorSource, type GeneratorSourceConfig } from '../../src/engine/drivers/generator.source.js';
import { DriverError, type ConfiguredStream, type DataRecord, type SourceMessage, type StreamStates } from '../../src/engine/drivers/types.js';
import { testFiles } from '../helpers/files.js';

// These drivers open no local file; the context is what every driver call gets.
const { ctx, cleanup: cleanupFiles } = testFiles();
afterAll(cleanupFiles);

async function collect(config: GeneratorSourceConfig, opts: { state?: StreamStates; batchSize?: number; streams?: ConfiguredStream[] } = {}): Promise<SourceMessage[]> {
  const streams = opts.streams ?? [{ name: 'stream_1', syncMode: 'FULL_REFRESH' }];
  const out: SourceMessage[] = [];
  for await (const m of generatorSource.read(config, streams, opts.state ?? {}, { batchSize: opts.batchSize ?? 1000, ctx })) out.push(m);
  return out;
}

const records = (ms: SourceMessage[], stream?: string): DataRecord[] =>
  ms.flatMap((m) => (m.type === 'records' && (stream === undefined || m.stream === stream) ? m.records : []));

describe('generator source', () => {
  it('generates count records with id, seq, ts and typed extra fields', async () => {
    const msgs = await collect({ count: 2500, shape: { fields: 5, stringLength: 12 }, intervalMs: 1500 }, { batchSize: 1000 });
    const recs = records(msgs);
    expect(recs).toHaveLength(2500);
    expect(recs.map((r) => r.id)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(recs[0]).toMatchObject({ id: 1, seq: 0, ts: '2024-01-01T00:00:00.000Z' });
    expect(recs[41]!.ts).toBe(new Date(Date.parse('2024-01-01T00:00:00Z') + 41 * 1500).toISOString());
    expect(recs[2499]!.ts).toBe(new Date(Date.parse('2024-01-01T00:00:00Z') + 2499 * 1500).toISOString());
    const r = recs[7]!;
    expect(Object.keys(r)).toEqual(['id', 'seq', 'ts', 'field_1', 'field_2', 'field_3', 'field_4', 'field_5']);
    expect(typeof r.field_1).toBe('string');
    expect((r.field_1 as string).length).toBe(12);
    expect(Number.isInteger(r.field_2)).toBe(true);
    expect(typeof r.field_3).toBe('number');
    expect(typeof r.field_4).toBe('boolean');
    expect(typeof r.field_5).toBe('string');
    expect(msgs.filter((m) => m.type === 'state').map((m) => (m as { state: unknown }).state)).toEqual([{ next: 1001 }, { next: 2001 }, { next: 2501 }]);
    expect(new Set(recs.map((x) => x.field_1)).size).toBeGreaterThan(500);
  });

  it('is deterministic: same seed ⇒ same records, whatever the batch size', async () => {
    const a = records(await collect({ count: 3000, seed: 42 }, { batchSize: 1000 }));
    const b = records(await collect({ count: 3000, seed: 42 }, { batchSize: 7 }));
    const c = records(await collect({ count: 3000, seed: 43 }, { batchSize: 1000 }));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(c.map((r) => r.id)).toEqual(a.map((r) => r.id));
  });

  it('resumes from { next: n } with exactly the records a full run would produce', async () => {
    const full = records(await collect({ count: 1000, seed: 9 }, { batchSize: 100 }));
    const rest = await collect({ count: 1000, seed: 9 }, { batchSize: 100, state: { stream_1: { next: 701 } } });
    expect(records(rest)).toEqual(full.slice(700));
    const done = await collect({ count: 1000 }, { state: { stream_1: { next: 1001 } } });
    expect(done).toEqual([{ type: 'state', stream: 'stream_1', state: { next: 1001 } }]);
    await expect(collect({ count: 10 }, { state: { stream_1: { next: 0 } } })).rejects.toThrow(DriverError);
  });

  it('serves several named streams round-robin with seq unique across streams', async () => {
    const cfg: GeneratorSourceConfig = { count: 30, streams: ['users', 'orders', 'items'], shape: { fields: 1 } };
    const cat = await generatorSource.discover(cfg, ctx);
    expect(cat.streams.map((s) => s.name)).toEqual(['users', 'orders', 'items']);
    expect(cat.streams[0]).toMatchObject({ defaultCursorField: ['id'], sourceDefinedPrimaryKey: ['id'], supportedSyncModes: ['FULL_REFRESH', 'INCREMENTAL'] });
    expect(cat.streams[0]!.fields).toEqual([
      { name: 'id', type: 'integer', nullable: false },
      { name: 'seq', type: 'integer', nullable: false },
      { name: 'ts', type: 'datetime', nullable: false },
      { name: 'field_1', type: 'string', nullable: false },
    ]);
    const streams: ConfiguredStream[] = [
      { name: 'users', syncMode: 'INCREMENTAL' },
      { name: 'items', syncMode: 'FULL_REFRESH' },
    ];
    const msgs = await collect(cfg, { streams, batchSize: 10 });
    expect(msgs.filter((m) => m.type === 'records').map((m) => m.stream)).toEqual(['users', 'items', 'users', 'items', 'users', 'items']);
    const seqs = [...records(msgs, 'users'), ...records(msgs, 'items')].map((r) => r.seq as number);
    expect(new Set(seqs).size).toBe(60);
    expect(records(msgs, 'items')[0]).toMatchObject({ id: 1, seq: 2 });
    expect(records(msgs, 'users')[0]!.field_1).not.toEqual(records(msgs, 'items')[0]!.field_1);
  });

  it('is unbounded with count 0 until the consumer stops or the job is cancelled', async () => {
    let n = 0;
    for await (const m of generatorSource.read({ count: 0 }, [{ name: 'stream_1', syncMode: 'INCREMENTAL' }], {}, { batchSize: 500, ctx })) {
      if (m.type === 'records') n += m.records.length;
      if (n >= 20_000) break;
    }
    expect(n).toBe(20_000);
    const ac = new AbortController();
    const run = (async () => {
      for await (const m of generatorSource.read({ count: 0, rate: 1000 }, [{ name: 'stream_1', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 100, signal: ac.signal, ctx })) {
        void m;
      }
    })();
    setTimeout(() => ac.abort(), 150);
    await expect(run).rejects.toThrow(/abort/i);
  });

  it('honours rate (records per second)', async () => {
    const t0 = Date.now();
    const msgs = await collect({ count: 600, rate: 2000 }, { batchSize: 1000 });
    const elapsed = Date.now() - t0;
    expect(records(msgs)).toHaveLength(600);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    // Batches are about a tenth of a second of records.
    expect(msgs.filter((m) => m.type === 'records').every((m) => (m as { records: unknown[] }).records.length <= 200)).toBe(true);
  });

  it('keeps only the selected fields', async () => {
    const msgs = await collect({ count: 3 }, { streams: [{ name: 'stream_1', syncMode: 'FULL_REFRESH', fields: ['id', 'ts'] }] });
    expect(records(msgs)).toEqual([
      { id: 1, ts: '2024-01-01T00:00:00.000Z' },
      { id: 2, ts: '2024-01-01T00:00:01.000Z' },
      { id: 3, ts: '2024-01-01T00:00:02.000Z' },
    ]);
  });

  it('checks its config', async () => {
    expect(await generatorSource.check({ count: 0, streams: 2 }, ctx)).toEqual({ ok: true, message: 'Generates unbounded per stream for 2 stream(s) with 11 field(s) each' });
    expect((await generatorSource.check({ count: -1 }, ctx)).ok).toBe(false);
  });
});
