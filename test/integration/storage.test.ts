// Storage and queue semantics on a real database: migrations, CHECK constraints, claim order,
// SKIP LOCKED under concurrent claimers, fenced writes, heartbeats and the lease reaper.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { migrate, latestVersion, SchemaTooNewError } from '../../src/storage/migrate.js';
import { tasksInsertMany, tasksGetById, type NewTask } from '../../src/storage/queries/tasks.js';
import {
  tasksClaimAvailable, tasksCompleteMany, tasksHeartbeat, tasksLockAvailable, tasksStartLocked, tasksTransition, sql,
} from '../../src/storage/queries/transitions.js';
import { tenantsInsert } from '../../src/storage/queries/tenants.js';
import { eventsList } from '../../src/storage/queries/events.js';
import { stepsFinish, stepsLoad, stepsStart } from '../../src/storage/queries/steps.js';
import { newTaskId, newTenantId } from '../../src/domain/ids.js';
import { EventHub } from '../../src/events/hub.js';
import { Signals } from '../../src/events/signals.js';
import { LeaseReaper } from '../../src/engine/lease-reaper.js';

let tdb: TestDb;
let tenant: string;

const newTask = (over: Partial<NewTask> = {}): NewTask => ({
  id: newTaskId(), tenant_id: tenant, user_id: 'u', session_id: null, kind: 'definition', task_definition_id: 'noop',
  query: '', input: {}, context: {}, options: {}, mode: null, priority: 2, max_attempts: 2, retry_interval_ms: 10,
  backoff_multiplier: 2, timeout_ms: 1000, run_at: null, metadata: {}, tags: [], workflow_instance_id: null, ...over,
});
const silent = { info() {}, warn() {}, error() {} };

beforeAll(async () => {
  tdb = await openTestDb();
  tenant = newTenantId();
  await tenantsInsert(tdb.db, { id: tenant, name: 't' });
});
afterAll(async () => tdb?.close());

/** Claims everything runnable in this test's isolation: drain leftovers first. */
async function drain(): Promise<void> {
  while ((await tasksClaimAvailable(tdb.db, { limit: 100, owner: 'drain', leaseMs: 60_000 })).length > 0);
}

describe('migrations', () => {
  it('are idempotent and recorded', async () => {
    expect(await migrate(tdb.db)).toEqual([]);
    const res = await tdb.db.query<{ version: number }>('SELECT version FROM taskgate_migrations ORDER BY version');
    expect(res.rows.map((r) => r.version).at(-1)).toBe(latestVersion());
  });

  it('refuse a database newer than the code', async () => {
    await tdb.db.query("INSERT INTO taskgate_migrations (version, name) VALUES (9999, 'future')");
    await expect(migrate(tdb.db)).rejects.toBeInstanceOf(SchemaTooNewError);
    await tdb.db.query('DELETE FROM taskgate_migrations WHERE version = 9999');
  });
});

