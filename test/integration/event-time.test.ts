// An event's timestamp never runs backwards against its seq: a transition that waited for another
// one's row lock inside a transaction begun earlier stamped its event with the transaction's start
// (now()), before the event it followed (PostgreSQL: PGlite runs one statement at a time).
import { describe, expect, it } from 'vitest';
import { tasksClaimAvailable, tasksCompleteMany, tasksTransition, type EventSpec } from '../../src/storage/queries/transitions.js';
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

  it('follow seq when a batch completion waited for a row another transaction then changed', async () => {
    const { tdb, server } = fixture;
    const t = await newTenant(tdb.db);
    const id = await server.submit({ task_definition_id: 'noop', input: {} }, { key: t.key });
    const claimed = await tasksClaimAvailable(tdb.db, { limit: 100, owner: 'w-event-time', leaseMs: 60_000 });
    const mine = claimed.find((c) => c.task.id === id)!;
    expect(mine).toBeDefined();
    let aLocked!: () => void;
    const locked = new Promise<void>((r) => (aLocked = r));
    let bStarted!: () => void;
    const started = new Promise<void>((r) => (bStarted = r));
    // A locks the row (as a control request deciding under FOR UPDATE does), the completion
    // statement starts and waits, then A writes its event and commits
    const a = tdb.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE', [id]);
      aLocked();
      await started;
      await new Promise((r) => setTimeout(r, 100)); // the completion is blocked on the row meanwhile
      return tasksTransition(tx, { id, statuses: ['RUNNING'] }, {}, [{ type: 'WARNING', message: 'meanwhile', payload: null }]);
    });
    await locked;
    const b = tasksCompleteMany(tdb.db, 'w-event-time', [{
      id, attempt: mine.task.attempt, output: {}, result: null, usage: null, model_used: null, provider: null, metadata: null, duration_ms: 1,
    }]);
    bStarted();
    expect(await a).toBeDefined();
    const written = (await b).get(id)!;
    const rows = (await tdb.db.query<{ seq: number; type: string; at: number }>(
      `SELECT seq, type, extract(epoch FROM created_at)::float8 AS at FROM task_events WHERE task_id = $1 ORDER BY seq`, [id],
    )).rows;
    expect(rows.map((r) => r.type)).toEqual(['WORKFLOW_STARTED', 'WARNING', 'WORKFLOW_COMPLETED', 'STREAM_END']);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.at).toBeGreaterThanOrEqual(rows[i - 1]!.at);
    // the live copies carry the stored time, and the row's completed_at is the completion's
    const completed = rows[2]!.at * 1000;
    expect(Math.abs(new Date(written[0]!.created_at).getTime() - completed)).toBeLessThan(1);
    const row = (await tdb.db.query<{ at: number }>(`SELECT extract(epoch FROM completed_at)::float8 AS at FROM tasks WHERE id = $1`, [id])).rows[0]!;
    expect(row.at * 1000).toBe(completed);
  });
});
