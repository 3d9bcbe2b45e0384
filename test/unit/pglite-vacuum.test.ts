// PGlite has no autovacuum: openPglite vacuums and analyzes a table once its dead rows (or its
// changes) pass PostgreSQL's autovacuum thresholds, so finished tasks' old row versions are
// reused instead of piling up, and the planner learns the tables' sizes.
import { describe, expect, it } from 'vitest';
import { openPglite } from '../../src/storage/pglite.js';
import { until } from '../helpers/server.js';

describe('PGlite vacuum', () => {
  it('vacuums a table whose dead rows pass 50 + 20 % of its live rows (and analyzes one changed by more than its size), reusing their space', async () => {
    const db = await openPglite({ checkpointPollMs: 20 });
    try {
      const stats = async () =>
        (await db.query<{ vacuumed: boolean; analyzed: boolean; dead: number }>(
          `SELECT last_vacuum IS NOT NULL AS vacuumed, last_analyze IS NOT NULL AS analyzed, n_dead_tup::int AS dead
             FROM pg_stat_user_tables WHERE relname = 'churn'`,
        )).rows[0];
      const size = async () => Number((await db.query<{ n: string }>(`SELECT pg_relation_size('churn')::text AS n`)).rows[0]!.n);
      await db.exec('CREATE TABLE churn (id int PRIMARY KEY, status text)');
      await db.query(`INSERT INTO churn SELECT g, 'QUEUED' FROM generate_series(1, 5000) g`);
      // every row updated twice: 10,000 dead versions beside 5,000 live ones
      await db.query(`UPDATE churn SET status = 'RUNNING'`);
      await db.query(`UPDATE churn SET status = 'COMPLETED'`);
      // 15,000 changes to 5,000 rows: vacuumed first, then analyzed
      await until(async () => (await stats())?.vacuumed === true, 'a vacuum of churn', 15_000);
      await until(async () => (await stats())?.analyzed === true, 'an analyze of churn', 15_000);
      // the planner knows the table now (an unanalyzed table has reltuples -1)
      expect(Number((await db.query<{ n: number }>(`SELECT reltuples::int AS n FROM pg_class WHERE relname = 'churn'`)).rows[0]!.n)).toBe(5000);
      // the space of the dead versions is reused: the same churn again does not grow the table
      const before = await size();
      await db.query(`UPDATE churn SET status = 'RUNNING'`);
      expect(await size()).toBe(before);
    } finally {
      await db.close();
    }
  });
});
