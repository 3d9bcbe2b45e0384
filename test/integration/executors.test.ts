// Executors against real things: a --tasks-dir module, and the http executor against a local
// HTTP server (allow-listed loopback), including the SSRF refusal, size cap, timeout and retries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { createRegistry } from '../../src/main.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { checkDefinition } from '../../src/executors/registry.js';
import type { TaskDefinition } from '../../src/executors/types.js';

let tdb: TestDb;
let open: TestServer;
let guarded: TestServer;
let guardedDb: TestDb;
let upstream: HttpServer;
let upstreamUrl = '';
const hits: { method: string; url: string; body: string; traceparent?: string }[] = [];
let flaky = 0;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hits.push({ method: req.method!, url: req.url!, body, traceparent: req.headers.traceparent as string | undefined });
      if (req.url === '/big') return res.end('x'.repeat(5000));
      if (req.url === '/slow') return setTimeout(() => res.end('late'), 5000).unref();
      if (req.url === '/flaky' && flaky++ < 1) {
        res.writeHead(503, { 'retry-after': '0' });
        return res.end('busy');
      }
      if (req.url === '/missing') {
        res.writeHead(404);
        return res.end('no');
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, echo: body ? JSON.parse(body) : null }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

  const tasksDir = mkdtempSync(join(tmpdir(), 'taskgate-tasks-'));
  writeFileSync(join(tasksDir, 'greet.mjs'), `export default {
    id: 'greet', name: 'Greet', description: 'says hello', version: '2.0.0',
    input_schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    output_schema: { type: 'object', properties: { greeting: { type: 'string' } }, required: ['greeting'] },
    async handler(input, ctx) {
      const g = await ctx.step('compose', () => 'Hello, ' + input.name);
      await ctx.progress('composed');
      return { greeting: g };
    },
  };`);
  tdb = await openTestDb();
  open = await startTestServer(tdb.db, { TASKGATE_HTTP_ALLOW_LIST: '127.0.0.0/8', TASKGATE_HTTP_MAX_RESPONSE_BYTES: '1000', TASKGATE_HTTP_TIMEOUT_MS: '300' }, { flags: { 'tasks-dir': tasksDir } });
});
afterAll(async () => {
  await open?.close();
  await guarded?.close();
  await guardedDb?.close();
  await tdb?.close();
  upstream?.close();
});

const run = async (server: TestServer, body: Record<string, unknown>, headers?: Record<string, string>) => {
  const res = await server.call('POST', '/api/v1/tasks', body, { headers });
  expect(res.status, res.text).toBe(200);
  return waitForTask(server, res.body.task_id);
};

describe('function executor from --tasks-dir', () => {
  it('loads the module, validates input and runs it', async () => {
    const def = (await open.call('GET', '/api/v1/definitions/greet')).body;
    expect(def).toMatchObject({ id: 'greet', version: '2.0.0', kind: 'function' });
    const t = await run(open, { task_definition_id: 'greet', input: { name: 'Ada' } });
    expect(t.output).toEqual({ greeting: 'Hello, Ada' });
    expect((await open.call('POST', '/api/v1/tasks', { task_definition_id: 'greet', input: {} })).status).toBe(422);
  });

  it('a directory or module it cannot load stops the start with one ConfigError naming the setting and the file, before the database opens', async () => {
    const problem = async (dir: string) => {
      // (no database: the task kinds are loaded first, so a bad one never gets that far)
      const err: unknown = await createRegistry(loadConfig({ 'tasks-dir': dir }, {})).then(() => undefined, (e: unknown) => e);
      expect(err, dir).toBeInstanceOf(ConfigError);
      expect((err as Error).message, dir).not.toContain('\n');
      return (err as Error).message;
    };
    expect(await problem('/nonexistent-taskgate-dir')).toMatch(/^--tasks-dir\/TASKGATE_TASKS_DIR: cannot read the directory \/nonexistent-taskgate-dir: ENOENT/);
    const broken = mkdtempSync(join(tmpdir(), 'taskgate-tasks-bad-'));
    writeFileSync(join(broken, 'half.mjs'), 'export default {');
    // (SyntaxError under node; vitest transforms imports and names it otherwise)
    expect(await problem(broken)).toMatch(/^--tasks-dir\/TASKGATE_TASKS_DIR: half\.mjs: \w*Error: /);
    const invalid = mkdtempSync(join(tmpdir(), 'taskgate-tasks-inv-'));
    writeFileSync(join(invalid, 'inv.mjs'), 'export default { id: 42 }');
    expect(await problem(invalid)).toMatch(/^--tasks-dir\/TASKGATE_TASKS_DIR: .*inv\.mjs/);
    // its task settings are checked as PUT /api/v1/definitions checks them (they failed submits with a 500)
    const settings = (name: string, body: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'taskgate-tasks-set-'));
      writeFileSync(join(dir, `${name}.mjs`), `export default { id: '${name}', kind: 'function', handler: () => ({}), ${body} }`);
      return problem(dir);
    };
    expect(await settings('prio', "priority: 'highest'")).toMatch(/definition prio: priority /);
    expect(await settings('retries', 'retry_policy: { max_retries: -1 }')).toMatch(/definition retries: retry_policy\.max_retries must be >= 0/);
    expect(await settings('slow', 'timeout_ms: 3000000000')).toMatch(/definition slow: timeout_ms must be <= 86400000/);
    expect(await settings('text', "timeout_ms: '5000'")).toMatch(/definition text: timeout_ms must be integer/);
  });

  it("takes a module's priority in any case, as submits do (seed 003 writes MEDIUM)", async () => {
    const def = checkDefinition({ id: 'caps', kind: 'function', handler: () => ({}), priority: 'HIGH' } as unknown as TaskDefinition, 'test');
    expect(def.priority).toBe('high');
  });
});

