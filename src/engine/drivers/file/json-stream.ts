/**
 * Incremental JSON splitting without building documents.
 *
 * `JsonArrayScanner` is fed text chunks of one JSON document and hands out the raw text of each
 * element of the array found at a dot path (`data.items`; the root array when the path is
 * empty). It only tracks structure: the containers on the way to the array (to match keys),
 * string boundaries and bracket depth. Everything off the path is skipped without allocation;
 * each element's text is then parsed by the caller with `JSON.parse` (native speed, full
 * validation per record). Memory is bounded by the largest element (`maxElementChars`), not the
 * document. Reading can stop as soon as the target array closes (`done`).
 *
 * Off-path values are only scanned, not validated; malformed structure on the path (or an
 * element that never ends) is a `JsonStructureError`.
 *
 * `LineSplitter` does the same for JSON Lines: complete lines, CR stripped, bounded length.
 */

export class JsonStructureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonStructureError';
  }
}

// Frame states.
const O_KEY_OR_END = 0; // after '{'
const O_KEY = 1; // after ','
const O_COLON = 2;
const O_VALUE = 3;
const O_COMMA_OR_END = 4;
const A_VALUE_OR_END = 5; // after '['
const A_VALUE = 6; // after ','
const A_COMMA_OR_END = 7;

interface Frame {
  arr: boolean;
  onPath: boolean;
  target: boolean;
  state: number;
  key: string;
  index: number;
  /** Dot path of this container, for hints. */
  path: string;
}

const WS = new Uint8Array(128);
WS[0x20] = 1;
WS[0x09] = 1;
WS[0x0a] = 1;
WS[0x0d] = 1;

export interface ScannerOptions {
  /** Called with the text of each element (or null for an element skipped via `skip`). */
  onElement: (text: string | null) => void;
  /** Elements to skip without capturing their text (resume). */
  skip?: number;
  maxElementChars?: number;
}

export class JsonArrayScanner {
  private readonly segs: string[];
  private readonly onElement: (text: string | null) => void;
  private readonly maxChars: number;
  private skipLeft: number;
  private readonly stack: Frame[] = [];
  /** Unconsumed tail of the previous chunk (a key split across chunks). */
  private carry = '';
  private consumed = 0;
  // Value (skip/capture) mode.
  private inValue = false;
  private capture = false;
  private vDepth = 0;
  private vInString = false;
  private vEscape = false;
  private vScalar = false;
  private vTopString = false;
  private parts: string[] = [];
  private partsLen = 0;
  private rootKind: 'array' | 'object' | 'scalar' | null = null;
  private rootClosed = false;
  private found = false;
  /** True once the records array closed: nothing more to read. */
  done = false;
  /** Paths of arrays seen next to the path (for "recordsPath not found" hints). */
  readonly arraysSeen: string[] = [];

  constructor(
    path: readonly string[],
    opts: ScannerOptions,
  ) {
    this.segs = [...path];
    this.onElement = opts.onElement;
    this.skipLeft = Math.max(0, opts.skip ?? 0);
    this.maxChars = opts.maxElementChars ?? 64 * 1024 * 1024;
  }

  private fail(pos: number, what: string): never {
    throw new JsonStructureError(`invalid JSON at character ${this.consumed + pos + 1}: ${what}`);
  }

