/**
 * Bad input through the real server, as an attacker with an ordinary WRITE key
 * (SLUICE_LOCAL_ACCESS=false): a NUL character (U+0000) anywhere in a stored string, and JSON
 * nested deeper than the limit, are VALIDATION_FAILED naming the path, and nothing changes.
 * NUL characters in records read from a source do not break the job: the record is
 * dead-lettered and stored (NUL shown as U+FFFD).
 *
 * Every case runs on the embedded database (PGlite) and, when SLUICE_TEST_DATABASE_URL is set,
 * on a real PostgreSQL state database: the two may differ in what they refuse.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_INPUT_DEPTH } from '../../src/security/input-check.js';
import { PG_URL, createTestDatabase } from '../helpers/postgres.js';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';

const NUL = '\u0000';

/** Where this suite puts the files its connectors read (the one place to adapt to file roots). */
function placeFile(s: TestServer, name: string, content: string | Buffer): string {
  const file = path.join(s.filesDir, name);
  fs.writeFileSync(file, content);
  return file;
}

/**
 * `{ a: { a: … { a: leaf } } }`, `levels` objects deep. Deep ones go out as JSON text built by
 * hand: the client's own JSON.stringify would overflow on them.
 */
class Deep {
  constructor(
    readonly levels: number,
    readonly leaf: unknown = 1,
  ) {}
  toText(): string {
    return `${'{"a":'.repeat(this.levels)}${JSON.stringify(this.leaf)}${'}'.repeat(this.levels)}`;
  }
}
const nested = (levels: number, leaf: unknown = 1) => new Deep(levels, leaf);

/** JSON text of `value`, with every Deep written out. */
function toJsonText(value: unknown): string {
  if (value instanceof Deep) return value.toText();
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJsonText(v)}`).join(',')}}`;
  return JSON.stringify(value);
}

const states: { name: string; enabled: boolean; env: () => Promise<{ env: Record<string, string>; drop(): Promise<void> }> }[] = [
  { name: 'PGlite state database', enabled: true, env: async () => ({ env: {}, drop: async () => {} }) },
  {
    name: 'PostgreSQL state database',
    enabled: !!PG_URL,
    env: async () => {
      const db = await createTestDatabase();
      return { env: { DATABASE_URL: db.url }, drop: db.drop };
    },
  },
];
if (!PG_URL) console.log('[bad-input] the PostgreSQL state database run is skipped: set SLUICE_TEST_DATABASE_URL');

