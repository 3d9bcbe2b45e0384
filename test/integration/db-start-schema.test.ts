// TASKGATE_DB_SCHEMA on PostgreSQL: several processes starting at once each run CREATE SCHEMA IF
// NOT EXISTS, which is not atomic — the losers used to fail with 23505 on pg_namespace. Made
// deterministic: a transaction creates the schema and holds it uncommitted while 8 starts queue
// behind its row in the unique index; when it commits, every one of them must still succeed.
// And a role with no CREATE on the database starts on a schema that exists already.
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

describe.skipIf(!usingPostgres())('a data-only role on an existing TASKGATE_DB_SCHEMA', () => {
  const existing = `t_data_${randomBytes(5).toString('hex')}`;
  const role = `tg_data_${randomBytes(5).toString('hex')}`;
  const asAdmin = async (sql: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  afterAll(async () => {
    await asAdmin(`DROP SCHEMA IF EXISTS "${existing}" CASCADE`);
    await asAdmin(`DROP ROLE IF EXISTS "${role}"`);
  });

  it('starts without CREATE on the database (CREATE SCHEMA IF NOT EXISTS needs it even when the schema exists)', async () => {
    await asAdmin(`CREATE SCHEMA "${existing}"`);
    await asAdmin(`CREATE ROLE "${role}" LOGIN`);
    await asAdmin(`GRANT USAGE ON SCHEMA "${existing}" TO "${role}"`);
    const asRole = new URL(url);
    asRole.username = role;
    asRole.password = '';
    const db = await openDatabase(loadConfig({}, { DATABASE_URL: asRole.toString(), TASKGATE_DB_SCHEMA: existing }));
    try {
      const { rows } = await db.query<{ s: string; u: string }>('SELECT current_schema() AS s, current_user AS u');
      expect(rows[0]).toEqual({ s: existing, u: role });
    } finally {
      await db.close();
    }
  });
});
