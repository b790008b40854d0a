/**
 * Reading files as text: a binary or non-UTF-8 file read as CSV / JSON fails with the byte
 * offset and line of the first bad byte (utf8, the default), while a configured `encoding`
 * decodes it. The decoder itself gives the same text for every way the bytes are cut into chunks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvSource, type CsvSourceConfig } from '../../src/engine/drivers/file/csv.source.js';
import { jsonSource } from '../../src/engine/drivers/file/json.source.js';
import { decodeText } from '../../src/engine/drivers/kit/text-decode.js';
import { testFiles } from '../helpers/files.js';
import type { DataRecord, SourceMessage } from '../../src/engine/drivers/types.js';

const tf = testFiles('sluice-decode-');
const dir = tf.dir;
const ctx = tf.ctx;
afterAll(() => tf.cleanup());

/** Where the test files go (one spot, to adapt to file roots). */
function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function readCsv(config: CsvSourceConfig): Promise<DataRecord[]> {
  const out: SourceMessage[] = [];
  for await (const m of csvSource.read(config, [{ name: 'data', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 100, ctx })) out.push(m);
  return out.flatMap((m) => (m.type === 'records' ? m.records : []));
}

async function decode(chunks: Buffer[], encoding = 'utf8'): Promise<string> {
  let text = '';
  async function* source() {
    yield* chunks;
  }
  for await (const t of decodeText(source(), encoding, 'Test', 'f')) text += t;
  return text;
}

/** A small PNG-like binary: magic bytes, NULs, high bytes. */
const BINARY = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0xff, 0xd8]);

describe('CSV source on a file that is not UTF-8 text', () => {
  it('a binary file fails read, discover and check with a clear message, not garbage records', async () => {
    const config = { path: file('image.csv', BINARY), streamName: 'data' };
    await expect(readCsv(config)).rejects.toThrow(/image\.csv is not UTF-8 text: invalid byte 0x89 at byte 0 \(line 1\).*encoding/);
    await expect(csvSource.discover(config, ctx)).rejects.toThrow(/not UTF-8 text/);
    const check = await csvSource.check(config, ctx);
    expect(check.ok).toBe(false);
    expect(check.message).toMatch(/not UTF-8 text: invalid byte 0x89 at byte 0/);
  });

  it('names the offset and line of a NUL byte or an invalid byte further in', async () => {
    await expect(readCsv({ path: file('nul.csv', Buffer.from('id,name\n1,ada\n2,gr\x00ace\n', 'latin1')), streamName: 'data' })).rejects.toThrow(
      /a NUL byte at byte 18 \(line 3\)/,
    );
    const latin1 = Buffer.concat([Buffer.from('id,name\n1,ada\n2,'), Buffer.from([0xe9]), Buffer.from('mile\n')]);
    await expect(readCsv({ path: file('latin1.csv', latin1), streamName: 'data' })).rejects.toThrow(/invalid byte 0xe9 at byte 16 \(line 3\)/);
  });

  it('reads the same bytes as latin1 or utf16le when the encoding is configured', async () => {
    const latin1 = Buffer.concat([Buffer.from('id,name\n1,'), Buffer.from([0xc9]), Buffer.from('mile\n')]);
    expect(await readCsv({ path: file('latin1-ok.csv', latin1), streamName: 'data', encoding: 'latin1' })).toEqual([{ id: 1, name: 'Émile' }]);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id,name\n1,Zoë\n', 'utf16le')]);
    expect(await readCsv({ path: file('utf16.csv', utf16), streamName: 'data', encoding: 'utf16le' })).toEqual([{ id: 1, name: 'Zoë' }]);
  });

  it('reads valid UTF-8 (with a BOM and multi-byte characters) unchanged', async () => {
    const text = '\uFEFFid,name\n1,Zoë €𝄞\n';
    expect(await readCsv({ path: file('utf8.csv', text), streamName: 'data' })).toEqual([{ id: 1, name: 'Zoë €𝄞' }]);
  });
});

describe('JSON source on a binary file', () => {
  it('fails with the offset of the first bad byte instead of dead-lettering garbage lines', async () => {
    const url = file('blob.jsonl', Buffer.concat([Buffer.from('{"id":1}\n'), BINARY]));
    const read = async () => {
      for await (const _m of jsonSource.read({ url, format: 'jsonl' }, [{ name: 'blob', syncMode: 'FULL_REFRESH' }], {}, { batchSize: 10, ctx })) void _m;
    };
    await expect(read()).rejects.toThrow(/blob\.jsonl is not UTF-8 text: invalid byte 0x89 at byte 9 \(line 2\)/);
  });
});

describe('decodeText', () => {
  const text = 'héllo €𝄞\nzwei\n';
  const bytes = Buffer.from(text);

  it('gives the same text whatever the chunk boundaries', async () => {
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        expect(await decode([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)])).toBe(text);
      }
    }
  });

  it('reports a sequence cut off by the end of the data, and invalid sequences across chunks', async () => {
    await expect(decode([Buffer.from([0x61, 0xe2, 0x82])])).rejects.toThrow(/cut off by the end of the file at byte 1/);
    await expect(decode([Buffer.from([0x61, 0xe2]), Buffer.from([0x41])])).rejects.toThrow(/invalid byte 0xe2 at byte 1/);
    await expect(decode([Buffer.from('a\nb'), Buffer.from([0xc3]), Buffer.from([0xa9, 0x0a, 0x00])])).rejects.toThrow(/NUL byte at byte 6 \(line 3\)/);
  });
});
