// The claim window end to end (engine/claim-window.ts), on PGlite and on PostgreSQL: short tasks
// are claimed and completed in one transaction, the rest continue as claimed tasks, and whatever
// an attempt writes on the way (steps, events, a retry, a cancel) keeps its order and its fences.
// Tasks are submitted with a delay so the dispatcher claims them (direct dispatch never takes a
// delayed task).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';

const WINDOW_MS = 200;
const failedOnce = new Set<string>();

const stepper: TaskDefinition = {
  id: 'cw-stepper', name: 'steps and progress', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, ctx) {
    const n = await ctx.step('count', () => 41);
    await ctx.progress('half way', { n });
    return { n: n + 1 };
  },
};

const failsOnce: TaskDefinition = {
  id: 'cw-fails-once', name: 'fails on its first attempt', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  handler(input: { key: string }, ctx) {
    if (!failedOnce.has(input.key)) {
      failedOnce.add(input.key);
      throw new Error('first attempt fails');
    }
    return { attempt: ctx.attempt };
  },
};

let tdb: TestDb;
let server: TestServer;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, { TASKGATE_CLAIM_WINDOW_MS: String(WINDOW_MS) }, { definitions: [stepper, failsOnce], flags: { concurrency: '8' } });
  await firstClaim(server);
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

const claimed = (body: Record<string, unknown>) => server.submit({ delay_ms: 30, ...body });
/** A worker's first claim that finds tasks is written at once (worker.ts): spend it. */
async function firstClaim(s: TestServer): Promise<void> {
  await waitForTask(s, await s.submit({ task_definition_id: 'noop', input: {}, delay_ms: 10 }));
}
const events = async (id: string) => (await server.call('GET', `/api/v1/tasks/${id}/events?limit=100`)).body.events as any[];
/** Whether the task's first WORKFLOW_STARTED and its current row were written by one transaction. */
async function startedAndFinishedTogether(id: string, db: TestDb = tdb): Promise<boolean> {
  const res = await db.db.query<{ same: boolean }>(
    `SELECT t.xmin::text = e.xmin::text AS same FROM tasks t JOIN task_events e ON e.task_id = t.id AND e.seq = 1 WHERE t.id = $1`,
    [id],
  );
  return res.rows[0]!.same;
}

