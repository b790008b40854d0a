/**
 * Connectors through the real server: definitions (Airbyte-style specs), create with config
 * validation (typed ValidationError with exact field paths, nothing written on failure), the
 * real check / discover (recorded as jobs and events), optimistic updates, delete protection,
 * filtering and Relay pagination, and `node` / `nodes` look-ups by global id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, testDataDir, type TestServer } from '../helpers/server.js';
import { gid, ungid } from '../helpers/graphql.js';

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
let csvPath: string;

// Spread inside the Error interface so it is valid in every result union.
const ERR = `
  __typename
  ... on Error {
    code message
    ... on ValidationError { fieldErrors { path message } }
    ... on ConflictError { currentVersion }
    ... on InUseError { usedBy }
    ... on NotFoundError { entity id }
    ... on ConnectorFailedError { connectorId }
  }
`;

const CONNECTOR = `id name driver role config paused version lastCheckOk lastCheckAt lastCheckMessage createdAt updatedAt`;

const CREATE = `mutation($i: CreateConnectorInput!) {
  createConnector(input: $i) { ${ERR} ... on CreateConnectorPayload { connector { ${CONNECTOR} } } }
}`;

async function create(input: Record<string, unknown>) {
  return (await s.q(CREATE, { i: input })).createConnector;
}

async function createOk(input: Record<string, unknown>) {
  const r = await create(input);
  expect(r.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.connector as { id: string; name: string; version: number; config: Record<string, unknown> };
}

async function countConnectors(): Promise<number> {
  return (await s.q(`{ connectors { totalCount } }`)).connectors.totalCount;
}

async function eventsOf(filter: Record<string, unknown>) {
  const data = await s.q(
    `query($f: EventFilter) { events(filter: $f, first: 100) { totalCount edges { node { id type connectorId jobId pipelineId message data cursor } } } }`,
    { f: filter },
  );
  return data.events as { totalCount: number; edges: { node: any }[] };
}

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-connectors-'));
  csvPath = path.join(dir, 'orders.csv');
  fs.writeFileSync(
    csvPath,
    [
      'id,name,price,active,created_at,notes',
      '1,Ann,9.5,true,2026-01-02T03:04:05Z,hello',
      '2,Bob,10,false,2026-01-03T00:00:00Z,',
      '3,Cy,0.25,TRUE,2026-02-01,x',
      '',
    ].join('\n'),
  );
  s = await startTestServer({ dataDir: filesData });
});
afterAll(async () => {
  await s?.stop();
});

describe('connectorDefinitions', () => {
  const DEFS = `{ id driver role title description docs configSchema secretFields supportedWriteModes }`;

  it('lists csv (SOURCE), sqlite and jsonl (DESTINATION) with their JSON Schema', async () => {
    const { connectorDefinitions: defs } = await s.q(`{ connectorDefinitions ${DEFS} }`);
    const by = (driver: string) => defs.find((d: any) => d.driver === driver);
    expect([by('csv'), by('sqlite'), by('jsonl')].map((d: any) => [d.driver, d.role, d.supportedWriteModes])).toEqual([
      ['csv', 'SOURCE', []],
      ['sqlite', 'DESTINATION', ['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE']],
      ['jsonl', 'DESTINATION', ['APPEND', 'OVERWRITE']],
    ]);
    expect(new Set(defs.map((d: any) => d.driver)).size).toBe(defs.length);
    for (const d of defs) {
      expect(d.id).toBe(gid('ConnectorDefinition', d.driver));
      expect(['SOURCE', 'DESTINATION']).toContain(d.role);
      expect(d.configSchema).toMatchObject({ type: 'object' });
      expect(d.title.length).toBeGreaterThan(0);
      expect(d.docs).toMatch(/^# /);
      if (d.role === 'SOURCE') expect(d.supportedWriteModes).toEqual([]);
      else expect(d.supportedWriteModes.length).toBeGreaterThan(0);
    }
    for (const d of [by('csv'), by('sqlite'), by('jsonl')]) {
      expect(d.configSchema).toMatchObject({ type: 'object', required: ['path'], additionalProperties: false });
      expect(d.configSchema.properties.path).toMatchObject({ type: 'string', minLength: 1 });
      expect(d.secretFields).toEqual([]);
    }
    const csv = by('csv');
    expect(Object.keys(csv.configSchema.properties)).toEqual(['path', 'delimiter', 'header', 'quoteChar', 'encoding', 'columnTypes', 'streamName', 'uniqueIdColumn']);
    expect(csv.configSchema.properties.encoding.enum).toEqual(['utf8', 'utf-8', 'utf16le', 'latin1', 'ascii']);
    expect(by('sqlite').configSchema.properties.journalMode).toMatchObject({ enum: ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY'], default: 'WAL' });
  });

  it('filters by role', async () => {
    const all = (await s.q(`{ connectorDefinitions { driver role } }`)).connectorDefinitions;
    const q = `query($r: ConnectorRole) { connectorDefinitions(role: $r) { driver role } }`;
    const sources = (await s.q(q, { r: 'SOURCE' })).connectorDefinitions;
    const destinations = (await s.q(q, { r: 'DESTINATION' })).connectorDefinitions;
    expect(sources).toEqual(all.filter((d: any) => d.role === 'SOURCE'));
    expect(destinations).toEqual(all.filter((d: any) => d.role === 'DESTINATION'));
    expect(sources.map((d: any) => d.driver)).toContain('csv');
    expect(destinations.map((d: any) => d.driver)).toEqual(expect.arrayContaining(['sqlite', 'jsonl']));
    expect(sources.length + destinations.length).toBe(all.length);
  });

  it('connectorDefinition(driver) finds one; an unknown driver is null', async () => {
    const data = await s.q(`{ a: connectorDefinition(driver: "jsonl") { driver role } b: connectorDefinition(driver: "gopher") { driver } }`);
    expect(data).toEqual({ a: { driver: 'jsonl', role: 'DESTINATION' }, b: null });
  });
});

describe('createConnector', () => {
  it('creates a valid connector, fills in schema defaults and writes CONNECTOR_CREATED', async () => {
    const before = await countConnectors();
    const c = await createOk({ name: '  Orders CSV  ', driver: 'csv', config: { path: csvPath } });
    expect(c).toMatchObject({
      name: 'Orders CSV',
      driver: 'csv',
      role: 'SOURCE',
      paused: false,
      version: 1,
      lastCheckOk: null,
      lastCheckAt: null,
      lastCheckMessage: null,
    });
    expect(ungid(c.id).type).toBe('Connector');
    expect(c.config).toEqual({ path: csvPath, delimiter: ',', header: true, quoteChar: '"', encoding: 'utf8' });
    expect(await countConnectors()).toBe(before + 1);

    const ev = await eventsOf({ connectorId: c.id });
    expect(ev.edges.map((e) => e.node)).toEqual([
      expect.objectContaining({ type: 'CONNECTOR_CREATED', connectorId: c.id, jobId: null, pipelineId: null, message: 'connector "Orders CSV" (csv) created' }),
    ]);
  });

  it('accepts a matching role and a paused flag', async () => {
    const c = await createOk({ name: 'paused jsonl', driver: 'jsonl', role: 'DESTINATION', paused: true, config: { path: path.join(dir, 'o.jsonl') } });
    expect(c).toMatchObject({ role: 'DESTINATION', paused: true, config: { path: path.join(dir, 'o.jsonl'), fsync: true } });
  });

  const invalid: [string, Record<string, unknown>, { path: string; message: string }[]][] = [
    ['unknown driver', { driver: 'gopher', config: { path: '/x' } }, [{ path: 'driver', message: expect.stringMatching(/^no driver "gopher"; available: csv, sqlite, jsonl(, |$)/) }]],
    ['role mismatch', { driver: 'csv', role: 'DESTINATION', config: { path: '/x' } }, [{ path: 'role', message: 'driver "csv" is a SOURCE, not a DESTINATION' }]],
    ['missing required path', { driver: 'csv', config: {} }, [{ path: 'config.path', message: 'is required' }]],
    ['empty path', { driver: 'sqlite', config: { path: '' } }, [{ path: 'config.path', message: 'must NOT have fewer than 1 characters' }]],
    ['wrong type', { driver: 'csv', config: { path: '/x', header: 'yes' } }, [{ path: 'config.header', message: 'must be boolean' }]],
    ['unknown property', { driver: 'jsonl', config: { path: '/x', compress: true } }, [{ path: 'config.compress', message: 'unknown property "compress"' }]],
    ['bad enum value', { driver: 'sqlite', config: { path: '/x', journalMode: 'FAST' } }, [{ path: 'config.journalMode', message: 'must be one of: "WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY"' }]],
    ['bad delimiter', { driver: 'csv', config: { path: '/x', delimiter: ';;' } }, [{ path: 'config.delimiter', message: 'has an invalid format (must match ^(?:[^\\r\\n]|\\\\t)$)' }]],
    [
      'bad nested map value',
      { driver: 'csv', config: { path: '/x', columnTypes: { price: 'money' } } },
      [{ path: 'config.columnTypes.price', message: 'must be one of: "string", "integer", "number", "boolean", "datetime", "json"' }],
    ],
    ['config not an object', { driver: 'csv', config: 'path=/x' }, [{ path: 'config', message: 'must be object' }]],
    [
      'several problems at once',
      { driver: 'csv', config: { path: 7, quoteChar: '' , extra: 1 } },
      [
        { path: 'config.extra', message: 'unknown property "extra"' },
        { path: 'config.path', message: 'must be string' },
        { path: 'config.quoteChar', message: 'must NOT have fewer than 1 characters' },
      ],
    ],
    ['empty name', { name: '   ', driver: 'csv', config: { path: '/x' } }, [{ path: 'name', message: 'must not be empty' }]],
    ['name too long', { name: 'n'.repeat(201), driver: 'csv', config: { path: '/x' } }, [{ path: 'name', message: 'at most 200 characters' }]],
  ];

  it.each(invalid)('%s → ValidationError with exact paths, nothing created', async (_label, input, fieldErrors) => {
    const before = await countConnectors();
    const createdBefore = (await eventsOf({ types: ['CONNECTOR_CREATED'] })).totalCount;
    const r = await create({ name: 'bad one', ...input });
    expect(r.__typename).toBe('ValidationError');
    expect(r.code).toBe('VALIDATION_FAILED');
    const got = [...r.fieldErrors].sort((a: any, b: any) => a.path.localeCompare(b.path));
    expect(got).toEqual(fieldErrors);
    for (const fe of got) expect(r.message).toContain(`${fe.path}: ${fe.message}`);
    expect(await countConnectors()).toBe(before);
    expect((await eventsOf({ types: ['CONNECTOR_CREATED'] })).totalCount).toBe(createdBefore);
  });

  it('a missing required input field is a GraphQL error, not a payload', async () => {
    const res = await s.gql(CREATE, { i: { name: 'x', config: {} } });
    expect(res.data).toBeUndefined();
    expect(res.errors![0].message).toMatch(/Field "driver" of required type "String!" was not provided/);
  });
});

describe('checkConnector', () => {
  const CHECK = `mutation($id: ID!) { checkConnector(input: {id: $id}) {
    ${ERR}
    ... on CheckConnectorPayload { result { ok message } connector { ${CONNECTOR} } job { id kind status error attempts result startedAt finishedAt connector { id } pipeline { id } } }
  } }`;

  it('a readable CSV checks ok and is recorded on the connector, as a CHECK job and an event', async () => {
    const c = await createOk({ name: 'check me', driver: 'csv', config: { path: csvPath } });
    const t0 = Date.now();
    const r = (await s.q(CHECK, { id: c.id })).checkConnector;
    expect(r.__typename).toBe('CheckConnectorPayload');
    const size = fs.statSync(csvPath).size;
    const message = `${csvPath} is readable (${size} bytes); 6 column(s): id, name, price, active, created_at, notes.`;
    expect(r.result).toEqual({ ok: true, message });
    expect(r.connector).toMatchObject({ id: c.id, lastCheckOk: true, lastCheckMessage: message, version: 1 });
    const at = Date.parse(r.connector.lastCheckAt);
    expect(at).toBeGreaterThanOrEqual(t0 - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 1000);
    expect(r.job).toMatchObject({ kind: 'CHECK', status: 'SUCCEEDED', error: null, attempts: 1, result: { ok: true, message }, connector: { id: c.id }, pipeline: null });
    expect(ungid(r.job.id).type).toBe('Job');

    // Persisted: a fresh read sees the same.
    const again = await s.q(`query($id: ID!) { connector(id: $id) { lastCheckOk lastCheckMessage lastCheckAt } }`, { id: c.id });
    expect(again.connector).toEqual({ lastCheckOk: true, lastCheckMessage: message, lastCheckAt: r.connector.lastCheckAt });

    const ev = await eventsOf({ connectorId: c.id, types: ['CONNECTOR_CHECKED'] });
    expect(ev.totalCount).toBe(1);
    expect(ev.edges[0]!.node).toMatchObject({
      type: 'CONNECTOR_CHECKED',
      connectorId: c.id,
      jobId: r.job.id,
      message: `check of "check me" succeeded: ${message}`,
      data: { ok: true },
    });
    const jobs = await s.q(`query($id: ID!) { jobs(filter: {connectorId: $id, kinds: [CHECK]}) { totalCount edges { node { id } } } }`, { id: c.id });
    expect(jobs.jobs).toEqual({ totalCount: 1, edges: [{ node: { id: r.job.id } }] });
  });

  it('a missing file fails the check with a message naming the path', async () => {
    const missing = path.join(dir, 'nope', 'missing.csv');
    const c = await createOk({ name: 'missing file', driver: 'csv', config: { path: missing } });
    const r = (await s.q(CHECK, { id: c.id })).checkConnector;
    expect(r.result).toEqual({ ok: false, message: `File not found: ${missing}` });
    expect(r.connector).toMatchObject({ lastCheckOk: false, lastCheckMessage: `File not found: ${missing}` });
    expect(r.job).toMatchObject({ kind: 'CHECK', status: 'FAILED', error: `File not found: ${missing}` });
    const ev = await eventsOf({ connectorId: c.id, types: ['CONNECTOR_CHECKED'] });
    expect(ev.edges.map((e) => e.node.data)).toEqual([{ ok: false }]);
  });

  it('a sqlite destination in a directory that does not exist fails the check', async () => {
    const target = path.join(dir, 'no-such-dir', 'out.db');
    const c = await createOk({ name: 'sqlite nowhere', driver: 'sqlite', config: { path: target } });
    const r = (await s.q(CHECK, { id: c.id })).checkConnector;
    expect(r.result).toEqual({ ok: false, message: `Directory does not exist: ${path.join(dir, 'no-such-dir')}` });
    expect(r.connector.lastCheckOk).toBe(false);
    expect(r.job.status).toBe('FAILED');
    expect(fs.existsSync(path.join(dir, 'no-such-dir'))).toBe(false);
  });

  it('a sqlite destination in an existing directory checks ok without creating the file', async () => {
    const target = path.join(dir, 'fresh.db');
    const c = await createOk({ name: 'sqlite here', driver: 'sqlite', config: { path: target } });
    const r = (await s.q(CHECK, { id: c.id })).checkConnector;
    expect(r.result).toEqual({ ok: true, message: `${target} does not exist yet and will be created` });
    expect(fs.existsSync(target)).toBe(false);
  });

  it('an unknown connector is a NotFoundError', async () => {
    const id = gid('Connector', '00000000-0000-7000-8000-000000000000');
    const r = (await s.q(CHECK, { id })).checkConnector;
    expect(r).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'Connector', id: '00000000-0000-7000-8000-000000000000' });
  });
});

describe('checkConnectorConfig', () => {
  const CHECK_CONFIG = `mutation($i: CheckConnectorConfigInput!) { checkConnectorConfig(input: $i) { ${ERR} ... on CheckConnectorConfigPayload { result { ok message } } } }`;

  it('checks a config without saving anything', async () => {
    const before = await countConnectors();
    const jobsBefore = (await s.q(`{ jobs { totalCount } }`)).jobs.totalCount;
    const eventsBefore = (await eventsOf({})).totalCount;
    const ok = (await s.q(CHECK_CONFIG, { i: { driver: 'csv', config: { path: csvPath } } })).checkConnectorConfig;
    expect(ok.__typename).toBe('CheckConnectorConfigPayload');
    expect(ok.result.ok).toBe(true);
    expect(ok.result.message).toContain(`${csvPath} is readable`);
    const missing = path.join(dir, 'absent.csv');
    const bad = (await s.q(CHECK_CONFIG, { i: { driver: 'csv', config: { path: missing } } })).checkConnectorConfig;
    expect(bad.result).toEqual({ ok: false, message: `File not found: ${missing}` });
    const jsonl = (await s.q(CHECK_CONFIG, { i: { driver: 'jsonl', config: { path: path.join(dir, 'x', 'y.jsonl') } } })).checkConnectorConfig;
    expect(jsonl.result).toEqual({ ok: false, message: `Directory does not exist: ${path.join(dir, 'x')}` });

    expect(await countConnectors()).toBe(before);
    expect((await s.q(`{ jobs { totalCount } }`)).jobs.totalCount).toBe(jobsBefore);
    expect((await eventsOf({})).totalCount).toBe(eventsBefore);
  });

  it('an invalid config is a ValidationError', async () => {
    const r = (await s.q(CHECK_CONFIG, { i: { driver: 'csv', config: { path: csvPath, encoding: 'ebcdic' } } })).checkConnectorConfig;
    expect(r.__typename).toBe('ValidationError');
    expect(r.fieldErrors).toEqual([{ path: 'config.encoding', message: 'must be one of: "utf8", "utf-8", "utf16le", "latin1", "ascii"' }]);
    const u = (await s.q(CHECK_CONFIG, { i: { driver: 'gopher', config: {} } })).checkConnectorConfig;
    expect(u.fieldErrors.map((e: any) => e.path)).toEqual(['driver']);
  });
});

describe('discoverConnector', () => {
  const DISCOVER = `mutation($id: ID!) { discoverConnector(input: {id: $id}) {
    ${ERR}
    ... on DiscoverConnectorPayload {
      connector { id }
      job { kind status connector { id } }
      catalog { streams { name fields { name type nullable } supportedSyncModes defaultCursorField sourceDefinedPrimaryKey } }
    }
  } }`;

  it('reports one stream with the header’s fields and inferred types', async () => {
    const c = await createOk({ name: 'discover me', driver: 'csv', config: { path: csvPath, uniqueIdColumn: 'id' } });
    const r = (await s.q(DISCOVER, { id: c.id })).discoverConnector;
    expect(r.__typename).toBe('DiscoverConnectorPayload');
    expect(r.catalog).toEqual({
      streams: [
        {
          name: 'orders',
          fields: [
            { name: 'id', type: 'integer', nullable: false },
            { name: 'name', type: 'string', nullable: false },
            { name: 'price', type: 'number', nullable: false },
            { name: 'active', type: 'boolean', nullable: false },
            { name: 'created_at', type: 'datetime', nullable: false },
            { name: 'notes', type: 'string', nullable: true },
          ],
          supportedSyncModes: ['FULL_REFRESH', 'INCREMENTAL'],
          defaultCursorField: null,
          sourceDefinedPrimaryKey: ['id'],
        },
      ],
    });
    expect(r.connector.id).toBe(c.id);
    expect(r.job).toEqual({ kind: 'DISCOVER', status: 'SUCCEEDED', connector: { id: c.id } });
    const ev = await eventsOf({ connectorId: c.id, types: ['CONNECTOR_DISCOVERED'] });
    expect(ev.edges.map((e) => e.node.message)).toEqual(['discovered 1 stream(s) in "discover me"']);
  });

  it('columnTypes override inference', async () => {
    const c = await createOk({ name: 'typed', driver: 'csv', config: { path: csvPath, columnTypes: { id: 'string', price: 'json' } } });
    const r = (await s.q(DISCOVER, { id: c.id })).discoverConnector;
    expect(r.catalog.streams[0].fields.map((f: any) => [f.name, f.type])).toEqual([
      ['id', 'string'],
      ['name', 'string'],
      ['price', 'json'],
      ['active', 'boolean'],
      ['created_at', 'datetime'],
      ['notes', 'string'],
    ]);
  });

  it('an unreadable source is a ConnectorFailedError and a FAILED DISCOVER job', async () => {
    const missing = path.join(dir, 'gone.csv');
    const c = await createOk({ name: 'gone', driver: 'csv', config: { path: missing } });
    const r = (await s.q(DISCOVER, { id: c.id })).discoverConnector;
    expect(r.__typename).toBe('ConnectorFailedError');
    expect(r.code).toBe('CONNECTOR_FAILED');
    expect(r.connectorId).toBe(c.id);
    expect(r.message).toMatch(/^discover of "gone" failed: /);
    expect(r.message).toContain(missing);
    const jobs = await s.q(`query($id: ID!) { jobs(filter: {connectorId: $id}) { edges { node { kind status error } } } }`, { id: c.id });
    expect(jobs.jobs.edges).toHaveLength(1);
    expect(jobs.jobs.edges[0].node).toMatchObject({ kind: 'DISCOVER', status: 'FAILED' });
    expect(jobs.jobs.edges[0].node.error).toContain(missing);
  });
});

describe('updateConnector', () => {
  const UPDATE = `mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { ${ERR} ... on UpdateConnectorPayload { connector { ${CONNECTOR} } } } }`;

  it('revalidates the config, bumps the version and writes CONNECTOR_UPDATED', async () => {
    const c = await createOk({ name: 'to update', driver: 'csv', config: { path: csvPath } });
    const r = (await s.q(UPDATE, { i: { id: c.id, name: 'updated', config: { path: csvPath, delimiter: ';' }, expectedVersion: 1 } })).updateConnector;
    expect(r.__typename).toBe('UpdateConnectorPayload');
    expect(r.connector).toMatchObject({
      id: c.id,
      name: 'updated',
      version: 2,
      config: { path: csvPath, delimiter: ';', header: true, quoteChar: '"', encoding: 'utf8' },
    });

    const bad = (await s.q(UPDATE, { i: { id: c.id, config: { path: csvPath, delimiter: '::', bogus: 1 } } })).updateConnector;
    expect(bad.__typename).toBe('ValidationError');
    expect(bad.code).toBe('VALIDATION_FAILED');
    expect(bad.fieldErrors.map((e: any) => e.path).sort()).toEqual(['config.bogus', 'config.delimiter']);
    const emptyName = (await s.q(UPDATE, { i: { id: c.id, name: '' } })).updateConnector;
    expect(emptyName.fieldErrors).toEqual([{ path: 'name', message: 'must not be empty' }]);

    const now = await s.q(`query($id: ID!) { connector(id: $id) { name version config } }`, { id: c.id });
    expect(now.connector).toEqual({ name: 'updated', version: 2, config: { path: csvPath, delimiter: ';', header: true, quoteChar: '"', encoding: 'utf8' } });

    const ev = await eventsOf({ connectorId: c.id, types: ['CONNECTOR_UPDATED'] });
    expect(ev.edges.map((e) => e.node.message)).toEqual(['connector "updated" updated']);
  });

  it('a stale expectedVersion is a ConflictError with the current version, and changes nothing', async () => {
    const c = await createOk({ name: 'versioned', driver: 'csv', config: { path: csvPath } });
    await s.q(UPDATE, { i: { id: c.id, name: 'v2' } });
    await s.q(UPDATE, { i: { id: c.id, name: 'v3' } });
    const r = (await s.q(UPDATE, { i: { id: c.id, name: 'stale write', expectedVersion: 1 } })).updateConnector;
    expect(r).toEqual({
      __typename: 'ConflictError',
      code: 'CONFLICT',
      message: 'connector was changed concurrently (version 3)',
      currentVersion: 3,
    });
    const now = await s.q(`query($id: ID!) { connector(id: $id) { name version } }`, { id: c.id });
    expect(now.connector).toEqual({ name: 'v3', version: 3 });
    const ok = (await s.q(UPDATE, { i: { id: c.id, name: 'v4', expectedVersion: 3 } })).updateConnector;
    expect(ok.connector).toMatchObject({ name: 'v4', version: 4 });
  });

  it('an unknown connector is a NotFoundError', async () => {
    const r = (await s.q(UPDATE, { i: { id: gid('Connector', '00000000-0000-7000-8000-00000000abcd'), name: 'x' } })).updateConnector;
    expect(r).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'Connector' });
  });
});

describe('deleteConnector', () => {
  const DELETE = `mutation($id: ID!) { deleteConnector(input: {id: $id}) { ${ERR} ... on DeleteConnectorPayload { connector { id name } } } }`;

  it('a connector used by a pipeline is IN_USE with the pipeline’s global id; an unused one is deleted', async () => {
    const src = await createOk({ name: 'used source', driver: 'csv', config: { path: csvPath } });
    const dst = await createOk({ name: 'used destination', driver: 'jsonl', config: { path: path.join(dir, 'used.jsonl') } });
    const p = await s.q(
      `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`,
      { i: { name: 'users of both', sourceId: src.id, destinationId: dst.id } },
    );
    const pipelineId = p.createPipeline.pipeline.id as string;
    expect(ungid(pipelineId).type).toBe('Pipeline');

    for (const c of [src, dst]) {
      const r = (await s.q(DELETE, { id: c.id })).deleteConnector;
      expect(r).toEqual({
        __typename: 'InUseError',
        code: 'IN_USE',
        message: `connector "${c.name}" is used by 1 pipeline(s): users of both`,
        usedBy: [pipelineId],
      });
      // usedBy ids work with node().
      const n = await s.q(`query($id: ID!) { node(id: $id) { __typename id } }`, { id: r.usedBy[0] });
      expect(n.node).toEqual({ __typename: 'Pipeline', id: pipelineId });
      expect((await s.q(`query($id: ID!) { connector(id: $id) { id } }`, { id: c.id })).connector).toEqual({ id: c.id });
    }
    expect((await eventsOf({ connectorId: src.id, types: ['CONNECTOR_DELETED'] })).totalCount).toBe(0);

    // Once the pipeline is gone both can be deleted.
    const dp = await s.q(`mutation($id: ID!) { deletePipeline(input: {id: $id}) { __typename } }`, { id: pipelineId });
    expect(dp.deletePipeline.__typename).toBe('DeletePipelinePayload');
    const before = await countConnectors();
    const r = (await s.q(DELETE, { id: src.id })).deleteConnector;
    expect(r).toEqual({ __typename: 'DeleteConnectorPayload', connector: { id: src.id, name: 'used source' } });
    expect(await countConnectors()).toBe(before - 1);
    expect((await s.q(`query($id: ID!) { connector(id: $id) { id } }`, { id: src.id })).connector).toBeNull();
    const ev = await eventsOf({ connectorId: src.id, types: ['CONNECTOR_DELETED'] });
    expect(ev.edges.map((e) => e.node.message)).toEqual(['connector "used source" deleted']);

    const again = (await s.q(DELETE, { id: src.id })).deleteConnector;
    expect(again).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'Connector', id: ungid(src.id).id });
  });

  it('an id of another type is rejected with a clear error', async () => {
    const id = gid('Mapping', '00000000-0000-7000-8000-000000000000');
    const res = await s.gql(DELETE, { id });
    expect(res.errors).toBeUndefined();
    expect(res.data.deleteConnector).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', message: 'invalid input: input.id: is the id of a Mapping, not of a Connector' });
  });
});

describe('connectors query', () => {
  let ids: string[] = [];
  beforeAll(async () => {
    // A fresh, recognisable set: 5 "Page" CSV sources and 2 "Page" sqlite destinations.
    ids = [];
    for (let i = 0; i < 5; i++) ids.push((await createOk({ name: `Page src ${i}`, driver: 'csv', config: { path: csvPath } })).id);
    for (let i = 0; i < 2; i++) ids.push((await createOk({ name: `Page dst ${i}`, driver: 'sqlite', config: { path: path.join(dir, `p${i}.db`) } })).id);
  });

  const LIST = `query($f: ConnectorFilter, $first: Int, $after: String, $last: Int, $before: String) {
    connectors(filter: $f, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id name driver role } }
    }
  }`;

  it('filters by role, driver and nameContains (case-insensitive)', async () => {
    const all = (await s.q(LIST, { f: { nameContains: 'page' }, first: 100 })).connectors;
    expect(all.totalCount).toBe(7);
    expect(all.edges.map((e: any) => e.node.id).sort()).toEqual([...ids].sort());

    const src = (await s.q(LIST, { f: { nameContains: 'PAGE', role: 'SOURCE' }, first: 100 })).connectors;
    expect(src.totalCount).toBe(5);
    expect(src.edges.every((e: any) => e.node.role === 'SOURCE' && e.node.driver === 'csv')).toBe(true);

    const sqlite = (await s.q(LIST, { f: { nameContains: 'page', driver: 'sqlite' }, first: 100 })).connectors;
    expect(sqlite.edges.map((e: any) => e.node.name).sort()).toEqual(['Page dst 0', 'Page dst 1']);
    expect(sqlite.totalCount).toBe(2);

    const none = (await s.q(LIST, { f: { nameContains: 'page', driver: 'jsonl' } })).connectors;
    expect(none).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null }, edges: [] });

    const dest = (await s.q(LIST, { f: { role: 'DESTINATION' }, first: 100 })).connectors;
    expect(dest.edges.every((e: any) => e.node.role === 'DESTINATION')).toBe(true);
    expect(dest.totalCount).toBe(dest.edges.length);
  });

  it('pages forward with first/after and backward with last/before; totalCount ignores the page', async () => {
    const f = { nameContains: 'Page ' };
    const full = (await s.q(LIST, { f, first: 100 })).connectors;
    const order = full.edges.map((e: any) => e.node.id);
    expect(order).toHaveLength(7);

    const seen: string[] = [];
    let after: string | null = null;
    const pages: any[] = [];
    for (;;) {
      const page: any = (await s.q(LIST, { f, first: 3, after })).connectors;
      pages.push(page);
      expect(page.totalCount).toBe(7);
      seen.push(...page.edges.map((e: any) => e.node.id));
      expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages.map((p) => p.edges.length)).toEqual([3, 3, 1]);
    expect(pages.map((p) => p.pageInfo.hasNextPage)).toEqual([true, true, false]);
    expect(pages.map((p) => p.pageInfo.hasPreviousPage)).toEqual([false, true, true]);
    expect(seen).toEqual(order);

    const tail = (await s.q(LIST, { f, last: 2 })).connectors;
    expect(tail.edges.map((e: any) => e.node.id)).toEqual(order.slice(5));
    expect(tail.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
    const before = (await s.q(LIST, { f, last: 2, before: tail.pageInfo.startCursor })).connectors;
    expect(before.edges.map((e: any) => e.node.id)).toEqual(order.slice(3, 5));
    expect(before.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
  });

  it('a malformed cursor is a clear error', async () => {
    const bad = await s.gql(LIST, { first: 2, after: 'not-a-cursor' });
    expect(bad.errors).toHaveLength(1);
    expect(bad.errors![0].message).not.toBe('Unexpected error.');
    expect(bad.errors![0].extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
  });
});

describe('node / nodes', () => {
  it('resolve Connector, ConnectorDefinition, Mapping, Pipeline, Job and Event by global id', async () => {
    const src = await createOk({ name: 'node src', driver: 'csv', config: { path: csvPath } });
    const dst = await createOk({ name: 'node dst', driver: 'jsonl', config: { path: path.join(dir, 'node.jsonl') } });
    const m = await s.q(`mutation { createMapping(input: {name: "node mapping", spec: {mapping: {a: "id"}}}) { ... on CreateMappingPayload { mapping { id } } } }`);
    const mappingId = m.createMapping.mapping.id as string;
    const p = await s.q(
      `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ${ERR} ... on CreatePipelinePayload { pipeline { id } } } }`,
      { i: { name: 'node pipeline', sourceId: src.id, destinationId: dst.id, mappingId } },
    );
    const pipelineId = p.createPipeline.pipeline.id as string;
    const check = await s.q(`mutation($id: ID!) { checkConnector(input: {id: $id}) { ... on CheckConnectorPayload { job { id } } } }`, { id: src.id });
    const jobId = check.checkConnector.job.id as string;
    const ev = await eventsOf({ pipelineId, types: ['PIPELINE_CREATED'] });
    const eventId = ev.edges[0]!.node.id as string;
    const definitionId = gid('ConnectorDefinition', 'csv');

    const NODE = `
      __typename id
      ... on Connector { name }
      ... on ConnectorDefinition { driver }
      ... on Mapping { name }
      ... on Pipeline { name }
      ... on Job { kind }
      ... on Event { type }
    `;
    const expected = [
      { __typename: 'Connector', id: src.id, name: 'node src' },
      { __typename: 'ConnectorDefinition', id: definitionId, driver: 'csv' },
      { __typename: 'Mapping', id: mappingId, name: 'node mapping' },
      { __typename: 'Pipeline', id: pipelineId, name: 'node pipeline' },
      { __typename: 'Job', id: jobId, kind: 'CHECK' },
      { __typename: 'Event', id: eventId, type: 'PIPELINE_CREATED' },
    ];
    for (const e of expected) {
      const r = await s.q(`query($id: ID!) { node(id: $id) { ${NODE} } }`, { id: e.id });
      expect(r.node).toEqual(e);
    }
    const unknownIds = [
      gid('Connector', '00000000-0000-7000-8000-000000000001'),
      gid('Pipeline', '00000000-0000-7000-8000-000000000001'),
      gid('Event', '00000000-0000-7000-8000-000000000001'),
      gid('ConnectorDefinition', 'gopher'),
    ];
    const ids = [...expected.map((e) => e.id), ...unknownIds];
    const r = await s.q(`query($ids: [ID!]!) { nodes(ids: $ids) { ${NODE} } }`, { ids });
    expect(r.nodes).toEqual([...expected, null, null, null, null]);
  });

  it.each([
    ['a well-formed unknown id', gid('Mapping', '00000000-0000-7000-8000-000000000009')],
    ['a definition that does not exist', gid('ConnectorDefinition', 'gopher')],
  ])('%s → null', async (_label, id) => {
    const res = await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id });
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ node: null });
  });

  it.each([
    ['an id that is not a UUID', gid('Connector', 'not-a-uuid')],
    ['something that is not a global id', 'hello'],
  ])('%s → node: null; connector: a clear validation error (not a masked database error)', async (_label, id) => {
    const node = await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id });
    expect(node.errors).toBeUndefined();
    expect(node.data).toEqual({ node: null });
    const res = await s.gql(`query($id: ID!) { connector(id: $id) { id } }`, { id });
    expect(res.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([['invalid input: id: not a valid id of a Connector', 'VALIDATION_FAILED']]);
  });
});
