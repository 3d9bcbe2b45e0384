// Control requests racing each other: an approval decision against a cancel. Each request's answer
// must match what the task recorded, whichever order the database put them in.
import { describe, expect, it } from 'vitest';
import { newTenant, useTestServer, until, waitForTask } from '../helpers/server.js';
import { usingPostgres } from '../helpers/db.js';

const fixture = useTestServer({}, { flags: { concurrency: '4' } });

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

/**
 * A transaction holding approval `approvalId`'s row, so a statement that writes it waits; and
 * which backends wait on a given one (directly), to know a request reached its lock.
 */
async function holdApproval(approvalId: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let pid = 0;
  const done = fixture.tdb.db.transaction(async (tx) => {
    pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await tx.query('SELECT 1 FROM approvals WHERE id = $1 FOR UPDATE', [approvalId]);
    await released;
  });
  await until(() => pid !== 0, 'the approval row lock');
  return { pid, release: async () => (release(), await done) };
}
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
    const lock = await holdApproval(approvalId);
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
    const lock = await holdApproval(approvalId);
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
