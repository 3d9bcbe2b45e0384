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
    server = await startTestServer(tdb.db, { TASKGATE_POLL_INTERVAL_MS: '50' });
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
});