  push(chunk: string): void {
    if (this.done) return;
    const buf = this.carry.length > 0 ? this.carry + chunk : chunk;
    this.carry = '';
    this.chunkId++;
    const len = buf.length;
    let pos = 0;
    let valueStart = 0; // a value continued from the previous chunk starts at 0
    for (;;) {
      if (this.inValue) {
        pos = this.scanValue(buf, pos);
        if (this.inValue) {
          // The value continues in the next chunk.
          if (this.capture) {
            const piece = valueStart === 0 ? buf : buf.slice(valueStart);
            this.parts.push(piece);
            this.partsLen += piece.length;
            if (this.partsLen > this.maxChars) {
              throw new JsonStructureError(`a record is longer than ${this.maxChars} characters (unterminated string or array?)`);
            }
          }
          break;
        }
        this.endValue(buf, valueStart, pos);
        if (this.done) break;
        continue;
      }
      if (pos >= len) break;
      const c = buf.charCodeAt(pos);
      if (c < 128 && WS[c] === 1) {
        pos++;
        continue;
      }
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) {
        if (this.rootClosed) this.fail(pos, `unexpected ${JSON.stringify(buf[pos])} after the end of the document`);
        if (this.rootKind === null && c === 0xfeff) {
          pos++;
          continue;
        }
        valueStart = pos;
        pos = this.startValue(buf, pos, c, null, true, this.segs.length === 0, '');
        continue;
      }
      if (top.arr) {
        if (top.state === A_COMMA_OR_END) {
          if (c === 0x2c) top.state = A_VALUE;
          else if (c === 0x5d) this.pop();
          else this.fail(pos, `expected , or ] but found ${JSON.stringify(buf[pos])}`);
          pos++;
          if (this.done) break;
          continue;
        }
        if (c === 0x5d) {
          if (top.state !== A_VALUE_OR_END) this.fail(pos, 'trailing comma before ]');
          this.pop();
          pos++;
          if (this.done) break;
          continue;
        }
        top.state = A_COMMA_OR_END;
        const idx = top.index++;
        valueStart = pos;
        if (top.target) {
          if (this.skipLeft > 0) {
            this.skipLeft--;
            this.capture = false;
            this.pendingSkip = true;
          } else this.capture = true;
          pos = this.beginValue(buf, pos, c);
          continue;
        }
        const depth = this.stack.length; // depth of the child
        const onPath = top.onPath && depth <= this.segs.length && this.segs[depth - 1] === String(idx);
        pos = this.startValue(buf, pos, c, top, onPath, onPath && depth === this.segs.length, `${top.path}${top.path ? '.' : ''}${idx}`);
        continue;
      }
      // Object frame.
      if (top.state === O_KEY_OR_END || top.state === O_KEY) {
        if (c === 0x7d) {
          if (top.state !== O_KEY_OR_END) this.fail(pos, 'trailing comma before }');
          this.pop();
          pos++;
          if (this.done) break;
          continue;
        }
        if (c !== 0x22) this.fail(pos, `expected a key but found ${JSON.stringify(buf[pos])}`);
        const end = stringEnd(buf, pos + 1);
        if (end === -1) {
          // The key continues in the next chunk: keep it and rescan (keys are short).
          this.carry = buf.slice(pos);
          if (this.carry.length > this.maxChars) throw new JsonStructureError(`an object key is longer than ${this.maxChars} characters`);
          this.consumed += pos;
          return;
        }
        try {
          top.key = JSON.parse(buf.slice(pos, end + 1)) as string;
        } catch {
          this.fail(pos, 'invalid string');
        }
        top.state = O_COLON;
        pos = end + 1;
      } else if (top.state === O_COLON) {
        if (c !== 0x3a) this.fail(pos, `expected : but found ${JSON.stringify(buf[pos])}`);
        top.state = O_VALUE;
        pos++;
      } else if (top.state === O_VALUE) {
        top.state = O_COMMA_OR_END;
        const depth = this.stack.length;
        const onPath = top.onPath && depth <= this.segs.length && this.segs[depth - 1] === top.key;
        valueStart = pos;
        pos = this.startValue(buf, pos, c, top, onPath, onPath && depth === this.segs.length, `${top.path}${top.path ? '.' : ''}${top.key}`);
      } else {
        if (c === 0x2c) top.state = O_KEY;
        else if (c === 0x7d) this.pop();
        else this.fail(pos, `expected , or } but found ${JSON.stringify(buf[pos])}`);
        pos++;
        if (this.done) break;
      }
    }
    this.consumed += len;
  }

  private chunkId = 0;
  private bsChunk = -1;
  private bsPos = -1;

  /** Next backslash at or after `pos` in the current chunk (cached: strings rarely have any). */
  private nextBackslash(buf: string, pos: number): number {
    if (this.bsChunk !== this.chunkId || (this.bsPos !== -1 && this.bsPos < pos)) {
      this.bsPos = buf.indexOf('\\', pos);
      this.bsChunk = this.chunkId;
    }
    return this.bsPos;
  }

  private pendingSkip = false;

  /** A value starts at `pos` in a structural position: descend, or skip it. */
  private startValue(buf: string, pos: number, c: number, parent: Frame | null, onPath: boolean, isTarget: boolean, path: string): number {
    const isRoot = parent === null;
    if (isRoot) this.rootKind = c === 0x5b ? 'array' : c === 0x7b ? 'object' : 'scalar';
    if (onPath) {
      if (isTarget && c !== 0x5b) {
        const kind = c === 0x7b ? 'an object' : c === 0x22 ? 'a string' : 'a scalar value';
        throw new JsonStructureError(
          isRoot ? `the document is ${kind}, not an array of records${c === 0x7b ? ' (set recordsPath to the array inside it, or use JSON Lines for one object per line)' : ''}` : `recordsPath "${this.segs.join('.')}" is ${kind}, not an array`,
        );
      }
      if (c === 0x5b || c === 0x7b) {
        const arr = c === 0x5b;
        this.stack.push({ arr, onPath: true, target: isTarget, state: arr ? A_VALUE_OR_END : O_KEY_OR_END, key: '', index: 0, path });
        if (isTarget) this.found = true;
        return pos + 1;
      }
      if (isRoot) throw new JsonStructureError('the document is a scalar value, not an array of records');
    }
    if (c === 0x5b && parent?.onPath && this.arraysSeen.length < 20) this.arraysSeen.push(path);
    this.capture = false;
    return this.beginValue(buf, pos, c);
  }

  /** Sets up skip/capture of a value starting at `pos`; returns where scanning continues. */
  private beginValue(buf: string, pos: number, c: number): number {
    this.inValue = true;
    this.vEscape = false;
    this.parts = [];
    this.partsLen = 0;
    this.vDepth = 0;
    this.vInString = false;
    this.vScalar = false;
    this.vTopString = false;
    if (c === 0x7b || c === 0x5b) {
      this.vDepth = 1;
      return pos + 1;
    }
    if (c === 0x22) {
      this.vInString = true;
      this.vTopString = true;
      return pos + 1;
    }
    if (c === 0x7d || c === 0x5d || c === 0x2c || c === 0x3a) this.fail(pos, `unexpected ${JSON.stringify(buf[pos])}`);
    this.vScalar = true;
    return pos;
  }

  /** Advances through the current value; clears `inValue` when it ends (at the returned position). */
  private scanValue(buf: string, pos: number): number {
    const len = buf.length;
    if (this.vScalar) {
      while (pos < len) {
        const c = buf.charCodeAt(pos);
        if (c === 0x2c || c === 0x5d || c === 0x7d || (c < 128 && WS[c] === 1)) {
          this.inValue = false;
          return pos;
        }
        pos++;
      }
      return pos;
    }
    for (;;) {
      if (this.vInString) {
        if (this.vEscape) {
          if (pos >= len) return pos;
          this.vEscape = false;
          pos++;
        }
        // Jump to the next quote; only walk char by char when a backslash precedes it.
        for (;;) {
          const q = buf.indexOf('"', pos);
          const b = this.nextBackslash(buf, pos);
          if (b !== -1 && (q === -1 || b < q)) {
            if (b + 1 >= len) {
              this.vEscape = true;
              return len;
            }
            pos = b + 2;
            continue;
          }
          if (q === -1) return len;
          pos = q + 1;
          break;
        }
        this.vInString = false;
        if (this.vTopString) {
          this.inValue = false;
          return pos;
        }
      }
      while (pos < len) {
        const c = buf.charCodeAt(pos++);
        if (c === 0x22) {
          this.vInString = true;
          break;
        }
        if (c === 0x7b || c === 0x5b) this.vDepth++;
        else if (c === 0x7d || c === 0x5d) {
          if (--this.vDepth === 0) {
            this.inValue = false;
            return pos;
          }
        }
      }
      if (!this.vInString) return pos;
    }
  }

  private endValue(buf: string, start: number, end: number): void {
    if (this.pendingSkip) {
      this.pendingSkip = false;
      this.parts = [];
      this.onElement(null);
      return;
    }
    if (!this.capture) return;
    let text: string;
    if (this.parts.length > 0) {
      this.parts.push(buf.slice(0, end));
      text = this.parts.join('');
      this.parts = [];
      this.partsLen = 0;
    } else text = buf.slice(start, end);
    if (text.length > this.maxChars) throw new JsonStructureError(`a record is longer than ${this.maxChars} characters`);
    this.capture = false;
    this.onElement(text);
  }

  private pop(): void {
    const f = this.stack.pop()!;
    if (f.target) this.done = true;
    if (this.stack.length === 0) this.rootClosed = true;
  }

  /** Call after the last chunk. Throws when the document is truncated or the path is missing. */
  end(): void {
    if (this.done) return;
    if (this.inValue && this.vScalar && this.stack.length === 0) {
      this.inValue = false;
      if (this.rootKind === 'scalar') throw new JsonStructureError('the document is a scalar value, not an array of records');
    }
    if (this.rootKind === null) throw new JsonStructureError('the document is empty');
    if (!this.rootClosed || this.inValue || this.carry.length > 0) {
      throw new JsonStructureError(
        this.found ? 'unexpected end of the document inside the records array (truncated?)' : 'unexpected end of the document (truncated?)',
      );
    }
    if (!this.found) {
      const hint = this.arraysSeen.length > 0 ? ` (arrays found at: ${this.arraysSeen.join(', ')})` : '';
      if (this.segs.length === 0) {
        throw new JsonStructureError(`the document is ${this.rootKind === 'object' ? 'an object' : 'not an array'}; set recordsPath to the array of records${hint}`);
      }
      throw new JsonStructureError(`recordsPath "${this.segs.join('.')}" was not found in the document${hint}`);
    }
  }
}

