/**
 * A storm of concurrent lifecycle mutations on one pipeline, through the real server with a
 * WRITE key and local access off, on PostgreSQL (when SLUICE_TEST_DATABASE_URL is set) and on
 * the embedded PGlite: every answer is a payload or a typed error (never a masked one, never a
 * deadlock), every mutation leaves exactly one audit line naming its outcome, and the pipeline's
 * state-change events replay to its final state with its jobs consistent with it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PG_URL } from '../helpers/postgres.js';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';

const STORM = 50;
/** Storms in a row: each a fresh race on a pipeline whose jobs are still converging. */
const ROUNDS = 3;
const LIFECYCLE = ['startPipeline', 'pausePipeline', 'resumePipeline', 'stopPipeline', 'runPipeline'] as const;
type Mutation = (typeof LIFECYCLE)[number];
/** The typed errors a lifecycle mutation may answer while others race it. */
const RACE_ERRORS = new Set(['INVALID_TRANSITION', 'CONFLICT']);

const backends = [
  { name: 'PostgreSQL', skip: !PG_URL, postgres: true },
  { name: 'PGlite (embedded)', skip: false, postgres: false },
];

for (const backend of backends) {
  describe.skipIf(backend.skip)(`lifecycle storm on ${backend.name}`, () => {
    let s: TestServer;
    let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
    let writeKey: string;
    let pipelineId: string;
    let createdVersion: number;

    const gql = async (query: string, variables: Record<string, unknown> = {}, requestId?: string) =>
      s.gql(query, variables, { authorization: `Bearer ${writeKey}`, ...(requestId ? { 'x-request-id': requestId } : {}) });
    const q = async (query: string, variables: Record<string, unknown> = {}) => {
      const r = await gql(query, variables);
      if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
      return r.data;
    };

    /** Every node of a connection, page by page (`path` leads from the data to the connection). */
    const all = async <T>(query: string, variables: Record<string, unknown>, path: string[]): Promise<T[]> => {
      const out: T[] = [];
      let after: string | null = null;
      for (;;) {
        let conn: any = await q(query, { ...variables, ...(after ? { after } : {}) });
        for (const k of path) conn = conn[k];
        out.push(...conn.nodes);
        if (!conn.pageInfo.hasNextPage) return out;
        after = conn.pageInfo.endCursor;
      }
    };
    const pipelineJobs = () =>
      all<{ id: string; status: string }>(
        `query($id: ID!, $after: String) { pipeline(id: $id) { jobs(first: 100, after: $after) { nodes { id status } pageInfo { hasNextPage endCursor } } } }`,
        { id: pipelineId },
        ['pipeline', 'jobs'],
      );

    beforeAll(async () => {
      db = backend.postgres ? await createTestDatabase() : undefined;
      const admin = `sk_${randomBytes(32).toString('base64url')}`;
      s = await startTestServer({
        env: { SLUICE_LOCAL_ACCESS: 'false', SLUICE_BOOTSTRAP_API_KEY: admin, ...(db ? { DATABASE_URL: db.url } : {}) },
      });
      const minted = await s.gql(
        `mutation { createApiKey(input: { name: "storm writer", scope: WRITE }) { __typename ... on CreateApiKeyPayload { key } ... on Error { code message } } }`,
        {},
        { authorization: `Bearer ${admin}` },
      );
      expect(minted.data?.createApiKey.__typename, JSON.stringify(minted)).toBe('CreateApiKeyPayload');
      writeKey = minted.data.createApiKey.key;

      const connector = async (name: string, driver: string, config: Record<string, unknown>) => {
        const r = await q(
          `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { __typename ... on CreateConnectorPayload { connector { id } } ... on Error { code message } } }`,
          { i: { name, driver, config } },
        );
        expect(r.createConnector.__typename, JSON.stringify(r)).toBe('CreateConnectorPayload');
        return r.createConnector.connector.id as string;
      };
      // An unbounded, throttled feed in small batches: jobs run, checkpoint and pause/stop at
      // batch boundaries all through the storm.
      const sourceId = await connector('storm feed', 'generator', { count: 0, rate: 2000, shape: { fields: 2 } });
      const destinationId = await connector('storm sink', 'null', {});
      const p = await q(
        `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { __typename ... on CreatePipelinePayload { pipeline { id version } } ... on Error { code message } } }`,
        { i: { name: 'storm', sourceId, destinationId, batchSize: 50 } },
      );
      expect(p.createPipeline.__typename, JSON.stringify(p)).toBe('CreatePipelinePayload');
      pipelineId = p.createPipeline.pipeline.id;
      createdVersion = p.createPipeline.pipeline.version;
    });
    afterAll(async () => {
      await s?.stop().catch(() => undefined);
      await db?.drop();
    });

    it(`${ROUNDS} × ${STORM} concurrent start/pause/resume/stop/run: typed answers, one audit line each, a consistent end state`, { timeout: 300_000 }, async () => {
      const mark = (await q(`{ events(last: 1, filter: { types: [AUDIT_MUTATION] }) { nodes { cursor } } }`)).events.nodes[0]?.cursor ?? '0';
      const answers: { field: Mutation; requestId: string; res: { data?: any; errors?: any[] } }[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Each round opens with a start so there is a running job for the others to race.
        const plan: Mutation[] = ['startPipeline'];
        for (let i = 1; i < STORM; i++) plan.push(LIFECYCLE[(i * 7 + round) % LIFECYCLE.length]!);
        answers.push(
          ...(await Promise.all(
            plan.map(async (field) => {
              const requestId = randomUUID();
              const payload = field === 'runPipeline' ? `... on RunPipelinePayload { job { id } }` : `... on ${field[0]!.toUpperCase()}${field.slice(1)}Payload { pipeline { state } }`;
              const res = await gql(
                `mutation($i: ${field === 'runPipeline' ? 'PipelineIdInput' : 'PipelineActionInput'}!) { ${field}(input: $i) { __typename ${payload} ... on Error { code message } } }`,
                { i: { id: pipelineId } },
                requestId,
              );
              return { field, requestId, res };
            }),
          )),
        );
      }
      const sent = answers.length;

      // 1. Every answer is the payload or a typed race error; nothing masked, no deadlock.
      const outcomeOf = (a: (typeof answers)[number]) => {
        const r = a.res.data?.[a.field];
        if (a.res.errors?.length || !r) return 'UNEXPECTED';
        if (r.__typename.endsWith('Payload')) return 'OK';
        return RACE_ERRORS.has(r.code) ? (r.code as string) : 'UNEXPECTED';
      };
      const unexpected = answers.filter((a) => outcomeOf(a) === 'UNEXPECTED').map((a) => a.res);
      expect(unexpected, `${unexpected.length} of ${sent} answers were neither a payload nor a typed race error`).toEqual([]);
      const ok = answers.filter((a) => outcomeOf(a) === 'OK');
      expect(ok.length).toBeGreaterThan(ROUNDS);

      // 2. One audit line per mutation sent, with the outcome its caller saw.
      const auditRows = await all<{ cursor: string; data: { mutation: string; outcome: string; requestId: string; scope: string } }>(
        `query($after: String) { events(first: 100, after: $after, filter: { types: [AUDIT_MUTATION] }) { nodes { cursor data } pageInfo { hasNextPage endCursor } } }`,
        { after: mark },
        ['events'],
      );
      const audits = auditRows.map((n) => n.data);
      const byRequest = new Map<string, (typeof audits)[number][]>();
      for (const a of audits) byRequest.set(a.requestId, [...(byRequest.get(a.requestId) ?? []), a]);
      const lost = answers.filter((a) => !byRequest.has(a.requestId)).length;
      expect(lost, `audit lines lost for ${lost} of ${sent} mutations`).toBe(0);
      for (const a of answers) {
        expect(byRequest.get(a.requestId), a.requestId).toEqual([expect.objectContaining({ mutation: a.field, outcome: outcomeOf(a), scope: 'WRITE' })]);
      }

      // 2b. A mutation that changed something committed its audit line in the same transaction,
      //     right after its own events: the event just before the line is the mutation's.
      const pipelineEvents = new Map(
        (
          await all<{ cursor: string; type: string }>(
            `query($id: ID!, $after: String) { events(first: 100, after: $after, filter: { pipelineId: $id }) { nodes { cursor type } pageInfo { hasNextPage endCursor } } }`,
            { id: pipelineId, after: mark },
            ['events'],
          )
        ).map((e) => [e.cursor, e.type]),
      );
      const committed = answers.filter((a) => outcomeOf(a) === 'OK' || (a.field === 'runPipeline' && outcomeOf(a) === 'CONFLICT'));
      for (const a of committed) {
        const line = auditRows.find((r) => r.data.requestId === a.requestId)!;
        const before = pipelineEvents.get((BigInt(line.cursor) - 1n).toString());
        expect(['PIPELINE_STATE_CHANGED', 'JOB_QUEUED', 'JOB_CANCELLED', 'JOB_PAUSED', 'RUN_SKIPPED'], `${a.field}: event before its audit line`).toContain(before);
      }

      // 3. Each successful transition is one state change (and one version), and the state
      //    changes chain (each starts where the previous ended) to the final state.
      const transitions = ok.filter((a) => a.field !== 'runPipeline').length;
      const changes = (
        await all<{ data: { action: string; from: string; to: string } }>(
          `query($id: ID!, $after: String) { events(first: 100, after: $after, filter: { pipelineId: $id, types: [PIPELINE_STATE_CHANGED] }) { nodes { data } pageInfo { hasNextPage endCursor } } }`,
          { id: pipelineId },
          ['events'],
        )
      ).map((n) => n.data);
      expect(changes.filter((c) => ['START', 'PAUSE', 'RESUME', 'STOP'].includes(c.action)).length).toBe(transitions);
      changes.forEach((c, i) => i > 0 && expect(c.from, `state change ${i}`).toBe(changes[i - 1]!.to));
      const now = (await q(`query($id: ID!) { pipeline(id: $id) { state version } }`, { id: pipelineId })).pipeline;
      expect(changes.at(-1)?.to).toBe(now.state);
      expect(now.version).toBe(createdVersion + changes.length);

      // 4. Once running jobs reached their batch boundary, jobs agree with the pipeline state.
      const jobsAgree = async () => {
        const { state } = (await q(`query($id: ID!) { pipeline(id: $id) { state } }`, { id: pipelineId })).pipeline;
        const jobs = await pipelineJobs();
        const by = (st: string) => jobs.filter((j) => j.status === st).length;
        const r = { state, jobs };
        const running = state === 'INIT' || state === 'READY';
        // A running pipeline has its one load going (a paused job resumed), no job left paused.
        if (running) return by('PAUSED') === 0 && by('RUNNING') === 1 && by('QUEUED') === 0 ? r : null;
        if (state === 'PAUSE') return by('RUNNING') + by('QUEUED') === 0 ? r : null;
        return by('RUNNING') + by('QUEUED') + by('PAUSED') === 0 ? r : null;
      };
      await eventually(jobsAgree, 60_000, 200);

      // 5. Stopping ends every job.
      const stop = await gql(`mutation($i: PipelineActionInput!) { stopPipeline(input: $i) { __typename ... on Error { code } } }`, { i: { id: pipelineId } });
      expect(stop.errors).toBeUndefined();
      await eventually(async () => {
        const { state } = (await q(`query($id: ID!) { pipeline(id: $id) { state } }`, { id: pipelineId })).pipeline;
        return state === 'STOP' && (await pipelineJobs()).every((j) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.status));
      }, 60_000, 200);
    });
  });
}
