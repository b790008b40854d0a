/**
 * The service transaction helper on a real PostgreSQL server: a transaction the database
 * aborts as a deadlock (40P01) is run again, so both sides of a real deadlock commit, and the
 * aborted attempt leaves nothing behind (its events are written once, by the attempt that
 * committed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { isTransactionConflict } from '../../src/db/conflicts.js';
import { EventService } from '../../src/modules/event/event.service.js';
import { DEFAULT_WORKSPACE_ID, runAsSystem } from '../../src/tenancy/scope.js';
import { createSluicePubSub } from '../../src/pubsub/pubsub.js';
import { createTestDatabase, PG_URL } from '../helpers/postgres.js';
import { tempDir } from '../helpers/server.js';

describe.skipIf(!PG_URL)('transaction conflicts on PostgreSQL', () => {
  let pg: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let events: EventService;
  let other: string;

  beforeAll(async () => {
    pg = await createTestDatabase();
    database = await openDatabase({ databaseUrl: pg.url, dataDir: tempDir('sluice-conflicts-') });
    await database.migrate();
    events = new EventService(database.prisma, createSluicePubSub());
    other = (await runAsSystem(() => database.prisma.workspace.create({ data: { name: 'other' } }))).id;
  });
  afterAll(async () => {
    await database?.close();
    await pg?.drop();
  });

  it('both sides of a real deadlock commit: the aborted one is run again, its events written once', async () => {
    // Two transactions lock the same two rows in opposite orders, meeting in the middle on
    // their first attempt: PostgreSQL aborts one of them with 40P01.
    let arrived = 0;
    let release!: () => void;
    const bothHoldTheirFirstRow = new Promise<void>((r) => (release = r));
    const attempts = { a: 0, b: 0 };
    const side = (name: 'a' | 'b', first: string, second: string) =>
      runAsSystem(() =>
        events.transaction(async (tx, emit) => {
          attempts[name]++;
          await tx.$queryRaw`select id from "Workspace" where id = ${first}::uuid for update`;
          if (attempts[name] === 1) {
            if (++arrived === 2) release();
            await bothHoldTheirFirstRow;
          }
          await tx.$queryRaw`select id from "Workspace" where id = ${second}::uuid for update`;
          await emit({ type: 'WORKSPACE_CREATED', workspaceId: DEFAULT_WORKSPACE_ID, message: `side ${name}`, data: { side: name } });
          return name;
        }),
      );
    const results = await Promise.all([side('a', DEFAULT_WORKSPACE_ID, other), side('b', other, DEFAULT_WORKSPACE_ID)]);
    expect(results).toEqual(['a', 'b']);
    // Exactly one side was aborted and ran again.
    expect(attempts.a + attempts.b).toBe(3);
    const rows = await runAsSystem(() => database.prisma.event.findMany({ where: { type: 'WORKSPACE_CREATED', message: { startsWith: 'side ' } } }));
    expect(rows.map((r) => r.message).sort()).toEqual(['side a', 'side b']);
  });

  it('recognises the deadlock error as Prisma reports it', async () => {
    // Without the helper: the same deadlock, through bare Prisma transactions.
    let arrived = 0;
    let release!: () => void;
    const met = new Promise<void>((r) => (release = r));
    const side = (first: string, second: string) =>
      runAsSystem(() =>
        database.prisma.$transaction(async (tx) => {
          await tx.$queryRaw`select id from "Workspace" where id = ${first}::uuid for update`;
          if (++arrived === 2) release();
          await met;
          await tx.$queryRaw`select id from "Workspace" where id = ${second}::uuid for update`;
        }),
      );
    const settled = await Promise.allSettled([side(DEFAULT_WORKSPACE_ID, other), side(other, DEFAULT_WORKSPACE_ID)]);
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect(isTransactionConflict(failed[0]!.reason)).toBe(true);
    expect(isTransactionConflict(new Error('unique constraint failed'))).toBe(false);
  });
});
