// The real `taskgate serve` process: SIGKILL in the middle of running tasks, restart, and every
// task still completes exactly once; one PGlite data directory per live process; graceful SIGTERM.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnServe, runServeExpectingExit, freePort, type ServeProcess } from '../helpers/process.js';
import { openPg } from '../../src/storage/pg.js';
import { TERMINAL_STATUSES } from '../../src/domain/lifecycle.js';

const KEY = 'sk_e2e_admin_key_0123456789abcdef';
const pgUrl = process.env.DATABASE_URL;

function baseEnv(dataDir: string, schema: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    TASKGATE_ADMIN_KEY: KEY,
    TASKGATE_DATA_DIR: dataDir,
    TASKGATE_LEASE_MS: '1500',
    TASKGATE_REAPER_INTERVAL_MS: '300',
    TASKGATE_POLL_INTERVAL_MS: '100',
    TASKGATE_SHUTDOWN_GRACE_MS: '3000',
    // these tests drive load through one key; the limiter has its own suite
    TASKGATE_RATE_LIMIT_PER_MIN: '0',
  };
  if (pgUrl && schema) {
    env.DATABASE_URL = pgUrl;
    env.TASKGATE_DB_SCHEMA = schema;
  } else {
    env.DATABASE_URL = '';
  }
  return env;
}

