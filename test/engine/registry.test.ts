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
  it('registers csv, sqlite and jsonl with their roles', () => {
    expect(drivers.map((d) => [d.name, d.role])).toEqual([
      ['csv', 'SOURCE'],
      ['sqlite', 'DESTINATION'],
      ['jsonl', 'DESTINATION'],
    ]);
    expect(getDriver('csv')?.name).toBe('csv');
    expect(getDriver('nope')).toBeUndefined();
    expect(getSourceDriver('csv')?.role).toBe('SOURCE');
    expect(getSourceDriver('sqlite')).toBeUndefined();
    expect(getDestinationDriver('sqlite')?.role).toBe('DESTINATION');
    expect(getDestinationDriver('csv')).toBeUndefined();
    expect(getDestinationDriver('missing')).toBeUndefined();
    expect(listDrivers('SOURCE').map((d) => d.name)).toEqual(['csv']);
    expect(listDrivers('DESTINATION').map((d) => d.name)).toEqual(['sqlite', 'jsonl']);
    expect(listDrivers()).toHaveLength(3);
  });

  it('gives every driver docs and a closed config schema with titles', () => {
    for (const d of drivers) {
      expect(d.docs).toMatch(/^# /);
      expect(d.title.length).toBeGreaterThan(0);
      expect(d.configSchema.additionalProperties).toBe(false);
      expect(d.configSchema.required).toContain('path');
      for (const prop of Object.values(d.configSchema.properties as Record<string, Record<string, unknown>>)) {
        expect(typeof prop.title).toBe('string');
        expect(typeof prop.description).toBe('string');
      }
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
  it('is empty for the built-in drivers', () => {
    for (const d of drivers) expect(secretPaths(d)).toEqual([]);
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
