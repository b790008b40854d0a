/** The input walker (NUL, depth) and the state-database NUL replacement, on their own. */
import { describe, expect, it } from 'vitest';
import { pgJson, pgText } from '../../src/db/pg-text.js';
import { MAX_INPUT_DEPTH, inputProblems } from '../../src/security/input-check.js';

describe('inputProblems', () => {
  it('names each NUL by path (values and keys) in document order, at most 20', () => {
    expect(inputProblems({ a: 'x\u0000', b: [1, { c: '\u0000' }], ['k\u0000']: 1 }, 'input')).toEqual([
      { path: 'input.a', message: expect.stringMatching(/NUL/) },
      { path: 'input.b[1].c', message: expect.stringMatching(/NUL/) },
      { path: 'input.k\\u0000', message: expect.stringMatching(/key/) },
    ]);
    expect(inputProblems(Array.from({ length: 100 }, () => '\u0000'), 'r')).toHaveLength(20);
    expect(inputProblems({ a: 'fine', b: [1, null, true, { c: 'ok' }] }, 'input')).toEqual([]);
  });

  it('stops at the depth limit without recursing (a million levels)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    const problems = inputProblems(deep, 'x');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe(`x${'[0]'.repeat(MAX_INPUT_DEPTH)}`);
    let ok: unknown = 1;
    for (let i = 0; i < MAX_INPUT_DEPTH; i++) ok = [ok];
    expect(inputProblems(ok, 'x')).toEqual([]);
  });
});

describe('pgJson / pgText', () => {
  it('replaces real NUL characters only, keeping an escaped backslash-u0000 text', () => {
    const v = { 'k\u0000': 'a\u0000b', lit: '\\u0000', both: '\\\u0000' };
    expect(pgJson(v)).toEqual({ 'k\uFFFD': 'a\uFFFDb', lit: '\\u0000', both: '\\\uFFFD' });
    const clean = { a: '\\u0000' };
    expect(pgJson(clean)).toBe(clean);
    expect(pgText('x\u0000')).toBe('x\uFFFD');
    expect(pgJson(null)).toBeNull();
  });
});
