import { describe, expect, it } from 'vitest';
import { getDestinationDriver, getDriver, getSourceDriver, secretPaths, validateConfig } from '../../src/engine/drivers/index.js';

const MINE: [string, 'SOURCE' | 'DESTINATION'][] = [
  ['json', 'SOURCE'],
  ['http', 'SOURCE'],
  ['generator', 'SOURCE'],
  ['null', 'DESTINATION'],
  ['file', 'DESTINATION'],
  ['webhook', 'DESTINATION'],
];

describe('registry: json, http, generator, null, file, webhook', () => {
  it('registers each driver with its role, docs and a closed, documented schema', () => {
    for (const [name, role] of MINE) {
      const d = getDriver(name);
      expect(d?.role).toBe(role);
      expect(role === 'SOURCE' ? getSourceDriver(name) : getDestinationDriver(name)).toBe(d);
      expect(d!.docs).toMatch(/^# /);
      expect(d!.title.length).toBeGreaterThan(0);
      expect(d!.configSchema.additionalProperties).toBe(false);
      for (const prop of Object.values(d!.configSchema.properties as Record<string, Record<string, unknown>>)) {
        expect(typeof prop.title).toBe('string');
        expect(typeof prop.description).toBe('string');
      }
    }
  });

  it('marks inline credentials as secret (write-only) and nothing else', () => {
    expect(secretPaths(getDriver('http')!).sort()).toEqual(['auth.password', 'auth.token', 'auth.value']);
    expect(secretPaths(getDriver('webhook')!).sort()).toEqual(['auth.password', 'auth.token', 'auth.value']);
    for (const name of ['json', 'generator', 'null', 'file']) expect(secretPaths(getDriver(name)!)).toEqual([]);
  });

  it('validates configs with defaults and per-type requirements', () => {
    expect(validateConfig(getDriver('generator')!, {})).toEqual({
      ok: true,
      config: { count: 1000, streams: 1, rate: 0, seed: 1, startTime: '2024-01-01T00:00:00.000Z', intervalMs: 1000 },
    });
    expect(validateConfig(getDriver('null')!, {})).toEqual({ ok: true, config: { countBytes: true } });
    const cursor = validateConfig(getDriver('http')!, { url: 'https://x/y', pagination: { type: 'cursor' } });
    expect(cursor.ok).toBe(false);
    if (!cursor.ok) expect(cursor.errors[0]).toEqual({ path: 'pagination.cursorPath', message: 'is required' });
    const bearer = validateConfig(getDriver('webhook')!, { url: 'https://x', auth: { type: 'bearer' } });
    expect(bearer.ok).toBe(false);
    expect(validateConfig(getDriver('webhook')!, { url: 'file:///etc/passwd' }).ok).toBe(false);
    expect(validateConfig(getDriver('json')!, { url: '/a.json', format: 'xml' }).ok).toBe(false);
    expect(validateConfig(getDriver('file')!, { path: '/tmp', filePattern: '../x' }).ok).toBe(false);
  });
});
