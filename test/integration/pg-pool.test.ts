// The PostgreSQL pool the service opens follows TASKGATE_DB_POOL_SIZE (several processes share a
// server's max_connections), and its connections name themselves in pg_stat_activity.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/main.js';
import { usingPostgres } from '../helpers/db.js';

describe.skipIf(!usingPostgres())('PostgreSQL pool', () => {
  it('opens at most TASKGATE_DB_POOL_SIZE connections, named taskgate', async () => {
    const config = loadConfig({}, { DATABASE_URL: process.env.DATABASE_URL, TASKGATE_DB_POOL_SIZE: '3' });
    expect(config.databasePoolSize).toBe(3);
    const db = await openDatabase(config);
    try {
      // ten statements at once, each holding its connection 50 ms: the pool opens all it may
      const rows = await Promise.all(
        Array.from({ length: 10 }, () => db.query<{ pid: number; app: string }>('SELECT pg_backend_pid() AS pid, current_setting($1) AS app, pg_sleep(0.05)', ['application_name'])),
      );
      const pids = new Set(rows.map((r) => r.rows[0]!.pid));
      expect(pids.size).toBe(3);
      expect(new Set(rows.map((r) => r.rows[0]!.app))).toEqual(new Set(['taskgate']));
    } finally {
      await db.close();
    }
  });
});
