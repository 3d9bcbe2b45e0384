// Approvals: a task waits durably (no worker slot), the decision resumes or fails it, a timeout
// denies; the `approval` kind is a purely human task.
import { describe, expect, it } from 'vitest';
import { newTenant, useTestServer, waitForTask } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';

const sideEffects: string[] = [];
const twoPhase: TaskDefinition = {
  id: 'test-two-phase', name: 'two phase', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, ctx) {
    await ctx.step('prepare', () => sideEffects.push('prepare'));
    const d = await ctx.waitForApproval({ name: 'ship', message: 'ship it?', payload: { plan: 'A' } });
    if (!d.approved) return { shipped: false, feedback: d.feedback };
    await ctx.step('ship', () => sideEffects.push('ship'));
    return { shipped: true, action: d.modified_action };
  },
};

// names and texts from an upstream or a model: a NUL or a lone surrogate PostgreSQL would refuse
const dirtyApproval: TaskDefinition = {
  id: 'test-dirty-approval', name: 'dirty approval', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, ctx) {
    const paid = await ctx.step('pay\u0000', () => 'paid');
    const d = await ctx.waitForApproval({ name: 'ship\u0000', message: 'ship\u0000 it?', payload: { note: 'half \ud800 pair' } });
    return { approved: d.approved, paid, info: ctx.stepInfo('pay\u0000') };
  },
};

// an approval's own timeout, from the input
const ownTimeout: TaskDefinition = {
  id: 'test-own-timeout', name: 'own timeout', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(input: { t: number }, ctx) {
    const d = await ctx.waitForApproval({ timeoutMs: input.t });
    return { approved: d.approved };
  },
};

const fixture = useTestServer({}, { definitions: [twoPhase, dirtyApproval, ownTimeout], flags: { concurrency: '2' } });

const submit = async (body: Record<string, unknown>, key?: string) => (await fixture.server.call('POST', '/api/v1/tasks', body, { key })).body.task_id as string;

