// The embedded database's online backup and its restore, on real processes: `taskgate serve` on a
// PGlite data directory, `taskgate backup` while it runs, `taskgate restore` into a new directory,
// and a second server there that finds the same tasks. Operators only; 409 on PostgreSQL.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { spawnCli, spawnServe, type ServeProcess } from '../helpers/process.js';
import { runCli } from '../helpers/cli.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, type TestServer } from '../helpers/server.js';
import { TERMINAL_STATUSES } from '../../src/domain/lifecycle.js';

const KEY = 'sk_e2e_admin_key_0123456789abcdef';

async function api(url: string, method: string, path: string, body?: unknown, key = KEY): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function waitEnded(url: string, id: string, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(url, 'GET', `/api/v1/tasks/${id}`);
    if (TERMINAL_STATUSES.has(r.body?.status)) return r.body;
    if (Date.now() > deadline) throw new Error(`task ${id} did not end: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const children: ServeProcess[] = [];
async function killAlive(): Promise<void> {
  const alive = children.filter((c) => c.child.exitCode === null && c.child.signalCode === null);
  for (const c of alive) c.child.kill('SIGKILL');
  await Promise.all(alive.map((c) => c.exited));
}
afterEach(killAlive);

const serverEnv = (dataDir: string) => ({
  TASKGATE_ADMIN_KEY: KEY, TASKGATE_DATA_DIR: dataDir, DATABASE_URL: '', TASKGATE_POLL_INTERVAL_MS: '100', TASKGATE_SHUTDOWN_GRACE_MS: '3000',
});

/** What must survive a backup and a restore: each task as the API shows it, and its events. */
async function snapshot(url: string, ids: string[]): Promise<unknown[]> {
  return Promise.all(ids.map(async (id) => ({ task: (await api(url, 'GET', `/api/v1/tasks/${id}`)).body, events: (await api(url, 'GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events })));
}

describe.skipIf(usingPostgres())('PGlite: backup while serving, restore into a new directory', { timeout: 240_000 }, () => {
  it('a server on the restored directory has the same tasks (ids, statuses, outputs, events); a restore never overwrites a database', async () => {
    const work = mkdtempSync(join(tmpdir(), 'taskgate-backup-'));
    const source = join(work, 'source');
    const first = await spawnServe([], serverEnv(source));
    children.push(first);

    const done = (await api(first.url, 'POST', '/api/v1/tasks', { task_definition_id: 'sleep', input: { ms: 10, steps: 2 } })).body.task_id as string;
    const queued = (await api(first.url, 'POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 })).body.task_id as string;
    expect((await waitEnded(first.url, done)).status).toBe('COMPLETED');
    const before = await snapshot(first.url, [done, queued]);
    expect(before.map((s: any) => s.task.status)).toEqual(['COMPLETED', 'QUEUED']);
    expect((before[0] as any).task.output).toMatchObject({ steps: 2 });

    // the route itself: a gzip'd tar named by its UTC time
    const res = await fetch(`${first.url}/api/v1/admin/backup`, { headers: { 'x-api-key': KEY } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="taskgate-backup-\d{8}T\d{6}Z\.tar\.gz"$/);
    const tar = gunzipSync(Buffer.from(await res.arrayBuffer()));
    expect(tar.subarray(257, 262).toString()).toBe('ustar');
    expect(tar.includes(Buffer.from('PG_VERSION'))).toBe(true);

    // the CLI, against the running server
    const env = { TASKGATE_URL: first.url, TASKGATE_API_KEY: KEY };
    const file = join(work, 'x.tar.gz');
    const startedMs = Date.now();
    const backup = await runCli(['backup', '--out', file], env);
    const tookMs = Date.now() - startedMs;
    expect(backup).toMatchObject({ code: 0, err: '' });
    expect(backup.out).toBe(`${file} (${(statSync(file).size / 1e6).toFixed(1)} MB)`);
    console.log(`backup of a small database: ${statSync(file).size} bytes in ${tookMs} ms`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const again = await runCli(['backup', '--out', file], env);
    expect(again).toEqual({ code: 1, out: '', err: `taskgate: ${file} already exists: choose another --out, or pass --force to overwrite it` });
    const forced = await runCli(['backup', '--out', file, '--force', '--json'], env);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.out)).toMatchObject({ path: file, bytes: statSync(file).size, server_file_name: expect.stringMatching(/^taskgate-backup-/) });
    expect(readdirSync(work).sort()).toEqual(['source', 'x.tar.gz']); // no partial download left behind

    // restore while the source server still runs: a new directory, offline
    const target = join(work, 'restored');
    const restored = await spawnCli(['restore', file, '--data-dir', target]);
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toContain(`Restored ${file} into ${target}`);
    expect(restored.err).toContain(`taskgate serve --data-dir ${target}`);
    expect(readdirSync(target).sort()).toEqual(['pgdata']);

    // a directory that already holds a database: refused, one line, nothing touched
    const pgVersion = statSync(join(target, 'pgdata', 'PG_VERSION')).mtimeMs;
    for (const dir of [target, source]) {
      const refused = await spawnCli(['restore', file, '--data-dir', dir]);
      expect(refused.code).toBe(1);
      expect(refused.out).toBe('');
      expect(refused.err.trimEnd().split('\n')).toHaveLength(1);
      expect(refused.err).toMatch(dir === target ? /already holds a database.*never overwritten/ : /in use|already holds a database/);
    }
    expect(statSync(join(target, 'pgdata', 'PG_VERSION')).mtimeMs).toBe(pgVersion);
    // not a backup: refused, and the directory is left without a half-loaded database
    const junk = join(work, 'junk.tar.gz');
    writeFileSync(junk, 'not a backup');
    const bad = await spawnCli(['restore', junk, '--data-dir', join(work, 'junk')]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^taskgate: .*junk\.tar\.gz is neither a gzip file nor a tar archive$/m);
    expect(existsSync(join(work, 'junk', 'pgdata'))).toBe(false);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // the restored directory serves the same tasks, to the same keys (they are in the database;
    // admin.key, beside pgdata, is not in the backup)
    const second = await spawnServe([], serverEnv(target));
    children.push(second);
    expect(await snapshot(second.url, [done, queued])).toEqual(before);
    const list = (await api(second.url, 'GET', '/api/v1/tasks?limit=100')).body;
    expect(list.tasks.map((t: { task_id: string }) => t.task_id).sort()).toEqual([done, queued].sort());
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});

describe('who may take a backup, and where', () => {
  let tdb: TestDb;
  let server: TestServer;
  afterAll(async () => {
    process.exitCode = undefined;
    await server?.close();
    await tdb?.close();
  });

  it('is documented; a tenant admin and a system key without admin get 403; on PostgreSQL an operator gets 409', async () => {
    tdb = await openTestDb();
    server = await startTestServer(tdb.db);
    const tenant = await server.call('POST', '/api/v1/admin/tenants', { name: 'other' });
    const tenantAdmin = await server.call('POST', `/api/v1/admin/tenants/${tenant.body.tenant_id}/api-keys`, { name: 'their admin', scopes: ['admin'] });
    const reader = await server.call('POST', '/api/v1/auth/api-keys', { name: 'reader', scopes: ['tasks:read'] });
    for (const key of [tenantAdmin.body.key as string, reader.body.key as string]) {
      const res = await server.call('GET', '/api/v1/admin/backup', undefined, { key });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
      const cli = await runCli(['backup', '--out', join(mkdtempSync(join(tmpdir(), 'taskgate-backup-')), 'x.tar.gz')], { TASKGATE_URL: server.url, TASKGATE_API_KEY: key });
      expect(cli.code).toBe(1);
      expect(cli.err).toMatch(/^taskgate: FORBIDDEN \(HTTP 403\)/);
    }

    const doc = (await server.call('GET', '/openapi.json', undefined, { key: null })).body;
    const op = doc.paths['/api/v1/admin/backup'].get;
    expect(op.tags).toEqual(['admin']);
    expect(op.responses['200'].content).toEqual({ 'application/gzip': { schema: { type: 'string', format: 'binary' } } });
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '403', '409', '429']));

    const own = await server.call('GET', '/api/v1/admin/backup', undefined, { key: ADMIN_KEY });
    if (!usingPostgres()) {
      expect(own.status).toBe(200);
      return;
    }
    expect(own.status).toBe(409);
    expect(own.body.error).toEqual({ code: 'CONFLICT', message: 'the database is PostgreSQL: back it up with pg_dump (README: Backups)' });
    const dir = mkdtempSync(join(tmpdir(), 'taskgate-backup-'));
    const cli = await runCli(['backup', '--out', join(dir, 'x.tar.gz')], { TASKGATE_URL: server.url, TASKGATE_API_KEY: ADMIN_KEY });
    expect(cli).toEqual({ code: 1, out: '', err: 'taskgate: CONFLICT (HTTP 409): the database is PostgreSQL: back it up with pg_dump (README: Backups)' });
    expect(readdirSync(dir)).toEqual([]);
  });
});
