// How the `taskgate` command fails when the world misbehaves: a server that never answers, flag
// values no timer can hold, a reader that closes its end of the pipe, a port already taken. In
// process through the CLI's entry point where that shows it; spawned from dist/ where only the real
// process shows it (its stdout, its exit).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { useSilentServer } from './helpers/silent-server.js';
import { CLI, runServeExpectingExit } from './helpers/process.js';

// accepts every connection and never answers (a proxy whose upstream went quiet)
const silent = useSilentServer();

describe('CLI: a server that never answers', () => {
  it('tasks wait --timeout-ms gives up at its deadline (exit 3), not after the request timeout and its retries', async () => {
    const started = performance.now();
    const r = await runCli(['tasks', 'wait', 'task_x', '--timeout-ms', '500'], { TASKGATE_URL: silent.url, TASKGATE_API_KEY: 'sk_test' });
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^taskgate: WAIT_TIMEOUT: task task_x has not been seen to end within 500 ms/);
    // the audit measured 91 s for --timeout-ms 2000 (a 30 s read, retried twice)
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 30_000);
});

describe('CLI: ms flags a timer cannot hold', () => {
  it('--timeout-ms beyond 2^31 - 1 (or below 1) is a usage error (exit 2) before anything is sent', async () => {
    // answers any submit (as the real route) and any read with 404: what the command sends shows
    const sent: string[] = [];
    const api = createHttpServer((req, res) => {
      sent.push(`${req.method} ${req.url}`);
      req.resume();
      if (req.method === 'POST') return res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ task_id: 'task_x', workflow_id: 'task_x', session_id: null, status: 'QUEUED' }));
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no' } }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const env = { TASKGATE_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, TASKGATE_API_KEY: 'sk_test' };
    try {
      for (const args of [
        ['tasks', 'submit', '--definition', 'noop', '--follow', '--timeout-ms', '5000000000'],
        ['tasks', 'submit', '--definition', 'noop', '--wait', '--timeout-ms', '2147483648'],
        ['tasks', 'wait', 'task_x', '--timeout-ms', '5000000000'],
        ['tasks', 'wait', 'task_x', '--timeout-ms', '0'],
      ]) {
        const r = await runCli(args, env);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.err).toMatch(/^taskgate: --timeout-ms must be from 1 to 2147483647 ms/);
        expect(r.err).not.toMatch(/RangeError|\n\s+at /);
      }
      expect(sent).toEqual([]);
    } finally {
      await new Promise((r) => api.close(r));
    }
  });
});

describe('CLI process: a reader that closes its end', () => {
  it('tasks list --json into a closed pipe exits quietly with 0: no EPIPE stack', async () => {
    const task = { task_id: 'task_x', query: 'q', status: 'QUEUED', mode: null, priority: 'medium', task_definition_id: null, session_id: null, created_at: '2024-01-01T00:00:00.000Z', completed_at: null, total_token_usage: { total_tokens: 0, cost_usd: 0, prompt_tokens: 0, completion_tokens: 0 } };
    const api = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tasks: Array(100).fill(task), total_count: 100, limit: 100, offset: 0 }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const child = spawn(process.execPath, [CLI, 'tasks', 'list', '--json', '--limit', '100'], {
        env: { ...process.env, TASKGATE_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, TASKGATE_API_KEY: 'sk_test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // the reader goes before the command has written anything (it is still starting)
      child.stdout.destroy();
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      expect(err).toBe('');
      expect(code).toBe(0);
    } finally {
      await new Promise((r) => api.close(r));
    }
  }, 30_000);
});

describe('CLI process: serve on a port already taken', () => {
  it('says so in one line naming the address and --port/PORT, exit 1, no stack', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-port-'));
    try {
      const { code, output } = await runServeExpectingExit(['--port', String(port), '--host', '127.0.0.1'], { TASKGATE_DATA_DIR: dataDir });
      expect(code).toBe(1);
      // found before the database is opened: nothing created, no admin key printed (it was)
      expect(output).toBe(`taskgate: cannot listen on 127.0.0.1:${port}: the port is already in use (another taskgate?) — stop it, or choose another port with --port or PORT\n`);
      expect(existsSync(join(dataDir, 'pgdata'))).toBe(false);
    } finally {
      await new Promise((r) => taken.close(r));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
