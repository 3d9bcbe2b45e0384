// What /metrics tells an operator beyond the request counters: the queue (read from the database,
// across tenants), requests the client abandoned before their answer began, and why streams ended.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { openTestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, until, useTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { openSse } from '../streaming/helpers.js';

// an api-only process: what is submitted stays QUEUED, so the queue's figures are exact
const fx = useTestServer({ TASKGATE_ROLE: 'api' });

/** One sample of `name{labels}` from the Prometheus text; undefined when absent. */
async function sample(server: TestServer, name: string, labels = ''): Promise<number | undefined> {
  const text = (await server.call('GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('queue gauges', () => {
  it('count the ready and the scheduled QUEUED tasks and age the oldest ready one', async () => {
    expect(await sample(fx.server, 'taskgate_queue_depth', '{state="ready"}')).toBe(0);
    expect(await sample(fx.server, 'taskgate_queue_oldest_ready_seconds')).toBe(0);
    for (let i = 0; i < 3; i++) await fx.server.submit({ task_definition_id: 'noop', input: {} });
    await fx.server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    // scrapes within a second share one read: wait for a fresh one
    await until(async () => (await sample(fx.server, 'taskgate_queue_depth', '{state="ready"}')) === 3, 'three ready tasks');
    expect(await sample(fx.server, 'taskgate_queue_depth', '{state="scheduled"}')).toBe(1);
    await until(async () => ((await sample(fx.server, 'taskgate_queue_oldest_ready_seconds')) ?? 0) > 0, 'an aged oldest ready task');
  });

  it('read NaN, not a stale figure or a failed scrape, when the database cannot answer', async () => {
    const other = await openTestDb();
    const server = await startTestServer(other.db, { TASKGATE_ROLE: 'api' });
    try {
      await other.db.exec('ALTER TABLE tasks RENAME TO tasks_gone');
      try {
        await until(async () => Number.isNaN(await sample(server, 'taskgate_queue_depth', '{state="ready"}')), 'NaN queue depth');
        expect(Number.isNaN(await sample(server, 'taskgate_queue_oldest_ready_seconds'))).toBe(true);
        expect((await server.call('GET', '/metrics')).status).toBe(200);
      } finally {
        await other.db.exec('ALTER TABLE tasks_gone RENAME TO tasks');
      }
    } finally {
      await server.close();
      await other.close();
    }
  });
});

describe('abandoned requests', () => {
  it('a client that goes away before its answer began is counted once, by route', async () => {
    const labels = '{method="POST",route="/api/v1/tasks"}';
    const before = (await sample(fx.server, 'taskgate_http_requests_aborted_total', labels)) ?? 0;
    const { port } = new URL(fx.server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // half a body, then gone
    socket.write('POST /api/v1/tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n'
      + `x-api-key: ${ADMIN_KEY}\r\n\r\n{"task_definition_id":`);
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await until(async () => (await sample(fx.server, 'taskgate_http_requests_aborted_total', labels)) === before + 1, 'one abandoned submit');
    // answered requests are not abandoned ones
    await fx.server.submit({ task_definition_id: 'noop', input: {} });
    await new Promise((r) => setTimeout(r, 100));
    expect(await sample(fx.server, 'taskgate_http_requests_aborted_total', labels)).toBe(before + 1);
  });
});

describe('streams closed', () => {
  it('by reason: the client closed it, or the task ended', async () => {
    const worker = await startTestServer(fx.tdb.db);
    try {
      const closed = (reason: string) => sample(worker, 'taskgate_streams_closed_total', `{transport="sse",reason="${reason}"}`);
      const id = await worker.submit({ task_definition_id: 'sleep', input: { ms: 60_000 } });
      const left = openSse(`${worker.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: { 'x-api-key': ADMIN_KEY } });
      expect(await left.status).toBe(200);
      left.close();
      await until(async () => (await closed('client')) === 1, 'a stream closed by its client');
      // a stream that had begun is not an abandoned request
      expect(await sample(worker, 'taskgate_http_requests_aborted_total', '{method="GET",route="/api/v1/stream/sse"}')).toBeUndefined();

      const done = await worker.submit({ task_definition_id: 'noop', input: {} });
      await waitForTask(worker, done, (t) => t.status === 'COMPLETED');
      const replay = openSse(`${worker.url}/api/v1/stream/sse?workflow_id=${done}`, { headers: { 'x-api-key': ADMIN_KEY } });
      await replay.ended;
      await until(async () => (await closed('done')) === 1, 'a stream ended with its task');
      expect(await sample(worker, 'taskgate_stream_clients')).toBe(0);
      expect((await worker.call('POST', `/api/v1/tasks/${id}/cancel`, {})).status).toBeLessThan(300);
    } finally {
      await worker.close();
    }
  });
});
