// Control requests racing each other: an approval decision against a cancel, pauses and resumes
// against each other. Each request's answer must match what the task recorded, whichever order
// the database put them in, as if a client had sent them one after another.
import { describe, expect, it } from 'vitest';
import { newTenant, startTestServer, useTestServer, until, waitForTask } from '../helpers/server.js';
import { openTestDb, usingPostgres } from '../helpers/db.js';
import { holdRow } from '../helpers/row-lock.js';
import { gates } from '../streaming/helpers.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { cancelTask } from '../../src/api/task-control.js';

// runs until the test opens its gate, with no step boundary to pause at, deaf to its AbortSignal
const held: TaskDefinition = {
  id: 'test-held', name: 'held', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  async handler(input: { key: string }) {
    await gates.wait(input.key);
    return {};
  },
};

// a cancelled attempt that has not stopped stays RUNNING (cancel requested) for the whole test
const fixture = useTestServer({ TASKGATE_CANCEL_GRACE_MS: '600000' }, { definitions: [held], flags: { concurrency: '4' } });

const call = (key: string, method: string, path: string, body?: unknown) => fixture.server.call(method, path, body, { key });
const eventTypes = async (key: string, id: string): Promise<string[]> =>
  ((await call(key, 'GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as { type: string }[]).map((e) => e.type);
const storedApproval = async (id: string) =>
  (await fixture.tdb.db.query<{ status: string }>('SELECT status FROM approvals WHERE id = $1', [id])).rows[0]!.status;

/** Submits the shipped `approval` definition and waits until it is parked on its pending approval. */
async function parkedApproval(key: string): Promise<{ id: string; approvalId: string }> {
  const id = await fixture.server.submit({ task_definition_id: 'approval', input: { message: 'race' } }, { key });
  await until(async () => (await call(key, 'GET', `/api/v1/tasks/${id}/control-state`)).body.awaiting_approval === true, `task ${id} parked`);
  const pending = (await call(key, 'GET', '/api/v1/approvals?status=pending&limit=100')).body.approvals as { approval_id: string; workflow_id: string }[];
  return { id, approvalId: pending.find((a) => a.workflow_id === id)!.approval_id };
}

/** Which backend waits on `pid` directly, to know a request reached its lock. */
async function waitingOn(pid: number): Promise<number | undefined> {
  const { rows } = await fixture.tdb.db.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND $1::int = ANY (pg_blocking_pids(pid))", [pid],
  );
  return rows[0]?.pid;
}
/** Resolves once `req` has answered or a backend waits on `pid`: the request is past its start. */
async function answeredOrWaiting(req: Promise<unknown>, pid: number): Promise<void> {
  let answered = false;
  void req.then(() => (answered = true), () => (answered = true));
  await until(async () => answered || (await waitingOn(pid)) !== undefined, 'the request to answer or to wait on the lock');
}

describe('an approval decision racing a cancel', () => {
  it('is either recorded on the task (200 and an APPROVAL_DECISION event) or refused 409 with the approval cancelled', async () => {
    const t = await newTenant(fixture.tdb.db);
    const tasks = await Promise.all(Array.from({ length: 12 }, () => parkedApproval(t.key)));
    // the cancel leaves 0–5 ms after the decision, so both orders (and the in-between) come up.
    // (It reproduced the lost decision on PostgreSQL; on PGlite's one connection it did not.)
    const answers = await Promise.all(tasks.map(async ({ id, approvalId }, i) => {
      const [decision, cancel] = await Promise.all([
        call(t.key, 'POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true }),
        new Promise((r) => setTimeout(r, i % 6)).then(() => call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {})),
      ]);
      return { id, approvalId, decision, cancel };
    }));
    for (const { id, approvalId, decision, cancel } of answers) {
      const task = await waitForTask(fixture.server, id, undefined, { key: t.key });
      const types = await eventTypes(t.key, id);
      if (decision.status === 200) {
        expect(types, `task ${id}: decision answered 200`).toContain('APPROVAL_DECISION');
        expect(await storedApproval(approvalId)).toBe('approved');
      } else {
        expect(decision.status, decision.text).toBe(409);
        expect(decision.body.error.code).toBe('TASK_ALREADY_FINISHED');
        expect(types).not.toContain('APPROVAL_DECISION');
        expect(await storedApproval(approvalId)).toBe('cancelled');
        expect(task.status).toBe('CANCELLED');
      }
      // a cancel after the decision may find the task requeued, running (its attempt may still
      // complete) or already completed
      expect([202, 409], cancel.text).toContain(cancel.status);
      if (cancel.body.status === 'CANCELLED') expect(task.status).toBe('CANCELLED');
    }
  });

  it('a cancel that ends a parked task writes its approval cancelled in the same transaction', async () => {
    const t = await newTenant(fixture.tdb.db);
    const { id, approvalId } = await parkedApproval(t.key);
    const c = await call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {});
    expect(c.status, c.text).toBe(202);
    expect(c.body.status).toBe('CANCELLED');
    expect(await storedApproval(approvalId)).toBe('cancelled');
  });

  it.skipIf(!usingPostgres())('decision first: a cancel arriving while it is written waits, then cancels the requeued task (PostgreSQL)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const { id, approvalId } = await parkedApproval(t.key);
    const lock = await holdRow(fixture.tdb.db, 'approvals', approvalId);
    const decision = call(t.key, 'POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true });
    await until(async () => (await waitingOn(lock.pid)) !== undefined, 'the decision to wait on the approval row');
    const decider = (await waitingOn(lock.pid))!;
    // the cancel either waits behind the decision (which holds the task's row) or, unfenced, ends the task under it
    const cancel = call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {});
    await answeredOrWaiting(cancel, decider);
    await lock.release();
    const [d, c] = await Promise.all([decision, cancel]);
    expect(d.status, d.text).toBe(200);
    expect(await eventTypes(t.key, id)).toContain('APPROVAL_DECISION');
    expect(await storedApproval(approvalId)).toBe('approved');
    expect([202, 409], c.text).toContain(c.status);
    await waitForTask(fixture.server, id, undefined, { key: t.key });
  });

  it.skipIf(!usingPostgres())('cancel first: a decision arriving while it is written waits, then is refused 409 (PostgreSQL)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const { id, approvalId } = await parkedApproval(t.key);
    const lock = await holdRow(fixture.tdb.db, 'approvals', approvalId);
    const cancel = call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {});
    await answeredOrWaiting(cancel, lock.pid);
    const canceller = await waitingOn(lock.pid);
    const decision = call(t.key, 'POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true });
    await (canceller === undefined ? decision.then(() => {}) : answeredOrWaiting(decision, canceller));
    await lock.release();
    const [d, c] = await Promise.all([decision, cancel]);
    expect(c.status, c.text).toBe(202);
    expect(d.status, d.text).toBe(409);
    expect(d.body.error.code).toBe('TASK_ALREADY_FINISHED');
    expect(await storedApproval(approvalId)).toBe('cancelled');
    expect(await eventTypes(t.key, id)).not.toContain('APPROVAL_DECISION');
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
  });
});

