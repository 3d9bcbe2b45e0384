// Across servers (PostgreSQL only): a worker-role server runs the task and an SSE client is
// connected to a separate API-role server on the same schema through its own pool; every event
// reaches the client (LISTEN/NOTIFY hints, the persisted log as the truth), in order, then done.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPg } from '../../src/storage/pg.js';
import type { Db } from '../../src/storage/db.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { eventsOf, gates, isDone, openSse, progressDef } from './helpers.js';

describe.skipIf(!usingPostgres())('streams across processes (PostgreSQL)', () => {
  let tdb: TestDb;
  let apiDb: Db;
  let worker: TestServer;
  let api: TestServer;

  beforeAll(async () => {
    tdb = await openTestDb();
    apiDb = await openPg({ connectionString: process.env.DATABASE_URL!, schema: tdb.schema, maxConnections: 5 });
    worker = await startTestServer(tdb.db, { TASKGATE_ROLE: 'worker', TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [progressDef] });
    api = await startTestServer(apiDb, { TASKGATE_ROLE: 'api', TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [progressDef] });
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await apiDb?.close();
    await tdb?.close();
  });

  it('an SSE client on the API server receives every event the worker server writes', async () => {
    const res = await api.call('POST', '/api/v1/tasks', { task_definition_id: 'test-progress', input: { count: 30, key: 'xp', gated: true } });
    expect(res.status, res.text).toBe(200);
    const id = res.body.task_id as string;
    await waitForTask(api, id, (t) => t.status === 'RUNNING');
    const c = openSse(`${api.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: { 'x-api-key': ADMIN_KEY } });
    const received: { seq: number; at: number }[] = [];
    c.onFrame = (f) => {
      if (f.id !== undefined) received.push({ seq: Number(f.id), at: Date.now() });
    };
    await c.waitFor((f) => f.event === 'WORKFLOW_STARTED');
    gates.open('xp:start'); // from here on, every event is written by the worker server and arrives live
    await c.waitFor(isDone);
    await c.ended;

    const log = (await api.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
    expect(eventsOf(c)).toEqual(log);
    expect(log.at(-1).type).toBe('STREAM_END');
    const lat = received.slice(1).map((r) => r.at - Date.parse(log.find((e) => e.seq === r.seq).timestamp)).sort((a, b) => a - b);
    console.log(`[cross-process] ${lat.length} live events, write→read p50 ${lat[Math.floor(lat.length / 2)]} ms, max ${lat.at(-1)} ms`);
  });

  it('many clients at different positions share the API server\'s log reads and each get exactly their part', async () => {
    const res = await api.call('POST', '/api/v1/tasks', { task_definition_id: 'test-progress', input: { count: 40, key: 'xpmany', gated: true } });
    const id = res.body.task_id as string;
    await waitForTask(api, id, (t) => t.status === 'RUNNING');
    const url = `${api.url}/api/v1/stream/sse?workflow_id=${id}`;
    const first = openSse(url, { headers: { 'x-api-key': ADMIN_KEY } });
    await first.waitFor((f) => f.event === 'WORKFLOW_STARTED');
    gates.open('xpmany:start');
    // the others join while the worker is writing, each resuming from a different point
    const others = [];
    for (let i = 0; i < 20; i++) {
      const f = await first.waitFor((x) => Number(x.id) >= 2 + i);
      others.push({ from: Number(f.id) - (i % 3), client: openSse(url, { headers: { 'x-api-key': ADMIN_KEY, 'last-event-id': String(Number(f.id) - (i % 3)) } }) });
    }
    await first.waitFor(isDone);
    for (const o of others) await o.client.waitFor(isDone);
    const seqs = ((await api.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[]).map((e) => e.seq);
    expect(first.frames.filter((f) => f.id).map((f) => Number(f.id))).toEqual(seqs);
    for (const o of others) expect(o.client.frames.filter((f) => f.id).map((f) => Number(f.id))).toEqual(seqs.filter((s) => s > o.from));
  });

  it('WebSocket clients on the API server get the worker\'s events too', async () => {
    const { default: WebSocket } = await import('ws');
    const res = await api.call('POST', '/api/v1/tasks', { task_definition_id: 'test-progress', input: { count: 5, key: 'xpws', gated: true } });
    const id = res.body.task_id as string;
    await waitForTask(api, id, (t) => t.status === 'RUNNING');
    const ws = new WebSocket(`${api.url.replace('http', 'ws')}/api/v1/stream/ws?workflow_id=${id}&api_key=${ADMIN_KEY}`);
    const messages: any[] = [];
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      messages.push(m);
      if (m.type === 'WORKFLOW_STARTED') gates.open('xpws:start');
    });
    expect(await closed).toBe(1000);
    const log = (await api.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
    expect(messages.map((m) => m.seq)).toEqual(log.map((e) => e.seq));
  });
});
