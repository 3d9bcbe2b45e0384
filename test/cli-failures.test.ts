// How the `taskgate` command fails when the world misbehaves: a server that never answers, flag
// values no timer can hold, a reader that closes its end of the pipe, a port already taken. In
// process through the CLI's entry point where that shows it; spawned from dist/ where only the real
// process shows it (its stdout, its exit).
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

// accepts every connection and never answers (a proxy whose upstream went quiet)
let silent: Server;
let silentUrl: string;
const sockets = new Set<Socket>();

beforeAll(async () => {
  silent = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

describe('CLI: a server that never answers', () => {
  it('tasks wait --timeout-ms gives up at its deadline (exit 3), not after the request timeout and its retries', async () => {
    const started = performance.now();
    const r = await runCli(['tasks', 'wait', 'task_x', '--timeout-ms', '500'], { TASKGATE_URL: silentUrl, TASKGATE_API_KEY: 'sk_test' });
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^taskgate: WAIT_TIMEOUT: task task_x has not been seen to end within 500 ms/);
    // the audit measured 91 s for --timeout-ms 2000 (a 30 s read, retried twice)
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 30_000);
});