describe('transactions', () => {
  // on PostgreSQL BEGIN leaves with the first statement and commitEarly() pipelines the COMMIT
  // behind the statements in flight: the outcome must be exactly that of one statement at a time
  const make = () => tdb.db.exec('CREATE TABLE IF NOT EXISTS tx_probe (k text PRIMARY KEY, v int NOT NULL)');
  const get = async (k: string) => (await tdb.db.query<{ v: number }>('SELECT v FROM tx_probe WHERE k = $1', [k])).rows[0]?.v;

  it('statements issued together, then commitEarly: all committed, visible once transaction() resolves', async () => {
    await make();
    const out = await tdb.db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1, 1)', ['a1']);
      const b = tx.query('INSERT INTO tx_probe VALUES ($1, 2)', ['a2']);
      const c = tx.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_probe WHERE k LIKE $1', ['a%']);
      tx.commitEarly();
      await b;
      return (await c).rows[0]!.n;
    });
    expect(out).toBe(2);
    expect([await get('a1'), await get('a2')]).toEqual([1, 2]);
  });

  it('a statement failing behind commitEarly rolls the whole transaction back and rejects', async () => {
    await make();
    const run = tdb.db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1, 1)', ['b1']);
      const ok = tx.query('INSERT INTO tx_probe VALUES ($1, 2)', ['b2']);
      const bad = tx.query('INSERT INTO tx_probe VALUES ($1, NULL)', ['b3']); // NOT NULL violation
      tx.commitEarly();
      await Promise.all([ok, bad]);
    });
    await expect(run).rejects.toThrow(/null value/);
    expect([await get('b1'), await get('b2'), await get('b3')]).toEqual([undefined, undefined, undefined]);
    // the connection went back to the pool usable
    await tdb.db.transaction(async (tx) => void (await tx.query('INSERT INTO tx_probe VALUES ($1, 4)', ['b4'])));
    expect(await get('b4')).toBe(4);
  });

  it('a failed statement the function swallowed still fails the commit (nothing half-written)', async () => {
    if (tdb.db.kind === 'pglite') return; // PGlite aborts on the failing statement itself; covered above
    await make();
    const run = tdb.db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1, 1)', ['c1']);
      await tx.query('INSERT INTO tx_probe VALUES ($1, 1)', ['c1']).catch(() => undefined); // duplicate key, ignored
      tx.commitEarly();
    });
    await expect(run).rejects.toThrow(/ROLLBACK, not COMMIT/);
    expect(await get('c1')).toBeUndefined();
  });

  it('no statement may follow commitEarly; a transaction without statements commits nothing and resolves', async () => {
    await make();
    const run = tdb.db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1, 1)', ['d1']);
      tx.commitEarly();
      await tx.query('INSERT INTO tx_probe VALUES ($1, 2)', ['d2']);
    });
    if (tdb.db.kind === 'pg') {
      await expect(run).rejects.toThrow(/after commitEarly/);
      // the COMMIT was already on its way: d1 is committed, d2 never sent
      expect([await get('d1'), await get('d2')]).toEqual([1, undefined]);
    } else await run; // PGlite commits when the function returns
    await expect(tdb.db.transaction(async () => 7)).resolves.toBe(7);
  });
});