/** Index of the closing quote of a string whose content starts at `from`, or -1. */
function stringEnd(buf: string, from: number): number {
  let pos = from;
  for (;;) {
    const q = buf.indexOf('"', pos);
    if (q === -1) return -1;
    let bs = 0;
    for (let i = q - 1; i >= from && buf.charCodeAt(i) === 0x5c; i--) bs++;
    if (bs % 2 === 0) return q;
    pos = q + 1;
  }
}

/** Splits text chunks into lines (LF or CRLF), bounded by `maxLineChars`. */
export class LineSplitter {
  private parts: string[] = [];
  private partsLen = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineChars = 64 * 1024 * 1024,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl === -1) break;
      let line: string;
      if (this.parts.length > 0) {
        this.parts.push(chunk.slice(start, nl));
        line = this.parts.join('');
        this.parts = [];
        this.partsLen = 0;
      } else line = chunk.slice(start, nl);
      if (line.length > this.maxLineChars) throw new JsonStructureError(`a line is longer than ${this.maxLineChars} characters`);
      this.onLine(line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = start === 0 ? chunk : chunk.slice(start);
      this.parts.push(rest);
      this.partsLen += rest.length;
      if (this.partsLen > this.maxLineChars) throw new JsonStructureError(`a line is longer than ${this.maxLineChars} characters`);
    }
  }

  end(): void {
    if (this.parts.length === 0) return;
    const line = this.parts.join('');
    this.parts = [];
    this.partsLen = 0;
    this.onLine(line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line);
  }
}