/** Submits a `held` task and waits until a worker runs it. */
async function runningHeld(key: string, gate: string): Promise<string> {
  const id = await fixture.server.submit({ task_definition_id: held.id, input: { key: gate } }, { key });
  await waitForTask(fixture.server, id, (x) => x.status === 'RUNNING', { key });
  return id;
}

/**
 * Sends `n` requests while a transaction holds task `id`'s row: each reads the task, then waits to
 * write it. Released once at least `n` statements wait on the row (a heartbeat may be one of them,
 * so at least n − 1 requests read the same task), then answers them all. PostgreSQL only.
 */
async function sendWhileRowHeld(id: string, n: number, send: () => ReturnType<typeof call>) {
  const lock = await holdRow(fixture.tdb.db, 'tasks', id);
  const answers = Array.from({ length: n }, send);
  await until(async () => (await lock.waiting()) >= n, `${n} writes waiting on the task row`);
  await lock.release();
  return Promise.all(answers);
}

describe('pause and resume racing each other on a running task', () => {
  it.skipIf(!usingPostgres())('pauses that all read the task before any wrote it: one is taken, the others are 409 (PostgreSQL)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const id = await runningHeld(t.key, 'pause-held-row');
    const answers = await sendWhileRowHeld(id, 4, () => call(t.key, 'POST', `/api/v1/tasks/${id}/pause`, {}));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409, 409, 409]);
    expect(answers.filter((a) => a.status === 409).map((a) => a.body.error.message)).toEqual(Array(3).fill(expect.stringContaining('pause already requested')));
    expect((await eventTypes(t.key, id)).filter((e) => e === 'WORKFLOW_PAUSING')).toHaveLength(1);

    // and resumes that all read the requested pause: one withdraws it, the others find nothing to resume
    const resumes = await sendWhileRowHeld(id, 4, () => call(t.key, 'POST', `/api/v1/tasks/${id}/resume`, {}));
    expect(resumes.map((a) => a.status).sort()).toEqual([202, 409, 409, 409]);
    expect((await eventTypes(t.key, id)).filter((e) => e === 'WORKFLOW_RESUMED')).toHaveLength(1);
    gates.open('pause-held-row');
    await waitForTask(fixture.server, id, undefined, { key: t.key });
  });


  it('of ten parallel pauses one is taken (202, one WORKFLOW_PAUSING); the others are 409 pause already requested', async () => {
    const t = await newTenant(fixture.tdb.db);
    const id = await runningHeld(t.key, 'pause-ten');
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(t.key, 'POST', `/api/v1/tasks/${id}/pause`, {})));
    const taken = answers.filter((a) => a.status === 202);
    expect(taken, JSON.stringify(answers.map((a) => a.status))).toHaveLength(1);
    expect(taken[0]!.body.status).toBe('RUNNING');
    for (const a of answers.filter((x) => x.status !== 202)) {
      expect(a.status, a.text).toBe(409);
      expect(a.body.error.code).toBe('INVALID_TASK_STATE');
    }
    expect((await eventTypes(t.key, id)).filter((e) => e === 'WORKFLOW_PAUSING')).toHaveLength(1);
    gates.open('pause-ten');
    await waitForTask(fixture.server, id, undefined, { key: t.key });
  });

  it('25 pauses and 25 resumes in parallel: every 202 wrote its event, and the events alternate as a sequence would', async () => {
    const t = await newTenant(fixture.tdb.db);
    const id = await runningHeld(t.key, 'pause-storm');
    const sent = Array.from({ length: 50 }, (_, i) => (i % 2 ? 'resume' : 'pause'));
    const answers = await Promise.all(sent.map(async (action) => ({ action, res: await call(t.key, 'POST', `/api/v1/tasks/${id}/${action}`, {}) })));
    for (const { res } of answers) {
      expect([202, 409], res.text).toContain(res.status);
      // as a sequence would answer: never CONFLICT "changed state repeatedly" (a try under the row lock ends the races)
      if (res.status === 409) expect(res.body.error.code, res.text).toBe('INVALID_TASK_STATE');
    }
    const taken = (action: string) => answers.filter((a) => a.action === action && a.res.status === 202).length;
    const control = (await eventTypes(t.key, id)).filter((e) => e === 'WORKFLOW_PAUSING' || e === 'WORKFLOW_RESUMED');
    expect(control.filter((e) => e === 'WORKFLOW_PAUSING')).toHaveLength(taken('pause'));
    expect(control.filter((e) => e === 'WORKFLOW_RESUMED')).toHaveLength(taken('resume'));
    expect(control, 'requested, withdrawn, requested, …').toEqual(control.map((_, i) => (i % 2 ? 'WORKFLOW_RESUMED' : 'WORKFLOW_PAUSING')));
    const cs = (await call(t.key, 'GET', `/api/v1/tasks/${id}/control-state`)).body;
    expect(cs.pause_reason === null && cs.paused_by === null).toBe(control.length % 2 === 0);
    gates.open('pause-storm');
    await waitForTask(fixture.server, id, undefined, { key: t.key });
  });
});

