import { randomBytes } from 'node:crypto';
/**
 * Workspaces and API keys through the real server (HTTP + graphql-ws): tenant isolation across
 * every root field, `node`/`nodes`, every object-targeted mutation and every subscription; key
 * scopes (a READ key's mutations are refused and change nothing; a key never grants more than
 * it has); revocation; the audit trail; and who is served without a key.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, subscribe, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';
import { bearer, callAs } from '../helpers/graphql.js';

let s: TestServer;
let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;
/** Workspace A is the default workspace; B is created by the test. */
let keyA: string;
let keyB: string;
let readKeyA: string;
let writeKeyA: string;
const A: Record<string, string> = {};

const as = <T = any>(key: string, query: string, variables?: Record<string, unknown>) => callAs<T>(s, key, query, variables);

async function mutate(key: string, field: string, inputType: string, input: unknown, payload = '') {
  const r = await as(key, `mutation($i: ${inputType}!) { ${field}(input: $i) { __typename ${payload} ... on Error { code message } } }`, { i: input });
  return r[field];
}

beforeAll(async () => {
  ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-ws-'));
  writeCsv(path.join(dir, 'in.csv'), 20);
  s = await startTestServer({ dataDir: filesData });
  // Local access (the test runs on the same machine) is the default workspace's ADMIN.
  const mk = async (name: string, scope: string) => {
    const r = await s.q(`mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { __typename ... on CreateApiKeyPayload { key apiKey { id prefix scope } } } }`, {
      i: { name, scope },
    });
    expect(r.createApiKey.__typename).toBe('CreateApiKeyPayload');
    return r.createApiKey.key as string;
  };
  keyA = await mk('admin A', 'ADMIN');
  readKeyA = await mk('reader A', 'READ');
  writeKeyA = await mk('writer A', 'WRITE');
  const w = await as(keyA, `mutation { createWorkspace(input: { name: "B" }) { __typename ... on CreateWorkspacePayload { key workspace { id name } apiKey { scope } } ... on Error { code message } } }`);
  expect(w.createWorkspace.__typename, JSON.stringify(w)).toBe('CreateWorkspacePayload');
  expect(w.createWorkspace.apiKey.scope).toBe('ADMIN');
  keyB = w.createWorkspace.key;

  // Workspace A's objects: connectors, a mapping, a pipeline with a finished job, a webhook.
  const src = await mutate(keyA, 'createConnector', 'CreateConnectorInput', { name: 'A source', driver: 'csv', config: { path: path.join(dir, 'in.csv') } }, '... on CreateConnectorPayload { connector { id } }');
  A.source = src.connector.id;
  const dst = await mutate(keyA, 'createConnector', 'CreateConnectorInput', { name: 'A dest', driver: 'sqlite', config: { path: path.join(dir, 'a.db'), table: 'rows' } }, '... on CreateConnectorPayload { connector { id } }');
  A.destination = dst.connector.id;
  const m = await mutate(keyA, 'createMapping', 'CreateMappingInput', { name: 'A mapping', spec: { passThrough: true } }, '... on CreateMappingPayload { mapping { id } }');
  A.mapping = m.mapping.id;
  const p = await mutate(keyA, 'createPipeline', 'CreatePipelineInput', { name: 'A pipeline', sourceId: A.source, destinationId: A.destination, mappingId: A.mapping }, '... on CreatePipelinePayload { pipeline { id } }');
  A.pipeline = p.pipeline.id;
  const started = await mutate(keyA, 'startPipeline', 'PipelineActionInput', { id: A.pipeline }, '... on StartPipelinePayload { pipeline { state } }');
  expect(started.__typename, JSON.stringify(started)).toBe('StartPipelinePayload');
  const job = await eventually(async () => {
    const r = await as(keyA, `query($id: ID!) { pipeline(id: $id) { jobs(first: 1) { nodes { id status } } } }`, { id: A.pipeline });
    const j = r.pipeline.jobs.nodes[0];
    return j?.status === 'SUCCEEDED' ? j : null;
  });
  A.job = job.id;
  const auth = await mutate(keyA, 'createAuthentication', 'CreateAuthenticationInput', { name: 'A token', bearer: { token: 'a-secret-token' } }, '... on CreateAuthenticationPayload { authentication { id } }');
  expect(auth.__typename, JSON.stringify(auth)).toBe('CreateAuthenticationPayload');
  A.authentication = auth.authentication.id;
  const wh = await mutate(keyA, 'createWebhookEndpoint', 'CreateWebhookEndpointInput', { url: 'http://127.0.0.1:9/hook', enabled: false }, '... on CreateWebhookEndpointPayload { webhookEndpoint { id } }');
  A.webhook = wh.webhookEndpoint.id;
  const keys = await as(keyA, `{ apiKeys(first: 10) { nodes { id name } } viewer { workspace { id } } }`);
  A.apiKey = keys.apiKeys.nodes.find((k: { name: string }) => k.name === 'reader A').id;
  A.workspace = keys.viewer.workspace.id;
  const ev = await as(keyA, `{ events(last: 1) { nodes { id } } }`);
  A.event = ev.events.nodes[0].id;
}, 120_000);