async function waitForApprovalEvent(id: string, key?: string): Promise<any> {
  let found: any;
  const deadline = Date.now() + 20_000;
  while (!found) {
    const events = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`, undefined, { key })).body.events;
    found = events.find((e: any) => e.type === 'APPROVAL_REQUESTED');
    if (!found && Date.now() > deadline) throw new Error('no APPROVAL_REQUESTED');
    if (!found) await new Promise((r) => setTimeout(r, 20));
  }
  return found;
}

describe('approvals', () => {
  it('parks the task without a worker slot and resumes it on approval without re-running steps', async () => {
    const id = await submit({ task_definition_id: 'test-two-phase', input: {} });
    const ev = await waitForApprovalEvent(id);
    const approvalId = ev.payload.approval_id;
    expect(approvalId).toMatch(/^[0-9a-f-]{36}$/);
    expect(ev.message).toContain(`id=${approvalId}`);
    const parked = await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    expect(parked.status).toBe('RUNNING');
    await waitForTask(fixture.server, id, () => fixture.server.worker!.activeCount === 0);
    const cs = (await fixture.server.call('GET', `/api/v1/tasks/${id}/control-state`)).body;
    expect(cs.awaiting_approval).toBe(true);
    const pending = (await fixture.server.call('GET', '/api/v1/approvals?status=pending')).body;
    expect(pending.approvals.map((a: any) => a.approval_id)).toContain(approvalId);

    const res = await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true, modified_action: { plan: 'B' }, approved_by: 'alice' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'sent', success: true, message: expect.any(String), workflow_id: id, approval_id: approvalId });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('COMPLETED');
    expect(t.output).toEqual({ shipped: true, action: { plan: 'B' } });
    expect(sideEffects.filter((s) => s === 'prepare')).toHaveLength(1);
    const again = await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: false });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('INVALID_TASK_STATE');
    const events = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['APPROVAL_REQUESTED', 'APPROVAL_DECISION', 'WORKFLOW_COMPLETED']));
    // approved_by is the caller's label; the event also records who actually called
    const me = (await fixture.server.call('GET', '/api/v1/auth/me')).body;
    expect(events.find((e) => e.type === 'APPROVAL_DECISION').payload).toMatchObject({ decided_by: 'alice', decided_by_principal: `api_key:${me.subject}` });
  });

  it("stores an executor's approval name, message and payload with a NUL or a lone surrogate (as U+FFFD), and a step's name too", async () => {
    const id = await submit({ task_definition_id: 'test-dirty-approval', input: {} });
    const ev = await waitForApprovalEvent(id);
    const listed = (await fixture.server.call('GET', '/api/v1/approvals?status=pending&limit=100')).body.approvals.find((a: any) => a.workflow_id === id);
    expect(listed).toMatchObject({ message: 'ship\ufffd it?', payload: { note: 'half \ufffd pair' } });
    const res = await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: ev.payload.approval_id, approved: true });
    expect(res.status).toBe(200);
    const t = await waitForTask(fixture.server, id);
    expect({ status: t.status, attempts: t.attempts, output: t.output }).toEqual({ status: 'COMPLETED', attempts: 1, output: { approved: true, paid: 'paid', info: { runs: 1, done: true } } });
  });

  it('context.require_approval gates a definition task; denial fails it with the feedback', async () => {
    const id = await submit({ task_definition_id: 'noop', input: {}, context: { require_approval: true } });
    const ev = await waitForApprovalEvent(id);
    await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: ev.payload.approval_id, approved: false, feedback: 'too risky' });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('FAILED');
    expect(t.error).toBe('approval denied: too risky');
  });

  it('the approval kind completes with the decision as output', async () => {
    const id = await submit({ task_definition_id: 'approval', input: { message: 'deploy v2?' } });
    const ev = await waitForApprovalEvent(id);
    await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: ev.payload.approval_id, approved: true, feedback: 'go', modified_action: { version: 'v2.1' } });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('COMPLETED');
    expect(t.output).toEqual({ approved: true, feedback: 'go', modified_action: { version: 'v2.1' }, approved_by: 'admin' });
  });

  it('the approval kind asks once even when its context (or definition) also requires an approval', async () => {
    const id = await submit({ task_definition_id: 'approval', input: { message: 'once?' }, context: { require_approval: true } });
    const ev = await waitForApprovalEvent(id);
    expect(ev.message).toContain('once?');
    await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: ev.payload.approval_id, approved: true });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('COMPLETED');
    const events = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events;
    expect(events.filter((e: any) => e.type === 'APPROVAL_REQUESTED')).toHaveLength(1);
  });

  it('a timeout denies with reason "approval timeout"', async () => {
    const def: TaskDefinition = { ...twoPhase, id: 'test-quick-timeout', approval: { required: true, timeout_ms: 50 } };
    fixture.server.registry.addDefinition(def);
    const id = await submit({ task_definition_id: 'test-quick-timeout', input: {} });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('FAILED');
    expect(t.error).toBe('approval denied: approval timeout');
  });

  it('a decision after the timeout does not win: 409, and the approval is denied with "approval timeout"', async () => {
    const id = await submit({ task_definition_id: 'test-two-phase', input: {} });
    const ev = await waitForApprovalEvent(id);
    const approvalId = ev.payload.approval_id;
    // its deadline passed a moment ago; the engine's sweep (every few seconds) has not denied it yet
    await fixture.tdb.db.query(`UPDATE approvals SET timeout_at = now() - interval '1 second' WHERE id = $1`, [approvalId]);
    const late = await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true });
    expect(late.status, late.text).toBe(409);
    expect(late.body.error).toMatchObject({ code: 'INVALID_TASK_STATE', details: { status: 'denied' } });
    const t = await waitForTask(fixture.server, id);
    expect({ status: t.status, output: t.output }).toEqual({ status: 'COMPLETED', output: { shipped: false, feedback: 'approval timeout' } });
    const listed = (await fixture.server.call('GET', '/api/v1/approvals?limit=100')).body.approvals.find((a: any) => a.approval_id === approvalId);
    expect(listed).toMatchObject({ status: 'denied', feedback: 'approval timeout', decided_by: 'system' });
  });

  it("ctx.waitForApproval's timeoutMs must be 1 ms to 30 days: another fails the task at once, asking nobody", async () => {
    const ids = await Promise.all([0, -5000, 1.5, 3e9, 1e15].map((t) => submit({ task_definition_id: 'test-own-timeout', input: { t } })));
    for (const [i, t] of [0, -5000, 1.5, 3e9, 1e15].entries()) {
      const done = await waitForTask(fixture.server, ids[i]!);
      expect({ status: done.status, attempts: done.attempts, error: done.error }).toEqual({
        status: 'FAILED', attempts: 1, error: `waitForApproval: timeoutMs must be an integer from 1 to 2592000000 (30 days), not ${String(t)}`,
      });
    }
    const asked = (await fixture.server.call('GET', '/api/v1/approvals?limit=100')).body.approvals.filter((a: any) => ids.includes(a.workflow_id));
    expect(asked).toEqual([]);
  });

  it('validates decisions: 400 missing ids, 404 unknown or foreign, cancel of a parked task', async () => {
    expect((await fixture.server.call('POST', '/api/v1/approvals/decision', { approved: true })).status).toBe(400);
    const id = await submit({ task_definition_id: 'approval', input: {} });
    const ev = await waitForApprovalEvent(id);
    expect((await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: '00000000-0000-0000-0000-000000000000', approved: true })).status).toBe(404);
    expect((await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: 'task_nope', approval_id: ev.payload.approval_id, approved: true })).status).toBe(404);
    const other = await newTenant(fixture.tdb.db);
    expect((await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: ev.payload.approval_id, approved: true }, { key: other.key })).status).toBe(404);
    expect((await fixture.server.call('GET', '/api/v1/approvals?status=pending', undefined, { key: other.key })).body.count).toBe(0);
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const c = await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, { reason: 'nobody home' });
    expect(c.body.status).toBe('CANCELLED');
    expect((await waitForTask(fixture.server, id)).status).toBe('CANCELLED');
  });

  it('pages: has_more says whether a page follows (count stays the page length), with limit and offset echoed', async () => {
    const t = await newTenant(fixture.tdb.db);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await submit({ task_definition_id: 'approval', input: { message: `page ${i}` } }, t.key));
    for (const id of ids) await waitForApprovalEvent(id, t.key);
    const page = async (q: string) => (await fixture.server.call('GET', `/api/v1/approvals?status=pending&${q}`, undefined, { key: t.key })).body;
    const first = await page('limit=2');
    expect(first).toMatchObject({ count: 2, has_more: true, limit: 2, offset: 0 });
    const second = await page('limit=2&offset=2');
    expect(second).toMatchObject({ count: 1, has_more: false, limit: 2, offset: 2 });
    expect(await page('limit=3')).toMatchObject({ count: 3, has_more: false });
    // newest request first, each approval on one page only
    expect([...first.approvals, ...second.approvals].map((a: any) => a.workflow_id).sort()).toEqual([...ids].sort());
    for (const id of ids) await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, {}, { key: t.key });
  });

  it("a task's end cancels its undecided approval: no longer pending, listed as cancelled, a decision is 409", async () => {
    const t = await newTenant(fixture.tdb.db, ['admin']);
    const id = await submit({ task_definition_id: 'approval', input: { message: 'still needed?' } }, t.key);
    const ev = await waitForApprovalEvent(id, t.key);
    const approvalId = ev.payload.approval_id as string;
    const list = async (status: string) => (await fixture.server.call('GET', `/api/v1/approvals?status=${status}`, undefined, { key: t.key })).body.approvals as any[];
    expect((await list('pending')).map((a) => a.approval_id)).toEqual([approvalId]);
    await waitForTask(fixture.server, id, (x) => x.status === 'RUNNING', { key: t.key });
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, {}, { key: t.key })).status).toBe(202);
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');

    expect(await list('pending')).toEqual([]);
    expect(await list('cancelled')).toMatchObject([{ approval_id: approvalId, workflow_id: id, status: 'cancelled' }]);
    const decide = await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true }, { key: t.key });
    expect(decide.status, decide.text).toBe(409);
    expect(decide.body.error.code).toBe('TASK_ALREADY_FINISHED');
    expect(decide.body.error.message).toContain('CANCELLED');
    // the refusal wrote it down; the task stays cancelled, with no decision event
    const row = await fixture.tdb.db.query<{ status: string }>('SELECT status FROM approvals WHERE id = $1', [approvalId]);
    expect(row.rows[0]!.status).toBe('cancelled');
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
    const events = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`, undefined, { key: t.key })).body.events as any[];
    expect(events.some((e) => e.type === 'APPROVAL_DECISION')).toBe(false);
  });

  it('the timeout sweep writes an ended task\'s approval cancelled, not denied, and decides nothing', async () => {
    const t = await newTenant(fixture.tdb.db, ['admin']);
    const def: TaskDefinition = { ...twoPhase, id: 'test-timeout-after-cancel', approval: { required: true, timeout_ms: 1_500 } };
    fixture.server.registry.addDefinition(def);
    const id = await submit({ task_definition_id: 'test-timeout-after-cancel', input: {} }, t.key);
    const ev = await waitForApprovalEvent(id, t.key);
    await waitForTask(fixture.server, id, (x) => x.status === 'RUNNING', { key: t.key });
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, {}, { key: t.key })).status).toBe(202);
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
    const stored = async () => (await fixture.tdb.db.query<{ status: string; feedback: string | null }>('SELECT status, feedback FROM approvals WHERE id = $1', [ev.payload.approval_id])).rows[0]!;
    const deadline = Date.now() + 20_000;
    while ((await stored()).status === 'pending' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await stored()).toEqual({ status: 'cancelled', feedback: null });
    expect((await waitForTask(fixture.server, id, undefined, { key: t.key })).status).toBe('CANCELLED');
  });
});
