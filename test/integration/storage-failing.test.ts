// A database that cannot write (a full disk: SQLSTATE 53100) still answers reads, so the
// readiness probe's query succeeds: the API answers failing writes 503 UNAVAILABLE with
// Retry-After (the client may retry; nothing was committed) — not 500 — and /readiness reports
// the failure for STORAGE_FAILURE_WINDOW_MS, so a load balancer stops sending it writes.
// A worker's failing statements say so too: a worker process answers no API request, and its
// claims and outcome writes are what fail. The failure is real PostgreSQL behaviour raised by a
// trigger, on PGlite and PostgreSQL alike.
import { describe, expect, it } from 'vitest';
import { until, useTestServer, waitForTask } from '../helpers/server.js';

const fx = useTestServer({ TASKGATE_ROLE: 'api' });
const both = useTestServer({});

const DISK_FULL = `
  CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'could not extend file "base/5/16459": No space left on device' USING ERRCODE = '53100'; END $$;`;

describe('a database whose writes fail for want of space', () => {
  it('answers a submit 503 with Retry-After and is not ready while it lasts; writes work again once space returns', async () => {
    await fx.tdb.db.exec(`${DISK_FULL}
      CREATE TRIGGER disk_full BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION disk_full();`);
    expect((await fx.server.call('GET', '/readiness', undefined, { key: null })).status).toBe(200);
    const refused = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('UNAVAILABLE');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.text).not.toContain('No space');

    const ready = await fx.server.call('GET', '/readiness', undefined, { key: null });
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'not_ready', checks: { database: expect.stringMatching(/^writes failing: disk full \(SQLSTATE 53100\)/) } });

    await fx.tdb.db.exec('DROP TRIGGER disk_full ON tasks; DROP FUNCTION disk_full();');
    expect((await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} })).status).toBe(200);
    const list = await fx.server.call('GET', '/api/v1/tasks');
    expect(list.body.total_count).toBe(1);
  });

  it('an Idempotency-Key whose request failed with the database is freed once the database is back (was: 409 until its lock expired, a minute)', async () => {
    await fx.tdb.db.exec(`${DISK_FULL}
      CREATE TRIGGER disk_full BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION disk_full();
      CREATE TRIGGER disk_full_release BEFORE DELETE ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION disk_full();`);
    const headers = { 'idempotency-key': 'blip-1' };
    const body = { task_definition_id: 'noop', input: { n: 1 } };
    try {
      expect((await fx.server.call('POST', '/api/v1/tasks', body, { headers })).status).toBe(503);
      // the claim could not be released either: a retry now is told the first is still running
      expect((await fx.server.call('POST', '/api/v1/tasks', body, { headers })).body.error?.code).toBe('IDEMPOTENCY_KEY_IN_PROGRESS');
    } finally {
      await fx.tdb.db.exec('DROP TRIGGER disk_full ON tasks; DROP TRIGGER disk_full_release ON idempotency_keys; DROP FUNCTION disk_full();');
    }
    let retried: Awaited<ReturnType<typeof fx.server.call>> | undefined;
    await until(async () => (retried = await fx.server.call('POST', '/api/v1/tasks', body, { headers })).status === 200, 'the key freed in the background');
    expect(retried!.body.status).toBe('QUEUED');
  });

  it("a worker's failing writes make its process not ready too, and its task completes once space returns", async () => {
    const { server, tdb } = both;
    // submits still insert; the worker's claims, heartbeats and outcome writes (updates) fail
    await tdb.db.exec(`${DISK_FULL}
      CREATE TRIGGER disk_full BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION disk_full();`);
    expect((await server.call('GET', '/readiness', undefined, { key: null })).status).toBe(200);
    const id = await server.submit({ task_definition_id: 'noop', input: {} });
    let ready: Awaited<ReturnType<typeof server.call>> | undefined;
    await until(async () => (ready = await server.call('GET', '/readiness', undefined, { key: null })).status === 503, 'the worker\'s failure in /readiness');
    expect(ready!.body).toMatchObject({ status: 'not_ready', checks: { database: expect.stringMatching(/^writes failing: disk full \(SQLSTATE 53100\)/) } });

    await tdb.db.exec('DROP TRIGGER disk_full ON tasks; DROP FUNCTION disk_full();');
    expect((await waitForTask(server, id, undefined, { timeoutMs: 30_000 })).status).toBe('COMPLETED');
  });
});
