// A real database per test file: in-memory PGlite by default, a fresh schema on the PostgreSQL
// server named by DATABASE_URL otherwise. Migrated and ready.
import { randomBytes } from 'node:crypto';
import type { Db } from '../../src/storage/db.js';
import { openPg } from '../../src/storage/pg.js';
import { openPglite } from '../../src/storage/pglite.js';
import { migrate } from '../../src/storage/migrate.js';

export const usingPostgres = (): boolean => Boolean(process.env.DATABASE_URL);

export interface TestDb {
  db: Db;
  /** Schema name on PostgreSQL (for processes spawned against the same data). */
  schema: string | undefined;
  close(): Promise<void>;
}

export async function openTestDb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const url = process.env.DATABASE_URL;
  let db: Db;
  let schema: string | undefined;
  if (url) {
    schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = await openPg({ connectionString: url, maxConnections: 1 });
    await admin.exec(`CREATE SCHEMA "${schema}"`);
    await admin.close();
    db = await openPg({ connectionString: url, schema, maxConnections: 10 });
  } else {
    db = await openPglite({});
  }
  if (opts.migrate !== false) await migrate(db);
  return {
    db,
    schema,
    async close() {
      await db.close();
      if (url && schema) {
        const admin = await openPg({ connectionString: url, maxConnections: 1 });
        await admin.exec(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
        await admin.close();
      }
    },
  };
}