describe('http executor', () => {
  it('calls an allow-listed endpoint with the body and the caller’s traceparent', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const t = await run(open, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/echo`, method: 'POST', body: { a: 1 } } }, { traceparent: tp });
    expect(t.status).toBe('COMPLETED');
    expect(t.output).toMatchObject({ status: 200, body: { ok: true, echo: { a: 1 } } });
    expect(hits.find((h) => h.url === '/echo')?.traceparent).toBe(tp);
  });

  it('retries a 503 and fails permanently on a 404', async () => {
    const ok = await run(open, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/flaky` }, retry_policy: { max_retries: 2, retry_interval_ms: 10 } });
    expect(ok.status).toBe('COMPLETED');
    expect(ok.attempts).toBe(2);
    const missing = await run(open, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/missing` }, retry_policy: { max_retries: 3, retry_interval_ms: 10 } });
    expect(missing.status).toBe('FAILED');
    expect(missing.attempts).toBe(1);
    expect(missing.error).toContain('404');
  });

  it('fails a call Node cannot send (a bad header name or value) at once instead of retrying it', async () => {
    for (const input of [
      { url: `${upstreamUrl}/echo`, headers: { 'bad header': 'x' } },
      { url: `${upstreamUrl}/echo`, headers: { 'x-a': 'line\r\nbreak' } },
    ]) {
      const t = await run(open, { task_definition_id: 'http_request', input, retry_policy: { max_retries: 3, retry_interval_ms: 10 } });
      expect(t.status, JSON.stringify(input)).toBe('FAILED');
      expect(t.attempts, JSON.stringify(input)).toBe(1);
      expect(t.error).toMatch(/invalid (header|HTTP method)/);
    }
  });

  it('caps the response size and times out slow calls', async () => {
    const big = await run(open, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/big` }, retry_policy: { max_retries: 0 } });
    expect(big.status).toBe('FAILED');
    expect(big.error).toContain('larger than 1000 bytes');
    const slow = await run(open, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/slow` }, retry_policy: { max_retries: 0 } });
    expect(slow.status).toBe('FAILED');
    expect(slow.error).toContain('timed out');
  });

  it('refuses loopback and private targets unless allow-listed (SSRF guard)', async () => {
    // its own database: on a shared one the allow-listing server's worker may claim these tasks
    guardedDb = await openTestDb();
    guarded = await startTestServer(guardedDb.db, {});
    for (const url of [`${upstreamUrl}/echo`, 'http://localhost:1/', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:1/', 'http://10.0.0.1/']) {
      const t = await run(guarded, { task_definition_id: 'http_request', input: { url }, retry_policy: { max_retries: 2, retry_interval_ms: 10 } });
      expect(t.status, url).toBe('FAILED');
      expect(t.attempts, url).toBe(1);
      expect(t.error, url).toMatch(/refusing|private|loopback/);
    }
  });
});
