// A cancel or a pause answered 202 while the attempt was already stopping for another reason — a
// pause at a step boundary, a park for an approval, a shutdown's release — must still be carried
// out: each of those writes left the request set on a task that then ran on, to COMPLETED (found
// with three processes on one PostgreSQL database; reproduced here with handlers that hold their
// attempt past its abort, so the request lands between the abort and the write).
import { describe, expect, it } from 'vitest';
import { newTenant, startTestServer, until, useTestServer, waitForTask } from '../helpers/server.js';
import { openTestDb } from '../helpers/db.js';
import { gates } from '../streaming/helpers.js';
import { abortKindOf, type AbortKind } from '../../src/engine/abort.js';
import type { TaskContext, TaskDefinition } from '../../src/executors/types.js';

/** Why each key's attempt was aborted (its AbortSignal's reason), and which keys' handlers finished. */
const aborted = new Map<string, AbortKind | undefined>();
const finished = new Set<string>();

/** Records why the attempt of `key` was aborted. */
function recordAbort(key: string, ctx: TaskContext): void {
  ctx.signal.addEventListener('abort', () => aborted.set(key, abortKindOf(ctx.signal)));
}
/** A definition whose handler, once stopped (it threw), holds its attempt until the test opens `<key>:hold`. */
const def = (id: string, handler: (input: { key: string }, ctx: TaskContext) => Promise<unknown>): TaskDefinition => ({
  id, name: id, description: '', version: '1', kind: 'function', retry_policy: { max_retries: 0 },
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  async handler(input: { key: string }, ctx: TaskContext) {
    recordAbort(input.key, ctx);
    try {
      await handler(input, ctx);
      finished.add(input.key);
      return {};
    } catch (err) {
      await gates.wait(`${input.key}:hold`);
      throw err;
    }
  },
});

// step a waits for the test; step b's start is the boundary a requested pause stops at
const stepped = def('test-stepped', async ({ key }, ctx) => {
  await ctx.step('a', () => gates.wait(`${key}:a`));
  await ctx.step('b', () => 1);
});
// asks for an approval (the ask aborts the attempt: it parks), then finishes
const approving = def('test-approving', async (_input, ctx) => {
  const d = await ctx.waitForApproval({ name: 'go' });
  if (!d.approved) throw new Error('denied');
});
// runs until its attempt is aborted
const running = def('test-running', (_input, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));

