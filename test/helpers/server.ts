// A real Taskgate server on a real database for API and engine tests: the same startServer the
// CLI uses, with short leases and polls, listening on an ephemeral loopback port.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { startServer, type Server } from '../../src/main.js';
import { createLogger } from '../../src/logger.js';
import type { Db } from '../../src/storage/db.js';
import { tenantsInsert } from '../../src/storage/queries/tenants.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { newTenantId } from '../../src/domain/ids.js';
import { TERMINAL_STATUSES } from '../../src/domain/lifecycle.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { openTestDb, type TestDb } from './db.js';

export const ADMIN_KEY = 'sk_test_admin_key_0123456789abcdef';

export interface TestServer extends Server {
  /** POST /api/v1/tasks expecting 200; returns the task id. */
  submit(body: Record<string, unknown>, opts?: { key?: string }): Promise<string>;
  /** fetch against the server with the admin key unless `key` is given (null: no key). */
  call(method: string, path: string, body?: unknown, opts?: { key?: string | null; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers; text: string }>;
}

export interface TestServerOptions {
  definitions?: TaskDefinition[];
  flags?: Record<string, string>;
  /** Overrides settings past their env bounds (e.g. a claim window no loaded machine outlasts). */
  config?: Partial<Config>;
}

export async function startTestServer(db: Db, env: Record<string, string> = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  const loaded = loadConfig(opts.flags ?? {}, {
    TASKGATE_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    TASKGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'taskgate-test-')),
    PORT: '0',
    TASKGATE_POLL_INTERVAL_MS: '100',
    TASKGATE_LEASE_MS: '3000',
    TASKGATE_REAPER_INTERVAL_MS: '200',
    TASKGATE_SHUTDOWN_GRACE_MS: '2000',
    TASKGATE_CANCEL_GRACE_MS: '1000',
    // functional tests submit in bursts; test/security turns rate limits back on where it tests them
    TASKGATE_RATE_LIMIT_PER_MIN: '0',
    // suites that send bad credentials on purpose (route table, fuzz) would trip it; test/security turns it on
    TASKGATE_AUTH_FAILURES_PER_MIN: '0',
    ...env,
  });
  const config: Config = { ...loaded, ...opts.config };
  const server = await startServer(config, { db, logger: createLogger(config.logLevel) });
  for (const def of opts.definitions ?? []) server.registry.addDefinition(def, 'test');
  return withCalls(server);
}

/** `server` with the tests' call() and submit(). */
function withCalls(server: Server): TestServer {
  const call: TestServer['call'] = async (method, path, body, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const key = o.key === undefined ? ADMIN_KEY : o.key;
    if (key) headers['x-api-key'] = key;
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), redirect: 'manual' });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, headers: res.headers, text };
  };
  const submit: TestServer['submit'] = async (body, o = {}) => {
    const res = await call('POST', '/api/v1/tasks', body, { key: o.key });
    if (res.status !== 200) throw new Error(`submit answered ${res.status}: ${res.text}`);
    return res.body.task_id as string;
  };
  return Object.assign(server, { call, submit });
}

/** A file's database and the server on it, as `useTestServer` fills them in its beforeAll. */
export interface TestServerFixture {
  readonly tdb: TestDb;
  readonly server: TestServer;
}

/**
 * The usual file fixture: registers a beforeAll that opens a database and starts a server on it
 * (`env` and `opts` as for startTestServer) and an afterAll that closes the server, then the
 * database. Read the fields in tests and hooks; before the beforeAll has run they throw.
 */
export function useTestServer(env: Record<string, string> = {}, opts: TestServerOptions = {}): TestServerFixture {
  let tdb: TestDb | undefined;
  let server: TestServer | undefined;
  beforeAll(async () => {
    tdb = await openTestDb();
    server = await startTestServer(tdb.db, env, opts);
  });
  afterAll(async () => {
    await server?.close();
    await tdb?.close();
  });
  return {
    get tdb() {
      return fixtureField('useTestServer', tdb, 'tdb');
    },
    get server() {
      return fixtureField('useTestServer', server, 'server');
    },
  };
}

/** A fixture's field, or a clear error when a test reads it before the fixture's beforeAll ran. */
export function fixtureField<T>(fixture: string, value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`${fixture}: ${name} is read before its beforeAll has run`);
  return value;
}

/** A fresh tenant with a key holding `scopes` (tenant isolation without a new database). */
export async function newTenant(db: Db, scopes: string[] = ['admin']): Promise<{ tenantId: string; key: string }> {
  const tenantId = newTenantId();
  await tenantsInsert(db, { id: tenantId, name: tenantId });
  const { key } = await createApiKey(db, { tenantId, userId: `user-${tenantId}`, name: 'test', scopes, expiresAt: null });
  return { tenantId, key };
}

/** Polls the task until `done(task)` or the deadline; returns the last view. */
export async function waitForTask(
  server: TestServer,
  taskId: string,
  done: (t: any) => boolean = (t) => TERMINAL_STATUSES.has(t.status),
  opts: { key?: string; timeoutMs?: number } = {},
): Promise<any> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const res = await server.call('GET', `/api/v1/tasks/${taskId}`, undefined, { key: opts.key });
    if (res.status === 200 && done(res.body)) return res.body;
    if (Date.now() > deadline) throw new Error(`task ${taskId} did not reach the expected state; last: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls `check` every 20 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A server (API role unless `env` says otherwise, no rate limits, its own data directory) whose
 * pino output is kept in memory: `logs()` the text, `entries()` the lines parsed.
 */
export async function serverWithLogs(
  db: Db, env: Record<string, string>, flags: Record<string, string | boolean> = {},
): Promise<{ server: TestServer; logs: () => string; entries: () => Record<string, unknown>[] }> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const config = loadConfig(flags, {
    TASKGATE_ADMIN_KEY: ADMIN_KEY, PORT: '0', TASKGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'taskgate-logs-')), TASKGATE_ROLE: 'api',
    TASKGATE_RATE_LIMIT_PER_MIN: '0', ...env,
  });
  const server = withCalls(await startServer(config, { db, logger: createLogger(config.logLevel, sink) }));
  return { server, logs: () => lines.join(''), entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
