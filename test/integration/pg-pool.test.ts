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

  it("parses timestamps whatever the database's DateStyle, and keeps the URL's own options", async () => {
    // what `ALTER DATABASE … SET datestyle = 'German'` gives every session, and an option of the operator's own
    const url = new URL(process.env.DATABASE_URL!);
    url.searchParams.set('options', '-c datestyle=German -c statement_timeout=123456');
    const db = await openDatabase(loadConfig({}, { DATABASE_URL: url.toString() }));
    try {
      const { rows } = await db.query<{ at: Date; style: string; timeout: string }>(
        `SELECT timestamptz '2026-12-07 10:20:30.456+00' AS at, current_setting('datestyle') AS style, current_setting('statement_timeout') AS timeout`,
      );
      expect(rows[0]!.at.toISOString()).toBe('2026-12-07T10:20:30.456Z');
      expect(rows[0]!.style).toBe('ISO, MDY');
      expect(rows[0]!.timeout).toBe('123456ms');
    } finally {
      await db.close();
    }
  });
});