describe('tasks table', () => {
  it('enforces the status set with a CHECK constraint', async () => {
    const [row] = await tasksInsertMany(tdb.db, [newTask({ run_at: new Date(Date.now() + 3_600_000) })]);
    await expect(tdb.db.query("UPDATE tasks SET status = 'BOGUS' WHERE id = $1", [row!.id])).rejects.toThrow(/check/i);
  });

  it('claims urgent first, then oldest', async () => {
    await drain();
    const base = Date.now() - 10_000;
    const tasks = [
      newTask({ priority: 3, run_at: new Date(base) }), // low, oldest
      newTask({ priority: 2, run_at: new Date(base + 1) }),
      newTask({ priority: 0, run_at: new Date(base + 3) }), // urgent, newest
      newTask({ priority: 1, run_at: new Date(base + 2) }),
      newTask({ priority: 2, run_at: new Date(base + 0) }), // medium, older than the other medium
    ];
    await tasksInsertMany(tdb.db, tasks);
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [c] = await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'w', leaseMs: 60_000 });
      order.push(c!.task.id);
    }
    expect(order).toEqual([tasks[2]!.id, tasks[3]!.id, tasks[4]!.id, tasks[1]!.id, tasks[0]!.id]);
  });

  it('never hands one task to two concurrent claimers (SKIP LOCKED)', async () => {
    await drain();
    await tasksInsertMany(tdb.db, Array.from({ length: 200 }, () => newTask()));
    const claimers = Array.from({ length: 8 }, (_, i) =>
      (async () => {
        const mine: string[] = [];
        for (;;) {
          const got = await tasksClaimAvailable(tdb.db, { limit: 7, owner: `w${i}`, leaseMs: 60_000 });
          if (got.length === 0) return mine;
          mine.push(...got.map((g) => g.task.id));
        }
      })(),
    );
    const all = (await Promise.all(claimers)).flat();
    expect(all).toHaveLength(200);
    expect(new Set(all).size).toBe(200);
  });

  it('fences outcome writes on attempt and lease owner: a zombie cannot overwrite a newer attempt', async () => {
    await drain();
    const [t] = await tasksInsertMany(tdb.db, [newTask({ max_attempts: 3 })]);
    const [first] = await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'zombie', leaseMs: 1 });
    expect(first!.task.attempt).toBe(1);
    // the lease expires and the reaper requeues it; another worker claims attempt 2
    await new Promise((r) => setTimeout(r, 10));
    const hub = new EventHub(tdb.db, { crossProcess: false });
    const reaper = new LeaseReaper({ db: tdb.db, hub, signals: new Signals(tdb.db, { crossProcess: false }), intervalMs: 1000, log: silent });
    expect(await reaper.reapOnce()).toBeGreaterThanOrEqual(1);
    const [second] = await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'fresh', leaseMs: 60_000 });
    expect(second!.task.id).toBe(t!.id);
    expect(second!.task.attempt).toBe(2);
    // the zombie wakes up and tries to complete attempt 1
    const lost = await tasksTransition(tdb.db, { id: t!.id, statuses: ['RUNNING'], attempt: 1, leaseOwner: 'zombie' }, { status: 'COMPLETED', completed_at: sql('now()') }, [{ type: 'WORKFLOW_COMPLETED' }]);
    expect(lost).toBeUndefined();
    expect(await stepsStart(tdb.db, { taskId: t!.id, name: 's', attempt: 1, owner: 'zombie' })).toBeUndefined();
    // its heartbeat does not renew anything either
    expect(await tasksHeartbeat(tdb.db, { owner: 'zombie', leaseMs: 60_000, tasks: [{ id: t!.id, attempt: 1 }] })).toEqual([]);
    const won = await tasksTransition(tdb.db, { id: t!.id, statuses: ['RUNNING'], attempt: 2, leaseOwner: 'fresh' }, { status: 'COMPLETED', lease_owner: null, completed_at: sql('now()') }, [{ type: 'WORKFLOW_COMPLETED' }, { type: 'STREAM_END' }]);
    expect(won?.task.status).toBe('COMPLETED');
    const events = await eventsList(tdb.db, { tenantId: tenant, taskId: t!.id, limit: 100 });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => e.type)).toEqual(['WORKFLOW_STARTED', 'WARNING', 'RETRYING', 'WORKFLOW_STARTED', 'WORKFLOW_COMPLETED', 'STREAM_END']);
  });

  it('completes a batch in one statement: each row its own outcome, fenced on attempt and owner, events as stored', async () => {
    await drain();
    const tasks = Array.from({ length: 6 }, (_, i) => newTask({ metadata: { keep: i } }));
    await tasksInsertMany(tdb.db, tasks);
    const claimed = await tasksClaimAvailable(tdb.db, { limit: 6, owner: 'cm', leaseMs: 60_000 });
    expect(claimed).toHaveLength(6);
    const [a, b, c, d, e, f] = tasks.map((t) => claimed.find((x) => x.task.id === t.id)!);
    // the claim's event as returned is the event as stored
    const storedStart = await eventsList(tdb.db, { tenantId: tenant, taskId: a!.task.id, limit: 10 });
    expect(storedStart.map((x) => [x.seq, x.type, x.message, x.payload])).toEqual(a!.events.map((x) => [x.seq, x.type, x.message, x.payload]));
    const base = { result: null, usage: null, model_used: null, provider: null, metadata: null, duration_ms: 7 };
    const written = await tasksCompleteMany(tdb.db, 'cm', [
      { ...base, id: a!.task.id, attempt: 1, output: { n: 1, s: 'x"y\\z' }, usage: { total_tokens: 12 }, model_used: 'm', provider: 'p' },
      { ...base, id: b!.task.id, attempt: 1, output: 'text', result: 'done', metadata: { extra: true } },
      { ...base, id: c!.task.id, attempt: 1, output: false },
      { ...base, id: d!.task.id, attempt: 1, output: null },
      { ...base, id: e!.task.id, attempt: 2, output: 1 }, // wrong attempt: fenced out
      { ...base, id: f!.task.id, attempt: 1, output: 1 },
    ]);
    // the right attempt under another worker id: fenced out too
    expect(await tasksCompleteMany(tdb.db, 'someone-else', [{ ...base, id: e!.task.id, attempt: 1, output: 1 }])).toEqual(new Map());
    expect([...written.keys()].sort()).toEqual([a, b, c, d, f].map((x) => x!.task.id).sort());
    const row = async (id: string) => (await tasksGetById(tdb.db, id))!;
    const ra = await row(a!.task.id);
    expect([ra.status, ra.output, ra.usage, ra.model_used, ra.provider, ra.lease_owner, ra.metadata]).toEqual(['COMPLETED', { n: 1, s: 'x"y\\z' }, { total_tokens: 12 }, 'm', 'p', null, { keep: 0 }]);
    const rb = await row(b!.task.id);
    expect([rb.output, rb.result, rb.metadata]).toEqual(['text', 'done', { keep: 1, extra: true }]);
    expect((await row(c!.task.id)).output).toBe(false);
    expect((await row(d!.task.id)).output).toBeNull();
    expect((await row(e!.task.id)).status).toBe('RUNNING');
    // the events returned are the events stored, seq after the claim's
    const stored = await eventsList(tdb.db, { tenantId: tenant, taskId: a!.task.id, limit: 10 });
    expect(stored.map((x) => [x.seq, x.type, x.message, x.payload])).toEqual([
      [1, 'WORKFLOW_STARTED', 'Task started (attempt 1)', { attempt: 1, worker_id: 'cm' }],
      [2, 'WORKFLOW_COMPLETED', 'Task completed', { duration_ms: 7, attempt: 1 }],
      [3, 'STREAM_END', 'Stream ended', { status: 'COMPLETED' }],
    ]);
    expect(written.get(a!.task.id)!.map((x) => [x.seq, x.type, x.message, x.payload])).toEqual(stored.slice(1).map((x) => [x.seq, x.type, x.message, x.payload]));
    expect(new Date(written.get(a!.task.id)![0]!.created_at).getTime()).toBe(new Date(stored[1]!.created_at).getTime());
  });

  it('claim window statements: lock without writing, then COMPLETED with all three events or RUNNING under the lease, in one transaction', async () => {
    await drain();
    const tasks = Array.from({ length: 4 }, (_, i) => newTask({ metadata: { keep: i } }));
    await tasksInsertMany(tdb.db, tasks);
    const base = { result: null, usage: null, model_used: null, provider: null, metadata: null, duration_ms: 3 };
    const out = await tdb.db.transaction(async (tx) => {
      const locked = await tasksLockAvailable(tx, 3);
      expect(locked).toHaveLength(3);
      // the attempt about to run, from the row as it is (nothing written yet)
      expect(locked.map((t) => [t.attempt, t.last_seq, t.has_steps])).toEqual([[1, 0, false], [1, 0, false], [1, 0, false]]);
      const [a, b, c] = locked;
      const completed = await tasksCompleteMany(tx, 'win', [
        { ...base, id: a!.id, attempt: 1, output: { ok: 'a"\\' }, metadata: { extra: 1 } },
        { ...base, id: b!.id, attempt: 2, output: 1 }, // not the locked attempt: fenced out
      ], { locked: true });
      const started = await tasksStartLocked(tx, { ids: [c!.id], owner: 'win', leaseMs: 60_000 });
      return { a: a!, b: b!, c: c!, completed, started };
    });
    expect([...out.completed.keys()]).toEqual([out.a.id]);
    const ra = (await tasksGetById(tdb.db, out.a.id))!;
    expect([ra.status, ra.attempt, ra.output, ra.metadata, ra.last_worker, ra.lease_owner, ra.last_seq]).toEqual(['COMPLETED', 1, { ok: 'a"\\' }, { keep: tasks.findIndex((t) => t.id === out.a.id), extra: 1 }, 'win', null, 3]);
    expect(ra.started_at).not.toBeNull();
    expect(new Date(ra.completed_at!).getTime()).toBeGreaterThanOrEqual(new Date(ra.started_at!).getTime());
    // the events returned are the events stored: started (at the claim), completed, stream end
    const stored = await eventsList(tdb.db, { tenantId: tenant, taskId: out.a.id, limit: 10 });
    expect(stored.map((x) => [x.seq, x.type, x.message, x.payload])).toEqual([
      [1, 'WORKFLOW_STARTED', 'Task started (attempt 1)', { attempt: 1, worker_id: 'win' }],
      [2, 'WORKFLOW_COMPLETED', 'Task completed', { duration_ms: 3, attempt: 1 }],
      [3, 'STREAM_END', 'Stream ended', { status: 'COMPLETED' }],
    ]);
    const returned = out.completed.get(out.a.id)!;
    expect(returned.map((x) => [x.seq, x.type, x.message, x.payload, new Date(x.created_at).getTime()])).toEqual(
      stored.map((x) => [x.seq, x.type, x.message, x.payload, new Date(x.created_at).getTime()]),
    );
    // fenced out: still QUEUED at attempt 0, nothing written
    const rb = (await tasksGetById(tdb.db, out.b.id))!;
    expect([rb.status, rb.attempt, rb.last_seq]).toEqual(['QUEUED', 0, 0]);
    // started: RUNNING under the lease, as a claim writes it
    const rc = (await tasksGetById(tdb.db, out.c.id))!;
    expect([rc.status, rc.attempt, rc.lease_owner, rc.last_seq]).toEqual(['RUNNING', 1, 'win', 1]);
    expect(new Date(rc.lease_expires_at!).getTime()).toBeGreaterThan(Date.now() + 30_000);
    expect((await eventsList(tdb.db, { tenantId: tenant, taskId: out.c.id, limit: 10 })).map((x) => [x.seq, x.type, x.payload])).toEqual([
      [1, 'WORKFLOW_STARTED', { attempt: 1, worker_id: 'win' }],
    ]);
    expect(out.started.get(out.c.id)).toMatchObject({ seq: 1, type: 'WORKFLOW_STARTED', payload: { attempt: 1, worker_id: 'win' } });
    // its completion is now an ordinary leased one
    expect((await tasksCompleteMany(tdb.db, 'win', [{ ...base, id: out.c.id, attempt: 1, output: 2 }])).get(out.c.id)!.map((e) => e.seq)).toEqual([2, 3]);
  });

  it('a claim window that rolls back leaves its tasks as they were, and other claimers skip them while it is open', async () => {
    await drain();
    const tasks = Array.from({ length: 3 }, () => newTask());
    await tasksInsertMany(tdb.db, tasks);
    const failed = tdb.db.transaction(async (tx) => {
      const locked = await tasksLockAvailable(tx, 2);
      expect(locked).toHaveLength(2);
      // PGlite has one connection: a concurrent claimer would wait for this transaction
      if (tdb.db.kind === 'pg') {
        const other = await tasksClaimAvailable(tdb.db, { limit: 10, owner: 'other', leaseMs: 60_000 });
        expect(other.map((o) => o.task.id).filter((id) => locked.some((l) => l.id === id))).toEqual([]);
        expect(other).toHaveLength(1);
      }
      await tasksCompleteMany(tx, 'win', locked.map((l) => ({ id: l.id, attempt: l.attempt, output: 1, result: null, usage: null, model_used: null, provider: null, metadata: null, duration_ms: 1 })), { locked: true });
      throw new Error('commit fails');
    });
    await expect(failed).rejects.toThrow('commit fails');
    const rows = await Promise.all(tasks.map((t) => tasksGetById(tdb.db, t.id)));
    const untouched = rows.filter((r) => r!.status === 'QUEUED');
    expect(untouched.length).toBe(tdb.db.kind === 'pg' ? 2 : 3);
    for (const r of untouched) expect([r!.attempt, r!.last_seq, r!.started_at]).toEqual([0, 0, null]);
    for (const r of untouched) expect(await eventsList(tdb.db, { tenantId: tenant, taskId: r!.id, limit: 10 })).toEqual([]);
  });

  it('reaper fails a task whose last attempt lost its lease', async () => {
    await drain();
    const [t] = await tasksInsertMany(tdb.db, [newTask({ max_attempts: 1 })]);
    await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'dead', leaseMs: 1 });
    await new Promise((r) => setTimeout(r, 10));
    const hub = new EventHub(tdb.db, { crossProcess: false });
    await new LeaseReaper({ db: tdb.db, hub, signals: new Signals(tdb.db, { crossProcess: false }), intervalMs: 1000, log: silent }).reapOnce();
    const row = await tasksGetById(tdb.db, t!.id);
    expect(row?.status).toBe('FAILED');
    expect(row?.error).toContain('lease expired');
  });

  it('reaper: a lost attempt with a pause pending counts (paused), and on the last attempt fails the task', async () => {
    for (const max of [3, 1]) {
      await drain();
      const [t] = await tasksInsertMany(tdb.db, [newTask({ max_attempts: max })]);
      await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'dead', leaseMs: 1 });
      await tdb.db.query('UPDATE tasks SET pause_requested = true WHERE id = $1', [t!.id]);
      await new Promise((r) => setTimeout(r, 10));
      const hub = new EventHub(tdb.db, { crossProcess: false });
      await new LeaseReaper({ db: tdb.db, hub, signals: new Signals(tdb.db, { crossProcess: false }), intervalMs: 1000, log: silent }).reapOnce();
      const row = await tasksGetById(tdb.db, t!.id);
      // it was PAUSED at attempt 0: its resumed claim was "attempt 1" again
      expect({ status: row?.status, attempt: row?.attempt }, `max_attempts ${max}`).toEqual(max === 3 ? { status: 'PAUSED', attempt: 1 } : { status: 'FAILED', attempt: 1 });
    }
  });

  it('reaper: a pause or cancel asked for between its read and its write is not lost (the next sweep carries it out)', async () => {
    for (const flag of ['pause_requested', 'cancel_requested'] as const) {
      await drain();
      const [t] = await tasksInsertMany(tdb.db, [newTask({ max_attempts: 3 })]);
      await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'dead', leaseMs: 1 });
      await new Promise((r) => setTimeout(r, 10));
      // the control request lands right after the reaper listed the expired leases
      let asked = false;
      const racing = new Proxy(tdb.db, {
        get(target, prop) {
          const v = Reflect.get(target, prop);
          if (prop !== 'query') return typeof v === 'function' ? v.bind(target) : v;
          return async (text: string, params?: unknown[]) => {
            const res = await target.query(text, params);
            if (!asked && text.includes('lease_expires_at < now()')) {
              asked = true;
              await target.query(`UPDATE tasks SET ${flag} = true WHERE id = $1`, [t!.id]);
            }
            return res;
          };
        },
      });
      const hub = new EventHub(tdb.db, { crossProcess: false });
      const reaper = new LeaseReaper({ db: racing, hub, signals: new Signals(tdb.db, { crossProcess: false }), intervalMs: 1000, log: silent });
      await reaper.reapOnce();
      expect(asked).toBe(true);
      expect((await tasksGetById(tdb.db, t!.id))?.status, flag).toBe('RUNNING');
      await reaper.reapOnce();
      const row = await tasksGetById(tdb.db, t!.id);
      expect({ status: row?.status, pause_requested: row?.pause_requested, cancel_requested: row?.cancel_requested }, flag).toEqual(
        flag === 'pause_requested' ? { status: 'PAUSED', pause_requested: false, cancel_requested: false } : { status: 'CANCELLED', pause_requested: false, cancel_requested: true },
      );
    }
  });

  it('heartbeats extend the lease and report cancel requests', async () => {
    await drain();
    const [t] = await tasksInsertMany(tdb.db, [newTask()]);
    const [c] = await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'hb', leaseMs: 1000 });
    await tdb.db.query('UPDATE tasks SET cancel_requested = true WHERE id = $1', [t!.id]);
    const rows = await tasksHeartbeat(tdb.db, { owner: 'hb', leaseMs: 60_000, tasks: [{ id: c!.task.id, attempt: 1 }] });
    expect(rows).toEqual([{ id: t!.id, attempt: 1, cancel_requested: true, pause_requested: false }]);
    const after = await tasksGetById(tdb.db, t!.id);
    expect(after!.lease_expires_at!.getTime()).toBeGreaterThan(Date.now() + 30_000);
  });

  it('a heartbeat never deadlocks with a transaction writing its tasks one by one', async () => {
    if (tdb.db.kind !== 'pg') return; // one connection on PGlite: nothing runs concurrently
    // A transaction writes one running task (a group commit: a step and its event), the heartbeat
    // batch comes to wait for that row, then the transaction writes the other task. A batch that
    // had locked the other row before waiting was a deadlock, which PostgreSQL broke after
    // deadlock_timeout by failing one side. Which row a batch reaches first depends on its plan,
    // so both orders are tried.
    for (const order of ['forward', 'backward']) {
      await drain();
      await tasksInsertMany(tdb.db, [newTask(), newTask()]);
      const claimed = await tasksClaimAvailable(tdb.db, { limit: 2, owner: 'hb-dl', leaseMs: 60_000 });
      const ids = claimed.map((c) => c.task.id).sort();
      if (order === 'backward') ids.reverse();
      const [a, b] = ids;
      const fence = (id: string) => ({ id, statuses: ['RUNNING'] as const, attempt: 1, leaseOwner: 'hb-dl' });
      const progress = { type: 'PROGRESS', message: order, payload: null, agent_id: null };
      let heartbeat: Promise<{ id: string }[]> | undefined;
      await tdb.db.transaction(async (tx) => {
        const { rows } = await tx.query<{ xid: string }>('SELECT txid_current()::text AS xid');
        expect(await tasksTransition(tx, fence(b!), {}, [progress])).toBeDefined();
        heartbeat = tasksHeartbeat(tdb.db, { owner: 'hb-dl', leaseMs: 120_000, tasks: [{ id: a!, attempt: 1 }, { id: b!, attempt: 1 }] });
        for (let i = 0; ; i++) {
          const waiting = await tdb.db.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted`, [rows[0]!.xid],
          );
          if (waiting.rows.length) break;
          if (i > 500) throw new Error('the heartbeat never waited for the row');
          await new Promise((r) => setTimeout(r, 10));
        }
        expect(await tasksTransition(tx, fence(a!), {}, [progress])).toBeDefined();
      });
      const renewed = await heartbeat!;
      expect(renewed.map((r) => r.id).sort(), order).toEqual([a, b].sort());
      for (const id of [a!, b!]) {
        expect((await tasksGetById(tdb.db, id))!.lease_expires_at!.getTime()).toBeGreaterThan(Date.now() + 90_000);
      }
    }
  });

  it('stores durable steps once, counting starts across attempts', async () => {
    await drain();
    const [t] = await tasksInsertMany(tdb.db, [newTask()]);
    await tasksClaimAvailable(tdb.db, { limit: 1, owner: 's', leaseMs: 60_000 });
    expect(await stepsStart(tdb.db, { taskId: t!.id, name: 'a', attempt: 1, owner: 's' })).toBe(1);
    expect(await stepsStart(tdb.db, { taskId: t!.id, name: 'a', attempt: 1, owner: 's' })).toBe(2);
    expect(await stepsFinish(tdb.db, { taskId: t!.id, name: 'a', attempt: 1, owner: 's', result: { x: 1 } })).toBe(true);
    expect(await stepsFinish(tdb.db, { taskId: t!.id, name: 'a', attempt: 1, owner: 's', result: { x: 2 } })).toBe(false);
    expect(await stepsLoad(tdb.db, t!.id)).toEqual([{ name: 'a', runs: 2, done: true, result: { x: 1 } }]);
  });
});
