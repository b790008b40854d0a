import { describe, expect, it } from 'vitest';
import {
  drivers,
  getDestinationDriver,
  getDriver,
  getSourceDriver,
  listDrivers,
  secretPaths,
  validateConfig,
} from '../../src/engine/drivers/index.js';
import type { SourceDriver } from '../../src/engine/drivers/types.js';

describe('driver registry', () => {
  it('looks drivers up by name and role', () => {
    const names = drivers.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['csv', 'sqlite', 'jsonl']));
    expect(getDriver('csv')?.name).toBe('csv');
    expect(getDriver('nope')).toBeUndefined();
    expect(getSourceDriver('csv')?.role).toBe('SOURCE');
    expect(getSourceDriver('sqlite')).toBeUndefined();
    expect(getDestinationDriver('sqlite')?.role).toBe('DESTINATION');
    expect(getDestinationDriver('csv')).toBeUndefined();
    expect(getDestinationDriver('missing')).toBeUndefined();
    expect(listDrivers('SOURCE').every((d) => d.role === 'SOURCE')).toBe(true);
    expect(listDrivers('DESTINATION').every((d) => d.role === 'DESTINATION')).toBe(true);
    expect(listDrivers('SOURCE').length + listDrivers('DESTINATION').length).toBe(listDrivers().length);
    for (const d of drivers) {
      expect(d.role === 'SOURCE' ? getSourceDriver(d.name) : getDestinationDriver(d.name), d.name).toBe(d);
      expect(d.role === 'SOURCE' ? getDestinationDriver(d.name) : getSourceDriver(d.name), d.name).toBeUndefined();
    }
  });

  it('gives every driver docs and a closed config schema with titled, described properties', () => {
    for (const d of drivers) {
      expect(d.docs, d.name).toMatch(/^# /);
      expect(d.title.length, d.name).toBeGreaterThan(0);
      expect(d.configSchema.additionalProperties, d.name).toBe(false);
      for (const [key, prop] of Object.entries(d.configSchema.properties as Record<string, Record<string, unknown>>)) {
        expect(typeof prop.title, `${d.name}.${key}`).toBe('string');
        expect(typeof prop.description, `${d.name}.${key}`).toBe('string');
      }
    }
    for (const name of ['csv', 'sqlite', 'jsonl']) expect(getDriver(name)!.configSchema.required).toContain('path');
  });

  it('marks credentials secret', () => {
    for (const d of drivers) {
      for (const p of secretPaths(d)) expect(p, d.name).toMatch(/password|token|value|secret|connectionString|key/i);
    }
  });
});

