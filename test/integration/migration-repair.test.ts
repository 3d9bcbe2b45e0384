// Migration 0014: a database first migrated by a build whose 0010 did not yet add
// tenants.max_running (0010 was changed after it shipped) gets the column, and its queued tasks
// run; claims failed on the missing column for good before, with /readiness saying ready.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, waitForTask } from '../helpers/server.js';
import { loadMigrations, migrate } from '../../src/storage/migrate.js';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await openTestDb({ migrate: false });
});
afterAll(async () => tdb?.close());

describe('migration 0014 (max_running repair)', () => {
  it('a database whose 0010 had no max_running gets it; claims work again', async () => {
    // the schema such a build left: migrations 1–13 with 0010 as first shipped (no cap column)
    const shipped = loadMigrations()
      .filter((m) => m.version <= 13)
      .map((m) => (m.version === 10 ? { ...m, sql: m.sql.replace(/^ALTER TABLE tenants ADD COLUMN max_running[^\n]*\n/m, '') } : m));
    expect(shipped.find((m) => m.version === 10)!.sql).not.toMatch(/max_running integer/);
    await migrate(tdb.db, shipped);
    const before = await tdb.db.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'tenants' AND column_name = 'max_running' AND table_schema = current_schema()`);
    expect(before.rows).toHaveLength(0);

    const server = await startTestServer(tdb.db);
    try {
      // the start applied 0014: the column is back, with its check
      const after = await tdb.db.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'tenants' AND column_name = 'max_running' AND table_schema = current_schema()`);
      expect(after.rows).toHaveLength(1);
      const submitted = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key: ADMIN_KEY });
      expect(submitted.status).toBe(200);
      expect((await waitForTask(server, submitted.body.task_id)).status).toBe('COMPLETED');
      const me = await server.call('GET', '/api/v1/auth/me', undefined, { key: ADMIN_KEY });
      const capped = await server.call('PATCH', `/api/v1/admin/tenants/${me.body.tenant_id}`, { max_running: 2 }, { key: ADMIN_KEY });
      expect(capped.status).toBe(200);
      expect(capped.body.max_running).toBe(2);
      await expect(tdb.db.query('UPDATE tenants SET max_running = 0')).rejects.toThrow(/check/i);
    } finally {
      await server.close();
    }
    // on a database that has the column (every other one) it changes nothing
    expect(await migrate(tdb.db)).toEqual([]);
  });
});