describe('claim window', () => {
  it('completes short tasks in the transaction that claimed them: one attempt, three events, in order', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => claimed({ task_definition_id: 'noop', input: {} })));
    for (const id of ids) {
      const t = await waitForTask(server, id);
      expect([t.status, t.attempts]).toEqual(['COMPLETED', 1]);
      expect(new Date(t.completed_at).getTime()).toBeGreaterThanOrEqual(new Date(t.started_at).getTime());
      const ev = await events(id);
      expect(ev.map((e) => [e.seq, e.type])).toEqual([[1, 'WORKFLOW_STARTED'], [2, 'WORKFLOW_COMPLETED'], [3, 'STREAM_END']]);
      expect(ev[0].payload).toMatchObject({ attempt: 1 });
      expect(await startedAndFinishedTogether(id)).toBe(true);
    }
  });

  it("a worker's first claim that finds tasks is written at once, not in a window", async () => {
    // its own database: the suite's server would claim the task otherwise
    const own = await openTestDb();
    const fresh = await startTestServer(own.db, { TASKGATE_CLAIM_WINDOW_MS: String(WINDOW_MS) }, { flags: { concurrency: '2' } });
    try {
      const first = await fresh.submit({ task_definition_id: 'noop', input: {}, delay_ms: 30 });
      expect((await waitForTask(fresh, first)).status).toBe('COMPLETED');
      expect(await startedAndFinishedTogether(first, own)).toBe(false);
      const next = await fresh.submit({ task_definition_id: 'noop', input: {}, delay_ms: 30 });
      expect((await waitForTask(fresh, next)).status).toBe('COMPLETED');
      expect(await startedAndFinishedTogether(next, own)).toBe(true);
    } finally {
      await fresh.close();
      await own.close();
    }
  });

  it('writes a task still running when the window closes RUNNING under the lease; it then finishes as a claimed task', async () => {
    const id = await claimed({ task_definition_id: 'sleep', input: { ms: WINDOW_MS * 3 } });
    const running = await waitForTask(server, id, (t) => t.status === 'RUNNING');
    expect(running.attempts).toBe(1);
    expect((await events(id)).map((e) => e.type)).toEqual(['WORKFLOW_STARTED']);
    const t = await waitForTask(server, id);
    expect([t.status, t.attempts]).toEqual(['COMPLETED', 1]);
    const ev = await events(id);
    expect(ev.map((e) => e.seq)).toEqual(ev.map((_, i) => i + 1));
    expect([ev[0].type, ...ev.slice(-2).map((e) => e.type)]).toEqual(['WORKFLOW_STARTED', 'WORKFLOW_COMPLETED', 'STREAM_END']);
    expect(await startedAndFinishedTogether(id)).toBe(false);
  });

  it('an attempt that writes a step or an event takes its lease first: everything is stored once, in order', async () => {
    const id = await claimed({ task_definition_id: 'cw-stepper', input: {} });
    const t = await waitForTask(server, id);
    expect([t.status, t.attempts, t.output]).toEqual(['COMPLETED', 1, { n: 42 }]);
    const ev = await events(id);
    expect(ev.map((e) => [e.seq, e.type])).toEqual([[1, 'WORKFLOW_STARTED'], [2, 'PROGRESS'], [3, 'WORKFLOW_COMPLETED'], [4, 'STREAM_END']]);
    expect(ev[1].payload).toEqual({ n: 41 });
    const steps = await tdb.db.query<{ name: string; runs: number; done: boolean }>('SELECT name, runs, done FROM task_steps WHERE task_id = $1', [id]);
    expect(steps.rows).toEqual([{ name: 'count', runs: 1, done: true }]);
  });

  it('a failed attempt in a window is retried with its attempt counted', async () => {
    const id = await claimed({ task_definition_id: 'cw-fails-once', input: { key: 'r1' }, retry_policy: { max_retries: 2, retry_interval_ms: 10 } });
    const t = await waitForTask(server, id);
    expect([t.status, t.attempts, t.output]).toEqual(['COMPLETED', 2, { attempt: 2 }]);
    const ev = await events(id);
    expect(ev.map((e) => e.type)).toEqual(['WORKFLOW_STARTED', 'ERROR_OCCURRED', 'RETRYING', 'WORKFLOW_STARTED', 'WORKFLOW_COMPLETED', 'STREAM_END']);
    expect(ev.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('cancels a task that outlived its window through its AbortSignal', async () => {
    const id = await claimed({ task_definition_id: 'sleep', input: { ms: 30_000 } });
    await waitForTask(server, id, (t) => t.status === 'RUNNING');
    expect((await server.call('POST', `/api/v1/tasks/${id}/cancel`, { reason: 'stop' })).status).toBe(202);
    const t = await waitForTask(server, id);
    expect(t.status).toBe('CANCELLED');
    expect((await events(id)).map((e) => e.type)).toEqual(expect.arrayContaining(['WORKFLOW_STARTED', 'WORKFLOW_CANCELLED', 'STREAM_END']));
  });
});

describe('claim window during a shutdown', () => {
  it('gives a task still running in an open window back untouched: QUEUED, attempt not counted, no event', async () => {
    const own = await openTestDb();
    let onStart!: (taskId: string) => void;
    const startedInWindow = new Promise<string>((r) => (onStart = r));
    const slow: TaskDefinition = {
      id: 'cw-slow', name: 'runs until aborted', description: '', version: '1', kind: 'function',
      input_schema: { type: 'object' }, output_schema: { type: 'object' },
      async handler(_input, ctx) {
        onStart(ctx.taskId);
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, 30_000);
          ctx.signal.addEventListener('abort', () => (clearTimeout(timer), reject(ctx.signal.reason)), { once: true });
        });
        return {};
      },
    };
    // no shutdown grace: stop() aborts at once; the window is set past the env's 1 s bound so that
    // it cannot close first however loaded the machine (a 1 s window did, once, on a loaded CI run)
    const env = { TASKGATE_SHUTDOWN_GRACE_MS: '0', TASKGATE_CANCEL_GRACE_MS: '100' };
    let first: TestServer | undefined = await startTestServer(own.db, env, { definitions: [slow], flags: { concurrency: '2' }, config: { claimWindowMs: 60_000 } });
    let second: TestServer | undefined;
    try {
      await firstClaim(first);
      const id = await first.submit({ task_definition_id: 'cw-slow', input: {}, delay_ms: 30 });
      expect(await startedInWindow).toBe(id);
      // the worker in this process stops the moment its attempt has started (the claim is still uncommitted)
      await first.worker!.stop();
      await first.close();
      first = undefined;
      const row = await own.db.query<{ status: string; attempt: number; lease_owner: string | null; last_seq: number }>(
        'SELECT status, attempt, lease_owner, last_seq FROM tasks WHERE id = $1', [id],
      );
      expect(row.rows[0]).toEqual({ status: 'QUEUED', attempt: 0, lease_owner: null, last_seq: 0 });
      // the next worker runs it as a first attempt (the slow handler is swapped for a quick one)
      slow.handler = () => ({ done: true });
      second = await startTestServer(own.db, { TASKGATE_CLAIM_WINDOW_MS: '0' }, { definitions: [slow] });
      const t = await waitForTask(second, id);
      expect([t.status, t.attempts, t.output]).toEqual(['COMPLETED', 1, { done: true }]);
      const ev = (await second.call('GET', `/api/v1/tasks/${id}/events?limit=100`)).body.events as any[];
      expect(ev.map((e) => [e.seq, e.type])).toEqual([[1, 'WORKFLOW_STARTED'], [2, 'WORKFLOW_COMPLETED'], [3, 'STREAM_END']]);
    } finally {
      await first?.close();
      await second?.close();
      await own.close();
    }
  });
});

