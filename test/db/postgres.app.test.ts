/**
 * Sluice on a PostgreSQL server (DATABASE_URL) instead of the embedded PGlite: the same
 * migrations, lifecycle, event ordering and durability across a restart.
 */
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PG_URL } from '../helpers/postgres.js';
import { eventually, startTestServer, testDataDir, writeCsv, type TestServer } from '../helpers/server.js';

describe.skipIf(!PG_URL)('Sluice on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let s: TestServer;
  let dir: string;
/** The data folder of the first server (its files folder is `dir`). */
let filesData: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ dataDir: filesData, filesDir: dir } = testDataDir('sluice-pg-'));
    writeCsv(path.join(dir, 'in.csv'), 20_000);
    s = await startTestServer({ dataDir: filesData, env: { DATABASE_URL: db.url } });
  });
  afterAll(async () => {
    await s?.stop().catch(() => undefined);
    await db?.drop();
  });

  it('applies the migrations in Prisma’s own table', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const rows = await c.query(`select migration_name, finished_at from "_prisma_migrations"`);
    await c.end();
    expect(rows.rows.length).toBeGreaterThan(0);
    expect(rows.rows.every((r) => r.finished_at !== null)).toBe(true);
    const health = await s.q(`{ health { database databaseOk } }`);
    expect(health.health).toEqual({ database: 'postgres', databaseOk: true });
  });

  it('runs a pipeline to READY and keeps everything across a restart', async () => {
    const create = `mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ... on CreateConnectorPayload { connector { id } } } }`;
    const src = await s.q(create, { i: { name: 'in', driver: 'csv', config: { path: path.join(dir, 'in.csv') } } });
    const dst = await s.q(create, { i: { name: 'out', driver: 'sqlite', config: { path: path.join(dir, 'out.db') } } });
    const p = await s.q(
      `mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ... on CreatePipelinePayload { pipeline { id } } } }`,
      { i: { name: 'pg pipeline', sourceId: src.createConnector.connector.id, destinationId: dst.createConnector.connector.id } },
    );
    const id = p.createPipeline.pipeline.id;
    await s.q(`mutation($i: PipelineActionInput!) { startPipeline(input: $i) { __typename } }`, { i: { id } });
    await eventually(async () => (await s.q(`query($id: ID!) { pipeline(id: $id) { state } }`, { id })).pipeline.state === 'READY');

    const before = await s.q(
      `query($id: ID!) { pipeline(id: $id) { state version cursor jobs(first: 5) { nodes { status recordsWritten } } } events(last: 100) { nodes { cursor type } } }`,
      { id },
    );
    expect(before.pipeline.jobs.nodes[0]).toEqual({ status: 'SUCCEEDED', recordsWritten: 20_000 });
    const seqs = before.events.nodes.map((e: { cursor: string }) => BigInt(e.cursor));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i] > seqs[i - 1]).toBe(true);

    await s.stop();
    s = await startTestServer({ env: { DATABASE_URL: db.url } });
    const after = await s.q(
      `query($id: ID!) { pipeline(id: $id) { state version cursor jobs(first: 5) { nodes { status recordsWritten } } } events(last: 100) { nodes { cursor type } } }`,
      { id },
    );
    expect(after).toEqual(before);
  });
});
