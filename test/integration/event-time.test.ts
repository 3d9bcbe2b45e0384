// An event's timestamp never runs backwards against its seq: a transition that waited for another
// one's row lock inside a transaction begun earlier stamped its event with the transaction's start
// (now()), before the event it followed (PostgreSQL: PGlite runs one statement at a time).
import { describe, expect, it } from 'vitest';
import { tasksTransition, type EventSpec } from '../../src/storage/queries/transitions.js';
import { usingPostgres } from '../helpers/db.js';
import { newTenant, useTestServer } from '../helpers/server.js';

describe.skipIf(!usingPostgres())('event timestamps', () => {
  const fixture = useTestServer({ TASKGATE_ROLE: 'api' });

  it('follow seq when a transaction begun earlier waited for the row', async () => {
    const { tdb, server } = fixture;
    const t = await newTenant(tdb.db);
    const id = await server.submit({ task_definition_id: 'noop', input: {} }, { key: t.key });
    const fence = { id, statuses: ['QUEUED' as const] };
    const note = (message: string): EventSpec[] => [{ type: 'WARNING', message, payload: null }];
    let bBegan!: () => void;
    const began = new Promise<void>((r) => (bBegan = r));
    let aHolds!: () => void;
    const holds = new Promise<void>((r) => (aHolds = r));
    // B begins first (its now() is fixed here), then waits for A's row lock
    const b = tdb.db.transaction(async (tx) => {
      await tx.query('SELECT 1');
      bBegan();
      await holds;
      return tasksTransition(tx, fence, {}, note('second'));
    });
    await began;
    await new Promise((r) => setTimeout(r, 50));
    const a = tdb.db.transaction(async (tx) => {
      const res = await tasksTransition(tx, fence, {}, note('first'));
      aHolds();
      await new Promise((r) => setTimeout(r, 100)); // B is blocked on the row meanwhile
      return res;
    });
    expect(await a).toBeDefined();
    expect(await b).toBeDefined();
    const rows = (await tdb.db.query<{ seq: number; message: string; at: number }>(
      `SELECT seq, message, extract(epoch FROM created_at)::float8 AS at FROM task_events WHERE task_id = $1 AND type = 'WARNING' ORDER BY seq`, [id],
    )).rows;
    expect(rows.map((r) => r.message)).toEqual(['first', 'second']);
    const [first, second] = rows.map((r) => r.at);
    expect(second!).toBeGreaterThanOrEqual(first!);
  });
});
