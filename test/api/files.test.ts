/**
 * Files through the real server, as a user without shell access brings them: `POST
 * /files/<name>` (streamed to disk, size-capped, atomic, no silent overwrite), the `files`
 * query and `deleteFile`; with keyless local access off, so every call carries a key. Bad names
 * are refused and nothing is written outside the workspace folder; a READ key or no key may not
 * upload; workspaces see only their own files; an uploaded CSV feeds a pipeline.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { bearer, callAs } from '../helpers/graphql.js';

const MAX_UPLOAD = 8 * 1024 * 1024;
const BOOTSTRAP = `sk_${randomBytes(32).toString('base64url')}`;

let s: TestServer;
let base: string;
let root: string;
let defaultDir: string;
let writeKey: string;
let readKey: string;
let keyB: string;

const as = <T = any>(key: string, query: string, variables?: Record<string, unknown>) => callAs<T>(s, key, query, variables);

type Body = string | Buffer | ReadableStream<Uint8Array>;

/** POST /files/<encodedName>; `encodedName` goes into the URL as given. */
async function upload(key: string | null, encodedName: string, body: Body, opts: { query?: string; type?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(key ? bearer(key) : {}), ...opts.headers };
  if (opts.type !== null) headers['content-type'] = opts.type ?? 'text/csv';
  const res = await fetch(`${base}/files/${encodedName}${opts.query ?? ''}`, {
    method: 'POST',
    headers,
    body: body as BodyInit,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
}

/** A body sent in chunks of `chunk` bytes, without a Content-Length (chunked encoding). */
function streamOf(total: number, chunk = 256 * 1024, byte = 0x61): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(chunk, total - sent);
      sent += n;
      controller.enqueue(new Uint8Array(n).fill(byte));
    },
  });
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Every path under `dir` (relative), skipping the embedded database's files. */
function tree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (r === 'pgdata') continue;
    out.push(r);
    if (e.isDirectory()) out.push(...tree(dir, r));
  }
  return out.sort();
}

const LIST = `query($first: Int, $after: String, $last: Int, $before: String, $order: FileOrder) {
  files(first: $first, after: $after, last: $last, before: $before, orderBy: $order) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor startCursor } nodes { name size path modifiedAt } } }`;
const DELETE = `mutation($name: String!) { deleteFile(input: { name: $name }) { __typename ... on DeleteFilePayload { file { name size } } ... on InUseError { usedBy } ... on Error { code message } } }`;

beforeAll(async () => {
  s = await startTestServer({ env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: BOOTSTRAP, SLUICE_MAX_UPLOAD_BYTES: String(MAX_UPLOAD) } });
  base = new URL(s.url).origin;
  root = s.config.files.root;
  defaultDir = path.join(root, 'default');
  const mk = async (name: string, scope: string) => {
    const r = await as(BOOTSTRAP, `mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { ... on CreateApiKeyPayload { key } } }`, { i: { name, scope } });
    return r.createApiKey.key as string;
  };
  writeKey = await mk('writer', 'WRITE');
  readKey = await mk('reader', 'READ');
  const w = await as(BOOTSTRAP, `mutation { createWorkspace(input: { name: "B" }) { ... on CreateWorkspacePayload { key } } }`);
  keyB = w.createWorkspace.key;
}, 120_000);

afterAll(async () => {
  await s?.stop();
});