afterAll(async () => {
  await s?.stop();
});

describe('tenant isolation', () => {
  it('viewer names the caller: workspace, key and scope', async () => {
    const a = await as(keyA, `{ viewer { keyPrefix scope workspace { id name } apiKey { name } } }`);
    expect(a.viewer).toMatchObject({ scope: 'ADMIN', keyPrefix: keyA.slice(0, 11), apiKey: { name: 'admin A' } });
    const b = await as(keyB, `{ viewer { scope workspace { name } } }`);
    expect(b.viewer).toMatchObject({ scope: 'ADMIN', workspace: { name: 'B' } });
    const local = await s.q(`{ viewer { keyPrefix scope apiKey { id } workspace { id } } }`);
    expect(local.viewer).toMatchObject({ keyPrefix: 'local', scope: 'ADMIN', apiKey: null, workspace: { id: A.workspace } });
  });

  it('node / nodes answer null for every kind of object of another workspace', async () => {
    const ids = Object.values(A);
    for (const id of ids) {
      const mine = await as(keyA, `query($id: ID!) { node(id: $id) { id } }`, { id });
      expect(mine.node?.id, `A sees its own ${id}`).toBe(id);
      const theirs = await as(keyB, `query($id: ID!) { node(id: $id) { id } }`, { id });
      expect(theirs.node, `B must not see ${id}`).toBeNull();
    }
    const many = await as(keyB, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids });
    expect(many.nodes.every((n: unknown) => n === null)).toBe(true);
  });

  it('every root query field: lists never show, lookups answer null (the test covers each root field)', async () => {
    const fields = (await as(keyB, `{ __schema { queryType { fields { name } } } }`)).__schema.queryType.fields.map((f: { name: string }) => f.name);
    // Global, non-tenant fields: the driver catalogue and the health of the instance.
    const global = ['connectorDefinition', 'connectorDefinitions', 'health', 'node', 'nodes', 'viewer'];
    const lookups: Record<string, string> = {
      connector: A.source!,
      mapping: A.mapping!,
      pipeline: A.pipeline!,
      job: A.job!,
      webhookEndpoint: A.webhook!,
      authentication: A.authentication!,
    };
    const lists = ['connectors', 'mappings', 'pipelines', 'jobs', 'events', 'webhookEndpoints', 'apiKeys', 'authentications'];
    // Files have names, not ids: A's file is absent from B's list.
    const named = ['files'];
    // Config documents name objects: A's are absent from B's export, and B cannot plan A's files.
    const documents = ['exportConfig', 'planConfig'];
    const uncovered = fields.filter((f: string) => !global.includes(f) && !(f in lookups) && !lists.includes(f) && !named.includes(f) && !documents.includes(f));
    expect(uncovered, 'every root field must be covered by this test').toEqual([]);
    for (const [field, id] of Object.entries(lookups)) {
      if (!fields.includes(field)) continue;
      const r = await s.gql(`query($id: ID!) { ${field}(id: $id) { __typename } }`, { id }, bearer(keyB));
      expect(r.data?.[field] ?? null, `${field}(A's id) from B`).toBeNull();
    }
    const aIds = new Set(Object.values(A));
    for (const field of lists) {
      if (!fields.includes(field)) continue;
      const [b, a] = await Promise.all([
        as(keyB, `{ ${field}(first: 100) { totalCount nodes { id } } }`),
        as(keyA, `{ ${field}(first: 100) { totalCount nodes { id } } }`),
      ]);
      expect(a[field].totalCount, `A has ${field}`).toBeGreaterThan(0);
      const leaked = b[field].nodes.filter((n: { id: string }) => aIds.has(n.id));
      expect(leaked, `${field} from B`).toEqual([]);
      if (field !== 'apiKeys' && field !== 'events') expect(b[field].totalCount, `${field} count from B`).toBe(0);
    }
    fs.writeFileSync(path.join(s.config.files.root, 'default', 'iso.csv'), 'a\n');
    const [bFiles, aFiles] = await Promise.all([as(keyB, `{ files(first: 100) { totalCount nodes { name } } }`), as(keyA, `{ files(first: 100) { totalCount nodes { name } } }`)]);
    expect(aFiles.files.nodes.map((f: { name: string }) => f.name)).toContain('iso.csv');
    expect(bFiles.files).toEqual({ totalCount: 0, nodes: [] });
    const [aDoc, bDoc] = await Promise.all([as(keyA, `{ exportConfig { document secretReferences } }`), as(keyB, `{ exportConfig { document } }`)]);
    const env = Object.fromEntries(
      (aDoc.exportConfig.secretReferences as string[]).map((n) => [n, n.startsWith('SLUICE_WEBHOOK_') ? `whsec_${randomBytes(32).toString('base64')}` : 'a-secret']),
    );
    expect(aDoc.exportConfig.document).toMatch(/^connectors:/m);
    expect(bDoc.exportConfig.document).not.toMatch(/^connectors:/m);
    const plan = await as(keyB, `query($d: String!, $e: JSON) { planConfig(document: $d, env: $e) { ... on ConfigPlan { changes { kind } } ... on Error { code message } } }`, { d: aDoc.exportConfig.document, e: env });
    // A's document names A's files: in B they are outside B's files root, so B cannot even plan it.
    expect(plan.planConfig.code).toBe('VALIDATION_FAILED');
    expect(plan.planConfig.message).toMatch(/connectors\["A source"\]\.config\.path: path "[^"]+" is outside the files root of this workspace/);
    // B's own events and keys are only B's.
    const bEvents = await as(keyB, `{ events(first: 100, filter: { types: [WORKSPACE_CREATED, AUDIT_MUTATION] }) { nodes { id type } } }`);
    expect(bEvents.events.nodes.length).toBeGreaterThan(0);
    const aEventIds = new Set((await as(keyA, `{ events(first: 100, filter: { types: [WORKSPACE_CREATED, AUDIT_MUTATION] }) { nodes { id } } }`)).events.nodes.map((n: { id: string }) => n.id));
    expect(bEvents.events.nodes.filter((n: { id: string }) => aEventIds.has(n.id))).toEqual([]);
  });

  it("every mutation aimed at another workspace's object answers NOT_FOUND and changes nothing", async () => {
    const calls: Array<[string, string, Record<string, unknown>]> = [
      ['updateConnector', 'UpdateConnectorInput', { id: A.source, name: 'stolen' }],
      ['pauseConnector', 'ConnectorIdInput', { id: A.source }],
      ['resumeConnector', 'ConnectorIdInput', { id: A.source }],
      ['checkConnector', 'ConnectorIdInput', { id: A.source }],
      ['discoverConnector', 'ConnectorIdInput', { id: A.source }],
      ['updateMapping', 'UpdateMappingInput', { id: A.mapping, name: 'stolen' }],
      ['updatePipeline', 'UpdatePipelineInput', { id: A.pipeline, name: 'stolen' }],
      ['startPipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['stopPipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['pausePipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['resumePipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['resetPipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['runPipeline', 'PipelineIdInput', { id: A.pipeline }],
      ['enablePipeline', 'PipelineIdInput', { id: A.pipeline }],
      ['disablePipeline', 'PipelineIdInput', { id: A.pipeline }],
      ['createPushToken', 'PipelineIdInput', { id: A.pipeline }],
      ['previewPipeline', 'PreviewPipelineInput', { id: A.pipeline }],
      ['previewMapping', 'PreviewMappingInput', { connectorId: A.source, spec: { passThrough: true } }],
      ['updateAuthentication', 'UpdateAuthenticationInput', { id: A.authentication, name: 'stolen' }],
      ['deleteAuthentication', 'AuthenticationIdInput', { id: A.authentication }],
      ['replayFailedRecords', 'ReplayFailedRecordsInput', { pipelineId: A.pipeline }],
      ['cancelJob', 'JobIdInput', { id: A.job }],
      ['updateWebhookEndpoint', 'UpdateWebhookEndpointInput', { id: A.webhook, url: 'http://127.0.0.1:9/stolen' }],
      ['rotateWebhookSecret', 'RotateWebhookSecretInput', { id: A.webhook }],
      ['pingWebhook', 'WebhookEndpointIdInput', { id: A.webhook }],
      ['replayWebhookEvents', 'ReplayWebhookEventsInput', { endpointId: A.webhook, afterCursor: '0' }],
      ['revokeApiKey', 'RevokeApiKeyInput', { id: A.apiKey }],
      ['testMapping', 'TestMappingInput', { id: A.mapping, records: [{ a: 1 }] }],
      ['createPipeline', 'CreatePipelineInput', { name: 'cross', sourceId: A.source, destinationId: A.destination }],
      ['deleteWebhookEndpoint', 'WebhookEndpointIdInput', { id: A.webhook }],
      ['deletePipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['deleteMapping', 'MappingIdInput', { id: A.mapping }],
      ['deleteConnector', 'ConnectorIdInput', { id: A.source }],
      ['deleteFile', 'DeleteFileInput', { name: 'iso.csv' }],
    ];
    const snapshot = () =>
      as(keyA, `{ connectors(first: 100) { nodes { id name paused version } } mappings(first: 100) { nodes { id name version } }
        pipelines(first: 100) { nodes { id name state version enabled } } jobs(first: 100) { totalCount nodes { id status } }
        webhookEndpoints(first: 100) { nodes { id url enabled } } apiKeys(first: 100) { nodes { id revoked } } }`);
    const before = await snapshot();
    const isoFile = path.join(s.config.files.root, 'default', 'iso.csv');
    fs.writeFileSync(isoFile, 'a\n');
    for (const [field, type, input] of calls) {
      const r = await s.gql(`mutation($i: ${type}!) { ${field}(input: $i) { __typename ... on Error { code message } } }`, { i: input }, bearer(keyB));
      const code = r.data?.[field]?.code ?? r.errors?.[0]?.extensions?.code;
      if (field === 'createPipeline') {
        // References in a create are input validation: each invisible id is "not found" at its path.
        expect(code).toBe('VALIDATION_FAILED');
        expect(r.data?.[field]?.message).toMatch(/sourceId: no such connector.*destinationId: no such connector/);
      } else expect(code, `${field} from B: ${JSON.stringify(r)}`).toBe('NOT_FOUND');
    }
    expect(await snapshot()).toEqual(before);
    expect(fs.readFileSync(isoFile, 'utf8')).toBe('a\n');
  });

  it('subscriptions naming another workspace’s object are refused at subscribe time; the events feed never carries them', async () => {
    const client = createClient({ url: s.wsUrl, webSocketImpl: WebSocket, connectionParams: bearer(keyB), lazy: true, retryAttempts: 0 });
    try {
      const refused = [
        ['subscription($id: ID!) { pipelineStateChanged(pipelineId: $id) { state } }', { id: A.pipeline }],
        ['subscription($id: ID!) { jobProgress(jobId: $id) { status } }', { id: A.job }],
        ['subscription($id: ID!) { events(filter: { pipelineId: $id }) { id } }', { id: A.pipeline }],
        ['subscription($id: ID!) { events(filter: { connectorId: $id }) { id } }', { id: A.source }],
      ] as const;
      for (const [query, variables] of refused) {
        const sub = subscribe(client, query, variables);
        await sub.done;
        expect(sub.messages, query).toEqual([]);
        expect(JSON.stringify(sub.errors), query).toContain('not found');
      }
      // B listens to everything it may see while A changes its objects: nothing of A arrives.
      const all = subscribe(client, 'subscription { events(filter: { types: [CONNECTOR_UPDATED, AUDIT_MUTATION, CONNECTOR_CREATED] }) { id type connectorId } }');
      await new Promise((r) => setTimeout(r, 200));
      await mutate(keyA, 'updateConnector', 'UpdateConnectorInput', { id: A.source, name: 'A source renamed' });
      // B's path is relative to B's own files folder (A's folder is out of its reach).
      const c = await mutate(keyB, 'createConnector', 'CreateConnectorInput', { name: 'B source', driver: 'csv', config: { path: 'in.csv' } }, '... on CreateConnectorPayload { connector { id } }');
      const got = await all.waitFor((m) => m.some((e: any) => e.events.type === 'CONNECTOR_CREATED'));
      all.stop();
      expect(got.every((m: any) => m.events.connectorId !== A.source)).toBe(true);
      expect(got.find((m: any) => m.events.type === 'CONNECTOR_CREATED').events.connectorId).toBe(c.connector.id);
    } finally {
      await client.dispose();
    }
  });
});

describe('key scopes', () => {
  it("a READ key's mutations are refused with FORBIDDEN (HTTP 403) and change nothing; queries work", async () => {
    const snapshot = () => as(keyA, `{ connectors(first: 100) { nodes { id name version } } pipelines(first: 100) { nodes { id state version } } jobs { totalCount } apiKeys { totalCount } }`);
    const before = await snapshot();
    const attempts: Array<[string, string, Record<string, unknown>]> = [
      ['createConnector', 'CreateConnectorInput', { name: 'x', driver: 'csv', config: { path: path.join(dir, 'in.csv') } }],
      ['updateConnector', 'UpdateConnectorInput', { id: A.source, name: 'read-only rename' }],
      ['deleteConnector', 'ConnectorIdInput', { id: A.destination }],
      ['runPipeline', 'PipelineIdInput', { id: A.pipeline }],
      ['stopPipeline', 'PipelineActionInput', { id: A.pipeline }],
      ['createApiKey', 'CreateApiKeyInput', { name: 'escalate', scope: 'READ' }],
      ['createWorkspace', 'CreateWorkspaceInput', { name: 'nope' }],
    ];
    for (const [field, type, input] of attempts) {
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(readKeyA) },
        body: JSON.stringify({ query: `mutation($i: ${type}!) { ${field}(input: $i) { __typename } }`, variables: { i: input } }),
      });
      const body = (await res.json()) as any;
      expect(res.status, field).toBe(403);
      expect(body.data ?? null, field).toBeNull();
      expect(body.errors[0].extensions.code, field).toBe('FORBIDDEN');
    }
    // A mutation hidden behind a fragment is found too.
    const frag = await s.gql(`mutation { ...M } fragment M on Mutation { deleteConnector(input: { id: "${A.destination}" }) { __typename } }`, {}, bearer(readKeyA));
    expect(frag.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await snapshot()).toEqual(before);
    // Reading and pure computation are allowed.
    expect((await as(readKeyA, `{ pipelines { totalCount } }`)).pipelines.totalCount).toBeGreaterThan(0);
    const t = await mutate(readKeyA, 'testMapping', 'TestMappingInput', { spec: { mapping: { b: 'a' } }, records: [{ a: 1 }] });
    expect(t.__typename).toBe('TestMappingPayload');
  });

  it('a key never creates a key above its own scope; WRITE keys manage only their own keys; only the default workspace ADMIN creates workspaces', async () => {
    const up = await mutate(writeKeyA, 'createApiKey', 'CreateApiKeyInput', { name: 'escalate', scope: 'ADMIN' }, '... on ForbiddenError { requiredScope }');
    expect(up).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN', requiredScope: 'ADMIN' });
    const same = await mutate(writeKeyA, 'createApiKey', 'CreateApiKeyInput', { name: 'child', scope: 'WRITE' }, '... on CreateApiKeyPayload { key apiKey { id } }');
    expect(same.__typename).toBe('CreateApiKeyPayload');
    const other = await mutate(writeKeyA, 'revokeApiKey', 'RevokeApiKeyInput', { id: A.apiKey });
    expect(other.code).toBe('FORBIDDEN');
    const own = await mutate(writeKeyA, 'revokeApiKey', 'RevokeApiKeyInput', { id: same.apiKey.id }, '... on RevokeApiKeyPayload { apiKey { revoked } }');
    expect(own.apiKey.revoked).toBe(true);
    const ws = await mutate(keyB, 'createWorkspace', 'CreateWorkspaceInput', { name: 'C' });
    expect(ws.code).toBe('FORBIDDEN');
    // Rotating the instance's encryption key is for the default workspace's ADMIN only.
    const rotate = await s.gql(`mutation { rotateEncryptionKey { keyId } }`, {}, bearer(keyB));
    expect(rotate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(rotate.errors?.[0]?.message).toContain('default workspace');
  });

  it('keys are stored hashed, shown once, listed with name, prefix, scope and last use', async () => {
    const r = await mutate(keyA, 'createApiKey', 'CreateApiKeyInput', { name: 'shown once', scope: 'READ' }, '... on CreateApiKeyPayload { key apiKey { id prefix } }');
    expect(r.key).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(r.key.startsWith(r.apiKey.prefix)).toBe(true);
    const rows = await s.app.services.database.prisma.$queryRawUnsafe<Array<{ t: string }>>(`select k::text as t from "ApiKey" k`);
    expect(rows.some((row) => row.t.includes(r.key))).toBe(false);
    await as(r.key, `{ viewer { scope } }`);
    const listed = await as(keyA, `query($id: ID!) { node(id: $id) { ... on ApiKey { name prefix scope createdAt lastUsedAt revokedAt } } }`, { id: r.apiKey.id });
    expect(listed.node).toMatchObject({ name: 'shown once', prefix: r.apiKey.prefix, scope: 'READ', revokedAt: null });
    expect(listed.node.lastUsedAt).not.toBeNull();
    expect(JSON.stringify(listed)).not.toContain(r.key);
  });

  it('a revoked key is refused at once over HTTP, and its open WebSocket is closed at its next subscribe (4403)', async () => {
    const r = await mutate(keyA, 'createApiKey', 'CreateApiKeyInput', { name: 'to revoke', scope: 'READ' }, '... on CreateApiKeyPayload { key apiKey { id } }');
    const key = r.key as string;
    expect((await as(key, `{ viewer { scope } }`)).viewer.scope).toBe('READ');
    const sock = new WebSocket(s.wsUrl, 'graphql-transport-ws');
    const closed = new Promise<number>((resolve) => sock.on('close', (code) => resolve(code)));
    await new Promise((resolve) => sock.on('open', resolve));
    sock.send(JSON.stringify({ type: 'connection_init', payload: bearer(key) }));
    await new Promise((resolve) => sock.once('message', resolve));
    await mutate(keyA, 'revokeApiKey', 'RevokeApiKeyInput', { id: r.apiKey.id });
    const res = await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(key) }, body: JSON.stringify({ query: '{ viewer { scope } }' }) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    sock.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { events { id } }' } }));
    expect(await closed).toBe(4403);
  });

  it('renameWorkspace is ADMIN-only; apiKeys can leave revoked keys out; an expiry must be in the future', async () => {
    expect((await mutate(writeKeyA, 'renameWorkspace', 'RenameWorkspaceInput', { name: 'nope' }).catch((e: Error) => e.message)) as string).toContain('FORBIDDEN');
    const renamed = await mutate(keyB, 'renameWorkspace', 'RenameWorkspaceInput', { name: 'Team B' }, '... on RenameWorkspacePayload { workspace { name } }');
    expect(renamed.workspace.name).toBe('Team B');
    expect((await as(keyB, `{ viewer { workspace { name } } }`)).viewer.workspace.name).toBe('Team B');
    expect((await as(keyA, `{ viewer { workspace { name } } }`)).viewer.workspace.name).toBe('Default');
    const blank = await mutate(keyB, 'renameWorkspace', 'RenameWorkspaceInput', { name: '  ' });
    expect(blank.code).toBe('VALIDATION_FAILED');

    const all = await as(keyA, `{ apiKeys(first: 100) { totalCount nodes { revoked } } }`);
    const live = await as(keyA, `{ apiKeys(first: 100, includeRevoked: false) { totalCount nodes { revoked } } }`);
    expect(all.apiKeys.nodes.some((k: { revoked: boolean }) => k.revoked)).toBe(true);
    expect(live.apiKeys.nodes.every((k: { revoked: boolean }) => !k.revoked)).toBe(true);
    expect(live.apiKeys.totalCount).toBe(all.apiKeys.nodes.filter((k: { revoked: boolean }) => !k.revoked).length);

    const past = await mutate(keyA, 'createApiKey', 'CreateApiKeyInput', { name: 'stale', scope: 'READ', expiresAt: '2020-01-01T00:00:00Z' });
    expect(past.code).toBe('VALIDATION_FAILED');
  });
});