for (const state of states) {
  describe.skipIf(!state.enabled)(`bad input (${state.name})`, () => {
    let s: TestServer;
    let drop: () => Promise<void> = async () => {};
    let writeKey: string;
    let seq = 0;

    const as = async (key: string, query: string, variables?: Record<string, unknown>): Promise<{ data?: any; errors?: any[] }> => {
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: toJsonText({ query, variables: variables ?? {} }),
      });
      return (await res.json()) as { data?: any; errors?: any[] };
    };
    const w = async (query: string, variables?: Record<string, unknown>) => {
      const r = await as(writeKey, query, variables);
      if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
      return r.data as any;
    };
    const prisma = () => s.app.services.database.prisma;

    /** Runs `field(input: $i)` with the WRITE key; returns its result with `fieldErrors` when it is a ValidationError. */
    const mutate = async (field: string, inputType: string, input: unknown, payload = '') =>
      (await w(`mutation($i: ${inputType}!) { ${field}(input: $i) { __typename ${payload} ... on ValidationError { code fieldErrors { path message } } ... on Error { code message } } }`, { i: input }))[field];

    const expectRefused = (result: any, pathPrefix: string, message: RegExp) => {
      expect(result.__typename, JSON.stringify(result)).toBe('ValidationError');
      expect(result.code).toBe('VALIDATION_FAILED');
      expect(result.fieldErrors.some((e: any) => e.path === pathPrefix || e.path.startsWith(`${pathPrefix}.`) || e.path.startsWith(`${pathPrefix}[`)), JSON.stringify(result.fieldErrors)).toBe(true);
      expect(result.fieldErrors.every((e: any) => message.test(e.message)), JSON.stringify(result.fieldErrors)).toBe(true);
    };

    const connector = async (driver: string, config: Record<string, unknown>) => {
      const r = await mutate('createConnector', 'CreateConnectorInput', { name: `c${++seq}`, driver, config }, '... on CreateConnectorPayload { connector { id version config } }');
      expect(r.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
      return r.connector as { id: string; version: number; config: Record<string, unknown> };
    };

    beforeAll(async () => {
      const st = await state.env();
      drop = st.drop;
      const admin = `sk_${randomBytes(32).toString('base64url')}`;
      s = await startTestServer({ env: { ...st.env, SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: admin } });
      const r = await as(admin, `mutation { createApiKey(input: { name: "attacker", scope: WRITE }) { __typename ... on CreateApiKeyPayload { key } } }`);
      writeKey = r.data.createApiKey.key;
      expect(writeKey).toMatch(/^sk_/);
    }, 120_000);
    afterAll(async () => {
      await s?.stop();
      await drop();
    });

    describe('NUL characters', () => {
      it('in a connector name or config: VALIDATION_FAILED naming the path, no connector created', async () => {
        const before = await prisma().connector.count();
        expectRefused(await mutate('createConnector', 'CreateConnectorInput', { name: `evil${NUL}`, driver: 'csv', config: { path: 'x.csv' } }), 'input.name', /NUL/);
        const cfg = await mutate('createConnector', 'CreateConnectorInput', { name: 'evil', driver: 'csv', config: { path: `/tmp/x${NUL}.csv` } });
        expectRefused(cfg, 'input.config.path', /NUL/);
        expect(cfg.fieldErrors).toEqual([{ path: 'input.config.path', message: expect.stringContaining('\\u0000') }]);
        // In an object key as well (the path shows it as the text \u0000).
        const key = await mutate('createConnector', 'CreateConnectorInput', { name: 'evil', driver: 'csv', config: { path: 'x.csv', columnTypes: { [`a${NUL}b`]: 'integer' } } });
        expect(key.fieldErrors).toEqual([{ path: 'input.config.columnTypes.a\\u0000b', message: expect.stringMatching(/key/) }]);
        expect(await prisma().connector.count()).toBe(before);
      });

      it('in an update: refused, the connector keeps its version and config', async () => {
        const c = await connector('csv', { path: 'keep.csv' });
        const r = await mutate('updateConnector', 'UpdateConnectorInput', { id: c.id, config: { path: `/tmp/${NUL}` } });
        expectRefused(r, 'input.config.path', /NUL/);
        const now = (await w(`query($id: ID!) { connector(id: $id) { version config } }`, { id: c.id })).connector;
        expect(now).toEqual({ version: c.version, config: c.config });
      });

      it('in a mapping spec, a pipeline name and webhook fields: refused, nothing created', async () => {
        const mappings = await prisma().mapping.count();
        expectRefused(await mutate('createMapping', 'CreateMappingInput', { name: 'm', spec: { mapping: { out: `in${NUL}` } } }), 'input.spec.mapping.out', /NUL/);
        expect(await prisma().mapping.count()).toBe(mappings);

        const src = await connector('csv', { path: 'p.csv' });
        const dst = await connector('jsonl', { path: 'p.jsonl' });
        const pipelines = await prisma().pipeline.count();
        expectRefused(await mutate('createPipeline', 'CreatePipelineInput', { name: `p${NUL}`, sourceId: src.id, destinationId: dst.id }), 'input.name', /NUL/);
        expect(await prisma().pipeline.count()).toBe(pipelines);

        const hooks = await prisma().webhookEndpoint.count();
        expectRefused(await mutate('createWebhookEndpoint', 'CreateWebhookEndpointInput', { url: 'https://example.com/hook', description: `d${NUL}` }), 'input.description', /NUL/);
        expectRefused(await mutate('createWebhookEndpoint', 'CreateWebhookEndpointInput', { url: `https://example.com/${NUL}` }), 'input.url', /NUL/);
        expect(await prisma().webhookEndpoint.count()).toBe(hooks);
      });

      it('is audited as VALIDATION_FAILED', async () => {
        expectRefused(await mutate('createMapping', 'CreateMappingInput', { name: `audited${NUL}`, spec: { mapping: { a: 'b' } } }), 'input.name', /NUL/);
        const audit = await prisma().event.findFirst({ where: { type: 'AUDIT_MUTATION' }, orderBy: { sequence: 'desc' } });
        expect(audit?.data).toMatchObject({ mutation: 'createMapping', outcome: 'VALIDATION_FAILED' });
      });

      it('in a query argument: a VALIDATION_FAILED error with the path, not a masked 500', async () => {
        const r = await as(writeKey, `query($n: String) { connectors(filter: { nameContains: $n }) { totalCount } }`, { n: `x${NUL}` });
        expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'filter.nameContains' }] });
      });
    });

    describe('nesting deeper than the limit', () => {
      for (const levels of [MAX_INPUT_DEPTH + 1, 5_000, 150_000]) {
        it(`a config ${levels} levels deep is VALIDATION_FAILED (not a stack overflow), nothing created`, async () => {
          const before = await prisma().connector.count();
          const r = await mutate('createConnector', 'CreateConnectorInput', { name: 'deep', driver: 'csv', config: { path: 'x.csv', columnTypes: nested(levels) } });
          expectRefused(r, 'input.config.columnTypes', new RegExp(`deeper than ${MAX_INPUT_DEPTH} levels`));
          expect(await prisma().connector.count()).toBe(before);
        });
      }

      it('an update, a mapping spec and testMapping records too', async () => {
        const c = await connector('csv', { path: 'deep.csv' });
        expectRefused(await mutate('updateConnector', 'UpdateConnectorInput', { id: c.id, config: { path: 'x.csv', columnTypes: nested(10_000) } }), 'input.config.columnTypes', /deeper/);
        expect((await w(`query($id: ID!) { connector(id: $id) { version } }`, { id: c.id })).connector.version).toBe(c.version);
        expectRefused(await mutate('createMapping', 'CreateMappingInput', { name: 'deep', spec: { mapping: nested(10_000, 'x') } }), 'input.spec.mapping', /deeper/);
        expectRefused(await mutate('testMapping', 'TestMappingInput', { spec: { mapping: { a: 'a' } }, records: [nested(10_000)] }), 'input.records[0]', /deeper/);
      });

      it('a config just within the limit is validated as usual', async () => {
        // args → input → config → columnTypes: the nested value may use the rest of the levels.
        const r = await mutate('createConnector', 'CreateConnectorInput', { name: 'deep ok', driver: 'csv', config: { path: 'x.csv', columnTypes: nested(MAX_INPUT_DEPTH - 4, 'integer') } });
        expect(r.__typename).toBe('ValidationError');
        expect(r.fieldErrors.every((e: any) => !/deeper/.test(e.message)), JSON.stringify(r.fieldErrors)).toBe(true);
      });
    });

    describe('the push endpoint', () => {
      let pushUrl: string;
      let token: string;
      let pipelineUuid: string;

      beforeAll(async () => {
        const src = await connector('csv', { path: placeFile(s, 'push-source.csv', 'id,name\n') });
        const dst = await connector('jsonl', { path: `out-${Math.random().toString(36).slice(2)}.jsonl` });
        const p = await mutate('createPipeline', 'CreatePipelineInput', { name: 'push', sourceId: src.id, destinationId: dst.id, trigger: 'SUBSCRIPTION' }, '... on CreatePipelinePayload { pipeline { id } }');
        expect(p.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
        await w(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id: p.pipeline.id } });
        await eventually(async () => (await w(`query($id: ID!) { pipeline(id: $id) { state } }`, { id: p.pipeline.id })).pipeline.state === 'READY', 60_000);
        const t = (await w(`mutation($i: PipelineIdInput!) { createPushToken(input: $i) { ... on CreatePushTokenPayload { pushToken { token path } } } }`, { i: { id: p.pipeline.id } })).createPushToken;
        token = t.pushToken.token;
        pushUrl = s.url.replace(/\/graphql$/, t.pushToken.path);
        pipelineUuid = Buffer.from(p.pipeline.id, 'base64').toString('utf8').replace(/^Pipeline:/, '');
      });

      const push = async (body: string, contentType = 'application/json') => {
        const res = await fetch(pushUrl, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body });
        return { status: res.status, body: (await res.json()) as any };
      };

      it('a record with a NUL character: 400 VALIDATION_FAILED naming records[i].field, nothing stored', async () => {
        const batches = await prisma().pushBatch.count({ where: { pipelineId: pipelineUuid } });
        const records = [{ id: 1, name: 'a' }, { id: 2, name: 'b' }, { id: 3, name: 'c' }, { id: 4, name: `d${NUL}` }];
        const r = await push(JSON.stringify(records));
        expect(r.status).toBe(400);
        expect(r.body).toMatchObject({ code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'records[3].name' }] });
        const nd = await push(records.map((x) => JSON.stringify(x)).join('\n'), 'application/x-ndjson');
        expect(nd.body).toMatchObject({ code: 'VALIDATION_FAILED', fieldErrors: [{ path: 'records[3].name' }] });
        const deep = await push(toJsonText([{ id: 1, nested: nested(100_000) }]));
        expect(deep.status).toBe(400);
        expect(deep.body.fieldErrors[0].path).toMatch(/^records\[0\]\.nested/);
        expect(await prisma().pushBatch.count({ where: { pipelineId: pipelineUuid } })).toBe(batches);
        // A clean push still works.
        expect((await push(JSON.stringify([{ id: 5, name: 'e' }]))).status).toBe(202);
      });
    });

    describe('NUL characters in source records', () => {
      it('a record the mapping rejects is dead-lettered with its NUL shown as U+FFFD; the job succeeds', async () => {
        const file = placeFile(s, `nul-${state.enabled ? seq : 0}.jsonl`, `${JSON.stringify({ id: 1, n: `x${NUL}y` })}\n${JSON.stringify({ id: 2, n: '7' })}\n`);
        const src = await connector('json', { url: file });
        const out = `out-${Math.random().toString(36).slice(2)}.jsonl`;
        const dst = await connector('jsonl', { path: out });
        const m = await mutate('createMapping', 'CreateMappingInput', { name: `cast ${++seq}`, spec: { mapping: { id: 'id', n: 'n' }, cast: { n: 'int' } } }, '... on CreateMappingPayload { mapping { id } }');
        const job = await runPipeline(src.id, dst.id, m.mapping.id);
        expect(job).toMatchObject({ status: 'SUCCEEDED', recordsWritten: 1, recordsFailed: 1 });
        const letters = job.deadLetters.nodes;
        expect(letters).toHaveLength(1);
        expect(letters[0].stage).toBe('MAPPING');
        expect(letters[0].record).toEqual({ id: 1, n: 'x\uFFFDy' });
        expect(letters[0].error).toMatch(/U\+FFFD/);
      });

      it.skipIf(!PG_URL)('a PostgreSQL destination rejects the record (dead letter), writes the rest', async () => {
        const target = await createTestDatabase();
        try {
          const file = placeFile(s, `nul-pg-${++seq}.jsonl`, `${JSON.stringify({ id: 1, name: `a${NUL}b` })}\n${JSON.stringify({ id: 2, name: 'ok' })}\n`);
          const src = await connector('json', { url: file });
          const dst = await connector('postgres-destination', { connectionString: target.url, table: 'people' });
          const job = await runPipeline(src.id, dst.id, null);
          expect(job).toMatchObject({ status: 'SUCCEEDED', recordsWritten: 1, recordsFailed: 1 });
          expect(job.deadLetters.nodes[0]).toMatchObject({ stage: 'WRITE', record: { id: 1, name: 'a\uFFFDb' } });
          const c = new pg.Client(target.url);
          await c.connect();
          try {
            expect((await c.query('select id, name from people order by id')).rows).toEqual([{ id: '2', name: 'ok' }]);
          } finally {
            await c.end();
          }
        } finally {
          await target.drop();
        }
      });

      async function runPipeline(sourceId: string, destinationId: string, mappingId: string | null) {
        // Half of these two-record jobs fail on purpose: the threshold must not end them.
        const p = await mutate('createPipeline', 'CreatePipelineInput', { name: `nul ${++seq}`, sourceId, destinationId, mappingId, failureThreshold: 100 }, '... on CreatePipelinePayload { pipeline { id } }');
        expect(p.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
        const started = await w(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { ... on StartPipelinePayload { pipeline { currentJob { id } } } } }`, { i: { id: p.pipeline.id } });
        const jobId = started.startPipeline.pipeline.currentJob.id;
        return eventually(async () => {
          const j = (await w(`query($id: ID!) { job(id: $id) { status error recordsWritten recordsFailed deadLetters(first: 10) { nodes { stage error record } } } }`, { id: jobId })).job;
          return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.status) ? j : null;
        }, 60_000);
      }
    });
  });
}
