// A rolling upgrade: a newer Taskgate migrates the database while this (older) worker still runs.
// The worker notices within SCHEMA_CHECK_EVERY_POLLS polls and stops claiming — it would fail the
// tasks it cannot run — while readiness reports the mismatch; and claims again if the schema is
// one it knows (only a test can take a migration back).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import { latestVersion } from '../../src/storage/migrate.js';

describe('a worker on a schema newer than it knows', () => {
  let tdb: TestDb;
  let server: TestServer;
  beforeAll(async () => {
    tdb = await openTestDb();
    // no claim window: a claim is written at once, so a given-back task leaves its events to check
    server = await startTestServer(tdb.db, { TASKGATE_POLL_INTERVAL_MS: '50', TASKGATE_CLAIM_WINDOW_MS: '0' });
  });
  afterAll(async () => {
    await server?.close();
    await tdb?.close();
  });

  it('stops claiming (submits stay QUEUED), and claims again once the schema is one it knows', async () => {
    const next = latestVersion() + 1;
    await tdb.db.query('INSERT INTO taskgate_migrations (version, name) VALUES ($1, $2)', [next, `${next}_from_a_newer_taskgate`]);
    await until(() => server.worker!.schemaAhead, 'the worker to notice the newer schema');
    const ready = await server.call('GET', '/readiness', undefined, { key: null });
    expect(ready.body.checks.migrations).toBe(`at ${next}, expected ${latestVersion()}`);

    const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
    expect(res.status).toBe(200);
    const id = res.body.task_id as string;
    // 40 polls: every one of them would have claimed it
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await server.call('GET', `/api/v1/tasks/${id}`)).body.status).toBe('QUEUED');

    await tdb.db.query('DELETE FROM taskgate_migrations WHERE version = $1', [next]);
    await waitForTask(server, id, (t) => t.status === 'COMPLETED');
    expect(server.worker!.schemaAhead).toBe(false);
  });

  it("gives back, uncounted, a task of a kind only the newer Taskgate knows, claimed before its schema check came round", async () => {
    const done = await server.submit({ task_definition_id: 'noop', input: {} });
    await waitForTask(server, done, (t) => t.status === 'COMPLETED');
    const next = latestVersion() + 1;
    // the newer release migrates and its API takes a task of a new kind, in one go; this worker
    // (polling every 50 ms, its schema checked every 10th poll) claims it first
    await tdb.db.transaction(async (tx) => {
      await tx.query('INSERT INTO taskgate_migrations (version, name) VALUES ($1, $2)', [next, `${next}_from_a_newer_taskgate`]);
      await tx.query(
        `INSERT INTO tasks SELECT (jsonb_populate_record(NULL::tasks, to_jsonb(t) || $2::jsonb)).* FROM tasks t WHERE id = $1`,
        [done, JSON.stringify({
          id: 'task_future_kind', task_definition_id: 'future-kind', status: 'QUEUED', attempt: 0, last_seq: 0, run_at: new Date().toISOString(),
          started_at: null, completed_at: null, output: null, result: null, lease_owner: null, lease_expires_at: null, last_worker: null,
        })],
      );
    });
    // a submit's hint: the worker claims at once, not at a poll (where the schema check runs)
    server.signals.work();
    const events = async () => ((await server.call('GET', '/api/v1/tasks/task_future_kind/events')).body.events as { type: string; message: string }[]);
    await until(async () => (await events()).some((e) => e.type === 'WARNING'), 'the task given back');
    expect(server.worker!.schemaAhead).toBe(true);
    expect((await events()).map((e) => e.type)).toEqual(['WORKFLOW_STARTED', 'WARNING']);
    expect((await events())[1]!.message).toMatch(/schema is newer than this worker/);
    expect((await server.call('GET', '/api/v1/tasks/task_future_kind')).body).toMatchObject({ status: 'QUEUED', attempts: 0 });
    await tdb.db.query('DELETE FROM tasks WHERE id = $1', ['task_future_kind']);
    await tdb.db.query('DELETE FROM taskgate_migrations WHERE version = $1', [next]);
    await until(() => !server.worker!.schemaAhead, 'the worker to claim again', 15_000);
  });
});
