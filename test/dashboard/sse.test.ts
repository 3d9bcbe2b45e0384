// The dashboard's SSE reader (dashboard/sse.js), run in Node against a real server: the frame
// parser on awkward chunking, and followStream resuming with Last-Event-ID after the connection
// is cut mid-stream — every persisted event exactly once, in order, ending at `done`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, waitForTask, type TestServer } from '../helpers/server.js';

// a plain browser module without type declarations: loaded by URL
const sse = await import(new URL('../../dashboard/sse.js', import.meta.url).href);

let tdb: TestDb;
let server: TestServer;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db);
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

describe('SseParser', () => {
  it('parses id, event, multi-line data and comments whatever the chunking and line ends', () => {
    const text = ': connected\r\n\r\nid: 1\r\nevent: PROGRESS\r\ndata: {"a":1}\r\n\r\n: ping\n\nid:2\nevent: x\ndata: one\ndata:  two\n\nretry: 1500\nevent: done\ndata: [DONE]\n\n';
    for (const size of [1, 2, 3, 7, text.length]) {
      const parser = new sse.SseParser();
      const frames: unknown[] = [];
      for (let i = 0; i < text.length; i += size) frames.push(...parser.push(text.slice(i, i + size)));
      expect(frames, `chunks of ${size}`).toEqual([
        { comment: 'connected' },
        { event: 'PROGRESS', data: '{"a":1}', id: '1' },
        { comment: 'ping' },
        { event: 'x', data: 'one\n two', id: '2' },
        { retry: 1500 },
        { event: 'done', data: '[DONE]', id: '2' },
      ]);
      expect(parser.lastEventId).toBe('2');
    }
  });

  it('keeps an unfinished frame until its blank line', () => {
    const parser = new sse.SseParser();
    expect(parser.push('id: 5\nevent: A\ndata: {}')).toEqual([]);
    expect(parser.push('\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ event: 'A', data: '{}', id: '5' }]);
  });
});

describe('followStream', () => {
  it('a connection cut after the first event resumes with Last-Event-ID: every event once, in order, then done', async () => {
    const id = await server.submit({ task_definition_id: 'sleep', input: { ms: 20, steps: 4 } });
    const requests: (string | null)[] = [];
    let cut = false;
    // the first response's body ends with an error right after its first event frame (bytes, not
    // chunks: deterministic however the server's writes are split)
    const fetchImpl = async (url: string, init: RequestInit) => {
      requests.push(new Headers(init.headers).get('last-event-id'));
      const res = await fetch(new URL(url, server.url), init);
      if (cut || !res.body) return res;
      cut = true;
      const reader = res.body.getReader();
      let text = '';
      const body = new ReadableStream<Uint8Array>({
        // one pull reads until it can answer: a pull that enqueues nothing is not called again
        async pull(controller) {
          for (;;) {
            const end = text.includes('\nid: ') ? text.indexOf('\n\n', text.indexOf('\nid: ')) : -1;
            if (end !== -1) {
              controller.enqueue(new TextEncoder().encode(text.slice(0, end + 2)));
              controller.error(new TypeError('network connection lost'));
              void reader.cancel();
              return;
            }
            const { value, done } = await reader.read();
            if (done) return controller.error(new TypeError('ended early'));
            text += new TextDecoder().decode(value);
          }
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const seen: any[] = [];
    const states: string[] = [];
    const result = await sse.followStream(`/api/v1/stream/sse?workflow_id=${id}`, {
      headers: { 'X-API-Key': ADMIN_KEY },
      fetchImpl,
      onEvent: (ev: any) => seen.push(ev),
      onState: (s: string) => states.push(s),
    });
    expect(result.ended).toBe(true);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests[0]).toBeNull();
    expect(requests[1]).toBe(String(seen[0].seq));
    expect(states).toContain('reconnecting');
    expect(states.at(-1)).toBe('done');

    await waitForTask(server, id);
    const log = (await server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
    expect(seen.map((e) => e.seq)).toEqual(log.map((e) => e.seq));
    expect(seen.map((e) => e.type)).toEqual(log.map((e) => e.type));
    expect(seen[0].type).toBe('WORKFLOW_STARTED');
    expect(seen.at(-1).type).toBe('STREAM_END');
  });

  it('a stream closed because its key was revoked is final: error state with 401, no reconnect', async () => {
    const created = await server.call('POST', '/api/v1/auth/api-keys', { name: 'doomed', scopes: ['tasks:read'] });
    expect(created.status, created.text).toBe(201);
    const id = await server.submit({ task_definition_id: 'sleep', input: { ms: 8_000, steps: 4 } });
    const states: [string, any][] = [];
    let requests = 0;
    const fetchImpl = (url: string, init: RequestInit) => {
      requests++;
      return fetch(new URL(url, server.url), init);
    };
    const following = sse.followStream(`/api/v1/stream/sse?workflow_id=${id}`, {
      headers: { 'X-API-Key': created.body.key }, fetchImpl, onEvent: () => {},
      onState: (s: string, e: unknown) => {
        states.push([s, e]);
        if (s === 'live') void server.call('DELETE', `/api/v1/auth/api-keys/${created.body.id}`);
      },
    });
    const result = await following;
    expect(result.ended).toBe(false);
    expect(result.error).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(states.at(-1)![0]).toBe('error');
    expect(states.map(([s]) => s)).not.toContain('reconnecting');
    expect(requests).toBe(1);
  });

  it('an HTTP error is final and reported with the envelope message', async () => {
    const { errorFrom } = { errorFrom: async (res: Response) => ({ status: res.status, message: ((await res.json()) as any).error.message }) };
    const states: [string, any][] = [];
    const result = await sse.followStream(`${server.url}/api/v1/stream/sse?workflow_id=task_unknown`, {
      headers: { 'X-API-Key': ADMIN_KEY }, errorFrom, onEvent: () => {}, onState: (s: string, e: unknown) => states.push([s, e]),
    });
    expect(result.ended).toBe(false);
    expect(result.error.status).toBe(404);
    expect(states.at(-1)![0]).toBe('error');
  });
});
