// wait()'s own limits against scripted servers: `timeoutMs` bounds the status reads themselves (a
// server that accepts and never answers cannot hold a wait past it), the caller's abort stays the
// caller's, and the poll interval is a usable number of ms.
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { TaskgateClient, TaskTimeoutError, ValidationError } from '../../src/sdk/index.js';
import { useSilentServer } from '../helpers/silent-server.js';

// accepts every connection and never answers (a proxy whose upstream went quiet)
const silent = useSilentServer();

describe('SDK wait(): the deadline', () => {
  it('a read that gets no answer is cut at timeoutMs: WAIT_TIMEOUT, not the request timeout and its retries', async () => {
    // request timeout off: without the deadline on the read, this wait never ends
    const never = new TaskgateClient({ baseUrl: silent.url, timeoutMs: 0 });
    const err = await never.wait('t1', { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskTimeoutError);
    expect(err).toMatchObject({ code: 'WAIT_TIMEOUT', details: { status: null } });
    expect((err as Error).message).toMatch(/a status read was still unanswered/);

    // the usual 30 s request timeout with two retries: the wait still ends with its own deadline
    const started = performance.now();
    const usual = await new TaskgateClient({ baseUrl: silent.url }).wait('t1', { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(usual).toBeInstanceOf(TaskTimeoutError);
    expect(performance.now() - started).toBeLessThan(5_000);
  }, 15_000);

  it('the caller\'s abort during a read rejects with the caller\'s reason, not a timeout', async () => {
    const ac = new AbortController();
    const reason = new Error('user gave up');
    const connected = new Promise((r) => silent.server.once('connection', r));
    const waiting = new TaskgateClient({ baseUrl: silent.url, timeoutMs: 0 }).wait('t1', { timeoutMs: 60_000, signal: ac.signal }).catch((e: unknown) => e);
    // aborted once the read is on the wire
    await connected;
    ac.abort(reason);
    expect(await waiting).toBe(reason);
  }, 15_000);
});

describe('SDK wait(): its options', () => {
  it('pollIntervalMs below 1 ms (or not a number) and a timeoutMs that is not a number ≥ 0 are INVALID_OPTION, before any read', async () => {
    // a task that stays RUNNING: with pollIntervalMs 0 the status was read back to back until timeoutMs
    let reads = 0;
    const running = createHttpServer((_q, res) => {
      reads++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ task_id: 't1', status: 'RUNNING' }));
    });
    await new Promise<void>((r) => running.listen(0, '127.0.0.1', r));
    try {
      const c = new TaskgateClient({ baseUrl: `http://127.0.0.1:${(running.address() as AddressInfo).port}` });
      for (const pollIntervalMs of [0, -5, Number.NaN, 2 ** 31]) {
        const err = await c.wait('t1', { pollIntervalMs, timeoutMs: 300 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect(err).toMatchObject({ status: 0, code: 'INVALID_OPTION', details: { path: 'pollIntervalMs' } });
      }
      for (const timeoutMs of [-1, Number.NaN]) {
        await expect(c.wait('t1', { timeoutMs })).rejects.toMatchObject({ code: 'INVALID_OPTION', details: { path: 'timeoutMs' } });
      }
      expect(reads).toBe(0);
      // the smallest allowed still polls
      expect(await c.wait('t1', { pollIntervalMs: 1, timeoutMs: 50 }).catch((e: unknown) => e)).toBeInstanceOf(TaskTimeoutError);
      expect(reads).toBeGreaterThan(0);
    } finally {
      running.closeAllConnections();
      await new Promise((r) => running.close(r));
    }
  });
});