describe('upload', () => {
  it('the default workspace folder exists from the start, under the files root in the data folder', () => {
    expect(root).toBe(path.join(s.dataDir, 'files'));
    expect(fs.statSync(defaultDir).isDirectory()).toBe(true);
  });

  it('streams a multi-MB body to disk while it arrives, then answers 201 with the file', async () => {
    const first = 3 * 1024 * 1024;
    const rest = 2 * 1024 * 1024 + 123;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const expected = createHash('sha256');
    const send = (n: number, byte: number) => {
      for (let off = 0; off < n; off += 64 * 1024) {
        const chunk = new Uint8Array(Math.min(64 * 1024, n - off)).fill(byte);
        expected.update(chunk);
        controller.enqueue(chunk);
      }
    };
    send(first, 0x41);
    const answer = upload(writeKey, 'big.bin', body, { type: 'application/octet-stream' });
    // The first part is on disk, in a temp file in the target folder, before the body ended;
    // the listing does not show it.
    const temp = await eventually(async () => {
      const t = fs.readdirSync(defaultDir).find((n) => n.startsWith('.sluice-upload-'));
      return t && fs.statSync(path.join(defaultDir, t)).size >= first ? t : null;
    });
    expect(fs.existsSync(path.join(defaultDir, 'big.bin'))).toBe(false);
    const during = await as(writeKey, LIST, { first: 100 });
    expect(during.files.nodes.map((f: any) => f.name)).not.toContain(temp);
    send(rest, 0x42);
    controller.close();
    const res = await answer;
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const abs = path.join(defaultDir, 'big.bin');
    expect(res.body).toEqual({ name: 'big.bin', size: first + rest, path: abs, modifiedAt: fs.statSync(abs).mtime.toISOString() });
    expect(sha(fs.readFileSync(abs))).toBe(expected.digest('hex'));
    expect(fs.statSync(abs).mode & 0o777).toBe(0o600);
    // Nothing else is left in the folder.
    expect(fs.readdirSync(defaultDir).filter((n) => n.startsWith('.sluice-upload-'))).toEqual([]);
  });

  it('accepts sub-folders, encoded or not, creating them inside the workspace folder', async () => {
    const a = await upload(writeKey, 'in%2F2026%2Forders.csv', 'id\n1\n');
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.name).toBe('in/2026/orders.csv');
    const b = await upload(writeKey, 'in/2026/more.csv', 'id\n2\n');
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    expect(fs.readFileSync(path.join(defaultDir, 'in', '2026', 'orders.csv'), 'utf8')).toBe('id\n1\n');
    expect(fs.readFileSync(path.join(defaultDir, 'in', '2026', 'more.csv'), 'utf8')).toBe('id\n2\n');
  });

  it('does not overwrite without ?overwrite=true (409, the file unchanged), and replaces with it', async () => {
    expect((await upload(writeKey, 'ow.csv', 'v1\n')).status).toBe(201);
    const again = await upload(writeKey, 'ow.csv', 'v2\n');
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'CONFLICT' });
    expect(again.body.message).toMatch(/already exists.*overwrite=true/);
    expect(fs.readFileSync(path.join(defaultDir, 'ow.csv'), 'utf8')).toBe('v1\n');
    const replaced = await upload(writeKey, 'ow.csv', 'version 3\n', { query: '?overwrite=true' });
    expect(replaced.status, JSON.stringify(replaced.body)).toBe(201);
    expect(replaced.body.size).toBe(10);
    expect(fs.readFileSync(path.join(defaultDir, 'ow.csv'), 'utf8')).toBe('version 3\n');
    const bad = await upload(writeKey, 'ow.csv', 'v4\n', { query: '?overwrite=maybe' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
    expect(fs.readFileSync(path.join(defaultDir, 'ow.csv'), 'utf8')).toBe('version 3\n');
  });

  it('two uploads of one new name racing: one is stored whole, the other is 409 and leaves nothing', async () => {
    const controllers: ReadableStreamDefaultController<Uint8Array>[] = [];
    const answers = [0x31, 0x32].map((byte) => {
      const body = new ReadableStream<Uint8Array>({ start: (c) => void controllers.push(c) });
      return { byte, answer: upload(writeKey, 'race.csv', body) };
    });
    for (const c of controllers) c.enqueue(new Uint8Array(1024).fill(0x30));
    // Both passed the existence check and are writing their temp files.
    await eventually(async () => fs.readdirSync(defaultDir).filter((n) => n.startsWith('.sluice-upload-')).length === 2);
    controllers.forEach((c, i) => {
      c.enqueue(new Uint8Array(1024).fill(answers[i]!.byte));
      c.close();
    });
    const results = await Promise.all(answers.map((a) => a.answer));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = answers[results.findIndex((r) => r.status === 201)]!.byte;
    const content = fs.readFileSync(path.join(defaultDir, 'race.csv'));
    expect(content.length).toBe(2048);
    expect(content.subarray(1024).every((b) => b === winner)).toBe(true);
    expect(fs.readdirSync(defaultDir).filter((n) => n.startsWith('.sluice-upload-'))).toEqual([]);
  });

  it('refuses a body over SLUICE_MAX_UPLOAD_BYTES with 413 and keeps nothing, declared or streamed', async () => {
    const before = tree(s.dataDir);
    const streamed = await upload(writeKey, 'new%2Fsub%2Fhuge.bin', streamOf(MAX_UPLOAD + 1), { type: 'application/octet-stream' });
    expect(streamed.status).toBe(413);
    expect(streamed.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', maxBytes: MAX_UPLOAD });
    const declared = await upload(writeKey, 'huge2.bin', Buffer.alloc(MAX_UPLOAD + 10, 1), { type: 'application/octet-stream' });
    expect(declared.status).toBe(413);
    // The folders it would have created are gone again.
    expect(fs.existsSync(path.join(defaultDir, 'new'))).toBe(false);
    // Replacing an existing file with a too-large body leaves the old one.
    const replace = await upload(writeKey, 'ow.csv', streamOf(MAX_UPLOAD + 5), { query: '?overwrite=true' });
    expect(replace.status).toBe(413);
    expect(fs.readFileSync(path.join(defaultDir, 'ow.csv'), 'utf8')).toBe('version 3\n');
    await eventually(async () => tree(s.dataDir).join() === before.join());
    expect(tree(s.dataDir)).toEqual(before);
    // Exactly the cap is fine.
    const exact = await upload(writeKey, 'exact.bin', streamOf(MAX_UPLOAD), { type: 'application/octet-stream' });
    expect(exact.status, JSON.stringify(exact.body)).toBe(201);
    expect(exact.body.size).toBe(MAX_UPLOAD);
  });

  it('refuses names that leave the workspace folder (400 VALIDATION_FAILED) and writes nothing anywhere', async () => {
    const keyFile = path.join(s.dataDir, 'secret-keys.json');
    const keyBefore = fs.readFileSync(keyFile);
    // A symlink inside the folder leading to the data folder.
    fs.symlinkSync(s.dataDir, path.join(defaultDir, 'escape'));
    const before = tree(s.dataDir);
    const names = [
      '..%2F..%2Fsecret-keys.json',
      '..%2Fsecret-keys.json',
      '%2e%2e%2f%2e%2e%2fsecret-keys.json',
      'a%2F..%2F..%2F..%2Fsecret-keys.json',
      '%2Fetc%2Fpasswd',
      encodeURIComponent(keyFile),
      'x%00.csv',
      'x%0A.csv',
      'a%2F%2Fb.csv',
      'dir%2F',
      '.',
      '%E0%A4%A',
      'escape%2Fsecret-keys.json',
      'escape%2Fnew.csv',
      '.sluice-upload-00000000-0000-0000-0000-000000000000',
      'ow.csv%2Finside-a-file.csv',
      `${'n'.repeat(300)}.csv`,
      '',
    ];
    for (const name of names) {
      const r = await upload(writeKey, name, 'owned\n', { query: '?overwrite=true' });
      expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.code, name).toBe('VALIDATION_FAILED');
      expect(typeof r.body.message, name).toBe('string');
    }
    // A raw, unnormalised path (fetch would normalise `..`).
    const raw = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = http.request(`${base}/files/../../secret-keys.json?overwrite=true`, { method: 'POST', headers: { ...bearer(writeKey), 'content-type': 'text/csv' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.path = '/files/../../secret-keys.json?overwrite=true';
      req.end('owned\n');
    });
    expect(raw.status).toBe(400);
    expect(raw.body.code).toBe('VALIDATION_FAILED');
    expect(fs.readFileSync(keyFile).equals(keyBefore)).toBe(true);
    expect(tree(s.dataDir)).toEqual(before);
    // The refusal reads the same whether or not the outside target exists.
    const missing = await upload(writeKey, '..%2F..%2Fno-such-file.json', 'x');
    const present = await upload(writeKey, '..%2F..%2Fsecret-keys.json', 'x');
    expect(missing.body.message.replace('no-such-file.json', 'X')).toBe(present.body.message.replace('secret-keys.json', 'X'));
    fs.unlinkSync(path.join(defaultDir, 'escape'));
  });

  it('needs a WRITE key: READ is 403, no key is 401 (local access is off), a malformed one 401', async () => {
    const read = await upload(readKey, 'read.csv', 'x\n');
    expect(read.status).toBe(403);
    expect(read.body).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'WRITE' });
    const none = await upload(null, 'none.csv', 'x\n');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('UNAUTHENTICATED');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await upload(`sk_${randomBytes(32).toString('base64url')}`, 'wrong.csv', 'x\n');
    expect(wrong.status).toBe(401);
    for (const n of ['read.csv', 'none.csv', 'wrong.csv']) expect(fs.existsSync(path.join(defaultDir, n)), n).toBe(false);
    // The refused READ upload is in the audit trail.
    const audit = await as(BOOTSTRAP, `{ events(last: 20, filter: { types: [AUDIT_MUTATION] }) { nodes { data } } }`);
    expect(audit.events.nodes.map((n: any) => n.data)).toContainEqual(expect.objectContaining({ mutation: 'uploadFile', outcome: 'FORBIDDEN', scope: 'READ' }));
  });

  it('refuses what a browser could send cross-site without a preflight, and foreign origins', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', null]) {
      const r = await upload(writeKey, 'csrf.csv', 'x\n', { type });
      expect(r.status, String(type)).toBe(403);
      expect(r.body.code).toBe('CSRF_PREVENTED');
    }
    const foreign = await upload(writeKey, 'csrf.csv', 'x\n', { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(fs.existsSync(path.join(defaultDir, 'csrf.csv'))).toBe(false);
    // A CSRF header makes a plain-text upload fine.
    const ok = await upload(writeKey, 'csrf.csv', 'x\n', { type: 'text/plain', headers: { 'x-graphql-yoga-csrf': '1' } });
    expect(ok.status).toBe(201);
  });

  it('answers 405 to other methods', async () => {
    const res = await fetch(`${base}/files/big.bin`, { headers: bearer(writeKey) });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('files query and deleteFile', () => {
  it('lists the workspace files recursively, by name or newest first, in pages', async () => {
    const dir = path.join(defaultDir, 'list');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    // A symlink to a folder outside is not followed.
    fs.symlinkSync(s.dataDir, path.join(dir, 'link'));
    fs.writeFileSync(path.join(dir, 'sub', 'c.csv'), 'ccc');
    fs.writeFileSync(path.join(dir, 'a.csv'), 'a');
    fs.writeFileSync(path.join(dir, 'b.csv'), 'bb');
    const t = Date.now() / 1000;
    fs.utimesSync(path.join(dir, 'a.csv'), t - 300, t - 300);
    fs.utimesSync(path.join(dir, 'b.csv'), t + 200, t + 200);
    fs.utimesSync(path.join(dir, 'sub', 'c.csv'), t + 100, t + 100);

    const all = await as(writeKey, LIST, { first: 100 });
    const names: string[] = all.files.nodes.map((f: any) => f.name);
    expect(all.files.totalCount).toBe(names.length);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['big.bin', 'in/2026/orders.csv', 'list/a.csv', 'list/b.csv', 'list/sub/c.csv', 'ow.csv']));
    expect(names.some((n) => n.startsWith('list/link'))).toBe(false);
    expect(names.some((n) => n.includes('secret-keys'))).toBe(false);
    const c = all.files.nodes.find((f: any) => f.name === 'list/sub/c.csv');
    expect(c).toEqual({ name: 'list/sub/c.csv', size: 3, path: path.join(dir, 'sub', 'c.csv'), modifiedAt: new Date((t + 100) * 1000).toISOString() });

    // Pages by name: every file once, in order.
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: any = await as(writeKey, LIST, { first: 2, after });
      seen.push(...page.files.nodes.map((f: any) => f.name));
      if (!page.files.pageInfo.hasNextPage) break;
      after = page.files.pageInfo.endCursor;
    }
    expect(seen).toEqual(names);
    const lastTwo = await as(writeKey, LIST, { last: 2 });
    expect(lastTwo.files.nodes.map((f: any) => f.name)).toEqual(names.slice(-2));

    const newest = await as(writeKey, LIST, { first: 2, order: 'NEWEST' });
    expect(newest.files.nodes.map((f: any) => f.name)).toEqual(['list/b.csv', 'list/sub/c.csv']);
    const next = await as(writeKey, LIST, { first: 100, after: newest.files.pageInfo.endCursor, order: 'NEWEST' });
    expect(next.files.nodes.map((f: any) => f.name)).not.toContain('list/b.csv');
    expect(next.files.nodes.at(-1).name).toBe('list/a.csv');

    const bad = await s.gql(LIST, { first: 1, after: 'not-a-cursor' }, bearer(writeKey));
    expect(bad.errors?.[0]?.extensions?.code).toBe('VALIDATION_FAILED');
    fs.unlinkSync(path.join(dir, 'link'));
  });

  it('deletes a file (event + audit), removes folders left empty, and refuses missing or outside names', async () => {
    const up = await upload(writeKey, 'gone%2Fdeep%2Fx.csv', 'x\n');
    expect(up.status).toBe(201);
    const del = await as(writeKey, DELETE, { name: 'gone/deep/x.csv' });
    expect(del.deleteFile).toEqual({ __typename: 'DeleteFilePayload', file: { name: 'gone/deep/x.csv', size: 2 } });
    expect(fs.existsSync(path.join(defaultDir, 'gone'))).toBe(false);
    const again = await as(writeKey, DELETE, { name: 'gone/deep/x.csv' });
    expect(again.deleteFile).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });

    const keyFile = path.join(s.dataDir, 'secret-keys.json');
    for (const name of ['../secret-keys.json', '../../secret-keys.json', keyFile, 'a\u0000b', 'in/../../secret-keys.json']) {
      const r = await as(writeKey, DELETE, { name });
      expect(r.deleteFile, name).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    }
    expect(fs.existsSync(keyFile)).toBe(true);
    const folder = await as(writeKey, DELETE, { name: 'in' });
    expect(folder.deleteFile.code).toBe('VALIDATION_FAILED');
    expect(fs.existsSync(path.join(defaultDir, 'in', '2026', 'orders.csv'))).toBe(true);

    const read = await s.gql(DELETE, { name: 'ow.csv' }, bearer(readKey));
    expect(read.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(fs.existsSync(path.join(defaultDir, 'ow.csv'))).toBe(true);

    const ev = await as(writeKey, `{ events(last: 50, filter: { types: [FILE_UPLOADED, FILE_DELETED, AUDIT_MUTATION] }) { nodes { type message data } } }`);
    const nodes = ev.events.nodes;
    expect(nodes.find((n: any) => n.type === 'FILE_UPLOADED' && n.data.name === 'gone/deep/x.csv')?.data).toMatchObject({ size: 2, overwritten: false, keyPrefix: writeKey.slice(0, 11) });
    expect(nodes.find((n: any) => n.type === 'FILE_DELETED')?.data).toEqual({ name: 'gone/deep/x.csv', size: 2 });
    const audits = nodes.filter((n: any) => n.type === 'AUDIT_MUTATION').map((n: any) => n.data);
    expect(audits).toContainEqual(expect.objectContaining({ mutation: 'deleteFile', outcome: 'OK', scope: 'WRITE' }));
    expect(audits).toContainEqual(expect.objectContaining({ mutation: 'deleteFile', outcome: 'NOT_FOUND' }));
    expect(audits).toContainEqual(expect.objectContaining({ mutation: 'uploadFile', outcome: 'OK' }));
  });

  it('keeps workspaces apart: B lists and deletes only its own files', async () => {
    const b = await upload(keyB, 'b-only.csv', 'b\n');
    expect(b.status).toBe(201);
    expect(path.dirname(b.body.path)).not.toBe(defaultDir);
    expect(path.dirname(path.dirname(b.body.path))).toBe(root);
    // The same name in A is another file.
    expect((await upload(writeKey, 'b-only.csv', 'a\n')).status).toBe(201);

    const listB = await as(keyB, LIST, { first: 100 });
    expect(listB.files.nodes.map((f: any) => f.name)).toEqual(['b-only.csv']);
    expect(listB.files.totalCount).toBe(1);
    const listA = await as(writeKey, LIST, { first: 100 });
    expect(listA.files.nodes.find((f: any) => f.name === 'b-only.csv').path).toBe(path.join(defaultDir, 'b-only.csv'));

    // A's files are not B's to delete, by name or by path.
    expect((await as(keyB, DELETE, { name: 'ow.csv' })).deleteFile.code).toBe('NOT_FOUND');
    for (const name of [path.join(defaultDir, 'ow.csv'), '../default/ow.csv']) {
      expect((await as(keyB, DELETE, { name })).deleteFile.code, name).toBe('VALIDATION_FAILED');
    }
    expect(fs.readFileSync(path.join(defaultDir, 'ow.csv'), 'utf8')).toBe('version 3\n');
    // Nor to overwrite through an upload.
    const up = await upload(keyB, '..%2Fdefault%2Fow.csv', 'stolen', { query: '?overwrite=true' });
    expect(up.status).toBe(400);
    expect(fs.readFileSync(path.join(defaultDir, 'ow.csv'), 'utf8')).toBe('version 3\n');

    expect((await as(keyB, DELETE, { name: 'b-only.csv' })).deleteFile.__typename).toBe('DeleteFilePayload');
    expect(fs.readFileSync(path.join(defaultDir, 'b-only.csv'), 'utf8')).toBe('a\n');
  });
});

