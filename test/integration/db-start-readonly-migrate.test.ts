// `serve` against a fully migrated database as a role with data rights only (no CREATE on the
// schema): migrate() sees with read-only queries that nothing is to be done and returns [] — no
// DDL, no advisory lock — while a newer schema is still refused, and a pending migration still
// needs a role that may create (PostgreSQL only: roles and grants).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Db } from '../../src/storage/db.js';
import { openPg } from '../../src/storage/pg.js';
import { loadMigrations, migrate, SchemaTooNewError, type Migration } from '../../src/storage/migrate.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';

describe.skipIf(!usingPostgres())('migrate() as a data-only role', () => {
  const role = `tg_data_${randomBytes(5).toString('hex')}`;
  let tdb: TestDb;
  let admin: pg.Client;
  let db: Db;

  beforeAll(async () => {
    tdb = await openTestDb(); // a fresh schema, migrated
    const s = tdb.schema!;
    admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`GRANT USAGE ON SCHEMA "${s}" TO ${role}`);
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${s}" TO ${role}`);
    await admin.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "${s}" TO ${role}`);
    await admin.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "${s}" TO ${role}`);
    const url = new URL(process.env.DATABASE_URL!);
    url.username = role;
    url.password = '';
    db = await openPg({ connectionString: url.toString(), schema: s, maxConnections: 2 });
  });

  afterAll(async () => {
    await db?.close();
    await tdb?.close();
    if (admin) {
      await admin.query(`DROP OWNED BY ${role}`).catch(() => {});
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  it('returns [] on an up-to-date schema without needing CREATE', async () => {
    await expect(migrate(db)).resolves.toEqual([]);
    // the role really has data rights only: a pending migration cannot be applied by it
    const pending: Migration[] = [...loadMigrations(), { version: 9_999, name: '9999_extra', sql: 'CREATE TABLE extra (a int);' }];
    await expect(migrate(db, pending)).rejects.toThrow(/permission denied/);
    // and its data rights work
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM taskgate_migrations');
    expect(rows[0]!.n).toBe(loadMigrations().length);
  });

  it('still refuses a schema newer than this Taskgate', async () => {
    await admin.query(`INSERT INTO "${tdb.schema}".taskgate_migrations (version, name) VALUES (9998, '9998_future')`);
    try {
      await expect(migrate(db)).rejects.toBeInstanceOf(SchemaTooNewError);
      await expect(migrate(tdb.db)).rejects.toThrow('database schema is at version 9998, newer than this Taskgate knows');
    } finally {
      await admin.query(`DELETE FROM "${tdb.schema}".taskgate_migrations WHERE version = 9998`);
    }
  });
});
