// A deploy's hand-off: a worker shutting down gives its running attempt back to the queue when its
// grace runs out, and tells the other processes at once — a worker of another process (its poll at
// 60 s, far beyond the wait) takes the task over without waiting for a poll (PostgreSQL: two
// processes need two connections' LISTEN/NOTIFY).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { startTestServer, waitForTask } from '../helpers/server.js';
import { openPg } from '../../src/storage/pg.js';
import type { Db } from '../../src/storage/db.js';
import type { TaskDefinition } from '../../src/executors/types.js';

const handoff = (handler: TaskDefinition['handler']): TaskDefinition => ({
  id: 'test-handoff', name: 'test-handoff', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' }, handler,
});
// on the process that shuts down: runs until its attempt is stopped
const stuck = handoff((_input, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
const quick = handoff(async () => ({ done_by: 'b' }));

describe.skipIf(!usingPostgres())('a worker shutting down hands its task to another process', () => {
  let tdb: TestDb;
  let otherDb: Db;
  beforeAll(async () => {
    tdb = await openTestDb();
    otherDb = await openPg({ connectionString: process.env.DATABASE_URL!, schema: tdb.schema, maxConnections: 5 });
  });
  afterAll(async () => {
    await otherDb?.close();
    await tdb?.close();
  });

  it('the released task starts on the other process at once, not at its next poll', async () => {
    const env = { TASKGATE_POLL_INTERVAL_MS: '60000', TASKGATE_SHUTDOWN_GRACE_MS: '200' };
    const a = await startTestServer(tdb.db, env, { definitions: [stuck] });
    const b = await startTestServer(otherDb, { ...env, TASKGATE_ROLE: 'worker' }, { definitions: [quick] });
    try {
      const res = await a.call('POST', '/api/v1/tasks', { task_definition_id: 'test-handoff', input: {} });
      const id = res.body.task_id as string;
      await waitForTask(a, id, (t) => t.status === 'RUNNING');
      await a.close();
      // read through b's database (a is gone): COMPLETED by b within 10 s, long before b's first poll
      for (let i = 0; ; i++) {
        const { rows } = await otherDb.query<{ status: string; result: unknown }>('SELECT status, output AS result FROM tasks WHERE id = $1', [id]);
        if (rows[0]?.status === 'COMPLETED') {
          expect(rows[0].result).toEqual({ done_by: 'b' });
          break;
        }
        if (i > 500) throw new Error(`the task was not taken over: ${rows[0]?.status}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await b.close();
    }
  });
});