describe('an uploaded CSV in a pipeline', () => {
  it('feeds a csv source into a sqlite destination in the same folder; deleting it while used is IN_USE', async () => {
    const rows = ['id,name,amount'];
    for (let i = 1; i <= 250; i++) rows.push(`${i},person ${i},${i * 2}`);
    const up = await upload(writeKey, 'people.csv', `${rows.join('\n')}\n`);
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    // Absolute paths inside the files root work before and after the drivers resolve relative names.
    const mk = async (name: string, driver: string, config: Record<string, unknown>) => {
      const r = await as(writeKey, `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { code message } } }`, {
        i: { name, driver, config },
      });
      expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
      return r.createConnector.connector.id as string;
    };
    const src = await mk('people', 'csv', { path: path.join(defaultDir, 'people.csv') });
    const dst = await mk('warehouse', 'sqlite', { path: path.join(defaultDir, 'warehouse.db'), table: 'people' });
    const p = await as(writeKey, `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`, {
      i: { name: 'people', sourceId: src, destinationId: dst },
    });
    const pipelineId = p.createPipeline.pipeline.id;
    await as(writeKey, `mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id: pipelineId } });
    const job = await eventually(async () => {
      const r = await as(writeKey, `query($id: ID!) { pipeline(id: $id) { jobs(first: 1) { nodes { status recordsWritten error } } } }`, { id: pipelineId });
      const j = r.pipeline.jobs.nodes[0];
      return j && ['SUCCEEDED', 'FAILED'].includes(j.status) ? j : null;
    }, 60_000);
    expect(job).toMatchObject({ status: 'SUCCEEDED', recordsWritten: 250 });
    const db = new Database(path.join(defaultDir, 'warehouse.db'), { readonly: true });
    expect(db.prepare('select count(*) as n from people').get()).toEqual({ n: 250 });
    db.close();

    const listed = await as(writeKey, LIST, { first: 100 });
    expect(listed.files.nodes.map((f: any) => f.name)).toEqual(expect.arrayContaining(['people.csv', 'warehouse.db']));
    for (const [name, id] of [['people.csv', src], ['warehouse.db', dst]] as const) {
      const r = await as(writeKey, DELETE, { name });
      expect(r.deleteFile, name).toMatchObject({ __typename: 'InUseError', code: 'IN_USE', usedBy: [id] });
      expect(fs.existsSync(path.join(defaultDir, name))).toBe(true);
    }
  });
});

describe('rate limit', () => {
  it('uploads and GraphQL operations share one budget per caller (429 + Retry-After)', async () => {
    const limited = await startTestServer({ env: { SLUICE_RATE_LIMIT: '3', SLUICE_RATE_LIMIT_WINDOW_MS: '600000' } });
    try {
      const origin = new URL(limited.url).origin;
      const post = (name: string) => fetch(`${origin}/files/${name}`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'x\n' });
      expect((await post('one.csv')).status).toBe(201);
      await limited.q(`{ viewer { scope } }`);
      expect((await post('two.csv')).status).toBe(201);
      const refused = await post('three.csv');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as any).code).toBe('RATE_LIMITED');
      expect(fs.existsSync(path.join(limited.config.files.root, 'default', 'three.csv'))).toBe(false);
      const gql = await limited.gql(`{ viewer { scope } }`);
      expect(gql.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    } finally {
      await limited.stop();
    }
  });
});