describe('validateConfig', () => {
  const csv = getDriver('csv')!;
  const sqlite = getDriver('sqlite')!;

  it('fills defaults into a copy and leaves the input alone', () => {
    const input = { path: '/data/a.csv' };
    const res = validateConfig(csv, input);
    expect(res).toEqual({
      ok: true,
      config: { path: '/data/a.csv', delimiter: ',', header: true, quoteChar: '"', encoding: 'utf8' },
    });
    expect(input).toEqual({ path: '/data/a.csv' });
    expect(validateConfig(sqlite, { path: '/x.db' })).toEqual({ ok: true, config: { path: '/x.db', journalMode: 'WAL' } });
  });

  it('fills defaults and checks per-type requirements of the other drivers', () => {
    expect(validateConfig(getDriver('generator')!, {})).toEqual({
      ok: true,
      config: { count: 1000, streams: 1, rate: 0, seed: 1, startTime: '2024-01-01T00:00:00.000Z', intervalMs: 1000 },
    });
    expect(validateConfig(getDriver('null')!, {})).toEqual({ ok: true, config: { countBytes: true } });
    const cursor = validateConfig(getDriver('http')!, { url: 'https://x/y', pagination: { type: 'cursor' } });
    expect(cursor.ok).toBe(false);
    if (!cursor.ok) expect(cursor.errors[0]).toEqual({ path: 'pagination.cursorPath', message: 'is required' });
    expect(validateConfig(getDriver('webhook')!, { url: 'https://x', auth: { type: 'bearer' } }).ok).toBe(false);
    expect(validateConfig(getDriver('webhook')!, { url: 'file:///etc/passwd' }).ok).toBe(false);
    expect(validateConfig(getDriver('json')!, { url: '/a.json', format: 'xml' }).ok).toBe(false);
    expect(validateConfig(getDriver('file')!, { path: '/tmp', filePattern: '../x' }).ok).toBe(false);
  });

  it('accepts a tab delimiter, written either way', () => {
    expect(validateConfig(csv, { path: 'a', delimiter: '\t' }).ok).toBe(true);
    expect(validateConfig(csv, { path: 'a', delimiter: '\\t' }).ok).toBe(true);
    const res = validateConfig(csv, { path: 'a', delimiter: ';;' });
    expect(res.ok).toBe(false);
  });

  it('reports a missing required property', () => {
    expect(validateConfig(csv, {})).toEqual({ ok: false, errors: [{ path: 'path', message: 'is required' }] });
  });

  it('reports wrong types', () => {
    const res = validateConfig(csv, { path: 42, header: 'yes' });
    expect(res).toEqual({
      ok: false,
      errors: [
        { path: 'path', message: 'must be string' },
        { path: 'header', message: 'must be boolean' },
      ],
    });
  });

  it('names unknown properties', () => {
    const res = validateConfig(sqlite, { path: '/x.db', tabel: 'oops' });
    expect(res).toEqual({ ok: false, errors: [{ path: 'tabel', message: 'unknown property "tabel"' }] });
  });

  it('lists allowed values for enums, with nested paths', () => {
    const a = validateConfig(sqlite, { path: '/x.db', journalMode: 'wal2' });
    expect(a).toEqual({ ok: false, errors: [{ path: 'journalMode', message: 'must be one of: "WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY"' }] });
    const b = validateConfig(csv, { path: 'a.csv', columnTypes: { price: 'money', id: 'integer' } });
    expect(b.ok).toBe(false);
    if (!b.ok) {
      expect(b.errors).toHaveLength(1);
      expect(b.errors[0]!.path).toBe('columnTypes.price');
      expect(b.errors[0]!.message).toContain('"number"');
    }
  });

  it('reports every error at once and rejects non-objects', () => {
    const res = validateConfig(csv, { header: 1, extra: true });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.errors.map((e) => e.path).sort()).toEqual(['extra', 'header', 'path']);
    expect(validateConfig(csv, 'nope')).toEqual({ ok: false, errors: [{ path: '', message: 'must be object' }] });
    expect(validateConfig(csv, null)).toEqual({ ok: false, errors: [{ path: '', message: 'must be object' }] });
  });
});

describe('secretPaths', () => {
  it('marks inline credentials as secret (write-only) and nothing else', () => {
    for (const name of ['csv', 'sqlite', 'jsonl', 'json', 'generator', 'null', 'file']) expect(secretPaths(getDriver(name)!), name).toEqual([]);
    expect(secretPaths(getDriver('http')!).sort()).toEqual(['auth.password', 'auth.token', 'auth.value']);
    expect(secretPaths(getDriver('webhook')!).sort()).toEqual(['auth.password', 'auth.token', 'auth.value']);
  });

  it('lists properties marked secret, nested ones included, and validates them', () => {
    const fake: SourceDriver = {
      name: 'fake',
      role: 'SOURCE',
      title: 'Fake',
      description: '',
      docs: '# Fake',
      configSchema: {
        type: 'object',
        additionalProperties: false,
        properties: {
          host: { type: 'string' },
          password: { type: 'string', secret: true, examples: ['hunter2'] },
          auth: {
            type: 'object',
            properties: { token: { type: 'string', secret: true }, user: { type: 'string' } },
            oneOf: [{ properties: { apiKey: { type: 'string', secret: true } } }],
          },
          headers: { type: 'object', additionalProperties: { type: 'string', secret: true } },
        },
      },
      check: async () => ({ ok: true, message: '' }),
      discover: async () => ({ streams: [] }),
      read: async function* () {},
    };
    expect(secretPaths(fake).sort()).toEqual(['auth.apiKey', 'auth.token', 'headers.*', 'password']);
    expect(validateConfig(fake, { password: 'x', auth: { token: 't' } }).ok).toBe(true);
  });
});
