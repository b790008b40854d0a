/**
 * Bytes → text for the file sources (csv, json).
 *
 * UTF-8 (the default) is strict: a byte sequence that is not UTF-8, or a NUL byte (a text file
 * never holds one; a binary file nearly always does), stops the read with a DriverError naming
 * the byte offset and the line, instead of silently turning the file into U+FFFD garbage. Other
 * encodings (latin1, utf16le, ascii: Node's StringDecoder) decode every byte as the encoding
 * says. A leading BOM is dropped either way.
 */
import { isUtf8 as validUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { DriverError } from '../types.js';

/** True for the names Node gives UTF-8. */
export function isUtf8Encoding(encoding: string): boolean {
  const e = encoding.toLowerCase();
  return e === 'utf8' || e === 'utf-8';
}

/** Length of the sequence a UTF-8 lead byte starts (0: not a lead byte). */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Index of the first byte of `b` that does not start a valid UTF-8 sequence (the error path only). */
function firstInvalid(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const n = sequenceLength(b[i]!);
    if (n === 0 || i + n > b.length || !validUtf8(b.subarray(i, i + n))) return i;
    i += n;
  }
  return b.length;
}

/**
 * How much of `data` decodes now: `{ end }` when data[0, end) is valid UTF-8 and the rest (at
 * most 3 bytes) is the start of a sequence the next chunk completes; `{ bad }` at an invalid byte.
 */
function utf8Split(data: Uint8Array): { end: number } | { bad: number } {
  if (validUtf8(data)) return { end: data.length };
  let k = data.length - 1;
  while (k > 0 && data.length - k < 4 && (data[k]! & 0xc0) === 0x80) k--;
  const n = sequenceLength(data[k]!);
  // The bytes after k are continuation bytes (the loop stopped at the first that is not); the
  // completed sequence is validated with the next chunk.
  if (n > 1 && data.length - k < n && validUtf8(data.subarray(0, k))) return { end: k };
  return { bad: firstInvalid(data) };
}

function newlines(b: Uint8Array, end: number): number {
  let n = 0;
  const buf = Buffer.from(b.buffer, b.byteOffset, end);
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

const ENCODING_HINT = 'A binary file cannot be read; for text in another encoding set "encoding" (e.g. latin1 or utf16le).';

/**
 * Decodes a byte stream to text chunks. `label` and `file` name the source in errors, e.g.
 * `CSV source: /data/x.csv is not UTF-8 text: invalid byte 0xff at byte 1234 (line 7). <hint>`.
 */
export async function* decodeText(
  src: AsyncIterable<Buffer | Uint8Array | string>,
  encoding: string,
  label: string,
  file: string,
  hint: string = ENCODING_HINT,
): AsyncGenerator<string> {
  let first = true;
  const bom = (text: string) => {
    if (first && text.length > 0) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) return text.slice(1);
    }
    return text;
  };
  if (!isUtf8Encoding(encoding)) {
    const decoder = new StringDecoder(encoding as BufferEncoding);
    for await (const piece of src) {
      const text = bom(decoder.write(Buffer.from(piece as Uint8Array)));
      if (text.length > 0) yield text;
    }
    const tail = bom(decoder.end());
    if (tail.length > 0) yield tail;
    return;
  }
  let start = 0; // file offset of data[0]
  let line = 1; // line of data[0]
  let carry: Buffer = Buffer.alloc(0); // the start of a sequence the next chunk completes
  const fail = (data: Uint8Array, at: number, what: string): never => {
    throw new DriverError(
      `${label}: ${file} is not UTF-8 text: ${what} at byte ${start + at} (line ${line + newlines(data, at)}). ${hint}`,
    );
  };
  for await (const piece of src) {
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    const data = carry.length ? Buffer.concat([carry, bytes]) : bytes;
    const nul = data.indexOf(0);
    const split = utf8Split(nul === -1 ? data : data.subarray(0, nul));
    if ('bad' in split) fail(data, split.bad, `invalid byte 0x${data[split.bad]!.toString(16).padStart(2, '0')}`);
    const end = (split as { end: number }).end;
    if (nul !== -1) fail(data, end < nul ? end : nul, end < nul ? 'an invalid UTF-8 sequence' : 'a NUL byte');
    const text = bom(data.toString('utf8', 0, end));
    line += newlines(data, end);
    start += end;
    carry = Buffer.from(data.subarray(end));
    if (text.length > 0) yield text;
  }
  if (carry.length > 0) fail(carry, 0, 'a UTF-8 sequence cut off by the end of the file');
}
