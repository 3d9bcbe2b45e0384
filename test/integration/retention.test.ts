// Retention (TASKGATE_TASK_RETENTION): ended tasks older than the retention are deleted with their
// events, steps and approvals, in every tenant; live tasks, recent ones and live sessions stay.
// Rows are aged by moving their timestamps back, so nothing here waits for a clock.
import { describe, expect, it } from 'vitest';
import { newTenant, until, useTestServer, waitForTask } from '../helpers/server.js';
import { RetentionSweeper } from '../../src/engine/retention.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { failingDef, gatedDef } from '../streaming/helpers.js';

const stepped: TaskDefinition = {
  id: 'test-retention-steps', name: 'steps and an approval', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, ctx) {
    await ctx.step('one', () => 1);
    const d = await ctx.waitForApproval({ name: 'go', message: 'go?' });
    return { approved: d.approved };
  },
};

const fixture = useTestServer(
  { TASKGATE_TASK_RETENTION: '1d', TASKGATE_RETENTION_INTERVAL_MS: '3600000' },
  { definitions: [failingDef, gatedDef, stepped], flags: { concurrency: '4' } },
);
const db = () => fixture.tdb.db;
const DAY_MS = 86_400_000;

/** Moves the tasks' timestamps `days` back, as if they had been created and ended then. */
async function age(ids: string[], days = 2): Promise<void> {
  await db().query(
    `UPDATE tasks SET created_at = created_at - $2 * interval '1 day', completed_at = completed_at - $2 * interval '1 day' WHERE id = ANY ($1)`,
    [ids, days],
  );
}

