/**
 * Attack suite (issue 10, item 1): an ordinary WRITE key, no local access, tries every way to
 * make a file-based connector read or write outside its workspace's files folder. Every
 * attempt is refused at create/update (VALIDATION_FAILED naming `config.path`, one message
 * whether or not the outside path exists) and again at run time (check, previews, jobs), and
 * destination attacks leave the target untouched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, tempDir, writeCsv, type TestServer } from '../helpers/server.js';
import { bearer, callAs } from '../helpers/graphql.js';

const ADMIN_KEY = `sk_${crypto.randomBytes(32).toString('base64url')}`;
const OUTSIDE = 'is outside the files root of this workspace';
const outside = (p: string) => `path ${JSON.stringify(p)} ${OUTSIDE}`;

let base: string;
let dataDir: string;
let filesDir: string;
let extraRo: string;
let victim: string;
let keyFile: string;
let keyBytes: Buffer;
let s: TestServer;
let writeKey: string;
let keyB: string;
let folderB: string;

const env = () => ({ SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: ADMIN_KEY, SLUICE_FILES_EXTRA_ROOTS: `${extraRo}:ro` });
const as = (key: string, query: string, variables?: Record<string, unknown>): Promise<any> => callAs(s, key, query, variables);

const CREATE = `mutation($i: CreateConnectorInput!) { createConnector(input: $i) {
  __typename ... on CreateConnectorPayload { connector { id } } ... on ValidationError { code fieldErrors { path message } } } }`;

async function create(key: string, driver: string, config: Record<string, unknown>, name = `c-${crypto.randomUUID()}`): Promise<any> {
  return (await as(key, CREATE, { i: { name, driver, config } })).createConnector;
}

async function createOk(driver: string, config: Record<string, unknown>, key = writeKey): Promise<string> {
  const r = await create(key, driver, config);
  expect(r.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
  return r.connector.id;
}

async function check(id: string): Promise<{ ok: boolean; message: string }> {
  const r = await as(writeKey, `mutation($id: ID!) { checkConnector(input: { id: $id }) { ... on CheckConnectorPayload { result { ok message } } } }`, { id });
  return r.checkConnector.result;
}

async function previewMapping(connectorId: string): Promise<any> {
  const r = await as(
    writeKey,
    `mutation($i: PreviewMappingInput!) { previewMapping(input: $i) { __typename ... on PreviewMappingPayload { records { input } } ... on Error { code message } } }`,
    { i: { connectorId, spec: { passThrough: true } } },
  );
  return r.previewMapping;
}

async function pipeline(sourceId: string, destinationId: string, stream: string, writeMode = 'APPEND'): Promise<string> {
  const r = await as(
    writeKey,
    `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id } } ... on ValidationError { message } } }`,
    { i: { name: `p-${crypto.randomUUID()}`, sourceId, destinationId, streams: [{ name: stream, syncMode: 'FULL_REFRESH' }], writeMode } },
  );
  expect(r.createPipeline.__typename, JSON.stringify(r)).toBe('CreatePipelinePayload');
  return r.createPipeline.pipeline.id;
}

/** Starts the pipeline (one sync job) and waits for its job to end. */
async function runJob(pipelineId: string): Promise<{ status: string; attempts: number; error: string | null }> {
  const r = await as(writeKey, `mutation($id: ID!) { startPipeline(input: { id: $id }) { __typename ... on Error { message } } }`, { id: pipelineId });
  expect(r.startPipeline.__typename, JSON.stringify(r)).toBe('StartPipelinePayload');
  return eventually(async () => {
    const j = (await as(writeKey, `query($id: ID!) { pipeline(id: $id) { jobs(first: 1) { nodes { status attempts error } } } }`, { id: pipelineId })).pipeline.jobs.nodes[0];
    return j && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.status) ? j : null;
  }, 60_000);
}

/** Replaces a file inside the files folder by a symlink to `target`. */
function swapForLink(file: string, target: string): void {
  fs.rmSync(file);
  fs.symlinkSync(target, file);
}