describe('audit', () => {
  it('every mutation writes an AUDIT_MUTATION event naming the key; refused ones too; inputs are not recorded', async () => {
    await mutate(writeKeyA, 'updateConnector', 'UpdateConnectorInput', { id: A.source, name: 'audited rename' });
    await s.gql(`mutation { createWorkspace(input: { name: "x" }) { __typename } }`, {}, bearer(readKeyA));
    const r = await as(keyA, `{ events(last: 5, filter: { types: [AUDIT_MUTATION] }) { nodes { type message data } } }`);
    const audits = r.events.nodes.map((n: any) => n.data);
    expect(audits).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ mutation: 'updateConnector', outcome: 'OK', keyPrefix: writeKeyA.slice(0, 11), scope: 'WRITE' }),
        expect.objectContaining({ mutation: 'createWorkspace', outcome: 'FORBIDDEN', keyPrefix: readKeyA.slice(0, 11), scope: 'READ' }),
      ]),
    );
    expect(audits.every((a: any) => typeof a.apiKeyId === 'string' && typeof a.requestId === 'string')).toBe(true);
    expect(JSON.stringify(r)).not.toContain('audited rename');
    // The audit trail is opt-in: the default feed does not carry it.
    const plain = await as(keyA, `{ events(last: 20) { nodes { type } } }`);
    expect(plain.events.nodes.some((n: any) => n.type === 'AUDIT_MUTATION')).toBe(false);
  });
});