async function count(table: string, taskId: string): Promise<number> {
  const res = await db().query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE task_id = $1`, [taskId]);
  return res.rows[0]!.n;
}

async function completedNoop(key?: string): Promise<string> {
  const id = await fixture.server.submit({ task_definition_id: 'noop', input: {} }, { key });
  expect((await waitForTask(fixture.server, id, undefined, { key })).status).toBe('COMPLETED');
  return id;
}

describe('retention', () => {
  it('deletes ended tasks past the retention with their events, steps and approvals, in every tenant', async () => {
    const other = await newTenant(db());
    const old = await completedNoop();
    const recent = await completedNoop();
    const failed = await fixture.server.submit({ task_definition_id: failingDef.id, input: {} });
    expect((await waitForTask(fixture.server, failed)).status).toBe('FAILED');
    const otherOld = await completedNoop(other.key);
    const otherRecent = await completedNoop(other.key);

    // steps and an approval, decided, so the task completes
    const approved = await fixture.server.submit({ task_definition_id: stepped.id, input: {} });
    let approvalId: string | undefined;
    await until(async () => {
      const res = await fixture.server.call('GET', '/api/v1/approvals?status=pending');
      approvalId = res.body.approvals.find((a: any) => a.workflow_id === approved)?.approval_id;
      return approvalId !== undefined;
    }, 'the approval request');
    const decided = await fixture.server.call('POST', '/api/v1/approvals/decision', { workflow_id: approved, approval_id: approvalId, approved: true });
    expect(decided.status).toBe(200);
    expect((await waitForTask(fixture.server, approved)).status).toBe('COMPLETED');
    expect(await count('task_steps', approved)).toBeGreaterThan(0);
    expect(await count('approvals', approved)).toBe(1);

    // a live task stays whatever its age
    const running = await fixture.server.submit({ task_definition_id: gatedDef.id, input: { key: `retention-${Date.now()}` } });
    await waitForTask(fixture.server, running, (t) => t.status === 'RUNNING');

    await age([old, failed, otherOld, approved, running]);
    const swept = await fixture.server.retention!.sweepOnce();
    expect(swept.tasks).toBe(4);

    for (const [id, key] of [[old], [failed], [approved], [otherOld, other.key]] as [string, string?][]) {
      expect((await fixture.server.call('GET', `/api/v1/tasks/${id}`, undefined, { key })).status).toBe(404);
      expect((await fixture.server.call('GET', `/api/v1/tasks/${id}/events`, undefined, { key })).status).toBe(404);
      expect(await count('task_events', id)).toBe(0);
    }
    expect(await count('task_steps', approved)).toBe(0);
    expect(await count('approvals', approved)).toBe(0);
    for (const [id, key] of [[recent], [otherRecent, other.key], [running]] as [string, string?][]) {
      expect((await fixture.server.call('GET', `/api/v1/tasks/${id}`, undefined, { key })).status).toBe(200);
      expect(await count('task_events', id)).toBeGreaterThan(0);
    }
    const metrics = await fixture.server.call('GET', '/metrics');
    expect(metrics.text).toMatch(/taskgate_retention_deleted_total\{kind="tasks"\} [1-9]/);

    // a second sweep finds nothing more
    expect(await fixture.server.retention!.sweepOnce()).toEqual({ tasks: 0, sessions: 0 });
    expect((await fixture.server.call('POST', `/api/v1/tasks/${running}/cancel`, {})).status).toBe(202);
    await waitForTask(fixture.server, running);
  });

  it('deletes soft-deleted sessions past the retention and keeps live ones', async () => {
    const { key } = await newTenant(db());
    const removed = `sess-removed-${Date.now()}`;
    const live = `sess-live-${Date.now()}`;
    for (const session_id of [removed, live]) {
      const id = await fixture.server.submit({ task_definition_id: 'noop', input: {}, session_id }, { key });
      await waitForTask(fixture.server, id, undefined, { key });
    }
    expect((await fixture.server.call('DELETE', `/api/v1/sessions/${removed}`, undefined, { key })).status).toBe(204);
    await db().query(`UPDATE sessions SET deleted_at = deleted_at - interval '2 days', created_at = created_at - interval '2 days'`);
    // and a session removed a moment ago stays until its day has passed
    const fresh = `sess-fresh-${Date.now()}`;
    await waitForTask(fixture.server, await fixture.server.submit({ task_definition_id: 'noop', input: {}, session_id: fresh }, { key }), undefined, { key });
    expect((await fixture.server.call('DELETE', `/api/v1/sessions/${fresh}`, undefined, { key })).status).toBe(204);

    const swept = await fixture.server.retention!.sweepOnce();
    expect(swept.sessions).toBe(1);
    const left = await db().query<{ id: string }>('SELECT id FROM sessions WHERE id = ANY ($1) ORDER BY id', [[removed, live, fresh]]);
    expect(left.rows.map((r) => r.id).sort()).toEqual([fresh, live].sort());
    expect((await fixture.server.call('GET', `/api/v1/sessions/${live}`, undefined, { key })).status).toBe(200);
  });

  it('drains a backlog in batches and runs on its own timer until stopped', async () => {
    const { key } = await newTenant(db());
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await completedNoop(key));
    await age(ids, 3);
    const batches: number[] = [];
    const sweeper = new RetentionSweeper(
      { retentionMs: 2 * DAY_MS, intervalMs: 50, batchSize: 2, batchPauseMs: 1 },
      { db: db(), onDeleted: (kind, n) => kind === 'tasks' && batches.push(n) },
    );
    sweeper.start();
    await until(async () => (await db().query('SELECT 1 FROM tasks WHERE id = ANY ($1)', [ids])).rows.length === 0, 'the sweeper to delete the aged tasks');
    await sweeper.stop();
    expect(batches.slice(0, 3)).toEqual([2, 2, 1]);
    // stopped: a task aged now stays
    const later = await completedNoop(key);
    await age([later], 3);
    await new Promise((r) => setTimeout(r, 200));
    expect((await fixture.server.call('GET', `/api/v1/tasks/${later}`, undefined, { key })).status).toBe(200);
    await sweeper.stop(); // idempotent
  });
});
