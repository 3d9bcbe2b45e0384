// Fan-out and isolation: 1,000 concurrent SSE clients on one task each receive every event once
// and in order; a client that stops reading overflows its bounded buffer and is dropped, without
// holding back another client or the engine, and resumes with Last-Event-ID.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { followToEnd, gates, isDone, openSse, progressDef, type SseClient } from './helpers.js';

const CLIENTS = 1_000;
/** Connects per wave (a thousand SYNs at once overflow the listen backlog on a busy box). */
const WAVE = 100;

let tdb: TestDb;
let server: TestServer;
let keys: string[] = [];

beforeAll(async () => {
  tdb = await openTestDb();
  // a client that is behind and reads nothing for 1 s is dropped (default 15 s); default rate
  // stream cap (1,000 per principal); request limits are tested in test/security/rate-limit.test.ts
  server = await startTestServer(tdb.db, { TASKGATE_STREAM_STALL_MS: '1000', TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [progressDef] });
  const first = await newTenant(tdb.db, ['admin']);
  keys = [first.key];
  for (let i = 1; i < 3; i++) {
    keys.push((await createApiKey(tdb.db, { tenantId: first.tenantId, userId: `fan-${i}`, name: `fan-${i}`, scopes: ['tasks:read'], expiresAt: null })).key);
  }
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

const submit = async (input: Record<string, unknown>) => {
  const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'test-progress', input }, { key: keys[0] });
  expect(res.status, res.text).toBe(200);
  return res.body.task_id as string;
};
const seqs = async (id: string) =>
  ((await server.call('GET', `/api/v1/tasks/${id}/events?limit=200`, undefined, { key: keys[0] })).body.events as any[]).map((e) => e.seq as number);
const ids = (c: SseClient) => c.frames.filter((f) => f.id !== undefined).map((f) => Number(f.id));
const streamClients = async () => Number(/^taskgate_stream_clients (\d+)/m.exec((await server.call('GET', '/metrics')).text)?.[1] ?? NaN);
describe('fan-out', () => {
  it(`${CLIENTS} concurrent SSE clients on one task all receive every event, once and in order`, async () => {
    const id = await submit({ count: 20, key: 'fan', gated: true });
    await waitForTask(server, id, (t) => t.status === 'RUNNING', { key: keys[0] });
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const rssBefore = process.memoryUsage().rss;
    const clients: SseClient[] = [];
    try {
      // all 1,000 on ONE key, in waves
      for (let wave = 0; wave < CLIENTS / WAVE; wave++) {
        const batch = Array.from({ length: WAVE }, () =>
          openSse(`${server.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: { 'x-api-key': keys[0]! }, agent }));
        clients.push(...batch);
        const statuses = await Promise.all(batch.map((c) => c.status));
        expect(statuses.filter((s) => s !== 200), String(batch.find((c) => c.error)?.error ?? batch.find((c) => c.body())?.body())).toEqual([]);
      }
      await Promise.all(clients.map((c) => c.waitFor((f) => f.event === 'WORKFLOW_STARTED')));
    } catch (err) {
      for (const c of clients) c.close();
      throw err;
    }
    const held = await streamClients();
    const rssConnected = process.memoryUsage().rss;
    gates.open('fan:start');
    await Promise.all(clients.map((c) => c.waitFor(isDone)));
    await Promise.all(clients.map((c) => c.ended));

    const expected = await seqs(id);
    expect(expected.length).toBe(23); // started, 20 × progress, completed, stream end
    for (const c of clients) expect(ids(c)).toEqual(expected);
    expect(held).toBe(CLIENTS);
    await until(async () => (await streamClients()) === 0, 'every stream to close', 30_000);
    console.log(`[fan-out] ${held} concurrent SSE clients held by one process (server and clients share it); ` +
      `RSS ${Math.round(rssBefore / 2 ** 20)} MiB before, ${Math.round(rssConnected / 2 ** 20)} MiB with all connected`);
    agent.destroy();
  }, 180_000); // 4,000+ queries on one PGlite next to other suites: generous, never a timing assertion

  it('a client that stops reading is dropped; another client and the engine are not held back', async () => {
    const count = 64;
    const id = await submit({ count, key: 'slow', gated: true, bytes: 256 * 1024 });
    await waitForTask(server, id, (t) => t.status === 'RUNNING', { key: keys[0] });
    const url = `${server.url}/api/v1/stream/sse?workflow_id=${id}`;
    const slow = openSse(url, { headers: { 'x-api-key': keys[1]! } });
    await slow.waitFor((f) => f.event === 'WORKFLOW_STARTED');
    const slowRes = await slow.res;
    slowRes.pause(); // stops reading: the kernel buffers fill, then the server-side buffer
    // a reading client (it may be cut too when the box is too busy to drain it in time: it resumes)
    const fast = followToEnd(url, { 'x-api-key': keys[2]! });
    gates.open('slow:start');

    const task = await waitForTask(server, id, undefined, { key: keys[0] });
    expect(task.status).toBe('COMPLETED'); // the engine finished while a client was stuck
    const expected = await seqs(id);
    expect((await fast).ids).toEqual(expected);
    await until(async () => (await streamClients()) === 0, 'the slow client to be dropped', 30_000);

    slowRes.resume();
    await slow.ended;
    expect(slow.frames.some(isDone)).toBe(false);
    const got = ids(slow);
    expect(got).toEqual(expected.slice(0, got.length));
    expect(got.length).toBeLessThan(expected.length);
    const resumed = openSse(url, { headers: { 'x-api-key': keys[1]!, 'last-event-id': String(got.at(-1)) } });
    await resumed.waitFor(isDone);
    expect([...got, ...ids(resumed)]).toEqual(expected);
  }, 180_000);
});
