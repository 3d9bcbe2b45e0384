// What a client that stops reading during a replay costs the server. The replay read its log 200
// events a page and held the whole page while it waited for the client (200 × a 30 KB event =
// ~6 MiB per stalled client, 1,000 of them allowed per key and process): a page now holds at most
// TASKGATE_STREAM_BUFFER_BYTES of events, each let go once written.
// Measured on this process's heap after a full GC: the server runs in this process.
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, useTestServer, waitForTask } from '../helpers/server.js';
import { followToEnd, openSse, progressDef, type SseClient } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heapAfterGc = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const BUFFER = 64 * 1024;
const fixture = useTestServer(
  // the stall timer would drop the clients before the heap is read
  { TASKGATE_STREAM_STALL_MS: '600000', TASKGATE_STREAM_BUFFER_BYTES: String(BUFFER) },
  { definitions: [progressDef] },
);

describe('a client that stops reading during a replay', () => {
  it('holds about its buffer of the log in the server, not a page of 200 events', async () => {
    const id = await fixture.server.submit({ task_definition_id: progressDef.id, input: { count: 400, key: 'replay-memory', bytes: 30_000 } });
    expect((await waitForTask(fixture.server, id)).status).toBe('COMPLETED');
    const before = heapAfterGc();
    const clients: SseClient[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const c = openSse(`${fixture.server.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: { 'x-api-key': ADMIN_KEY }, paused: true });
        clients.push(c);
        expect(await c.status).toBe(200);
      }
      // the replays have read their first page and filled their sockets (PGlite answers in ms)
      await new Promise((r) => setTimeout(r, 1_500));
      const perClient = (heapAfterGc() - before) / clients.length;
      // 6,054 KiB each with a page of 200 events; ~230 KiB with pages cut at the 64 KiB buffer
      expect(perClient, `${Math.round(perClient / 1024)} KiB per stalled client`).toBeLessThan(1024 * 1024);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('a reading client gets every event of a log whose pages are cut by bytes, once and in order', async () => {
    // 60 events of 30 KB: pages of 2–3 events at a 64 KiB buffer
    const id = await fixture.server.submit({ task_definition_id: progressDef.id, input: { count: 60, key: 'replay-pages', bytes: 30_000 } });
    expect((await waitForTask(fixture.server, id)).status).toBe('COMPLETED');
    const { rows } = await fixture.tdb.db.query<{ n: number }>('SELECT max(seq)::int AS n FROM task_events WHERE task_id = $1', [id]);
    const { ids, connections } = await followToEnd(`${fixture.server.url}/api/v1/stream/sse?workflow_id=${id}`, { 'x-api-key': ADMIN_KEY });
    expect(connections).toBe(1);
    expect(ids).toEqual(Array.from({ length: rows[0]!.n }, (_, i) => i + 1));
  });
});