describe('a task whose row keeps moving', () => {
  it('is decided under its row lock after a few lost races, not refused 409 CONFLICT', async () => {
    const t = await newTenant(fixture.tdb.db);
    const id = await runningHeld(t.key, 'busy-row');
    // every transition tried outside a transaction finds the task moved, as under a storm of other
    // writers over several processes; the locked try runs in a transaction, whose statements pass
    let lost = 0;
    const db = fixture.tdb.db;
    const busy = new Proxy(db, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        if (prop !== 'query') return typeof v === 'function' ? v.bind(target) : v;
        return async (text: string, params?: unknown[], o?: unknown) => {
          if (text.includes('UPDATE tasks SET') && text.includes('task_events')) {
            lost++;
            return { rows: [], rowCount: 0 };
          }
          return target.query(text, params, o as never);
        };
      },
    }) as typeof db;
    const res = await cancelTask({ db: busy, hub: fixture.server.hub, signals: fixture.server.signals }, t.tenantId, id, { reason: 'busy', by: 'test' });
    expect(res).toMatchObject({ success: true, status: 'RUNNING' });
    expect(lost).toBeGreaterThan(0);
    expect((await eventTypes(t.key, id)).filter((e) => e === 'WORKFLOW_CANCELLING')).toHaveLength(1);
    gates.open('busy-row');
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
  });
});

