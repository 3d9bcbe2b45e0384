// The `taskgate` command run in process (cli/commands.ts; main.ts only adds the exit code): help,
// version, an unknown command, and `migrate` against an embedded data directory — first run
// applies every migration, the next finds nothing to do, and a directory another PGlite holds is
// refused. The spawned-process tests (test/e2e) cover `serve` and the signals.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/commands.js';
import { startServer } from '../../src/main.js';
import { serverWithLogs } from '../helpers/server.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { DataDirLockedError, openPglite } from '../../src/storage/pglite.js';
import { VERSION } from '../../src/version.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) } };
}

beforeAll(() => {
  // these runs must use the embedded database whatever the environment says
  delete process.env.DATABASE_URL;
});
afterEach(() => {
  process.exitCode = undefined;
});

describe('taskgate CLI', () => {
  it('prints its version and its help; an unknown command is exit code 2 with the help', async () => {
    const v = capture();
    await run(['version'], v.io);
    expect(v.out).toEqual([VERSION]);
    const h = capture();
    await run([], h.io);
    expect(h.out[0]).toContain('Usage:');
    expect(h.out[0]).toContain('taskgate migrate');
    expect(h.out[0]).toContain('keys create');
    expect(h.out[0]).toContain('taskgate tasks submit');
    const bad = capture();
    await run(['frobnicate'], bad.io);
    expect(process.exitCode).toBe(2);
    expect(bad.err[0]).toMatch(/^taskgate: unknown command: frobnicate\n\ntaskgate .*\n\nUsage:/);
    expect(bad.out).toEqual([]);
    // a flag is never ignored: --user without --tenant is a usage error, sending nothing
    const owner = capture();
    process.exitCode = undefined;
    await run(['keys', 'create', '--name', 'k1', '--scopes', 'tasks:read', '--user', 'bob', '--url', 'http://127.0.0.1:9'], owner.io);
    expect(process.exitCode).toBe(2);
    expect(owner.err.join('\n')).toContain('--user goes with --tenant');
  });

  it('migrate applies every migration once, then has nothing to do; a held data directory is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskgate-cli-'));
    const first = capture();
    await run(['migrate', '--data-dir', dir], first.io);
    const versions = readdirSync(new URL('../../src/storage/migrations/', import.meta.url)).filter((f) => f.endsWith('.sql')).map((f) => Number(f.slice(0, 4))).sort((a, b) => a - b);
    expect(first.out).toEqual([`applied migrations: ${versions.join(', ')}`]);
    const second = capture();
    await run(['migrate', '--data-dir', dir], second.io);
    expect(second.out).toEqual(['database is up to date']);
    const holder = await openPglite({ dataDir: dir });
    try {
      await expect(run(['migrate', '--data-dir', dir], capture().io)).rejects.toBeInstanceOf(DataDirLockedError);
    } finally {
      await holder.close();
    }
  });

  it('prune deletes what ended longer ago than --older-than, once; without an age it is a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskgate-cli-'));
    await run(['migrate', '--data-dir', dir], capture().io);
    const db = await openPglite({ dataDir: dir });
    try {
      await db.query(`INSERT INTO tenants (id, name) VALUES ('t_prune', 'prune')`);
      const task = (id: string, status: string, daysAgo: number) =>
        db.query(
          `INSERT INTO tasks (id, tenant_id, user_id, kind, task_definition_id, status, max_attempts, retry_interval_ms, backoff_multiplier, timeout_ms, created_at, completed_at)
           VALUES ($1, 't_prune', 'u', 'definition', 'noop', $2, 1, 1000, 2, 1000, now() - $3 * interval '1 day', CASE WHEN $2 = 'QUEUED' THEN NULL ELSE now() - $3 * interval '1 day' END)`,
          [id, status, daysAgo],
        );
      await task('task_old', 'COMPLETED', 3);
      await task('task_new', 'COMPLETED', 0);
      await task('task_live', 'QUEUED', 3);
      await db.query(`INSERT INTO task_events (task_id, seq, tenant_id, type) VALUES ('task_old', 1, 't_prune', 'WORKFLOW_COMPLETED')`);
    } finally {
      await db.close();
    }
    const usage = capture();
    await run(['prune', '--data-dir', dir], usage.io);
    expect(process.exitCode).toBe(2);
    expect(usage.err[0]).toMatch(/--older-than 30d/);
    process.exitCode = undefined;
    const done = capture();
    await run(['prune', '--older-than', '2d', '--data-dir', dir], done.io);
    expect(done.out).toEqual(['deleted 1 ended task(s) and 0 deleted session(s) older than 2d']);
    const after = await openPglite({ dataDir: dir });
    try {
      expect((await after.query<{ id: string }>('SELECT id FROM tasks ORDER BY id')).rows.map((r) => r.id)).toEqual(['task_live', 'task_new']);
      expect((await after.query('SELECT 1 FROM task_events')).rows).toHaveLength(0);
    } finally {
      await after.close();
    }
    // an age it cannot read is a usage error (exit 2), running nothing
    const bad = capture();
    process.exitCode = undefined;
    await run(['prune', '--older-than', '30', '--data-dir', dir], bad.io);
    expect(process.exitCode).toBe(2);
    process.exitCode = undefined;
    expect(bad.err.join('\n')).toMatch(/^taskgate prune: --older-than must be a duration/);
    // prune has no "off": 0 is an age it cannot use, and its message offers none
    for (const age of ['0', 'off']) {
      const zero = capture();
      await run(['prune', '--older-than', age, '--data-dir', dir], zero.io);
      expect(process.exitCode, age).toBe(2);
      process.exitCode = undefined;
      expect(zero.err).toEqual([`taskgate prune: --older-than must be a duration such as 30d, 12h, 90m or 45s (at most 36500d); got ${age}`]);
    }
    // a data dir with no database (a typo) is said, and nothing is created there
    const typo = join(dir, 'no-such-dir');
    const missing = capture();
    await run(['prune', '--older-than', '2d', '--data-dir', typo], missing.io);
    expect(process.exitCode).toBe(1);
    process.exitCode = undefined;
    expect(missing.err).toEqual([`taskgate prune: no Taskgate database in ${typo} (TASKGATE_DATA_DIR / --data-dir)`]);
    expect(existsSync(typo)).toBe(false);
  });

  it("serve logs the migrations it applies by version and name, and the schema version it leaves", async () => {
    const db = await openPglite({ dataDir: mkdtempSync(join(tmpdir(), 'taskgate-cli-')) });
    try {
      const { server, entries } = await serverWithLogs(db, {});
      await server.close();
      const files = readdirSync(new URL('../../src/storage/migrations/', import.meta.url)).filter((f) => f.endsWith('.sql')).sort();
      const line = entries().find((e) => e.msg === 'applied migrations');
      expect(line).toMatchObject({ names: files.map((f) => f.replace(/\.sql$/, '')), schema_version: Number(files.at(-1)!.slice(0, 4)) });
    } finally {
      await db.close();
    }
  });

  it('a HOST that resolves to no address stops the start with one ConfigError, before the database is created', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'taskgate-cli-')), 'data');
    const err: unknown = await startServer(loadConfig({}, { HOST: 'no-such-host.invalid', PORT: '0', TASKGATE_DATA_DIR: dir })).then(
      async (s) => {
        await s.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^HOST \/ --host: no-such-host\.invalid does not resolve to an address to listen on \(/);
    expect(existsSync(join(dir, 'pgdata'))).toBe(false);
  });

  it('a client command without a reachable server reports the failure, not a stack', async () => {
    const c = capture();
    await run(['keys', 'list', '--url', 'http://127.0.0.1:1', '--key', 'sk_nope'], c.io);
    expect(process.exitCode).toBe(1);
    expect(c.err.join('\n')).toMatch(/^taskgate: /);
  });
});
