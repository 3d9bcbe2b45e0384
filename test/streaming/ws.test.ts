// The WebSocket stream with the `ws` package as the client: one event JSON per message, the same
// replay/resume/filter rules as SSE, close 1000 after the task ends, 1012 on server shutdown, HTTP
// errors before upgrading.
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect } from 'node:net';
import { ADMIN_KEY, newTenant, serverWithLogs, startTestServer, useTestServer, waitForTask } from '../helpers/server.js';
import { gates, openWs as openWsAt, partialDef, progressDef } from './helpers.js';

const fixture = useTestServer({ TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [progressDef, partialDef] });

const openWs = (query: string, headers: Record<string, string> = { 'x-api-key': ADMIN_KEY }) => openWsAt(fixture.server.url, query, headers);

/** Resolves with the HTTP status of a refused upgrade. */
function refusedWith(query: string, headers: Record<string, string> = { 'x-api-key': ADMIN_KEY }): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(`${fixture.server.url.replace(/^http/, 'ws')}/api/v1/stream/ws?${query}`, { headers });
  return new Promise((resolve, reject) => {
    ws.on('open', () => reject(new Error('upgrade unexpectedly accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

const submit = async (def: string, input: Record<string, unknown>) => {
  const res = await fixture.server.call('POST', '/api/v1/tasks', { task_definition_id: def, input });
  expect(res.status, res.text).toBe(200);
  return res.body.task_id as string;
};
const persisted = async (id: string) => (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];

describe('WebSocket stream', () => {
  it('round trip: replay then live, one event JSON per message, closed with 1000 after STREAM_END', async () => {
    const id = await submit('test-partial', { key: 'ws1' });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const run = openWs(`workflow_id=${id}`);
    await run.waitFor((m) => m.type === 'WORKFLOW_STARTED');
    gates.open('ws1:a');
    await run.waitFor((m) => m.type === 'PROGRESS');
    gates.open('ws1:b');
    const closed = await run.close;
    expect(closed.code).toBe(1000);

    const log = await persisted(id);
    expect(run.messages.filter((m) => m.type !== 'LLM_PARTIAL')).toEqual(log.map((e) => (e.type === 'LLM_OUTPUT' ? { ...e, response: e.message } : e)));
    const deltas = run.messages.filter((m) => m.type === 'LLM_PARTIAL');
    expect(deltas.map((m) => m.delta)).toEqual(['Hel', 'lo', '!']);
    expect(run.messages.at(-1).type).toBe('STREAM_END');
  });

  it('resumes after last_event_id, filters by types, and authenticates with api_key in the query', async () => {
    const id = await submit('test-progress', { count: 5, key: 'ws2' });
    await waitForTask(fixture.server, id);
    const resumed = openWs(`workflow_id=${id}&last_event_id=3`);
    expect((await resumed.close).code).toBe(1000);
    expect(resumed.messages[0].seq).toBe(4);
    const filtered = openWs(`workflow_id=${id}&types=PROGRESS&api_key=${ADMIN_KEY}`, {});
    expect((await filtered.close).code).toBe(1000);
    expect(filtered.messages.map((m) => m.type)).toEqual(Array(5).fill('PROGRESS'));
  });

  it('resuming past the end of a running task gets the events still to come and closes with 1000 when it ends', async () => {
    const id = await submit('test-progress', { count: 2, key: 'ws-beyond', gated: true });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    // e.g. a last_event_id taken from another, longer task
    const run = openWs(`workflow_id=${id}&last_event_id=1000`);
    await run.opened;
    gates.open('ws-beyond:start');
    expect((await run.close).code).toBe(1000);
    const log = await persisted(id);
    expect(run.messages).toEqual(log.slice(1));
    expect(run.messages.at(-1).type).toBe('STREAM_END');
  });

  it('on shutdown, an open stream is closed with 1012 (server restarting); the client resumes elsewhere', async () => {
    const api = await startTestServer(fixture.tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_RATE_LIMIT_PER_MIN: '0' });
    try {
      const id = await submit('test-progress', { count: 3, key: 'ws-shutdown', gated: true });
      await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
      const run = openWsAt(api.url, `workflow_id=${id}`, { 'x-api-key': ADMIN_KEY });
      const started = await run.waitFor((m) => m.type === 'WORKFLOW_STARTED');
      await api.close();
      expect(await run.close).toMatchObject({ code: 1012, reason: 'server restarting' });
      gates.open('ws-shutdown:start');
      const resumed = openWs(`workflow_id=${id}&last_event_id=${started.seq}`);
      expect((await resumed.close).code).toBe(1000);
      expect([...run.messages, ...resumed.messages]).toEqual(await persisted(id));
    } finally {
      await api.close();
    }
  });

  it('refuses before upgrading: 404 unknown or foreign, 401 without credentials, 400 malformed id', async () => {
    const id = await submit('test-progress', { count: 1, key: 'ws3' });
    const unknown = await refusedWith('workflow_id=task_nope');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe('NOT_FOUND');
    const other = await newTenant(fixture.tdb.db, ['tasks:read']);
    expect((await refusedWith(`workflow_id=${id}`, { 'x-api-key': other.key })).status).toBe(404);
    expect((await refusedWith(`workflow_id=${id}`, {})).status).toBe(401);
    expect((await refusedWith('workflow_id=bad%20id')).status).toBe(400);
  });
});

/** Upgrades a raw connection to the stream, writes `frame`, and resolves with what came back once the server closes it. */
function sendRawFrame(url: string, workflowId: string, frame: Buffer): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let got = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (d) => {
      const first = got.length === 0;
      got = Buffer.concat([got, d]);
      if (first) socket.write(frame);
    });
    socket.on('close', () => resolve(got.toString('latin1')));
    socket.write(
      `GET /api/v1/stream/ws?workflow_id=${workflowId} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-API-Key: ${ADMIN_KEY}\r\n\r\n`,
    );
  });
}

describe('WebSocket protocol errors from a client', () => {
  it('are logged at debug without a stack, not as server errors; the socket is closed and the server stays healthy', async () => {
    const { server: api, logs } = await serverWithLogs(fixture.tdb.db, { LOG_LEVEL: 'debug' });
    try {
      // a delayed task: its stream stays open, waiting for events
      const queued = await fixture.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
      const unmasked = Buffer.from([0x81, 0x05, ...Buffer.from('hello')]);
      const reserved = Buffer.from([0x83, 0x80, 1, 2, 3, 4]); // opcode 3, masked, empty
      for (const frame of [unmasked, reserved]) {
        const answer = await sendRawFrame(api.url, queued.body.task_id, frame);
        expect(answer).toMatch(/^HTTP\/1\.1 101 /);
      }
      const logged = logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; code?: string });
      expect(logged.filter((l) => l.level >= 50)).toEqual([]);
      const protocol = logged.filter((l) => l.msg === 'websocket closed: the client broke the protocol');
      expect(protocol.map((l) => [l.level, l.code])).toEqual([[20, 'WS_ERR_EXPECTED_MASK'], [20, 'WS_ERR_INVALID_OPCODE']]);
      expect(protocol.map((l) => JSON.stringify(l))).not.toContainEqual(expect.stringContaining('stack'));
      const health = await fetch(api.url + '/health');
      expect(health.status).toBe(200);
    } finally {
      await api.close();
    }
  });
});
