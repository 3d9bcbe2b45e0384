// TASKGATE_DB_SCHEMA on PostgreSQL: several processes starting at once each run CREATE SCHEMA IF
// NOT EXISTS, which is not atomic — the losers used to fail with 23505 on pg_namespace. Made
// deterministic: a transaction creates the schema and holds it uncommitted while 8 starts queue
// behind its row in the unique index; when it commits, every one of them must still succeed.
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/main.js';
import { usingPostgres } from '../helpers/db.js';

const url = process.env.DATABASE_URL!;
const schema = `t_race_${randomBytes(5).toString('hex')}`;

describe.skipIf(!usingPostgres())('concurrent starts on a new TASKGATE_DB_SCHEMA', () => {
  afterAll(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });

  it('8 starts racing another creator of the schema all succeed', async () => {
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`CREATE SCHEMA "${schema}"`);
    const config = loadConfig({}, { DATABASE_URL: url, TASKGATE_DB_SCHEMA: schema });
    const starts = Array.from({ length: 8 }, () => openDatabase(config).then((db) => ({ db }), (err: unknown) => ({ err })));
    // wait until all 8 CREATE SCHEMA statements are blocked behind the holder's uncommitted row
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    const deadline = Date.now() + 10_000;
    let blocked = 0;
    for (;;) {
      const { rows } = await watcher.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`CREATE SCHEMA IF NOT EXISTS "${schema}"%`],
      );
      blocked = rows[0].n;
      if (blocked === 8 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await watcher.end();
    expect(blocked).toBe(8);
    await holder.query('COMMIT');
    await holder.end();
    const results = await Promise.all(starts);
    const failures = results.flatMap((r) => ('err' in r ? [String((r.err as Error).message)] : []));
    expect(failures).toEqual([]);
    for (const r of results) {
      if ('db' in r) {
        const { rows } = await r.db.query<{ s: string }>('SELECT current_schema() AS s');
        expect(rows[0]!.s).toBe(schema);
        await r.db.close();
      }
    }
  });
});