async function api(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { 'x-api-key': KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function waitAll(url: string, ids: string[], timeoutMs = 60_000): Promise<any[]> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, any>();
  while (done.size < ids.length) {
    for (const id of ids) {
      if (done.has(id)) continue;
      const r = await api(url, 'GET', `/api/v1/tasks/${id}`);
      if (TERMINAL_STATUSES.has(r.body?.status)) done.set(id, r.body);
    }
    if (Date.now() > deadline) throw new Error(`only ${done.size}/${ids.length} tasks finished`);
    if (done.size < ids.length) await new Promise((r) => setTimeout(r, 100));
  }
  return ids.map((id) => done.get(id));
}

let schema: string | undefined;
const children: ServeProcess[] = [];

beforeAll(async () => {
  if (pgUrl) {
    schema = `e2e_${randomBytes(5).toString('hex')}`;
  }
});
// a test that failed half-way must not leave its server claiming the next test's tasks (on
// PostgreSQL the tests share one schema)
async function killAlive(): Promise<void> {
  const alive = children.filter((c) => c.child.exitCode === null && c.child.signalCode === null);
  for (const c of alive) c.child.kill('SIGKILL');
  await Promise.all(alive.map((c) => c.exited));
}
afterEach(killAlive);
afterAll(async () => {
  await killAlive();
  if (pgUrl && schema) {
    const admin = await openPg({ connectionString: pgUrl, maxConnections: 1 });
    await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.close();
  }
});

// real processes on a shared 2-core machine: generous per-test time, never a timing assertion
describe('taskgate serve process', { timeout: 240_000 }, () => {
  it('loses no task across kill -9 and restart; finished steps are not re-run', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-'));
    const env = baseEnv(dataDir, schema);
    const first = await spawnServe(['--concurrency', '8'], env);
    children.push(first);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await api(first.url, 'POST', '/api/v1/tasks', { task_definition_id: 'sleep', input: { ms: 150, steps: 4 } });
      expect(r.status).toBe(200);
      ids.push(r.body.task_id);
    }
    // wait until some tasks are mid-way (at least one step done), then kill -9
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await api(first.url, 'GET', `/api/v1/tasks/${ids[0]}/events?limit=200`);
      if (r.body.events.some((e: any) => e.type === 'PROGRESS')) break;
      if (Date.now() > deadline) throw new Error('no progress seen');
      await new Promise((res) => setTimeout(res, 20));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    if (!pgUrl) expect(existsSync(join(dataDir, 'taskgate.lock'))).toBe(true); // stale lock left behind

    const second = await spawnServe(['--concurrency', '8'], env);
    children.push(second);
    const tasks = await waitAll(second.url, ids);
    for (const t of tasks) {
      expect(t.status).toBe('COMPLETED');
      expect(t.output.steps).toBe(4);
      // a step interrupted by the kill may have started twice; a finished one never re-runs
      expect(t.output.step_runs.every((n: number) => n === 1 || n === 2)).toBe(true);
      const events = (await api(second.url, 'GET', `/api/v1/tasks/${t.task_id}/events?limit=200`)).body.events;
      expect(events.filter((e: any) => e.type === 'WORKFLOW_COMPLETED')).toHaveLength(1);
      expect(events.filter((e: any) => e.type === 'PROGRESS')).toHaveLength(4);
      expect(events.map((e: any) => e.seq)).toEqual(events.map((_: unknown, i: number) => i + 1));
    }
    expect(tasks.some((t) => t.attempts >= 2)).toBe(true);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('runs 1,000 sleep tasks of 20 ms with none lost and none run twice', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-'));
    // nothing crashes here: a long lease, so a stall of a loaded machine cannot expire one and run a task twice
    const srv = await spawnServe(['--concurrency', '50'], { ...baseEnv(dataDir, schema), TASKGATE_LEASE_MS: '30000' });
    children.push(srv);
    const ids: string[] = [];
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => api(srv.url, 'POST', '/api/v1/tasks', { task_definition_id: 'sleep', input: { ms: 20 }, workflow_instance_id: 'bulk-1000' })));
      for (const r of batch) {
        expect(r.status).toBe(200);
        ids.push(r.body.task_id);
      }
    }
    expect(new Set(ids).size).toBe(1000);
    const deadline = Date.now() + 120_000;
    let completed = 0;
    while (Date.now() < deadline) {
      // count only this test's tasks: on PostgreSQL the schema also holds the previous test's
      const r = await api(srv.url, 'GET', '/api/v1/tasks?status=COMPLETED&limit=1&workflow_instance_id=bulk-1000');
      completed = r.body.total_count;
      if (completed >= 1000) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // scan every task through the list (newest first, 100 a page)
    const seen = new Map<string, any>();
    for (let offset = 0; offset < 1000; offset += 100) {
      const page = await api(srv.url, 'GET', `/api/v1/tasks?limit=100&offset=${offset}&workflow_instance_id=bulk-1000`);
      for (const t of page.body.tasks) seen.set(t.task_id, t);
    }
    for (const id of ids) expect(seen.get(id)?.status, id).toBe('COMPLETED');
    // spot-check outputs: each step ran exactly once
    for (const id of ids.slice(0, 50)) {
      const t = (await api(srv.url, 'GET', `/api/v1/tasks/${id}`)).body;
      expect(t.output.step_runs).toEqual([1]);
      expect(t.attempts).toBe(1);
    }
    srv.child.kill('SIGTERM');
    expect(await srv.exited).toBe(0);
  });

  it('a task that takes its process down inside a claim window is counted all the same, and ends FAILED', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-'));
    const tasksDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-tasks-'));
    writeFileSync(join(tasksDir, 'crash.mjs'), `export default {
      id: 'crash-process', name: 'kills its process', description: '', version: '1', kind: 'function',
      input_schema: { type: 'object' }, output_schema: { type: 'object' },
      handler() { process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); },
    };`);
    const env = { ...baseEnv(dataDir, schema), TASKGATE_CLAIM_WINDOW_MS: '200', TASKGATE_LEASE_MS: '600', TASKGATE_REAPER_INTERVAL_MS: '100' };
    const args = ['--tasks-dir', tasksDir, '--concurrency', '2'];
    let srv = await spawnServe(args, env);
    children.push(srv);
    // spend this process's first claim (written at once) on a harmless task
    const warm = await api(srv.url, 'POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 10 });
    await waitAll(srv.url, [warm.body.task_id]);
    const r = await api(srv.url, 'POST', '/api/v1/tasks', { task_definition_id: 'crash-process', input: {}, delay_ms: 50, retry_policy: { max_retries: 1, retry_interval_ms: 10 } });
    expect(r.status).toBe(200);
    const id = r.body.task_id;
    let final: any;
    await srv.exited; // the task took it down, inside a window
    for (let starts = 1; starts <= 15 && !final; starts++) {
      try {
        srv = await spawnServe(args, env);
      } catch (err) {
        if (/exited before becoming healthy/.test(String(err))) continue; // taken down while starting
        throw err;
      }
      children.push(srv);
      // until this process is taken down too, or the task has ended
      while (srv.child.exitCode === null && srv.child.signalCode === null) {
        const t = await api(srv.url, 'GET', `/api/v1/tasks/${id}`).catch(() => undefined);
        if (t && TERMINAL_STATUSES.has(t.body?.status)) {
          final = t.body;
          break;
        }
        await new Promise((res) => setTimeout(res, 50));
      }
      if (!final) await srv.exited;
    }
    // without counting a window's crash the task would take down every process, forever
    expect(final).toMatchObject({ status: 'FAILED', attempts: 2 });
    srv.child.kill('SIGTERM');
    await srv.exited;
  });

  it.skipIf(Boolean(pgUrl))('refuses a second live process on the same PGlite data directory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-'));
    const env = baseEnv(dataDir, undefined);
    const first = await spawnServe([], env);
    children.push(first);
    const second = await runServeExpectingExit([], { ...env, PORT: String(await freePort()) });
    expect(second.code).toBe(1);
    expect(second.output).toMatch(/is in use by process \d+ \(started [^)]+\);.*remove .*taskgate\.lock/);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(existsSync(join(dataDir, 'taskgate.lock'))).toBe(false);
  });

  it.skipIf(Boolean(pgUrl))('writes a generated admin key once, to a 0600 file, and keeps it out of a stdout that is no terminal', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-'));
    const env = { ...baseEnv(dataDir, undefined), TASKGATE_ADMIN_KEY: '' };
    const srv = await spawnServe([], env);
    children.push(srv);
    const keyFile = join(dataDir, 'admin.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const { readFileSync } = await import('node:fs');
    const key = readFileSync(keyFile, 'utf8').trim();
    expect(key).toMatch(/^sk_[A-Za-z0-9]{12}_/);
    // its stdout is no terminal (a container's log): the key is not printed, the file is named
    expect(srv.output()).not.toContain(key);
    expect(srv.output()).toContain(`saved to ${keyFile} (not printed: standard output is not a terminal)`);
    const me = await fetch(srv.url + '/api/v1/definitions', { headers: { authorization: `Bearer ${key}` } });
    expect(me.status).toBe(200);
    srv.child.kill('SIGTERM');
    await srv.exited;
    const again = await spawnServe([], env);
    children.push(again);
    expect(again.output()).not.toContain(key);
    again.child.kill('SIGTERM');
    await again.exited;
  });

  it('a stale lock file from a dead process does not block a start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-e2e-'));
    writeFileSync(join(dataDir, 'taskgate.lock'), '999999');
    const srv = await spawnServe([], baseEnv(dataDir, schema));
    children.push(srv);
    srv.child.kill('SIGTERM');
    expect(await srv.exited).toBe(0);
  });
});