describe.runIf(usingPostgres())('claim window whose transaction fails (PostgreSQL)', () => {
  let db2: TestDb;
  let server2: TestServer;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const runs: number[] = [];
  const hold: TaskDefinition = {
    id: 'cw-hold', name: 'waits for the test', description: '', version: '1', kind: 'function',
    input_schema: { type: 'object' }, output_schema: { type: 'object' },
    async handler(_input, ctx) {
      runs.push(ctx.attempt);
      await released;
      await ctx.progress('released');
      return { runs: runs.length };
    },
  };

  beforeAll(async () => {
    db2 = await openTestDb();
    // the window must still be open when the test finds and kills its backend: 60 s (past the env's
    // 1 s bound) however loaded the machine; the held attempt's progress() closes it once released
    server2 = await startTestServer(db2.db, {}, { definitions: [hold], flags: { concurrency: '2' }, config: { claimWindowMs: 60_000 } });
    await firstClaim(server2);
  });
  afterAll(async () => {
    await server2?.close();
    await db2?.close();
  });

  it('loses its attempts and leaves the tasks to be claimed again, attempt not counted, when its connection dies', async () => {
    const id = await server2.submit({ task_definition_id: 'cw-hold', input: {}, delay_ms: 30 });
    await until(() => runs.length === 1, 'the first run');
    // the window's transaction holds the row lock: find its backend by the locker's xid and kill it
    const locker = await db2.db.query<{ pid: number }>(
      `SELECT a.pid FROM pg_stat_activity a, tasks t WHERE t.id = $1 AND a.backend_xid::text = t.xmax::text`, [id],
    );
    expect(locker.rows).toHaveLength(1);
    await db2.db.query('SELECT pg_terminate_backend($1)', [locker.rows[0]!.pid]);
    release();
    const t = await waitForTask(server2, id);
    expect([t.status, t.attempts, t.output]).toEqual(['COMPLETED', 1, { runs: 2 }]);
    expect(runs).toEqual([1, 1]);
    // nothing of the lost run was kept
    const ev = (await server2.call('GET', `/api/v1/tasks/${id}/events?limit=100`)).body.events as any[];
    expect(ev.map((e) => [e.seq, e.type])).toEqual([[1, 'WORKFLOW_STARTED'], [2, 'PROGRESS'], [3, 'WORKFLOW_COMPLETED'], [4, 'STREAM_END']]);
    expect((await server2.call('GET', '/health')).status).toBe(200);
  });
});
