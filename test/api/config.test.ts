/**
 * Config as code through the real server: a workspace (an authentication, csv / sqlite / http /
 * webhook connectors with secrets, a mapping, two scheduled pipelines, two webhooks) is exported,
 * applied to a fresh server with the secrets passed as env, and exported again byte for byte; a
 * second apply writes nothing (no event); an update shows a field-level plan; prune deletes in
 * reverse dependency order; bad documents (unknown reference, bad config, unset ${ENV}, YAML
 * syntax) are VALIDATION_FAILED at file:line and change nothing; secret values appear in no
 * export and no plan; another workspace's objects never appear.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, writeCsv, type TestServer } from '../helpers/server.js';
import { bearer, callAs } from '../helpers/graphql.js';
import { envReferences } from '../../src/modules/config/config.document.js';

const SECRET = { partner: 'tok-partner-7Qx2-secret', hook: 'tok-hook-9Zr4-secret', hookNew: 'tok-hook-NEW-5Kp1-secret' };

interface Seen {
  path: string;
  authorization: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
let api: http.Server;
let base = '';
const seen: Seen[] = [];

function startApi(): Promise<void> {
  api = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ path: url.pathname, authorization: req.headers.authorization ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (url.pathname.startsWith('/hook')) {
        res.writeHead(204);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ id: 1, name: 'one' }, { id: 2, name: 'two' }]));
    });
  });
  return new Promise((resolve) => api.listen(0, '127.0.0.1', () => resolve(void (base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`))));
}

const ERR = `... on Error { code message ... on ValidationError { fieldErrors { path message } } }`;
const PLAN_FIELDS = `text hasChanges changes { kind objectType name address fields { path before after secret } }`;
const EXPORT = `{ exportConfig { document secretReferences } }`;
const PLAN = `query($d: String!, $f: String, $p: Boolean, $e: JSON) { planConfig(document: $d, fileName: $f, prune: $p, env: $e) { __typename ... on ConfigPlan { ${PLAN_FIELDS} } ${ERR} } }`;
const APPLY = `mutation($i: ApplyConfigInput!) { applyConfig(input: $i) { __typename ... on ApplyConfigPayload { applied plan { ${PLAN_FIELDS} } } ${ERR} } }`;

let a: TestServer;
let b: TestServer;
/** Everything either server answered: no secret value may ever appear in it. */
const transcript: string[] = [];
const webhookSecrets: Record<string, string> = {};

async function q(s: TestServer, query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<any> {
  const r = await s.gql(query, variables, headers);
  transcript.push(JSON.stringify(r));
  if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
  return r.data;
}

async function ok(s: TestServer, field: string, inputType: string, input: unknown, payload: string): Promise<any> {
  const r = await q(s, `mutation($i: ${inputType}!) { ${field}(input: $i) { __typename ${payload} ${ERR} } }`, { i: input });
  expect(r[field].__typename, JSON.stringify(r)).not.toMatch(/Error$/);
  return r[field];
}

const exportDoc = async (s: TestServer) => (await q(s, EXPORT)).exportConfig as { document: string; secretReferences: string[] };
const plan = async (s: TestServer, document: string, env?: Record<string, string>, prune?: boolean, fileName?: string) =>
  (await q(s, PLAN, { d: document, e: env ?? null, p: prune ?? null, f: fileName ?? null })).planConfig;
const apply = async (s: TestServer, input: Record<string, unknown>) => (await q(s, APPLY, { i: input })).applyConfig;

/** Object and event counts of a server's default workspace (AUDIT_MUTATION counted apart). */
async function counts(s: TestServer) {
  const r = await q(
    s,
    `{ authentications { totalCount } connectors { totalCount } mappings { totalCount } pipelines { totalCount } webhookEndpoints { totalCount }
       events { totalCount } audits: events(filter: { types: [AUDIT_MUTATION] }) { totalCount } }`,
  );
  return {
    objects: [r.authentications, r.connectors, r.mappings, r.pipelines, r.webhookEndpoints].map((c: { totalCount: number }) => c.totalCount),
    events: r.events.totalCount as number,
    audits: r.audits.totalCount as number,
  };
}

/** The 1-based line of the first line of `doc` containing `text`. */
const lineOf = (doc: string, text: string) => doc.split('\n').findIndex((l) => l.includes(text)) + 1;

beforeAll(async () => {
  await startApi();
  a = await startTestServer({ env: { SLUICE_WEBHOOK_POLL_MS: '50' } });
  b = await startTestServer({ env: { SLUICE_WEBHOOK_POLL_MS: '50' } });
  for (const s of [a, b]) writeCsv(path.join(s.filesDir, 'orders.csv'), 5);
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()].map((p) => p?.catch(() => undefined)));
  api?.closeAllConnections();
  await new Promise((r) => api?.close(r));
});

