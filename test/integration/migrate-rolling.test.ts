// `taskgate migrate` under running Taskgate processes is a rolling upgrade: workers built before
// the schema guard (December 2026) fail tasks of kinds they do not know, so migrate says how many
// other Taskgate connections it sees before applying anything (PostgreSQL only: PGlite is one process).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { CLI } from '../helpers/process.js';
import { usingPostgres } from '../helpers/db.js';

async function runMigrate(env: Record<string, string>, args: string[] = ['migrate']): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, out, err };
}

describe.skipIf(!usingPostgres())('taskgate migrate beside running Taskgate processes', () => {
  it('warns that older workers must be stopped, names how many connections it saw, and migrates', async () => {
    const schema = `tg_rolling_${process.pid}_${Date.now().toString(36)}`;
    // another Taskgate process's connection, as pg.ts names it
    const other = new pg.Client({ connectionString: process.env.DATABASE_URL, application_name: 'taskgate' });
    await other.connect();
    // and one with no application name, as builds before 2026-12-06 connected
    const older = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await older.connect();
    try {
      const first = await runMigrate({ TASKGATE_DB_SCHEMA: schema });
      expect(first.code, first.err).toBe(0);
      expect(first.err).toMatch(/^taskgate migrate: other connections are open on this database \(pg_stat_activity\): \d+ of Taskgate \(application_name taskgate\) and \d+ with no application name .*workers built before December 2026 .*stop those first$/m);
      expect(first.out).toMatch(/^applied migrations: 1, /);
      // nothing pending: nothing to warn about
      const again = await runMigrate({ TASKGATE_DB_SCHEMA: schema });
      expect([again.code, again.out.trim(), again.err]).toEqual([0, 'database is up to date', '']);
    } finally {
      await other.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await other.end();
      await older.end();
    }
  });

  it('prune on a database without the schema says so, and creates nothing (it printed a stack trace)', async () => {
    const schema = `tg_noschema_${process.pid}_${Date.now().toString(36)}`;
    const res = await runMigrate({ TASKGATE_DB_SCHEMA: schema }, ['prune', '--older-than', '1d']);
    expect([res.code, res.err.trim()]).toEqual([1, 'taskgate prune: the database holds no Taskgate schema (DATABASE_URL): nothing to prune']);
    const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await c.end();
    }
  });
});