const definitions = [stepped, approving, running];
const fixture = useTestServer({ TASKGATE_CANCEL_GRACE_MS: '600000' }, { definitions, flags: { concurrency: '4' } });
const call = (key: string, method: string, path: string, body?: unknown) => fixture.server.call(method, path, body, { key });
const eventTypes = async (key: string, id: string): Promise<string[]> =>
  ((await call(key, 'GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as { type: string }[]).map((e) => e.type);

describe('a cancel that lands while the attempt stops for something else', () => {
  it('after a pause stopped it at a step boundary: CANCELLED, not PAUSED (a resume ran it to COMPLETED)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const key = 'pause-then-cancel';
    const id = await fixture.server.submit({ task_definition_id: stepped.id, input: { key } }, { key: t.key });
    await waitForTask(fixture.server, id, (x) => x.status === 'RUNNING', { key: t.key });
    expect((await call(t.key, 'POST', `/api/v1/tasks/${id}/pause`, {})).status).toBe(202);
    // the worker hears of the pause (control hint → heartbeat) before step a ends
    await until(async () => (await fixture.tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE id = $1 AND pause_requested', [id])).rows[0]!.n === 1, 'the pause request');
    await new Promise((r) => setTimeout(r, 300));
    gates.open(`${key}:a`);
    await until(() => aborted.get(key) === 'pause', 'the pause to stop the attempt');
    const cancel = await call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, { reason: 'changed my mind' });
    expect(cancel.status, cancel.text).toBe(202);
    gates.open(`${key}:hold`);
    const task = await waitForTask(fixture.server, id, undefined, { key: t.key });
    expect(task.status).toBe('CANCELLED');
    const types = await eventTypes(t.key, id);
    expect(types).not.toContain('WORKFLOW_PAUSED');
    expect(types.slice(-2)).toEqual(['WORKFLOW_CANCELLED', 'STREAM_END']);
  });

  it('just before it parks for an approval: CANCELLED, its approval cancelled (approving it ran the task to COMPLETED)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const key = 'park-then-cancel';
    const id = await fixture.server.submit({ task_definition_id: approving.id, input: { key } }, { key: t.key });
    await until(() => aborted.get(key) === 'suspend', 'the approval request to stop the attempt');
    const cancel = await call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {});
    expect(cancel.status, cancel.text).toBe(202);
    expect(cancel.body.status).toBe('RUNNING'); // still leased: the request is the worker's to carry out
    gates.open(`${key}:hold`);
    const task = await waitForTask(fixture.server, id, undefined, { key: t.key });
    expect(task.status).toBe('CANCELLED');
    const { rows } = await fixture.tdb.db.query<{ status: string }>('SELECT status FROM approvals WHERE task_id = $1', [id]);
    expect(rows).toEqual([{ status: 'cancelled' }]);
    expect(finished.has(key)).toBe(false);
  });

  it('during a shutdown grace: CANCELLED, not released to the queue with the cancel still set', async () => {
    // a process of API only takes the cancel; the worker process that runs the task is stopped
    const tdb = await openTestDb();
    const api = await startTestServer(tdb.db, {}, { definitions, flags: { role: 'api' } });
    const leaving = await startTestServer(tdb.db, { TASKGATE_SHUTDOWN_GRACE_MS: '100', TASKGATE_CANCEL_GRACE_MS: '600000' }, { definitions, flags: { role: 'worker' } });
    try {
      const key = 'release-then-cancel';
      const id = await api.submit({ task_definition_id: running.id, input: { key } });
      await waitForTask(api, id, (x) => x.status === 'RUNNING');
      const stopped = leaving.close();
      await until(() => aborted.get(key) === 'shutdown', 'the shutdown to stop the attempt');
      const cancel = await api.call('POST', `/api/v1/tasks/${id}/cancel`, {});
      expect(cancel.status, cancel.text).toBe(202);
      gates.open(`${key}:hold`);
      await stopped;
      const task = await waitForTask(api, id);
      expect(task.status).toBe('CANCELLED');
      const types = (await api.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events.map((e: { type: string }) => e.type);
      expect(types).not.toContain('WARNING'); // no "released back to the queue"
    } finally {
      await leaving.close();
      await api.close();
      await tdb.close();
    }
  });
});

describe('a pause withdrawn after the attempt stopped for it', () => {
  it('requeues the task with a WARNING pause_withdrawn, and it completes from its finished steps', async () => {
    const t = await newTenant(fixture.tdb.db);
    const key = 'pause-withdrawn';
    const id = await fixture.server.submit({ task_definition_id: stepped.id, input: { key } }, { key: t.key });
    await waitForTask(fixture.server, id, (x) => x.status === 'RUNNING', { key: t.key });
    expect((await call(t.key, 'POST', `/api/v1/tasks/${id}/pause`, {})).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300)); // the worker hears of it before step a ends
    gates.open(`${key}:a`);
    await until(() => aborted.get(key) === 'pause', 'the pause to stop the attempt');
    expect((await call(t.key, 'POST', `/api/v1/tasks/${id}/resume`, {})).status).toBe(202);
    gates.open(`${key}:hold`);
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('COMPLETED');
    const events = (await call(t.key, 'GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as { type: string; payload: any }[];
    const warning = events.findIndex((e) => e.type === 'WARNING' && e.payload?.reason === 'pause_withdrawn');
    expect(warning, JSON.stringify(events.map((e) => e.type))).toBeGreaterThan(0);
    expect(events.slice(warning + 1).find((e) => e.type === 'WORKFLOW_STARTED')?.payload.attempt).toBe(1);
  });
});

describe('a pause that lands just before the attempt parks for an approval', () => {
  it('ends PAUSED; resumed, it asks again, and an approval then completes it', async () => {
    const t = await newTenant(fixture.tdb.db);
    const key = 'park-then-pause';
    const id = await fixture.server.submit({ task_definition_id: approving.id, input: { key } }, { key: t.key });
    await until(() => aborted.get(key) === 'suspend', 'the approval request to stop the attempt');
    expect((await call(t.key, 'POST', `/api/v1/tasks/${id}/pause`, {})).status).toBe(202);
    gates.open(`${key}:hold`);
    expect((await waitForTask(fixture.server, id, (x) => x.status !== 'RUNNING', { key: t.key })).status).toBe('PAUSED');
    expect((await call(t.key, 'POST', `/api/v1/tasks/${id}/resume`, {})).status).toBe(202);
    await until(async () => (await call(t.key, 'GET', `/api/v1/tasks/${id}/control-state`)).body.awaiting_approval === true, 'parked again');
    const { rows } = await fixture.tdb.db.query<{ id: string; status: string }>('SELECT id, status FROM approvals WHERE task_id = $1', [id]);
    expect(rows).toEqual([{ id: expect.any(String), status: 'pending' }]);
    const decided = await call(t.key, 'POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: rows[0]!.id, approved: true });
    expect(decided.status, decided.text).toBe(200);
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('COMPLETED');
    expect(finished.has(key)).toBe(true);
  });
});

describe('a request a queued task carries into its claim', () => {
  it('a cancel set on a queued row is carried out at the claim: the handler never runs', async () => {
    const t = await newTenant(fixture.tdb.db);
    const key = 'claimed-cancelled';
    const id = await fixture.server.submit({ task_definition_id: running.id, input: { key }, run_at: new Date(Date.now() + 60_000).toISOString() }, { key: t.key });
    // as a requeue that raced a cancel left it (before this release: a lease reaper's requeue can still)
    await fixture.tdb.db.query('UPDATE tasks SET cancel_requested = true, run_at = now() WHERE id = $1', [id]);
    const task = await waitForTask(fixture.server, id, undefined, { key: t.key });
    expect(task.status).toBe('CANCELLED');
    expect(aborted.get(key)).toBe(undefined); // the handler was never called
  });
});