function sqliteDb(file: string): void {
  const db = new Database(file);
  db.exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items VALUES (1, 'one'), (2, 'two');`);
  db.close();
}

beforeAll(async () => {
  base = fs.realpathSync(tempDir('sluice-attack-files-'));
  dataDir = path.join(base, 'data');
  extraRo = path.join(base, 'extra-ro');
  fs.mkdirSync(extraRo, { recursive: true });
  writeCsv(path.join(extraRo, 'ro.csv'), 3);
  fs.mkdirSync(path.join(base, 'outside'));
  victim = path.join(base, 'outside', 'victim.txt');
  fs.writeFileSync(victim, 'id\nsecret-victim-line\n');
  s = await startTestServer({ dataDir, env: env() });
  filesDir = s.filesDir;
  keyFile = path.join(dataDir, 'secret-keys.json');
  keyBytes = fs.readFileSync(keyFile);
  writeCsv(path.join(filesDir, 'in.csv'), 5);
  fs.writeFileSync(path.join(filesDir, 'in.jsonl'), '{"id":1}\n{"id":2}\n');
  sqliteDb(path.join(filesDir, 'in.db'));

  const k = await as(ADMIN_KEY, `mutation { createApiKey(input: { name: "attacker", scope: WRITE }) { ... on CreateApiKeyPayload { key apiKey { scope } } } }`);
  expect(k.createApiKey.apiKey.scope).toBe('WRITE');
  writeKey = k.createApiKey.key;
  const w = await as(ADMIN_KEY, `mutation { createWorkspace(input: { name: "B" }) { ... on CreateWorkspacePayload { key workspace { id } } } }`);
  keyB = w.createWorkspace.key;
  const idB = Buffer.from(w.createWorkspace.workspace.id, 'base64').toString('utf8').split(':')[1]!;
  folderB = path.join(dataDir, 'files', idB);
  fs.mkdirSync(folderB, { recursive: true });
  writeCsv(path.join(folderB, 'b.csv'), 2);
});

afterAll(async () => {
  await s?.stop();
});

/** Every way to name something outside the caller's folder, for reading. */
function outsidePaths(): string[] {
  return [
    '/etc/passwd',
    '/etc/no-such-file-here',
    '/proc/self/environ',
    '/dev/zero',
    '../../secret-keys.json',
    '../../no-such-file.json',
    keyFile,
    path.join(dataDir, 'pgdata', 'PG_VERSION'),
    path.join(dataDir, 'pgdata', 'no-such-file'),
    path.join(folderB, 'b.csv'),
    `../${path.basename(folderB)}/b.csv`,
    'link-out.csv',
    'link-dev.csv',
    'link-dangling.csv',
    victim,
  ];
}

describe('file connectors with a WRITE key: create and update', () => {
  beforeAll(() => {
    fs.symlinkSync(victim, path.join(filesDir, 'link-out.csv'));
    fs.symlinkSync('/dev/zero', path.join(filesDir, 'link-dev.csv'));
    fs.symlinkSync(path.join(base, 'outside', 'not-there.csv'), path.join(filesDir, 'link-dangling.csv'));
    fs.linkSync(victim, path.join(filesDir, 'hard.csv'));
  });

  const drivers: [driver: string, field: string, extra: Record<string, unknown>][] = [
    ['csv', 'path', {}],
    ['json', 'url', {}],
    ['sqlite-source', 'path', {}],
    ['sqlite', 'path', {}],
    ['jsonl', 'path', {}],
    ['file', 'path', {}],
  ];

  for (const [driver, field, extra] of drivers) {
    it(`${driver}: every outside path is VALIDATION_FAILED at config.${field}, one message whether it exists or not`, async () => {
      for (const p of outsidePaths()) {
        const r = await create(writeKey, driver, { [field]: p, ...extra });
        expect(r.__typename, `${driver} ${p}`).toBe('ValidationError');
        expect(r.code).toBe('VALIDATION_FAILED');
        expect(r.fieldErrors, `${driver} ${p}`).toEqual([{ path: `config.${field}`, message: outside(p) }]);
      }
      // A hard link inside the folder to an outside file.
      const hard = await create(writeKey, driver, { [field]: 'hard.csv', ...extra });
      expect(hard.fieldErrors).toEqual([{ path: `config.${field}`, message: 'path "hard.csv" has more than one hard link' }]);
      // An update cannot move a good connector outside either.
      const okPath = driver === 'csv' ? 'in.csv' : driver === 'json' ? 'in.jsonl' : driver === 'sqlite-source' ? 'in.db' : 'new-out.x';
      const id = await createOk(driver, { [field]: okPath, ...extra });
      const u = await as(
        writeKey,
        `mutation($i: UpdateConnectorInput!) { updateConnector(input: $i) { __typename ... on ValidationError { code fieldErrors { path message } } } }`,
        { i: { id, config: { [field]: keyFile, ...extra } } },
      );
      expect(u.updateConnector).toEqual({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', fieldErrors: [{ path: `config.${field}`, message: outside(keyFile) }] });
      // Nothing was created outside by any of it.
      expect(fs.existsSync(path.join(base, 'outside', 'not-there.csv'))).toBe(false);
    });
  }

  it('checkConnectorConfig (an unsaved config) is refused the same way', async () => {
    const r = await as(
      writeKey,
      `mutation($i: CheckConnectorConfigInput!) { checkConnectorConfig(input: $i) { __typename ... on ValidationError { fieldErrors { path message } } ... on CheckConnectorConfigPayload { result { ok message } } } }`,
      { i: { driver: 'csv', config: { path: '/proc/self/environ' } } },
    );
    expect(r.checkConnectorConfig).toEqual({ __typename: 'ValidationError', fieldErrors: [{ path: 'config.path', message: outside('/proc/self/environ') }] });
  });

  it("a path inside the caller's folder works, relative or absolute", async () => {
    const rel = await createOk('csv', { path: 'in.csv' });
    expect((await check(rel)).ok).toBe(true);
    const abs = await createOk('csv', { path: path.join(filesDir, 'in.csv') });
    const preview = await previewMapping(abs);
    expect(preview.__typename).toBe('PreviewMappingPayload');
    expect(preview.records).toHaveLength(5);
  });
});

describe('sqlite source: one read-only statement', () => {
  it('refuses ATTACH, PRAGMA writes, DML and several statements at create, accepts a SELECT', async () => {
    const bad = [
      `ATTACH '${keyFile}' AS k`,
      'PRAGMA user_version = 7',
      'PRAGMA journal_mode = DELETE',
      'DELETE FROM items',
      'SELECT 1; DROP TABLE items',
      `SELECT * FROM items; ATTACH '${keyFile}' AS k`,
      'WITH x AS (SELECT 1) DELETE FROM items',
      'VACUUM INTO \'/tmp/sluice-stolen.db\'',
    ];
    for (const sql of bad) {
      const r = await create(writeKey, 'sqlite-source', { path: 'in.db', queries: [{ name: 'q', sql }] });
      expect(r.__typename, sql).toBe('ValidationError');
      expect(r.fieldErrors[0].path, sql).toBe('config.queries.0.sql');
      expect(r.fieldErrors[0].message).toContain('single read-only SELECT');
    }
    const ok = await createOk('sqlite-source', { path: 'in.db', queries: [{ name: 'q', sql: "SELECT id, name FROM items WHERE name <> ';'" }] });
    const res = await check(ok);
    expect(res.ok, res.message).toBe(true);
    expect(fs.existsSync('/tmp/sluice-stolen.db')).toBe(false);
  });
});

describe('run time: a file swapped for a link after the connector was saved', () => {
  it('csv and json sources: check, previewMapping, previewPipeline and the job all refuse; nothing of the key file leaks', async () => {
    for (const [driver, field, name] of [
      ['csv', 'path', 'swap.csv'],
      ['json', 'url', 'swap.jsonl'],
    ] as const) {
      const file = path.join(filesDir, name);
      fs.writeFileSync(file, driver === 'csv' ? 'id\n1\n' : '{"id":1}\n');
      const src = await createOk(driver, { [field]: name });
      const dst = await createOk('jsonl', { path: `${name}.out.jsonl` });
      const p = await pipeline(src, dst, 'swap');
      swapForLink(file, keyFile);

      const c = await check(src);
      expect(c).toEqual({ ok: false, message: outside(name) });
      const pm = await previewMapping(src);
      expect(pm.__typename).toBe('ConnectorFailedError');
      expect(pm.message).toContain(outside(name));
      const pp = (await as(writeKey, `mutation($id: ID!) { previewPipeline(input: { id: $id }) { __typename ... on Error { message } } }`, { id: p })).previewPipeline;
      expect(pp.__typename).toBe('ConnectorFailedError');
      expect(pp.message).toContain(outside(name));
      const job = await runJob(p);
      expect(job.status).toBe('FAILED');
      expect(job.attempts).toBe(1); // not retried
      expect(job.error).toContain(outside(name));
      const secret = JSON.parse(keyBytes.toString('utf8')).keys[0].key as string;
      for (const text of [c.message, pm.message, pp.message, job.error]) expect(text).not.toContain(secret);
      expect(fs.existsSync(path.join(filesDir, `${name}.out.jsonl`))).toBe(false);
    }
  });

  it('sqlite source: check, preview and the job refuse a database swapped for a link to PGlite files', async () => {
    const file = path.join(filesDir, 'swap.db');
    sqliteDb(file);
    const src = await createOk('sqlite-source', { path: 'swap.db' });
    const dst = await createOk('jsonl', { path: 'swapdb.out.jsonl' });
    const p = await pipeline(src, dst, 'items');
    swapForLink(file, path.join(dataDir, 'pgdata', 'PG_VERSION'));
    expect(await check(src)).toEqual({ ok: false, message: outside('swap.db') });
    const pm = await previewMapping(src);
    expect(pm.__typename).toBe('ConnectorFailedError');
    expect(pm.message).toContain(outside('swap.db'));
    const job = await runJob(p);
    expect(job).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(job.error).toContain(outside('swap.db'));
  });

  it('destinations (jsonl, sqlite, file in APPEND and OVERWRITE): a target swapped for a link to the key file is refused and the key file is unchanged', async () => {
    const src = await createOk('csv', { path: 'in.csv' });
    const cases: [driver: string, config: Record<string, unknown>, target: string, mode: string][] = [
      ['jsonl', { path: 'dst.jsonl' }, 'dst.jsonl', 'APPEND'],
      ['jsonl', { path: 'dst-over.jsonl' }, 'dst-over.jsonl', 'OVERWRITE'],
      ['sqlite', { path: 'dst.db', table: 'rows' }, 'dst.db', 'APPEND'],
      ['file', { path: 'dst.csv' }, 'dst.csv', 'APPEND'],
      ['file', { path: 'dst-over.csv' }, 'dst-over.csv', 'OVERWRITE'],
    ];
    for (const [driver, config, target, mode] of cases) {
      fs.writeFileSync(path.join(filesDir, target), '');
      const dst = await createOk(driver, config);
      const p = await pipeline(src, dst, 'in', mode);
      swapForLink(path.join(filesDir, target), keyFile);
      if (driver === 'sqlite' || driver === 'jsonl') {
        const c = await check(dst);
        expect(c.ok, `${driver} ${c.message}`).toBe(false);
        expect(c.message).toBe(outside(target));
      }
      const job = await runJob(p);
      expect(job.status, `${driver} ${mode}`).toBe('FAILED');
      expect(job.attempts).toBe(1);
      expect(job.error).toContain(outside(target));
      expect(fs.readFileSync(keyFile).equals(keyBytes), `${driver} ${mode} changed the key file`).toBe(true);
      expect(fs.lstatSync(keyFile).isFile()).toBe(true);
      expect(fs.readdirSync(dataDir).filter((n) => n.includes('sluice-tmp'))).toEqual([]);
    }
  });

  it('a destination target swapped for a hard link to an outside file is refused and the file is unchanged', async () => {
    const src = await createOk('csv', { path: 'in.csv' });
    fs.writeFileSync(path.join(filesDir, 'hard-dst.jsonl'), '');
    const dst = await createOk('jsonl', { path: 'hard-dst.jsonl' });
    const p = await pipeline(src, dst, 'in');
    fs.rmSync(path.join(filesDir, 'hard-dst.jsonl'));
    fs.linkSync(victim, path.join(filesDir, 'hard-dst.jsonl'));
    const before = fs.readFileSync(victim);
    const job = await runJob(p);
    expect(job).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(job.error).toContain('has more than one hard link');
    expect(fs.readFileSync(victim).equals(before)).toBe(true);
  });

  it('after all of it the server restarts fine: the key file still opens', async () => {
    await s.stop();
    s = await startTestServer({ dataDir, env: env() });
    const r = await as(writeKey, `{ viewer { scope } }`);
    expect(r.viewer.scope).toBe('WRITE');
    expect(fs.readFileSync(keyFile).equals(keyBytes)).toBe(true);
  });
});

describe('extra roots (SLUICE_FILES_EXTRA_ROOTS with :ro)', () => {
  it('the default workspace reads a read-only root and cannot write it; workspace B cannot read it', async () => {
    const ro = path.join(extraRo, 'ro.csv');
    const src = await createOk('csv', { path: ro });
    const preview = await previewMapping(src);
    expect(preview.__typename).toBe('PreviewMappingPayload');
    expect(preview.records).toHaveLength(3);
    for (const driver of ['jsonl', 'sqlite', 'file']) {
      const w = await create(writeKey, driver, { path: path.join(extraRo, 'out.x') });
      expect(w.fieldErrors, driver).toEqual([{ path: 'config.path', message: `path ${JSON.stringify(path.join(extraRo, 'out.x'))} is in a read-only files root` }]);
    }
    expect(fs.readdirSync(extraRo)).toEqual(['ro.csv']);
    const b = await create(keyB, 'csv', { path: ro });
    expect(b.fieldErrors).toEqual([{ path: 'config.path', message: outside(ro) }]);
    // B's own folder works for B, relative to it.
    const own = await createOk('csv', { path: 'b.csv' }, keyB);
    expect(own).toBeTruthy();
  });
});