describe('repeated cancels of a running task whose attempt has not stopped', () => {
  const expectOneCancelling = async (key: string, id: string, answers: Awaited<ReturnType<typeof call>>[]) => {
    for (const a of answers) {
      expect(a.status, a.text).toBe(202);
      expect(a.body.status).toBe('RUNNING');
    }
    expect((await eventTypes(key, id)).filter((e) => e === 'WORKFLOW_CANCELLING')).toHaveLength(1);
    expect(answers.filter((a) => a.body.message.startsWith('Cancellation already requested'))).toHaveLength(answers.length - 1);
  };

  it('five parallel cancels: all 202, one WORKFLOW_CANCELLING; a later one is 202 with no new event', async () => {
    const t = await newTenant(fixture.tdb.db);
    const id = await runningHeld(t.key, 'cancel-five');
    const answers = await Promise.all(Array.from({ length: 5 }, () => call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, { reason: 'stop' })));
    await expectOneCancelling(t.key, id, answers);
    const again = await call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {});
    await expectOneCancelling(t.key, id, [...answers, again]);
    expect((await call(t.key, 'GET', `/api/v1/tasks/${id}/control-state`)).body).toMatchObject({ is_cancelled: true, cancel_reason: 'stop' });
    gates.open('cancel-five');
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
  });

  it.skipIf(!usingPostgres())('cancels that all read the task before any wrote it: one WORKFLOW_CANCELLING (PostgreSQL)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const id = await runningHeld(t.key, 'cancel-held-row');
    const answers = await sendWhileRowHeld(id, 4, () => call(t.key, 'POST', `/api/v1/tasks/${id}/cancel`, {}));
    await expectOneCancelling(t.key, id, answers);
    gates.open('cancel-held-row');
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
  });
});

describe('a cancel racing the attempt\'s end', () => {
  it('wins: an attempt that returns its result after the 202, before its worker heard of the cancel, still ends CANCELLED', async () => {
    // an API server and a worker that hears no hints (its heartbeat, every lease/3, is how it would
    // learn): the handler returns with its signal never fired, and the completion meets the
    // committed cancel request
    const tdb = await openTestDb();
    const api = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' }, { definitions: [held] });
    const worker = await startTestServer(tdb.db, { TASKGATE_ROLE: 'worker', TASKGATE_DISABLE_LISTEN: 'true', TASKGATE_LEASE_MS: '60000', TASKGATE_POLL_INTERVAL_MS: '50' }, { definitions: [held] });
    try {
      const t = await newTenant(tdb.db);
      const id = await api.submit({ task_definition_id: held.id, input: { key: 'late-result' } }, { key: t.key });
      await waitForTask(api, id, (x) => x.status === 'RUNNING', { key: t.key });
      const cancel = await api.call('POST', `/api/v1/tasks/${id}/cancel`, {}, { key: t.key });
      expect([cancel.status, cancel.body.status]).toEqual([202, 'RUNNING']);
      gates.open('late-result');
      const done = await waitForTask(api, id, (x) => x.status !== 'RUNNING', { key: t.key });
      // it ended COMPLETED, the 202's "being stopped" notwithstanding
      expect(done.status).toBe('CANCELLED');
      const events = (await api.call('GET', `/api/v1/tasks/${id}/events?limit=200`, undefined, { key: t.key })).body.events as { type: string }[];
      expect(events.map((e) => e.type).slice(-3)).toEqual(['WORKFLOW_CANCELLING', 'WORKFLOW_CANCELLED', 'STREAM_END']);
    } finally {
      await worker.close();
      await api.close();
      await tdb.close();
    }
  });
});
