// Across servers (PostgreSQL only): a worker-role server runs the task and an SSE client is
// connected to a separate API-role server on the same schema through its own pool; every event
// reaches the client (LISTEN/NOTIFY hints, the persisted log as the truth), in order, then done.
// The event hubs and signals of two processes on one database (a second pool on PostgreSQL, the
// same PGlite otherwise: each hub and Signals tags what it sends and ignores its own echo) are
// tested on both databases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPg } from '../../src/storage/pg.js';
import type { Db } from '../../src/storage/db.js';
import { channelName } from '../../src/storage/db.js';
import { EVENTS_CHANNEL, EventHub } from '../../src/events/hub.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import { CONTROL_CHANNEL, Signals } from '../../src/events/signals.js';
import type { StoredEvent } from '../../src/storage/queries/transitions.js';
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

  it('hints only tasks another process follows: none for unfollowed tasks, every event of a followed one', async () => {
    const seen: { o: string; h?: [string, number][]; i?: string[] }[] = [];
    const unlisten = await apiDb.listen(channelName(tdb.schema, EVENTS_CHANNEL), (p) => seen.push(JSON.parse(p)));
    try {
      const quiet: string[] = [];
      for (let i = 0; i < 5; i++) quiet.push((await api.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} })).body.task_id);
      for (const id of quiet) expect((await waitForTask(api, id)).status).toBe('COMPLETED');

      const res = await api.call('POST', '/api/v1/tasks', { task_definition_id: 'test-progress', input: { count: 10, key: 'xphint', gated: true } });
      const id = res.body.task_id as string;
      await waitForTask(api, id, (t) => t.status === 'RUNNING');
      const c = openSse(`${api.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: { 'x-api-key': ADMIN_KEY } });
      await c.waitFor((f) => f.event === 'WORKFLOW_STARTED');
      gates.open('xphint:start');
      await c.waitFor(isDone);
      await c.ended;
      const log = (await api.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
      expect(eventsOf(c)).toEqual(log);

      const hinted = new Map<string, number>();
      for (const m of seen) for (const [t, seq] of m.h ?? []) hinted.set(t, Math.max(hinted.get(t) ?? 0, seq));
      for (const q of quiet) expect(hinted.has(q), `unfollowed task ${q} was hinted`).toBe(false);
      expect(seen.some((m) => m.i?.includes(id)), 'the API server announced its interest').toBe(true);
      expect(hinted.get(id)).toBe(log.at(-1).seq);
    } finally {
      await unlisten();
    }
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

describe('event hubs and signals of two processes on one database', () => {
  let tdb: TestDb;
  /** The other process's connection: its own pool on PostgreSQL, the same PGlite otherwise. */
  let apiDb: Db;

  beforeAll(async () => {
    tdb = await openTestDb();
    apiDb = usingPostgres() ? await openPg({ connectionString: process.env.DATABASE_URL!, schema: tdb.schema, maxConnections: 5 }) : tdb.db;
  });
  afterAll(async () => {
    if (apiDb !== tdb?.db) await apiDb?.close();
    await tdb?.close();
  });

  const insertEvents = (db: Db, taskId: string, seqs: number[]) =>
    db.query(
      `INSERT INTO task_events (task_id, seq, tenant_id, type, message) SELECT $1, s, 'default', 'PROGRESS', 'step ' || s FROM unnest($2::int[]) AS s`,
      [taskId, seqs],
    );
  const stored = (taskId: string, seq: number): StoredEvent => ({
    task_id: taskId, tenant_id: 'default', seq, type: 'PROGRESS', agent_id: null, message: `step ${seq}`, payload: null, created_at: new Date(),
  });

  it('a writer hints the tasks another process follows, and only those; the follower gets every event in order', async () => {
    const channel = channelName(tdb.schema, EVENTS_CHANNEL);
    const writer = new EventHub(tdb.db, { crossProcess: true, channel });
    const reader = new EventHub(apiDb, { crossProcess: true, channel });
    await writer.start();
    await reader.start();
    const seen: { o: string; h?: [string, number][]; i?: string[] }[] = [];
    const unlisten = await apiDb.listen(channel, (p) => seen.push(JSON.parse(p)));
    const followed = `task_followed_${Date.now()}`;
    const quiet = `task_quiet_${Date.now()}`;
    const got: number[] = [];
    const stop = reader.subscribe(followed, 'default', 0, { deliver: (e) => got.push(e.seq) });
    try {
      await until(() => seen.some((m) => m.i?.includes(followed)), 'the reader to announce its interest');
      // the writer hears the announcement on its own connection a moment later: write until it hints
      const hinted = () => new Set(seen.flatMap((m) => (m.h ?? []).map(([t]) => t)));
      let seq = 0;
      await until(async () => {
        seq++;
        await insertEvents(tdb.db, followed, [seq]);
        await insertEvents(tdb.db, quiet, [seq]);
        writer.publish([stored(followed, seq), stored(quiet, seq)]);
        await new Promise((r) => setTimeout(r, 10));
        return hinted().has(followed);
      }, 'a hint for the followed task');
      await until(() => got.length >= seq, 'every event of the followed task', 5_000);
      expect(got).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
      expect(hinted().has(quiet), 'an unfollowed task was hinted').toBe(false);
      expect(writer.subscriberCount).toBe(0);
      expect(reader.subscriberCount).toBe(1);
    } finally {
      stop();
      await unlisten();
      await reader.stop();
      await writer.stop();
    }
  });

  it('a malformed hint on the events channel is ignored (it was an uncaught exception in the LISTEN callback); hints after it still work', async () => {
    const channel = channelName(tdb.schema, EVENTS_CHANNEL);
    const hub = new EventHub(apiDb, { crossProcess: true, channel });
    await hub.start();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.prependListener('uncaughtException', onUncaught);
    const taskId = `task_garbled_${Date.now()}`;
    const got: number[] = [];
    const stop = hub.subscribe(taskId, 'default', 0, { deliver: (e) => got.push(e.seq) });
    try {
      for (const p of ['null', '7', '"x"', '{"h":5}', '{"h":[5,[1,2],null]}', '{"e":[null,3,{"type":1}]}', '{"i":7}', '{"i":[null]}']) await tdb.db.notify(channel, p);
      await insertEvents(tdb.db, taskId, [1]);
      await tdb.db.notify(channel, JSON.stringify({ o: 'another-version', h: [[taskId, 1]] }));
      await until(() => got.length === 1, 'the event of the well-formed hint');
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      stop();
      await hub.stop();
    }
  });

  it('a subscriber still gets events whose hint never came: its log is read again after it announces', async () => {
    const hub = new EventHub(apiDb, { crossProcess: true, channel: channelName(tdb.schema, EVENTS_CHANNEL) });
    await hub.start();
    const taskId = `task_lost_hint_${Date.now()}`;
    const got: number[] = [];
    const stop = hub.subscribe(taskId, 'default', 0, { deliver: (e) => got.push(e.seq) });
    try {
      await new Promise((r) => setTimeout(r, 50)); // its first read found nothing
      // written with no hint at all (as if the writer had not heard of the interest yet)
      await apiDb.query(
        `INSERT INTO task_events (task_id, seq, tenant_id, type, message) VALUES ($1, 1, 'default', 'PROGRESS', 'a'), ($1, 2, 'default', 'PROGRESS', 'b')`,
        [taskId],
      );
      await until(() => got.length >= 2, 'the events without a hint', 5_000);
      expect(got).toEqual([1, 2]);
    } finally {
      stop();
      await hub.stop();
    }
  });

  it('the periodic sweep finds events a long-followed task got without a hint', async () => {
    const hub = new EventHub(apiDb, { crossProcess: true, channel: channelName(tdb.schema, EVENTS_CHANNEL), refreshMs: 400 });
    await hub.start();
    const taskIds = [0, 1, 2].map((i) => `task_swept_${i}_${Date.now()}`);
    const got = new Map<string, number[]>(taskIds.map((id) => [id, []]));
    const stops = taskIds.map((id) => hub.subscribe(id, 'default', 0, { deliver: (e) => got.get(id)!.push(e.seq) }));
    try {
      await new Promise((r) => setTimeout(r, 2_300)); // past the re-reads that follow the announcement
      // the second task gets events with no hint: only the sweep can find them
      await apiDb.query(
        `INSERT INTO task_events (task_id, seq, tenant_id, type, message) VALUES ($1, 1, 'default', 'PROGRESS', 'a'), ($1, 2, 'default', 'PROGRESS', 'b')`,
        [taskIds[1]],
      );
      await until(() => got.get(taskIds[1]!)!.length >= 2, 'the swept events', 3_000);
      expect(Object.fromEntries(got)).toEqual({ [taskIds[0]!]: [], [taskIds[1]!]: [1, 2], [taskIds[2]!]: [] });
    } finally {
      for (const stop of stops) stop();
      await hub.stop();
    }
  });

  it('hints of every kind reach the other process once and are not echoed back to their sender', async () => {
    const a = new Signals(tdb.db, { crossProcess: true });
    const b = new Signals(apiDb, { crossProcess: true });
    await a.start();
    await b.start();
    try {
      const fired = { a: [] as string[], b: [] as string[] };
      for (const [s, log] of [[a, fired.a], [b, fired.b]] as const) {
        s.onWork(() => log.push('work'));
        s.onControl((id) => log.push(`control:${id}`));
        s.onCredentials((id) => log.push(`credentials:${id}`));
        s.onTenant((id) => log.push(`tenant:${id}`));
      }
      a.work();
      a.control('task_1');
      a.credentials('key_1');
      a.credentials('*');
      a.tenant('ten_1');
      // in-process listeners run at once
      expect(fired.a).toEqual(['work', 'control:task_1', 'credentials:key_1', 'credentials:*', 'tenant:ten_1']);
      await until(() => fired.b.length === 5, 'the hints in the other process');
      expect(fired.b.sort()).toEqual(['control:task_1', 'credentials:*', 'credentials:key_1', 'tenant:ten_1', 'work']);
      // notifications reach a listener in commit order: once b's later one has reached a, so have a's own
      b.control('after-the-hints');
      await until(() => fired.a.includes('control:after-the-hints'), "b's later notification at a");
      // an echo would have made a's worker claim again, heartbeat again, drop its cached key again
      expect(fired.a).toEqual(['work', 'control:task_1', 'credentials:key_1', 'credentials:*', 'tenant:ten_1', 'control:after-the-hints']);
      expect(fired.b).toHaveLength(6);
      // a process of an earlier version sends bare ids (no sender tag): still heard
      await apiDb.notify(channelName(tdb.schema, CONTROL_CHANNEL), 'task_2,task_3');
      await until(() => fired.a.includes('control:task_3'), 'an untagged notification');
      expect(fired.a.slice(-2)).toEqual(['control:task_2', 'control:task_3']);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