describe('who is served without a key', () => {
  let remote: TestServer;
  beforeAll(async () => {
    remote = await startTestServer({ env: { SLUICE_LOCAL_ACCESS: 'false' } });
  });
  afterAll(async () => {
    await remote?.stop();
  });

  const post = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: '{ viewer { scope } }' }) });

  it('a local request to a local server is served (the README path); anything that looks remote is not', async () => {
    expect((await post(s.url)).status).toBe(200);
    const foreign: Array<Record<string, string>> = [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { origin: 'https://evil.example' }];
    for (const headers of foreign) {
      const res = await post(s.url, headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
    }
    // DNS rebinding: a foreign Host header naming this server.
    const http = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(s.url, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ query: '{ viewer { scope } }' }));
    });
    expect(status).toBe(401);
  });

  it('with local access off: no key → 401; a bad key → 401; a valid key → served', async () => {
    const none = await post(remote.url);
    expect(none.status).toBe(401);
    expect(((await none.json()) as any).errors[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect((await post(remote.url, bearer('sk_' + 'x'.repeat(43)))).status).toBe(401);
    expect((await post(remote.url, { authorization: 'Basic Zm9vOmJhcg==' })).status).toBe(401);
    // GraphiQL itself is not served either.
    expect((await fetch(remote.url, { headers: { accept: 'text/html' } })).status).toBe(401);
  });

  it('graphql-ws: no credentials → 4401, a refused key → 4403, a valid key works', async () => {
    const closeCode = (params?: Record<string, unknown>) => closeCodeOn(remote.wsUrl, params);
    expect(await closeCode()).toBe(4401);
    expect(await closeCode(bearer('sk_' + 'y'.repeat(43)))).toBe(4403);
    expect(await closeCode({ authorization: 'not a bearer' })).toBe(4403);
    // A valid key: the ADMIN key of the default workspace, made on the local server... keys are
    // per database, so make one here through the bootstrap path instead.
    const key = 'sk_' + Buffer.alloc(32, 7).toString('base64url');
    const boot = await startTestServer({ env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: key } });
    try {
      const ok = createClient({ url: boot.wsUrl, webSocketImpl: WebSocket, connectionParams: bearer(key), lazy: true, retryAttempts: 0 });
      const sub = subscribe(ok, `subscription { events(filter: { types: [CONNECTOR_CREATED] }) { type } }`);
      await new Promise((r) => setTimeout(r, 200));
      const res = await boot.gql(`mutation { createConnector(input: { name: "x", driver: "csv", config: { path: "in.csv" } }) { __typename } }`, {}, bearer(key));
      expect(res.data?.createConnector.__typename).toBe('CreateConnectorPayload');
      const got = await sub.waitFor((m) => m.length >= 1);
      expect(got[0].events.type).toBe('CONNECTOR_CREATED');
      sub.stop();
      await ok.dispose();
      expect(await closeCodeOn(boot.wsUrl)).toBe(4401);
      expect(await closeCodeOn(boot.wsUrl, bearer(key))).toBe(1000);
    } finally {
      await boot.stop();
    }
  });

  it('a request from another host (a non-loopback address of this machine) needs a key even with local access on', async () => {
    const ip = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!ip) {
      console.warn('skipped: this machine has no non-loopback IPv4 address');
      return;
    }
    const open = await startTestServer({ env: { SLUICE_HOST: '0.0.0.0' } });
    try {
      const url = open.url.replace('0.0.0.0', ip);
      const res = await post(url);
      expect(res.status).toBe(401);
      expect((await post(open.url.replace('0.0.0.0', '127.0.0.1'))).status).toBe(200);
    } finally {
      await open.stop();
    }
  });
});

/** The close code of a raw graphql-ws connection (1000 when it was acknowledged and closed by us). */
function closeCodeOn(url: string, params?: Record<string, unknown>): Promise<number> {
  return new Promise<number>((resolve) => {
    const sock = new WebSocket(url, 'graphql-transport-ws');
    sock.on('open', () => sock.send(JSON.stringify({ type: 'connection_init', ...(params ? { payload: params } : {}) })));
    sock.on('message', (m) => {
      if (JSON.parse(String(m)).type === 'connection_ack') sock.close(1000);
    });
    sock.on('close', (code) => resolve(code));
  });
}
