// Fairness between tenants end to end, over HTTP on a real server (PGlite, or PostgreSQL with
// DATABASE_URL): a tenant that queued a backlog does not make another tenant's task wait behind
// it (two slots, tenant A fills them and queues 28 more; tenant B's one task takes the next slot
// that frees — before, B waited for all 28), and a tenant's max_running caps its running tasks.
import { describe, expect, it } from 'vitest';
import { newTenant, until, useTestServer, waitForTask, type TestServer } from '../helpers/server.js';

const ctx = useTestServer({}, { flags: { concurrency: '2' } });
// polls 10 minutes apart: whatever runs here was started by a hint or a completion, not a poll
const quiet = useTestServer({ TASKGATE_POLL_INTERVAL_MS: '600000' }, { flags: { concurrency: '2' } });
// dev mode: every request is the default tenant's anonymous principal
const open = useTestServer({ TASKGATE_AUTH_DISABLED: 'true' }, { flags: { concurrency: '2' } });

/** Submits `n` sleeps of `ms` at once and returns the most of the tenant's tasks seen RUNNING together. */
async function mostRunning(server: TestServer, tenantId: string, key: string | undefined, n: number, ms: number): Promise<number> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await server.submit({ task_definition_id: 'sleep', input: { ms } }, key ? { key } : {}));
  let most = 0;
  let done = false;
  const watch = (async () => {
    while (!done) {
      const res = await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE tenant_id = $1 AND status = 'RUNNING'`, [tenantId]);
      most = Math.max(most, res.rows[0]!.n);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    for (const id of ids) expect((await waitForTask(server, id, undefined, { ...(key ? { key } : {}), timeoutMs: 30_000 })).status).toBe('COMPLETED');
  } finally {
    done = true;
    await watch;
  }
  return most;
}

describe('tenant fairness', () => {
  it("another tenant's task takes the next free slot instead of waiting behind a backlog", async () => {
    const { server, tdb } = ctx;
    const a = await newTenant(tdb.db);
    const b = await newTenant(tdb.db);
    const backlog: string[] = [];
    for (let i = 0; i < 30; i++) backlog.push(await server.submit({ task_definition_id: 'sleep', input: { ms: 250 } }, { key: a.key }));
    const late = await server.submit({ task_definition_id: 'sleep', input: { ms: 10 } }, { key: b.key });
    const done = await waitForTask(server, late, undefined, { key: b.key, timeoutMs: 30_000 });
    expect(done.status).toBe('COMPLETED');

    // A's tasks that started after B's was submitted and before it started: at most the one that
    // took the other slot freed at the same moment (FIFO order started all 28 queued first)
    const res = await tdb.db.query<{ n: number; waiting: number }>(
      `SELECT count(*) FILTER (WHERE a.started_at > b.created_at AND a.started_at < b.started_at)::int AS n,
              count(*) FILTER (WHERE a.started_at IS NULL OR a.started_at > b.created_at)::int AS waiting
         FROM tasks a, tasks b WHERE a.id = ANY ($1) AND b.id = $2`,
      [backlog, late],
    );
    expect(res.rows[0]!.n).toBeLessThanOrEqual(1);
    // (and the case was the one meant: A still had a backlog waiting when B submitted)
    expect(res.rows[0]!.waiting).toBeGreaterThanOrEqual(5);
    for (const id of backlog) await waitForTask(server, id, undefined, { key: a.key, timeoutMs: 30_000 });
  });

  it("a tenant's max_running caps its tasks RUNNING at once, idle slots or not", async () => {
    const { server, tdb } = ctx;
    const created = await server.call('POST', '/api/v1/admin/tenants', { name: 'capped', max_running: 1 });
    expect(created.status).toBe(201);
    expect(created.body.max_running).toBe(1);
    const tenantId = created.body.tenant_id as string;
    const minted = await server.call('POST', `/api/v1/admin/tenants/${tenantId}/api-keys`, { name: 'k', scopes: ['tasks:execute', 'tasks:read'] });
    const key = minted.body.key as string;
    // both slots idle: without the cap two of these would be dispatched at once
    expect(await mostRunning(server, tenantId, key, 5, 120)).toBe(1);

    expect((await server.call('PATCH', `/api/v1/admin/tenants/${tenantId}`, { max_running: 0 })).status).toBe(400);
    const cleared = await server.call('PATCH', `/api/v1/admin/tenants/${tenantId}`, { max_running: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.max_running).toBeNull();
    expect((await server.call('GET', `/api/v1/admin/tenants/${tenantId}`)).body.max_running).toBeNull();
  });

  it("a task waiting for an approval holds no slot of its tenant's cap: the tenant's next task runs", async () => {
    const { server } = ctx;
    const created = await server.call('POST', '/api/v1/admin/tenants', { name: 'capped-approvals', max_running: 1 });
    const tenantId = created.body.tenant_id as string;
    const key = (await server.call('POST', `/api/v1/admin/tenants/${tenantId}/api-keys`, { name: 'k', scopes: ['tasks:execute', 'tasks:read'] })).body.key as string;
    const waiting = await server.submit({ task_definition_id: 'noop', input: {}, context: { require_approval: true } }, { key });
    await until(async () => (await server.call('GET', `/api/v1/tasks/${waiting}/control-state`, undefined, { key })).body.awaiting_approval === true, 'the approval request');
    // it waited QUEUED until the approval was decided or timed out (60 min)
    const next = await server.submit({ task_definition_id: 'noop', input: {} }, { key });
    expect((await waitForTask(server, next, undefined, { key, timeoutMs: 10_000 })).status).toBe('COMPLETED');
    expect((await server.call('GET', `/api/v1/tasks/${waiting}`, undefined, { key })).body.status).toBe('RUNNING');
  });

  it('a cap set on a tenant already submitting holds from its next submit on', async () => {
    const { server, tdb } = ctx;
    const t = await newTenant(tdb.db);
    // no cap: both idle slots take its tasks at once (dispatched directly). At least 2, not exactly:
    // a slot frees when its handler returns, before the outcome commits, so for a moment a third
    // task can be RUNNING beside one whose COMPLETED is still in its group commit
    expect(await mostRunning(server, t.tenantId, t.key, 4, 400)).toBeGreaterThanOrEqual(2);
    expect((await server.call('PATCH', `/api/v1/admin/tenants/${t.tenantId}`, { max_running: 1 })).status).toBe(200);
    expect(await mostRunning(server, t.tenantId, t.key, 4, 120)).toBe(1);
  });

  it("a cap set while a tenant's task runs holds its next task until that one ends, then starts it at once", async () => {
    const { server, tdb } = quiet;
    const t = await newTenant(tdb.db);
    const first = await server.submit({ task_definition_id: 'sleep', input: { ms: 300 } }, { key: t.key });
    await waitForTask(server, first, (x) => x.status === 'RUNNING', { key: t.key });
    expect((await server.call('PATCH', `/api/v1/admin/tenants/${t.tenantId}`, { max_running: 1 })).status).toBe(200);
    // a slot is free, but the cap is full: it waits, and no poll comes for 10 minutes
    const second = await server.submit({ task_definition_id: 'sleep', input: { ms: 10 } }, { key: t.key });
    const [a, b] = [await waitForTask(server, first, undefined, { key: t.key }), await waitForTask(server, second, undefined, { key: t.key, timeoutMs: 30_000 })];
    expect(b.status).toBe('COMPLETED');
    expect(Date.parse(b.started_at)).toBeGreaterThanOrEqual(Date.parse(a.completed_at));
  });

  it('a cap this process has not heard of (set by another process, its hint not yet here) holds all the same', async () => {
    const { server, tdb } = quiet;
    const t = await newTenant(tdb.db);
    await until(() => server.worker!.dispatchesDirectly(t.tenantId), 'the first read of the caps');
    // written straight to the table, as another process's PATCH would be before its NOTIFY arrives
    // (and no poll re-reads the caps for 10 minutes): the insert itself reads the cap
    await tdb.db.query('UPDATE tenants SET max_running = 1 WHERE id = $1', [t.tenantId]);
    expect(await mostRunning(server, t.tenantId, t.key, 4, 150)).toBe(1);
  });

  it('caps hold in dev mode too (auth off: the anonymous principal of the default tenant)', async () => {
    const { server } = open;
    expect((await server.call('PATCH', '/api/v1/admin/tenants/default', { max_running: 1 }, { key: null })).status).toBe(200);
    expect(await mostRunning(server, 'default', undefined, 4, 120)).toBe(1);
  });

  it('a tenant signalled as changed is not dispatched directly until a read begun after the signal', async () => {
    const { server } = ctx;
    const worker = server.worker!;
    await until(() => worker.dispatchesDirectly('ten_unchanged'), 'the first read of the caps');
    // e.g. a cap set a moment ago in another process: no submit of its may go past it meanwhile
    server.signals.tenant('ten_unchanged');
    expect(worker.dispatchesDirectly('ten_unchanged')).toBe(false);
    await until(() => worker.dispatchesDirectly('ten_unchanged'), 'the read after the signal');
  });

  it("a capped tenant's next task starts when one of its running tasks ends, not at the next poll", async () => {
    const { server } = quiet;
    const created = await server.call('POST', '/api/v1/admin/tenants', { name: 'capped-quiet', max_running: 1 });
    const minted = await server.call('POST', `/api/v1/admin/tenants/${created.body.tenant_id}/api-keys`, {
      name: 'k', scopes: ['tasks:execute', 'tasks:read'],
    });
    const key = minted.body.key as string;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await server.submit({ task_definition_id: 'sleep', input: { ms: 50 } }, { key }));
    // the first is claimed on its submit's hint; each later one only on the completion before it
    for (const id of ids) expect((await waitForTask(server, id, undefined, { key, timeoutMs: 30_000 })).status).toBe('COMPLETED');
  });
});