let doc1 = '';
/** doc1 without the partner objects and the unnamed webhook (after the prune test, the fresh server's state). */
let smallerDoc = '';
let env: Record<string, string> = {};

describe('config as code', () => {
  it('setup: a workspace with every kind of object, and another workspace', async () => {
    const auth = await ok(a, 'createAuthentication', 'CreateAuthenticationInput', { name: 'partner-api', bearer: { token: SECRET.partner } }, '... on CreateAuthenticationPayload { authentication { id } }');
    const connector = (name: string, driver: string, config: unknown, authenticationId?: string) =>
      ok(a, 'createConnector', 'CreateConnectorInput', { name, driver, config, authenticationId }, '... on CreateConnectorPayload { connector { id } }');
    const csv = await connector('orders-csv', 'csv', { path: 'orders.csv', columnTypes: { id: 'integer', amount: 'number' }, uniqueIdColumn: 'id' });
    const warehouse = await connector('warehouse', 'sqlite', { path: 'warehouse.db', table: 'orders' });
    const partner = await connector('partner-api', 'http', { url: `${base}/items`, query: { status: 'paid' } }, auth.authentication.id);
    // A header value holding a literal ${...}: exported escaped as $${...}, read back as written.
    const hook = await connector('hook-out', 'webhook', { url: `${base}/hook/out`, headers: { 'X-Template': '${not-a-ref}' }, auth: { type: 'bearer', token: SECRET.hook } });
    const mapping = await ok(
      a,
      'createMapping',
      'CreateMappingInput',
      // Entries apply in the order written: z_first before a_last must survive the round trip.
      { name: 'orders-shape', description: 'orders → warehouse', spec: { mapping: { order_id: 'id', z_first: 'name', a_last: { const: 1 } }, cast: { order_id: 'int' } } },
      '... on CreateMappingPayload { mapping { id } }',
    );
    const nightly = await ok(
      a,
      'createPipeline',
      'CreatePipelineInput',
      {
        name: 'orders-nightly',
        sourceId: csv.connector.id,
        destinationId: warehouse.connector.id,
        mappingId: mapping.mapping.id,
        streams: [{ name: 'orders', destinationName: 'orders_copy' }],
        batchSize: 500,
        maxAttempts: 5,
        retryBackoffMs: 30000,
        trigger: 'SCHEDULE',
        schedule: { cron: '0 2 * * *', timezone: 'Europe/Paris' },
        executionTimeoutMs: 3600000,
      },
      '... on CreatePipelinePayload { pipeline { id } }',
    );
    await ok(
      a,
      'createPipeline',
      'CreatePipelineInput',
      {
        name: 'partner-sync',
        sourceId: partner.connector.id,
        destinationId: hook.connector.id,
        streams: [{ name: 'items', fields: ['id', 'name'] }],
        maxAttempts: 2,
        retryBackoffMs: 1000,
        trigger: 'SCHEDULE',
        schedule: { every: 6, unit: 'HOURS' },
        enabled: false,
        concurrencyPolicy: 'QUEUE',
        catchUp: 'RUN_ONCE',
        autoStopAfterFailures: 3,
      },
      '... on CreatePipelinePayload { pipeline { id } }',
    );
    const ops = await ok(
      a,
      'createWebhookEndpoint',
      'CreateWebhookEndpointInput',
      { url: `${base}/hook/ops`, description: 'ops-alerts', eventTypes: ['PIPELINE_AUTO_STOPPED', 'JOB_FAILED'], pipelineIds: [nightly.pipeline.id] },
      '... on CreateWebhookEndpointPayload { secret }',
    );
    // No description: its document name is derived from its URL.
    const quiet = await ok(a, 'createWebhookEndpoint', 'CreateWebhookEndpointInput', { url: 'http://127.0.0.1:9/disabled', enabled: false }, '... on CreateWebhookEndpointPayload { secret }');
    webhookSecrets.ops = ops.secret;
    webhookSecrets.quiet = quiet.secret;
    webhookSecrets.rotated = `whsec_${randomBytes(32).toString('base64')}`;

    // Another workspace, with an object of its own.
    const w = await q(a, `mutation { createWorkspace(input: { name: "other" }) { __typename ... on CreateWorkspacePayload { key } ${ERR} } }`);
    const other = w.createWorkspace.key as string;
    const made = await callAs(a, other, `mutation { createConnector(input: { name: "other-only", driver: "null", config: {} }) { __typename } }`);
    expect(made.createConnector.__typename).toBe('CreateConnectorPayload');
    const otherDoc = (await callAs(a, other, EXPORT)).exportConfig.document as string;
    expect(otherDoc).toContain('other-only');
    expect(otherDoc).not.toContain('orders');
    // The setup's answers carried the webhook secrets (shown once, by design): not part of what is checked below.
    transcript.length = 0;
  });

  it('exports the workspace deterministically, secrets as ${ENV} references, nothing of another workspace', async () => {
    const first = await exportDoc(a);
    const again = await exportDoc(a);
    expect(again.document).toBe(first.document);
    doc1 = first.document;
    expect(doc1.startsWith('version: 1\n')).toBe(true);
    expect(doc1).not.toContain('other-only');
    // No ids, timestamps or versions.
    expect(doc1).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
    expect(doc1).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:/);
    expect(doc1.match(/version/g)).toHaveLength(1);
    expect(first.secretReferences).toEqual([
      'SLUICE_AUTH_PARTNER_API_TOKEN',
      'SLUICE_SECRET_HOOK_OUT_AUTH_TOKEN',
      'SLUICE_WEBHOOK_127_0_0_1_9_DISABLED_SECRET',
      'SLUICE_WEBHOOK_OPS_ALERTS_SECRET',
    ]);
    // What a client reads from its environment to fill `env`: the same names.
    expect(envReferences(doc1)).toEqual(first.secretReferences);
    const parsed = parseYaml(doc1);
    expect(Object.keys(parsed)).toEqual(['version', 'authentications', 'connectors', 'mappings', 'pipelines', 'webhooks']);
    expect(Object.keys(parsed.connectors)).toEqual(['hook-out', 'orders-csv', 'partner-api', 'warehouse']);
    expect(parsed.authentications['partner-api']).toEqual({ bearer: { token: '${SLUICE_AUTH_PARTNER_API_TOKEN}' } });
    expect(parsed.connectors['hook-out'].config.auth.token).toBe('${SLUICE_SECRET_HOOK_OUT_AUTH_TOKEN}');
    expect(parsed.connectors['hook-out'].config.headers).toEqual({ 'X-Template': '$${not-a-ref}' });
    expect(parsed.connectors['partner-api']).toMatchObject({ driver: 'http', authentication: 'partner-api' });
    expect(Object.keys(parsed.mappings['orders-shape'].spec.mapping)).toEqual(['order_id', 'z_first', 'a_last']);
    expect(parsed.pipelines['orders-nightly']).toEqual({
      source: 'orders-csv',
      destination: 'warehouse',
      mapping: 'orders-shape',
      streams: [{ name: 'orders', primaryKey: ['id'], destinationName: 'orders_copy' }],
      batchSize: 500,
      maxAttempts: 5,
      retryBackoffMs: 30000,
      trigger: 'SCHEDULE',
      schedule: { cron: '0 2 * * *', timezone: 'Europe/Paris' },
      executionTimeoutMs: 3600000,
    });
    expect(parsed.pipelines['partner-sync']).toMatchObject({ schedule: { every: 6, unit: 'HOURS' }, enabled: false, concurrencyPolicy: 'QUEUE', catchUp: 'RUN_ONCE', autoStopAfterFailures: 3 });
    expect(parsed.webhooks['ops-alerts']).toEqual({
      url: `${base}/hook/ops`,
      eventTypes: ['JOB_FAILED', 'PIPELINE_AUTO_STOPPED'],
      pipelines: ['orders-nightly'],
      secret: '${SLUICE_WEBHOOK_OPS_ALERTS_SECRET}',
    });
    expect(parsed.webhooks['127-0-0-1-9-disabled']).toMatchObject({ enabled: false });
    env = {
      SLUICE_AUTH_PARTNER_API_TOKEN: SECRET.partner,
      SLUICE_SECRET_HOOK_OUT_AUTH_TOKEN: SECRET.hook,
      SLUICE_WEBHOOK_OPS_ALERTS_SECRET: webhookSecrets.ops!,
      SLUICE_WEBHOOK_127_0_0_1_9_DISABLED_SECRET: webhookSecrets.quiet!,
    };
  });

  it('plans its own export against the source workspace: only naming the unnamed webhook', async () => {
    const p = await plan(a, doc1, env);
    expect(p.__typename, JSON.stringify(p)).toBe('ConfigPlan');
    expect(p.text).toBe('~ webhooks.127-0-0-1-9-disabled.description: (none) → "127-0-0-1-9-disabled"\n\n0 to create, 1 to update, 0 to delete, 9 unchanged\n');
  });

  it('applies the export to a fresh server, which then exports the same document byte for byte', async () => {
    const before = await counts(b);
    const planned = await plan(b, doc1, env);
    expect(planned.__typename, JSON.stringify(planned)).toBe('ConfigPlan');
    expect(planned.changes.map((c: any) => `${c.kind} ${c.address}`)).toEqual([
      'CREATE authentications.partner-api',
      'CREATE connectors.hook-out',
      'CREATE connectors.orders-csv',
      'CREATE connectors.partner-api',
      'CREATE connectors.warehouse',
      'CREATE mappings.orders-shape',
      'CREATE pipelines.orders-nightly',
      'CREATE pipelines.partner-sync',
      'CREATE webhooks.127-0-0-1-9-disabled',
      'CREATE webhooks.ops-alerts',
    ]);
    expect(planned.text).toContain('+ connectors.orders-csv\n');
    expect(planned.text.endsWith('\n10 to create, 0 to update, 0 to delete, 0 unchanged\n')).toBe(true);
    expect(await counts(b)).toEqual(before); // planning writes nothing

    const r = await apply(b, { document: doc1, env });
    expect(r.__typename, JSON.stringify(r)).toBe('ApplyConfigPayload');
    expect(r.applied).toBe(true);
    expect(r.plan.text).toBe(planned.text);
    expect((await exportDoc(b)).document).toBe(doc1);

    // The secrets arrived decrypted and bound to their new rows: the API sees the token, the receiver verifies the signature.
    const ids = (await q(b, `{ connectors(first: 10) { nodes { id name } } webhookEndpoints(first: 10) { nodes { id description } } }`)) as any;
    const partnerId = ids.connectors.nodes.find((c: any) => c.name === 'partner-api').id;
    const from = seen.length;
    const check = await q(b, `mutation($i: ConnectorIdInput!) { checkConnector(input: $i) { ... on CheckConnectorPayload { result { ok message } } } }`, { i: { id: partnerId } });
    expect(check.checkConnector.result.ok, JSON.stringify(check)).toBe(true);
    expect(seen.slice(from).some((x) => x.authorization === `Bearer ${SECRET.partner}`)).toBe(true);
    const opsId = ids.webhookEndpoints.nodes.find((w: any) => w.description === 'ops-alerts').id;
    const pingFrom = seen.length;
    const ping = await q(b, `mutation($i: WebhookEndpointIdInput!) { pingWebhook(input: $i) { ... on PingWebhookPayload { ok } } }`, { i: { id: opsId } });
    expect(ping.pingWebhook.ok).toBe(true);
    const delivered = seen.slice(pingFrom).find((x) => x.path === '/hook/ops')!;
    expect(() =>
      new Webhook(webhookSecrets.ops!).verify(delivered.body, {
        'webhook-id': String(delivered.headers['webhook-id']),
        'webhook-timestamp': String(delivered.headers['webhook-timestamp']),
        'webhook-signature': String(delivered.headers['webhook-signature']),
      }),
    ).not.toThrow();
  });

  it('a second apply of the same document changes nothing and writes no event', async () => {
    const before = await counts(b);
    const r = await apply(b, { document: doc1, env });
    expect(r.__typename, JSON.stringify(r)).toBe('ApplyConfigPayload');
    expect(r.plan.text).toBe('no changes\n');
    expect(r.plan.hasChanges).toBe(false);
    expect(r.applied).toBe(false);
    expect(r.plan.changes.every((c: any) => c.kind === 'UNCHANGED')).toBe(true);
    const after = await counts(b);
    expect(after.objects).toEqual(before.objects);
    expect(after.events).toBe(before.events);
    // Only the mutation's own audit line.
    expect(after.audits).toBe(before.audits + 1);
    expect((await plan(b, doc1, env)).text).toBe('no changes\n');
  });

  it('plans an update field by field, secrets as (secret changed), and applies it', async () => {
    const changed = doc1
      .replace('batchSize: 500', 'batchSize: 1000')
      .replace('description: orders → warehouse', 'description: orders into the warehouse')
      .replace('catchUp: RUN_ONCE', 'catchUp: SKIP');
    const env2 = { ...env, SLUICE_SECRET_HOOK_OUT_AUTH_TOKEN: SECRET.hookNew, SLUICE_WEBHOOK_OPS_ALERTS_SECRET: webhookSecrets.rotated! };
    const p = await plan(b, changed, env2);
    expect(p.__typename, JSON.stringify(p)).toBe('ConfigPlan');
    expect(p.text).toBe(
      [
        '~ connectors.hook-out.config.auth.token: (secret changed)',
        '~ mappings.orders-shape.description: "orders → warehouse" → "orders into the warehouse"',
        '~ pipelines.orders-nightly.batchSize: 500 → 1000',
        '~ pipelines.partner-sync.catchUp: "RUN_ONCE" → "SKIP"',
        '~ webhooks.ops-alerts.secret: (secret changed)',
        '',
        '0 to create, 5 to update, 0 to delete, 5 unchanged',
        '',
      ].join('\n'),
    );
    const nightly = p.changes.find((c: any) => c.address === 'pipelines.orders-nightly');
    expect(nightly).toEqual({ kind: 'UPDATE', objectType: 'PIPELINE', name: 'orders-nightly', address: 'pipelines.orders-nightly', fields: [{ path: 'batchSize', before: '500', after: '1000', secret: false }] });
    expect(p.changes.find((c: any) => c.name === 'hook-out').fields).toEqual([{ path: 'config.auth.token', before: null, after: null, secret: true }]);

    const r = await apply(b, { document: changed, env: env2 });
    expect(r.applied, JSON.stringify(r)).toBe(true);
    expect((await plan(b, changed, env2)).text).toBe('no changes\n');
    const pipelines = await q(b, `{ pipelines(first: 10) { nodes { name batchSize catchUp } } }`);
    expect(pipelines.pipelines.nodes).toEqual(expect.arrayContaining([{ name: 'orders-nightly', batchSize: 1000, catchUp: 'SKIP' }]));
    // The old document is now an update back.
    expect((await plan(b, doc1, env)).text).toContain('~ pipelines.orders-nightly.batchSize: 1000 → 500\n');
    expect((await apply(b, { document: doc1, env })).applied).toBe(true);
    expect((await exportDoc(b)).document).toBe(doc1);
  });

  it("a connector's stored authentication never follows a changed address just because the document still names it", async () => {
    const moved = doc1.replace(`url: ${base}/items`, 'url: http://127.0.0.1:9/items');
    expect(moved).not.toBe(doc1);
    const before = await counts(b);
    const r = await apply(b, { document: moved, env });
    expect(r.__typename, JSON.stringify(r)).toBe('ValidationError');
    expect(JSON.stringify(r)).toMatch(/stored credentials do not follow a changed address/);
    expect((await exportDoc(b)).document).toBe(doc1);
    expect((await counts(b)).objects).toEqual(before.objects);
  });

  it('prune deletes what the document no longer declares, in reverse dependency order', async () => {
    const parsed = parseYaml(doc1);
    delete parsed.authentications;
    delete parsed.connectors['partner-api'];
    delete parsed.connectors['hook-out'];
    delete parsed.pipelines['partner-sync'];
    delete parsed.webhooks['127-0-0-1-9-disabled'];
    const smaller = stringify(parsed);
    smallerDoc = smaller;
    // Without prune, undeclared objects are left alone.
    expect((await plan(b, smaller, env)).text).toBe('no changes\n');
    const p = await plan(b, smaller, env, true);
    expect(p.text).toBe(
      [
        '- webhooks.127-0-0-1-9-disabled',
        '- pipelines.partner-sync',
        '- connectors.hook-out',
        '- connectors.partner-api',
        '- authentications.partner-api',
        '',
        '0 to create, 0 to update, 5 to delete, 5 unchanged',
        '',
      ].join('\n'),
    );
    const dry = await apply(b, { document: smaller, env, prune: true, dryRun: true });
    expect(dry).toMatchObject({ applied: false, plan: { hasChanges: true } });
    expect((await counts(b)).objects).toEqual([1, 4, 1, 2, 2]);
    const r = await apply(b, { document: smaller, env, prune: true });
    expect(r.applied, JSON.stringify(r)).toBe(true);
    expect((await counts(b)).objects).toEqual([0, 2, 1, 1, 1]);
    const now = (await exportDoc(b)).document;
    expect(now).not.toContain('partner');
    expect(now).not.toContain('hook-out');
    expect((await plan(b, smaller, env, true)).text).toBe('no changes\n');
  });

  it('a step that fails while writing names itself and what was applied before; the fixed document then converges', async () => {
    const doc = parseYaml((await exportDoc(b)).document);
    doc.connectors['more-orders'] = { driver: 'csv', config: { path: 'orders.csv', streamName: 'more' } };
    // Streams are checked against the source's catalog, which only exists once the source does.
    doc.pipelines['more-sync'] = { source: 'more-orders', destination: 'warehouse', streams: [{ name: 'nope' }] };
    const bad = stringify(doc);
    expect((await plan(b, bad, env)).text).toBe('+ connectors.more-orders\n+ pipelines.more-sync\n\n2 to create, 0 to update, 0 to delete, 5 unchanged\n');
    const r = await apply(b, { document: bad, env });
    expect(r.__typename, JSON.stringify(r)).toBe('ValidationError');
    expect(r.message).toContain('create pipelines.more-sync failed');
    expect(r.message).toContain('applied before the failure: create connectors.more-orders');
    expect(r.fieldErrors).toContainEqual({ path: `config.yaml:${lineOf(bad, '- name: nope')}:9 pipelines.more-sync.streams[0].name`, message: expect.stringContaining('the source has no stream "nope"') });

    doc.pipelines['more-sync'].streams = [{ name: 'more' }];
    const fixed = stringify(doc);
    expect((await plan(b, fixed, env)).text).toBe('+ pipelines.more-sync\n\n1 to create, 0 to update, 0 to delete, 6 unchanged\n');
    expect((await apply(b, { document: fixed, env })).applied).toBe(true);
    expect((await plan(b, fixed, env)).text).toBe('no changes\n');
    // Back to the document the later tests start from.
    expect((await apply(b, { document: smallerDoc, env, prune: true })).applied).toBe(true);
  });

  describe('a bad document is VALIDATION_FAILED at file:line and changes nothing', () => {
    const expectRefused = async (document: string, env2: Record<string, string> | undefined, expected: { path: string; message: RegExp | string }[], fileName?: string) => {
      const before = await counts(b);
      const p = await plan(b, document, env2, false, fileName);
      expect(p.__typename, JSON.stringify(p)).toBe('ValidationError');
      expect(p.code).toBe('VALIDATION_FAILED');
      for (const e of expected) expect(p.fieldErrors).toContainEqual({ path: e.path, message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message) });
      const r = await apply(b, { document, env: env2, fileName });
      expect(r.__typename, JSON.stringify(r)).toBe('ValidationError');
      expect(r.fieldErrors).toEqual(p.fieldErrors);
      const after = await counts(b);
      expect(after.objects).toEqual(before.objects);
      expect(after.events).toBe(before.events);
      return p;
    };

    it('an unknown reference (with a valid new connector in the same document: not created either)', async () => {
      const bad = doc1.replace('destination: warehouse', 'destination: nowhere').replace('connectors:\n', 'connectors:\n  extra-null:\n    driver: "null"\n');
      const line = lineOf(bad, 'destination: nowhere');
      await expectRefused(bad, env, [{ path: `config.yaml:${line}:5 pipelines.orders-nightly.destination`, message: 'no connector "nowhere" in the document' }]);
    });

    it('a config the driver schema refuses', async () => {
      const bad = doc1.replace('delimiter: ","', 'delimiter: 5');
      const line = lineOf(bad, 'delimiter: 5');
      await expectRefused(bad, env, [{ path: `config.yaml:${line}:7 connectors.orders-csv.config.delimiter`, message: 'must be string' }]);
    });

    it('an unset ${ENV} reference', async () => {
      const { SLUICE_AUTH_PARTNER_API_TOKEN: _unset, ...partial } = env;
      const line = lineOf(doc1, '${SLUICE_AUTH_PARTNER_API_TOKEN}');
      const p = await expectRefused(doc1, partial, [
        { path: `config.yaml:${line}:7 authentications.partner-api.bearer.token`, message: /^\$\{SLUICE_AUTH_PARTNER_API_TOKEN\} is not set/ },
      ]);
      expect(p.fieldErrors).toHaveLength(1);
    });

    it('a YAML syntax error, named with the given file name', async () => {
      const bad = doc1.replace('  orders-shape:\n', '  orders-shape:\n   - broken: [\n');
      const p = await expectRefused(bad, env, [], 'prod/sluice.yaml');
      expect(p.fieldErrors.length).toBeGreaterThan(0);
      expect(p.fieldErrors[0].path).toMatch(/^prod\/sluice\.yaml:\d+:\d+$/);
      expect(p.message).toContain('invalid YAML');
    });

    it('unknown keys and wrong types, every problem at once', async () => {
      const bad = doc1.replace('batchSize: 500', 'batchSize: many').replace('maxAttempts: 5', 'maxAtempts: 5');
      await expectRefused(bad, env, [
        { path: `config.yaml:${lineOf(bad, 'batchSize: many')}:5 pipelines.orders-nightly.batchSize`, message: 'must be a whole number' },
        { path: `config.yaml:${lineOf(bad, 'maxAtempts')}:5 pipelines.orders-nightly.maxAtempts`, message: /^unknown key "maxAtempts"/ },
      ]);
    });
  });

  it('a READ key may export, but neither plan (a plan compares secret values) nor apply', async () => {
    const r = await q(a, `mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { ... on CreateApiKeyPayload { key } } }`, { i: { name: 'reader', scope: 'READ' } });
    const key = r.createApiKey.key as string;
    expect((await callAs(a, key, EXPORT)).exportConfig.document).toBe((await exportDoc(a)).document);
    const plan = (await a.gql(PLAN, { d: doc1, e: env }, bearer(key))).data!.planConfig;
    expect(plan).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    const refused = await a.gql(APPLY, { i: { document: doc1, env } }, bearer(key));
    transcript.push(JSON.stringify(refused));
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('the example of docs/config-as-code.md plans as documented in an empty workspace', async () => {
    const md = fs.readFileSync(path.resolve('docs/config-as-code.md'), 'utf8');
    const example = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const expected = /```text\n([\s\S]*?)```/.exec(md)![1]!;
    const w = await q(b, `mutation { createWorkspace(input: { name: "docs" }) { ... on CreateWorkspacePayload { key } } }`);
    const key = w.createWorkspace.key as string;
    const names = envReferences(example);
    const values: Record<string, string> = Object.fromEntries(names.map((n) => [n, n.startsWith('SLUICE_WEBHOOK_') ? `whsec_${randomBytes(32).toString('base64')}` : 'x-secret']));
    const p = (await callAs(b, key, PLAN, { d: example, e: values })).planConfig;
    expect(p.__typename, JSON.stringify(p)).toBe('ConfigPlan');
    expect(p.text).toBe(expected);
  });

  it('no secret value appears in any export, plan or error', () => {
    const all = transcript.join('\n');
    for (const v of [...Object.values(SECRET), ...Object.values(webhookSecrets)]) expect(all).not.toContain(v);
    expect(fs.existsSync(a.filesDir)).toBe(true);
  });
});
