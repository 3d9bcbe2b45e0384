// SSE end to end on a real server: replay then live, resume strictly after Last-Event-ID (also
// across random disconnects), the types filter, live-only LLM_PARTIAL, errors before the stream
// starts, HEAD refused, the per-credential stream cap, query-parameter auth, and the retry hint on
// shutdown.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, newTenant, startTestServer, until, useTestServer, waitForTask } from '../helpers/server.js';
import { usingPostgres } from '../helpers/db.js';
import { eventsOf, gates, isDone, openSse, openWs, partialDef, progressDef, type SseClient } from './helpers.js';

const auth = { 'x-api-key': ADMIN_KEY };

const fixture = useTestServer({ TASKGATE_STREAM_PING_MS: '100', TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [progressDef, partialDef] });

const sseUrl = (id: string, query = '') => `${fixture.server.url}/api/v1/stream/sse?workflow_id=${encodeURIComponent(id)}${query}`;
const submit = async (def: string, input: Record<string, unknown>) => {
  const res = await fixture.server.call('POST', '/api/v1/tasks', { task_definition_id: def, input });
  expect(res.status, res.text).toBe(200);
  return res.body.task_id as string;
};
const persisted = async (id: string) => (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
const finished = async (c: SseClient) => {
  await c.waitFor(isDone);
  await c.ended;
  return c;
};
const ids = (c: SseClient) => c.frames.filter((f) => f.id !== undefined).map((f) => Number(f.id));

describe('SSE stream', () => {
  it('replays, then streams live: `: connected` first, every persisted event once in seq order, then done', async () => {
    const id = await submit('test-progress', { count: 5, key: 'live', gated: true });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const c = openSse(sseUrl(id), { headers: auth });
    expect(await c.status).toBe(200);
    const h = await c.headers;
    expect(h['content-type']).toMatch(/^text\/event-stream/);
    expect(h['cache-control']).toBe('no-cache');
    expect(h['x-accel-buffering']).toBe('no');
    expect(h['x-request-id']).toBeTruthy();
    await c.waitFor((f) => f.event === 'WORKFLOW_STARTED');
    gates.open('live:start'); // the rest arrives live
    await finished(c);

    expect(c.comments[0]).toBe('connected');
    const log = await persisted(id);
    expect(eventsOf(c)).toEqual(log);
    expect(ids(c)).toEqual(log.map((e) => e.seq));
    expect(c.frames.slice(0, -1).map((f) => f.event)).toEqual(log.map((e) => e.type));
    expect(c.frames.at(-1)).toMatchObject({ event: 'done', data: '[DONE]' });
    expect(log.at(-1).type).toBe('STREAM_END');
  });

  it('sends `: ping` comments while the task is quiet', async () => {
    const id = await submit('test-progress', { count: 1, key: 'ping', gated: true });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const c = openSse(sseUrl(id), { headers: auth });
    await c.waitFor((f) => f.comments.includes('ping'));
    gates.open('ping:start');
    await finished(c);
    expect(c.comments[0]).toBe('connected');
    expect(eventsOf(c)).toEqual(await persisted(id));
  });

  it('a client that connects after the task ended gets the replay and done', async () => {
    const id = await submit('test-progress', { count: 3, key: 'after' });
    await waitForTask(fixture.server, id);
    const c = await finished(openSse(sseUrl(id), { headers: auth }));
    expect(eventsOf(c)).toEqual(await persisted(id));
    expect(c.frames.at(-1)?.event).toBe('done');
  });

  it('the stream carries the security headers (the deny-all CSP too), and honours Connection: close', async () => {
    const id = await submit('test-progress', { count: 1, key: 'headers' });
    await waitForTask(fixture.server, id);
    const { port } = new URL(fixture.server.url);
    const answer = await new Promise<{ head: string; body: string; closedAfterMs: number }>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1');
      let text = '';
      let doneAt = 0;
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        text += d;
        if (!doneAt && text.includes('event: done')) doneAt = Date.now();
      });
      sock.on('error', reject);
      // the server closes the connection after the answer, as the client asked
      sock.on('close', () => {
        const [head = '', body = ''] = text.split('\r\n\r\n');
        resolve({ head, body, closedAfterMs: doneAt ? Date.now() - doneAt : -1 });
      });
      sock.write(`GET /api/v1/stream/sse?workflow_id=${id} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\nConnection: close\r\n\r\n`);
      setTimeout(() => sock.destroy(new Error('the server kept the connection open')), 20_000).unref();
    });
    const head = answer.head.toLowerCase();
    expect(head).toMatch(/^http\/1\.1 200/);
    expect(head).toContain("content-security-policy: default-src 'none'");
    for (const h of ['x-content-type-options: nosniff', 'x-frame-options: deny', 'referrer-policy: no-referrer']) expect(head).toContain(h);
    expect(head).toContain('connection: close');
    expect(answer.body).toContain('event: done');
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(0);
  });

  it('resumes strictly after Last-Event-ID or last_event_id (the later of the two wins)', async () => {
    const id = await submit('test-progress', { count: 6, key: 'resume' });
    await waitForTask(fixture.server, id);
    const last = (await persisted(id)).at(-1).seq as number;
    const header = await finished(openSse(sseUrl(id), { headers: { ...auth, 'last-event-id': '3' } }));
    expect(ids(header)[0]).toBe(4);
    const query = await finished(openSse(sseUrl(id, '&last_event_id=5'), { headers: auth }));
    expect(ids(query)[0]).toBe(6);
    const both = await finished(openSse(sseUrl(id, '&last_event_id=2'), { headers: { ...auth, 'last-event-id': '7' } }));
    expect(ids(both)[0]).toBe(8);
    const atEnd = await finished(openSse(sseUrl(id, `&last_event_id=${last}`), { headers: auth }));
    expect(atEnd.frames.map((f) => f.event)).toEqual(['done']);
  });

  it('resuming past the end of a running task gets the events still to come and ends with done (the resume point is capped at the log)', async () => {
    const id = await submit('test-progress', { count: 2, key: 'beyond', gated: true });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const beyond = openSse(sseUrl(id, '&last_event_id=1000'), { headers: auth });
    const filtered = openSse(sseUrl(id, '&types=PROGRESS'), { headers: { ...auth, 'last-event-id': '1000' } });
    expect(await beyond.status).toBe(200);
    expect(await filtered.status).toBe(200); // both have read the task's position: what follows is live
    gates.open('beyond:start');
    await Promise.all([finished(beyond), finished(filtered)]);
    const log = await persisted(id);
    expect(log[0].type).toBe('WORKFLOW_STARTED'); // written before the clients connected, so not theirs
    expect(ids(beyond)).toEqual(log.slice(1).map((e) => e.seq));
    expect(beyond.frames.at(-1)?.event).toBe('done');
    // STREAM_END filtered out: done still ends the stream
    expect(filtered.frames.map((f) => f.event)).toEqual(['PROGRESS', 'PROGRESS', 'done']);
  });

  it('random disconnects and resumes deliver every persisted event exactly once, in order, ending with done', async () => {
    const id = await submit('test-progress', { count: 60, key: 'chaos', gated: true });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const received: number[] = [];
    let lastId: string | undefined;
    let sawDone = false;
    let connections = 0;
    while (!sawDone) {
      connections++;
      let budget = 1 + Math.floor(rand() * 5);
      const c = openSse(sseUrl(id), { headers: lastId ? { ...auth, 'last-event-id': lastId } : auth });
      c.onFrame = (f, self) => {
        if (f.event === 'done') sawDone = true;
        if (f.id === undefined) return;
        received.push(Number(f.id));
        lastId = f.id;
        if (--budget === 0 && !sawDone) self.close();
      };
      expect(await c.status).toBe(200);
      if (connections === 1) gates.open('chaos:start');
      await c.ended;
    }
    const log = await persisted(id);
    expect(received).toEqual(log.map((e) => e.seq));
    expect(log.at(-1).type).toBe('STREAM_END');
    expect(connections).toBeGreaterThan(10);
  });

  it('the types filter sends only the named types (by type or SSE name) and still ends with done', async () => {
    const id = await submit('test-progress', { count: 4, key: 'types' });
    await waitForTask(fixture.server, id);
    const c = await finished(openSse(sseUrl(id, '&types=PROGRESS,workflow.paused'), { headers: auth }));
    expect(c.frames.map((f) => f.event)).toEqual(['PROGRESS', 'PROGRESS', 'PROGRESS', 'PROGRESS', 'done']);
  });

  it('LLM_PARTIAL is live-only: mapped names, no id line, never stored, not a resume point', async () => {
    const id = await submit('test-partial', { key: 'p1' });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const c = openSse(sseUrl(id), { headers: auth });
    await c.waitFor((f) => f.event === 'WORKFLOW_STARTED');
    gates.open('p1:a');
    await c.waitFor((f) => f.event === 'PROGRESS');
    gates.open('p1:b');
    await finished(c);

    const deltas = c.frames.filter((f) => f.event === 'thread.message.delta');
    expect(deltas.map((f) => JSON.parse(f.data!).delta)).toEqual(['Hel', 'lo', '!']);
    expect(deltas.every((f) => f.id === undefined)).toBe(true);
    expect(JSON.parse(deltas[0]!.data!)).toMatchObject({ type: 'LLM_PARTIAL', workflow_id: id, agent_id: 'a1', message: 'Hel' });
    const completed = c.frames.find((f) => f.event === 'thread.message.completed')!;
    expect(completed.id).toBeDefined();
    expect(JSON.parse(completed.data!)).toMatchObject({ type: 'LLM_OUTPUT', response: 'Hello!' });
    const log = await persisted(id);
    expect(log.map((e) => e.type)).not.toContain('LLM_PARTIAL');
    expect(ids(c)).toEqual(log.map((e) => e.seq));

    // resuming from the frame before the deltas does not bring them back
    const progressId = c.frames.find((f) => f.event === 'PROGRESS')!.id!;
    const again = await finished(openSse(sseUrl(id), { headers: { ...auth, 'last-event-id': progressId } }));
    expect(again.frames.map((f) => f.event)).toEqual(['thread.message.completed', 'WORKFLOW_COMPLETED', 'STREAM_END', 'done']);
  });

  it('answers 404/400/401 with the error envelope before switching to a stream', async () => {
    const id = await submit('test-progress', { count: 1, key: 'errors' });
    const expectError = async (url: string, headers: Record<string, string>, status: number, code: string) => {
      const c = openSse(url, { headers });
      expect(await c.status).toBe(status);
      expect((await c.headers)['content-type']).toMatch(/application\/json/);
      await c.ended;
      const body = JSON.parse(c.body());
      expect(body.error.code).toBe(code);
      expect(body.request_id).toBeTruthy();
    };
    await expectError(sseUrl('task_does_not_exist'), auth, 404, 'NOT_FOUND');
    const other = await newTenant(fixture.tdb.db, ['tasks:read']);
    await expectError(sseUrl(id), { 'x-api-key': other.key }, 404, 'NOT_FOUND');
    await expectError(sseUrl('bad id!'), auth, 400, 'VALIDATION_ERROR');
    await expectError(`${fixture.server.url}/api/v1/stream/sse`, auth, 400, 'VALIDATION_ERROR');
    await expectError(sseUrl(id, '&last_event_id=abc'), auth, 400, 'VALIDATION_ERROR');
    // past the largest seq an event can have (a 32-bit integer column): refused, not a stream that dies
    await expectError(sseUrl(id, '&last_event_id=2147483648'), auth, 400, 'VALIDATION_ERROR');
    await expectError(sseUrl(id), { ...auth, 'last-event-id': '999999999999999' }, 400, 'VALIDATION_ERROR');
    await expectError(sseUrl(id), {}, 401, 'UNAUTHORIZED');
    const noScope = await newTenant(fixture.tdb.db, ['tasks:execute']);
    await expectError(sseUrl(id), { 'x-api-key': noScope.key }, 403, 'FORBIDDEN');
  });

  it('refuses HEAD with 405 and Allow: GET (no stream to hold open), the exception docs/security.md names', async () => {
    const id = await submit('test-progress', { count: 1, key: 'head' });
    const head = await fixture.server.call('HEAD', `/api/v1/stream/sse?workflow_id=${id}`);
    expect(head.status).toBe(405);
    expect(head.headers.get('allow')).toBe('GET');
    expect(head.headers.get('content-type')).toMatch(/^application\/json/);
    expect(head.headers.get('x-request-id')).toBeTruthy();
    // the same refusal to a method whose answer has a body: the standard envelope
    const post = await fixture.server.call('POST', `/api/v1/stream/sse?workflow_id=${id}`, {});
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    expect(post.body).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: 'Method POST not allowed on /api/v1/stream/sse' }, request_id: post.headers.get('x-request-id') });
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
    expect(/`HEAD` mirrors each `GET`[^.]*/.exec(doc)?.[0]).toMatch(/except `GET \/api\/v1\/stream\/sse`.*405/);
  });

  it('a credential at its stream cap gets 429 RATE_LIMITED with details.max_streams and Retry-After, on both routes', async () => {
    const api = await startTestServer(fixture.tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_MAX_STREAMS_PER_PRINCIPAL: '1' });
    const open = openSse(`${api.url}/api/v1/stream/sse?workflow_id=${await submit('test-progress', { count: 1, key: 'cap', gated: true })}`, { headers: auth });
    try {
      const id = await submit('test-progress', { count: 1, key: 'cap2' });
      expect(await open.status).toBe(200);
      const refused = openSse(`${api.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: auth });
      expect(await refused.status).toBe(429);
      expect((await refused.headers)['retry-after']).toBe('1');
      await refused.ended;
      const body = JSON.parse(refused.body());
      expect(body.error).toEqual({
        code: 'RATE_LIMITED', message: 'too many concurrent streams for this credential (at most 1)', details: { max_streams: 1 },
      });
      await expect(openWs(api.url, `workflow_id=${id}`, auth).opened).rejects.toThrow('upgrade refused: 429');
    } finally {
      open.close();
      gates.open('cap:start');
      await api.close();
    }
  });

  it('accepts the credential as api_key or token query parameter on the stream only', async () => {
    const id = await submit('test-progress', { count: 1, key: 'qauth' });
    await waitForTask(fixture.server, id);
    const byApiKey = await finished(openSse(sseUrl(id, `&api_key=${ADMIN_KEY}`)));
    expect(byApiKey.frames.at(-1)?.event).toBe('done');
    const byToken = await finished(openSse(sseUrl(id, `&token=${ADMIN_KEY}`)));
    expect(byToken.frames.at(-1)?.event).toBe('done');
    const wrong = openSse(sseUrl(id, '&api_key=sk_wrong'));
    expect(await wrong.status).toBe(401);
    const elsewhere = await fixture.server.call('GET', `/api/v1/tasks/${id}?api_key=${ADMIN_KEY}`, undefined, { key: null });
    expect(elsewhere.status).toBe(401);
  });

  it('the 307 from /tasks/{id}/stream leads to a working stream with the same parameters', async () => {
    const id = await submit('test-progress', { count: 2, key: 'redirect' });
    await waitForTask(fixture.server, id);
    const res = await fixture.server.call('GET', `/api/v1/tasks/${id}/stream?types=PROGRESS`);
    expect(res.status).toBe(307);
    const c = await finished(openSse(fixture.server.url + res.headers.get('location'), { headers: auth }));
    expect(c.frames.map((f) => f.event)).toEqual(['PROGRESS', 'PROGRESS', 'done']);
    // an EventSource sends no headers: the redirect takes the query credential and passes it on
    const byQuery = await fixture.server.call('GET', `/api/v1/tasks/${id}/stream?api_key=${ADMIN_KEY}`, undefined, { key: null });
    expect(byQuery.status).toBe(307);
    const q = await finished(openSse(fixture.server.url + byQuery.headers.get('location')));
    expect(q.frames.at(-1)?.event).toBe('done');
    expect((await fixture.server.call('GET', `/api/v1/tasks/${id}/stream?api_key=sk_wrong`, undefined, { key: null })).status).toBe(401);
  });

  it('on shutdown, open streams get a retry hint and are closed; the client resumes elsewhere', async () => {
    const api = await startTestServer(fixture.tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_RATE_LIMIT_PER_MIN: '0' });
    try {
      const id = await submit('test-progress', { count: 3, key: 'shutdown', gated: true });
      await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
      const c = openSse(`${api.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: auth });
      const started = await c.waitFor((f) => f.event === 'WORKFLOW_STARTED');
      await api.close();
      await c.ended;
      expect(c.frames.at(-1)?.retry).toMatch(/^\d+$/);
      gates.open('shutdown:start');
      const resumed = await finished(openSse(sseUrl(id), { headers: { ...auth, 'last-event-id': started.id! } }));
      expect([...ids(c), ...ids(resumed)]).toEqual((await persisted(id)).map((e) => e.seq));
    } finally {
      await api.close();
    }
  });
});

describe.skipIf(!usingPostgres())('a finished task deleted while its stream replays (PostgreSQL: a table lock holds the read)', () => {
  it('ends the stream instead of waiting live for events that can never come', async () => {
    const id = await submit('noop', {});
    await waitForTask(fixture.server, id, (t) => t.status === 'COMPLETED');
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let pid = 0;
    // retention deleting the task between the stream's read of the task and its read of the log
    const deleter = fixture.tdb.db.transaction(async (tx) => {
      pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await tx.query('LOCK TABLE task_events IN ACCESS EXCLUSIVE MODE');
      await released;
      await tx.query('DELETE FROM task_events WHERE task_id = $1', [id]);
      await tx.query('DELETE FROM tasks WHERE id = $1', [id]);
    });
    await until(() => pid !== 0, 'the lock');
    const c = openSse(sseUrl(id), { headers: auth });
    await until(
      async () => (await fixture.tdb.db.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [pid])).rows.length > 0,
      'the stream waiting on the lock',
    );
    release();
    await deleter;
    // before the fix: `: ping` every 100 ms for as long as the client stayed
    const ended = await Promise.race([c.ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    c.close();
    expect(ended).toBe(true);
    expect(c.frames.at(-1)).toMatchObject({ event: 'done' });
  });
});
