// A pending migration that needs a table another session holds (a long transaction, a running old
// process) waits at most lock_timeout per try, then rolls back and tries again; it never queues
// every later query on that table behind it for as long as the holder lasts, and gives up with
// one clear line (PostgreSQL only: PGlite has one connection, nothing to wait for).
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { loadMigrations, migrate, MigrationLockError } from '../../src/storage/migrate.js';
import { openTestDb, usingPostgres } from '../helpers/db.js';

describe.skipIf(!usingPostgres())('a migration that cannot lock its table', () => {
  it('gives up after its tries with MigrationLockError; queries on the table are never held longer than one try; it applies once the holder ends', async () => {
    const tdb = await openTestDb();
    const holder = new pg.Client({ connectionString: process.env.DATABASE_URL, options: `-c search_path=${tdb.schema}` });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM tasks LIMIT 1'); // ACCESS SHARE until the end of the transaction
      const pending = [...loadMigrations(), { version: 9_999, name: '9999_test_column', sql: 'ALTER TABLE tasks ADD COLUMN test_only integer;\n' }];
      const running = migrate(tdb.db, pending, { lockTimeoutMs: 200, tries: 3 });
      const outcome = running.then(() => 'applied', (err: unknown) => err);
      // while the migration retries, readers of tasks get through (each try waits 200 ms at most)
      for (let i = 0; i < 5; i++) await tdb.db.query('SELECT count(*) FROM tasks');
      const err = await outcome;
      expect(err).toBeInstanceOf(MigrationLockError);
      expect((err as Error).message).toMatch(/could not lock their tables in 3 tries of 200 ms/);
      await holder.query('COMMIT');
      expect(await migrate(tdb.db, pending, { lockTimeoutMs: 200, tries: 3 })).toEqual([9_999]);
    } finally {
      await holder.end();
      await tdb.close();
    }
  });
});
