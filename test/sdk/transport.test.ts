// The SDK's transport against a scripted HTTP server (what a proxy, an overloaded or a dying server
// can answer, which the real one cannot be made to on cue): retries and their limits, timeouts,
// network failures, answers that are not JSON, credentials, and the stream's own failure paths.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { beforeEach, describe, expect, it } from 'vitest';
import { useHttpServer } from '../helpers/http-server.js';
import {
  AuthenticationError, NetworkError, RateLimitError, RequestTimeoutError, ServerError, SseParser, TaskgateClient, TaskgateError,
  TaskNotFoundError, TaskTimeoutError, ValidationError, CLIENT_ERROR_CODES, SDK_VERSION, type StreamEvent,
} from '../../src/sdk/index.js';
import { ERRORS } from '../../src/contract/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let handler: Handler;
let seen: { method: string; url: string; headers: IncomingMessage['headers']; at: number }[];

const scripted = useHttpServer((req, res) => {
  seen.push({ method: req.method!, url: req.url!, headers: req.headers, at: performance.now() });
  req.resume();
  req.on('end', () => handler(req, res, seen.length));
});
beforeEach(() => {
  seen = [];
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const envelope = (code: string, message = code) => ({ error: { code, message }, request_id: 'req-1' });
const client = (o: Partial<ConstructorParameters<typeof TaskgateClient>[0]> = {}) => new TaskgateClient({ baseUrl: scripted.url, apiKey: 'sk_test', ...o });

describe('SDK transport: retries', () => {
  it('a GET is retried after 503 (Retry-After honoured) until it succeeds', async () => {
    handler = (_q, res, n) => (n < 3 ? json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '0' }) : json(res, 200, { status: 'healthy' }));
    expect(await client().health()).toEqual({ status: 'healthy' });
    expect(seen).toHaveLength(3);
  });

  it('a POST without an Idempotency-Key is not retried after a 503 or a network failure; with one it is', async () => {
    handler = (_q, res) => json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '0' });
    const err = await client().submitTask({ query: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ status: 503, code: 'UNAVAILABLE', requestId: 'req-1' });
    expect(seen).toHaveLength(1);

    seen = [];
    handler = (_q, res, n) => (n < 2 ? json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '0' }) : json(res, 200, { task_id: 't1', workflow_id: 't1', session_id: null, status: 'QUEUED' }));
    const handle = await client().submitTask({ query: 'x' }, { idempotencyKey: 'k1' });
    expect(handle.taskId).toBe('t1');
    expect(seen.map((s) => s.headers['idempotency-key'])).toEqual(['k1', 'k1']);

    seen = [];
    handler = (_q, res) => res.socket!.destroy();
    await expect(client().submitTask({ query: 'x' })).rejects.toBeInstanceOf(NetworkError);
    expect(seen).toHaveLength(1);

    // the keyed retry of a cut-off submit finds the first still in flight (409): it asks again
    seen = [];
    handler = (_q, res, n) => {
      if (n === 1) return res.socket!.destroy();
      if (n === 2) return json(res, 409, envelope('IDEMPOTENCY_KEY_IN_PROGRESS'));
      json(res, 200, { task_id: 't2', workflow_id: 't2', session_id: null, status: 'QUEUED' });
    };
    expect((await client().submitTask({ query: 'x' }, { idempotencyKey: 'k2' })).taskId).toBe('t2');
    expect(seen).toHaveLength(3);
  });

  it('any request is retried after a 429 (nothing was done); RateLimitError with retryAfterS once retries run out', async () => {
    handler = (_q, res) => json(res, 429, envelope('RATE_LIMITED'), { 'retry-after': '0' });
    const err = await client({ maxRetries: 2 }).submitTask({ query: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(seen).toHaveLength(3);

    seen = [];
    handler = (_q, res) => json(res, 429, envelope('RATE_LIMITED'), { 'retry-after': '120' });
    const late = await client().listTasks().catch((e: unknown) => e);
    expect(late).toMatchObject({ status: 429, retryAfterS: 120 });
    expect(seen).toHaveLength(1); // a wait that long is the caller's to decide
  });

  it('retries after Retry-After are spread (jitter), never sooner: 20 submits refused together do not come back together', async () => {
    const first = new Map<string, number>();
    const gaps: number[] = [];
    handler = (req, res, n) => {
      const key = String(req.headers['idempotency-key']);
      const at = seen[n - 1]!.at;
      if (!first.has(key)) {
        first.set(key, at);
        return json(res, 429, envelope('RATE_LIMITED'), { 'retry-after': '1' });
      }
      gaps.push(at - first.get(key)!);
      json(res, 200, { task_id: key, workflow_id: key, session_id: null, status: 'QUEUED' });
    };
    const c = client();
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.submitTask({ query: 'x' }, { idempotencyKey: `burst-${i}` })));
    expect(gaps).toHaveLength(20);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(990);
    expect(Math.max(...gaps)).toBeLessThan(1_250 + 750); // (the slack: a loaded machine's latency)
    // 20 draws from 0–250 ms: a spread under 100 ms has a chance of about 1e-6; without jitter it is a few ms
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThan(100);
  });

  it('maxRetries 0 turns retries off', async () => {
    handler = (_q, res) => json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '0' });
    await expect(client({ maxRetries: 0 }).listTasks()).rejects.toBeInstanceOf(ServerError);
    expect(seen).toHaveLength(1);
  });
});

describe('SDK transport: failures and credentials', () => {
  it('no answer within timeoutMs: RequestTimeoutError (per client and per call)', async () => {
    handler = () => {}; // never answers
    const err = await client({ timeoutMs: 100, maxRetries: 0 }).listTasks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestTimeoutError);
    expect(err).toMatchObject({ status: 0, code: 'CLIENT_TIMEOUT' });
    await expect(client({ maxRetries: 0 }).getStatus('t', { timeoutMs: 50 })).rejects.toBeInstanceOf(RequestTimeoutError);
  });

  it('an unreachable server: NetworkError; an abort: the signal\'s reason', async () => {
    const closed = new TaskgateClient({ baseUrl: 'http://127.0.0.1:1', maxRetries: 0 });
    await expect(closed.health()).rejects.toMatchObject({ name: 'NetworkError', code: 'NETWORK_ERROR', status: 0 });
    handler = () => {};
    const ac = new AbortController();
    const p = client().listTasks({}, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });

  it('a NetworkError names what failed beneath "fetch failed": the code and the address, the original kept as cause', async () => {
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
    const refused = await new TaskgateClient({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 }).health().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NetworkError);
    expect((refused as Error).message).toBe(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED 127.0.0.1:${port}`);
    expect((refused as Error).cause).toBeInstanceOf(TypeError);

    const unknown = await new TaskgateClient({ baseUrl: 'http://taskgate.invalid', maxRetries: 0 }).health().catch((e: unknown) => e);
    expect((unknown as Error).message).toMatch(/^cannot reach http:\/\/taskgate\.invalid: (ENOTFOUND|EAI_AGAIN) taskgate\.invalid$/);

    // https to a plain-HTTP port: the TLS handshake fails
    const tls = await client({ baseUrl: scripted.url.replace('http:', 'https:'), maxRetries: 0 }).health().catch((e: unknown) => e);
    expect((tls as Error).message).toMatch(/^cannot reach https:\/\/127\.0\.0\.1:\d+: ERR_SSL_\w+$/);

    handler = (_q, res) => res.socket!.destroy();
    const cut = await client({ maxRetries: 0 }).health().catch((e: unknown) => e);
    expect((cut as Error).message).toMatch(/: UND_ERR_SOCKET \(other side closed\)$/);
  });

  it('without AbortSignal.any (older browsers) the timeout and the caller\'s signal still both apply', async () => {
    const any = AbortSignal.any;
    (AbortSignal as { any?: unknown }).any = undefined;
    try {
      handler = () => {};
      await expect(client({ timeoutMs: 80, maxRetries: 0 }).listTasks({}, { signal: new AbortController().signal })).rejects.toBeInstanceOf(RequestTimeoutError);
      const ac = new AbortController();
      const p = client({ timeoutMs: 10_000 }).listTasks({}, { signal: ac.signal });
      ac.abort(new Error('stop'));
      await expect(p).rejects.toThrow('stop');
    } finally {
      AbortSignal.any = any;
    }
  });

  it('the server\'s 408 (REQUEST_TIMEOUT) cannot be taken for the SDK\'s own timeout (CLIENT_TIMEOUT); no SDK code is a server code', async () => {
    handler = (_q, res) => json(res, 408, envelope('REQUEST_TIMEOUT'), { connection: 'close' });
    const err = await client({ maxRetries: 0 }).listTasks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskgateError);
    expect(err).not.toBeInstanceOf(RequestTimeoutError);
    expect(err).toMatchObject({ status: 408, code: 'REQUEST_TIMEOUT' });
    const serverCodes = new Set(Object.keys(ERRORS));
    expect(CLIENT_ERROR_CODES.filter((c) => serverCodes.has(c))).toEqual([]);
  });

  it('an answer that is not JSON: BAD_RESPONSE; a 5xx without an envelope: ServerError', async () => {
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>proxy</html>');
    };
    await expect(client().listTasks()).rejects.toMatchObject({ code: 'BAD_RESPONSE', status: 200 });
    handler = (_q, res) => {
      res.writeHead(500);
      res.end('oops');
    };
    const err = await client({ maxRetries: 0 }).listTasks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ code: 'BAD_RESPONSE', message: 'HTTP 500' });
  });

  it('a timeoutMs or maxRetries that is not a number in range is refused, at construction and per call (NaN meant no timeout)', async () => {
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
    };
    for (const timeoutMs of [Number.NaN, -1, Infinity, 2 ** 31]) {
      expect(refused(() => new TaskgateClient({ timeoutMs })), String(timeoutMs)).toMatchObject({ code: 'INVALID_OPTION', details: { path: 'timeoutMs' } });
    }
    for (const maxRetries of [Number.NaN, -1, 1.5, 101]) {
      expect(refused(() => new TaskgateClient({ maxRetries })), String(maxRetries)).toMatchObject({ code: 'INVALID_OPTION', details: { path: 'maxRetries' } });
    }
    expect(refused(() => new TaskgateClient({ timeoutMs: 0, maxRetries: 0 }))).toBeUndefined();
    // per call too, before anything is sent
    let sent = 0;
    const client = new TaskgateClient({ fetch: async () => (sent++, new Response('{}')) });
    await expect(client.request('GET', '/health', { timeoutMs: -5 })).rejects.toMatchObject({ code: 'INVALID_OPTION', details: { path: 'timeoutMs' } });
    await expect(client.request('GET', '/health', { maxRetries: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION', details: { path: 'maxRetries' } });
    expect(sent).toBe(0);
  });

  it('an apiKey no header can carry (a line break, a space, non-ASCII) is refused at construction; empty means no key', async () => {
    for (const apiKey of ['sk_abc\n', 'sk_a b', 'sk_é', ' ']) {
      expect(() => new TaskgateClient({ apiKey }), JSON.stringify(apiKey)).toThrow(ValidationError);
      expect(() => new TaskgateClient({ apiKey })).toThrow(/^apiKey is not an API key or token: /);
    }
    let headers: Headers | undefined;
    const fetch = async (_: string | URL | Request, init?: RequestInit) => ((headers = new Headers(init?.headers)), new Response('{}'));
    await new TaskgateClient({ apiKey: '', fetch }).request('GET', '/health');
    expect(headers?.has('x-api-key')).toBe(false);
    await new TaskgateClient({ apiKey: 'sk_ok', fetch }).request('GET', '/health');
    expect(headers?.get('x-api-key')).toBe('sk_ok');
  });

  it('a baseUrl that is not an http(s) URL is refused at construction with ValidationError naming it', () => {
    for (const baseUrl of ['127.0.0.1:18210', 'localhost:8080', 'ftp://example.com', '', 'http://h:8080/?a=1']) {
      const err = (() => {
        try {
          return new TaskgateClient({ baseUrl });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ValidationError);
      expect(err).toMatchObject({ status: 0, code: 'INVALID_OPTION', details: { path: 'baseUrl' } });
      expect((err as Error).message).toContain(`baseUrl ${baseUrl || '(empty)'}: `);
    }
    expect(() => new TaskgateClient({ baseUrl: '127.0.0.1:18210' })).toThrow(/http:\/\/ or https:\/\//);
    const withPassword = (() => {
      try {
        return new TaskgateClient({ baseUrl: 'https://me:s3cret@example.com' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(withPassword).toBeInstanceOf(ValidationError);
    expect((withPassword as Error).message).not.toContain('s3cret');
    // without a scheme `me:s3cret@…` parses as a URL of scheme `me:`: still never echoed
    expect(() => new TaskgateClient({ baseUrl: 'me:s3cret@example.com:8080' })).toThrow('baseUrl …@example.com:8080: ');
    expect(new TaskgateClient({ baseUrl: 'https://example.com/taskgate//' }).baseUrl).toBe('https://example.com/taskgate');
  });

  it('sends User-Agent: taskgate-sdk/<version> (package.json\'s) on requests and streams, unless headers set one', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SDK_VERSION).toBe(version);
    handler = (req, res) => {
      if (!req.url!.startsWith('/api/v1/stream/sse')) return json(res, 200, { status: 'healthy' });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('event: done\ndata: [DONE]\n\n');
    };
    await client().health();
    for await (const _ of client().stream('t'));
    await client({ headers: { 'User-Agent': 'my-app/2' } }).health();
    expect(seen.map((s) => s.headers['user-agent'])).toEqual([`taskgate-sdk/${version}`, `taskgate-sdk/${version}`, 'my-app/2']);
  });

  it('an API key goes in X-API-Key, a JWT as a Bearer token; never in the URL', async () => {
    handler = (_q, res) => json(res, 200, { tasks: [], total_count: 0, limit: 20, offset: 0 });
    await client({ apiKey: 'sk_abc' }).listTasks();
    await client({ apiKey: 'aaa.bbb.ccc' }).listTasks();
    expect(seen[0]!.headers['x-api-key']).toBe('sk_abc');
    expect(seen[1]!.headers.authorization).toBe('Bearer aaa.bbb.ccc');
    expect(seen.every((s) => !s.url.includes('sk_abc') && !s.url.includes('aaa.bbb'))).toBe(true);
  });
});

describe('SDK transport: wait()', () => {
  const view = (status: string) => ({ task_id: 't1', workflow_id: 't1', session_id: null, status });
  const listen = (srv: Server, port = 0) => new Promise<number>((r) => srv.listen(port, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));
  const shut = (srv: Server) => {
    srv.closeAllConnections();
    return new Promise((r) => srv.close(r));
  };

  it('rides out a server restart: refused connections, then 503 and 502, until the task has ended', async () => {
    // the first server answers once (RUNNING), then goes away; a new one on the same port comes back
    // after the client has met four refused connections, answering 503, 502, then COMPLETED
    const first = createServer((_q, res) => {
      json(res, 200, view('RUNNING'), { connection: 'close' });
      first.close();
    });
    const port = await listen(first);
    let restarted: Server | undefined;
    let refused = 0;
    const answers: number[] = [];
    const restart = async () => {
      restarted = createServer((_q, res) => {
        answers.push(answers.length < 2 ? [503, 502][answers.length]! : 200);
        if (answers.length === 1) return json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '0' });
        if (answers.length === 2) return res.writeHead(502).end('bad gateway');
        json(res, 200, view('COMPLETED'));
      });
      await listen(restarted, port);
    };
    const watching: typeof fetch = async (input, init) => {
      try {
        return await fetch(input, init);
      } catch (err) {
        if (++refused === 4) await restart();
        throw err;
      }
    };
    try {
      // the client's default retries: wait() reads without them, so every failure reaches it
      const c = new TaskgateClient({ baseUrl: `http://127.0.0.1:${port}`, fetch: watching });
      const retried: string[] = [];
      const done = await c.wait('t1', { pollIntervalMs: 20, timeoutMs: 20_000, onRetry: (err) => retried.push(err.code) });
      expect(done.status).toBe('COMPLETED');
      expect(refused).toBe(4);
      expect(answers).toEqual([503, 502, 200]);
      // each read that failed was told to onRetry, with why
      expect(retried).toEqual(['NETWORK_ERROR', 'NETWORK_ERROR', 'NETWORK_ERROR', 'NETWORK_ERROR', 'UNAVAILABLE', retried[5]]);
      expect(retried).toHaveLength(6);
    } finally {
      await shut(first);
      if (restarted) await shut(restarted);
    }
  });

  it('a 503\'s Retry-After paces the next read', async () => {
    handler = (_q, res, n) => (n === 1 ? json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '1' }) : json(res, 200, view('COMPLETED')));
    expect((await client({ maxRetries: 0 }).wait('t1', { pollIntervalMs: 20 })).status).toBe('COMPLETED');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('a refusal (404, 401) ends the wait at once; no answer until the deadline is TaskTimeoutError with the last failure as cause', async () => {
    handler = (_q, res) => json(res, 404, envelope('NOT_FOUND'));
    await expect(client().wait('t1', { pollIntervalMs: 20 })).rejects.toBeInstanceOf(TaskNotFoundError);
    expect(seen).toHaveLength(1);
    handler = (_q, res) => json(res, 401, envelope('UNAUTHORIZED'));
    await expect(client().wait('t1', { pollIntervalMs: 20 })).rejects.toBeInstanceOf(AuthenticationError);
    expect(seen).toHaveLength(2);

    const gone = createServer();
    const port = await listen(gone);
    await shut(gone);
    const err = await new TaskgateClient({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 }).wait('t1', { pollIntervalMs: 20, timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskTimeoutError);
    expect(err).toMatchObject({ code: 'WAIT_TIMEOUT', details: { status: null } });
    expect((err as TaskTimeoutError).cause).toBeInstanceOf(NetworkError);
  });
});

describe('SDK transport: the stream', () => {
  const frame = (seq: number, type = 'PROGRESS') => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ workflow_id: 't', type, seq, timestamp: 'x' })}\n\n`;
  const collect = async (it: AsyncIterable<StreamEvent>) => {
    const out: StreamEvent[] = [];
    for await (const e of it) out.push(e);
    return out;
  };

  it('a 503 at connect is retried after Retry-After; the server\'s retry: hint paces reconnects after a cut', async () => {
    handler = (req, res, n) => {
      if (n === 1) return json(res, 503, envelope('UNAVAILABLE'), { 'retry-after': '0' });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 2) return res.end(`: connected\nretry: 10\n\n${frame(1)}${frame(2)}`); // ends without done
      expect(req.headers['last-event-id']).toBe('2');
      res.end(`${frame(3, 'STREAM_END')}event: done\ndata: [DONE]\n\n`);
    };
    const states: string[] = [];
    const events = await collect(client().stream('t', { onState: (st) => states.push(st) }));
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(seen).toHaveLength(3);
    // each reconnect reported once, when its connection failed
    expect(states).toEqual(['connecting', 'reconnecting', 'live', 'reconnecting', 'live', 'done']);
  });

  it('a streamed LLM_PARTIAL carries its text as delta, an LLM_OUTPUT as response', async () => {
    const data = (seq: number, type: string, extra: Record<string, string>) => JSON.stringify({ workflow_id: 't', type, seq, timestamp: 'x', message: 'Hel', ...extra });
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: thread.message.delta\ndata: ${data(0, 'LLM_PARTIAL', { delta: 'Hel' })}\n\nid: 1\nevent: thread.message.completed\ndata: ${data(1, 'LLM_OUTPUT', { response: 'Hello' })}\n\n${frame(2, 'STREAM_END')}event: done\ndata: [DONE]\n\n`);
    };
    const events = await collect(client().stream('t'));
    expect(events.map((e) => [e.type, e.delta, e.response])).toEqual([['LLM_PARTIAL', 'Hel', undefined], ['LLM_OUTPUT', undefined, 'Hello'], ['STREAM_END', undefined, undefined]]);
  });

  it('an error envelope in an `event: error` frame (credential revoked) ends the stream with AuthenticationError; ERROR_OCCURRED does not', async () => {
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${frame(1, 'error')}event: error\ndata: ${JSON.stringify(envelope('UNAUTHORIZED', 'revoked'))}\n\n`);
    };
    const got: StreamEvent[] = [];
    const err = await (async () => {
      for await (const e of client().stream('t')) got.push(e);
    })().catch((e: unknown) => e);
    expect(got.map((e) => e.event)).toEqual(['error']);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as TaskgateError).message).toBe('revoked');
    expect((err as TaskgateError).requestId).toBe('req-1');
    expect(seen).toHaveLength(1);
  });

  it('gives up after maxReconnects failed connections in a row, with NetworkError', async () => {
    handler = (_q, res) => res.socket!.destroy();
    const err = await collect(client().stream('t', { maxReconnects: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(seen).toHaveLength(3);
  }, 15_000);

  it('a connection that opened is not a failed reconnect: a proxy cutting every quiet stream does not exhaust maxReconnects', async () => {
    // upstream: a task quietly waiting (`: connected`, then nothing) on the first five connections; the sixth ends it.
    // The proxy ends each connection as soon as the stream has opened, as one cutting idle streams does.
    handler = (_q, res, n) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n <= 5) return res.write(': connected\nretry: 20\n\n');
      res.end(`: connected\n\n${frame(1, 'STREAM_END')}event: done\ndata: [DONE]\n\n`);
    };
    const upstream = new URL(scripted.url);
    const proxy = createTcpServer((down) => {
      const up = connect(Number(upstream.port), upstream.hostname);
      let relayed = '';
      up.on('data', (chunk: Buffer) => {
        relayed += chunk.toString();
        if (relayed.includes(': connected')) {
          down.end(chunk);
          up.destroy();
        } else down.write(chunk);
      });
      down.pipe(up);
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const states: string[] = [];
      const proxied = client({ baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
      const events = await collect(proxied.stream('t', { maxReconnects: 2, onState: (st) => states.push(st) }));
      expect(events.map((e) => e.type)).toEqual(['STREAM_END']);
      expect(seen).toHaveLength(6);
      expect(states).toEqual(['connecting', ...Array<string>(5).fill('live').flatMap((l) => [l, 'reconnecting']), 'live', 'done']);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  it('a 200 that is not an event stream (a proxy\'s page) is a failed connection, BAD_RESPONSE when they run out', async () => {
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>sign in to the wifi</html>');
    };
    const err = await collect(client().stream('t', { maxReconnects: 0 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskgateError);
    expect(err).toMatchObject({ status: 200, code: 'BAD_RESPONSE' });
    expect(seen).toHaveLength(1);
  });

  it('a refusal (401, 404) is final at once', async () => {
    handler = (_q, res) => json(res, 401, envelope('UNAUTHORIZED'));
    await expect(collect(client().stream('t'))).rejects.toBeInstanceOf(AuthenticationError);
    expect(seen).toHaveLength(1);
  });
});

describe('SseParser', () => {
  it('parses fields, multi-line data, comments and retry; CRLF split across chunks; ignores an id with NUL', () => {
    const p = new SseParser();
    const frames = [...p.push(': hi\r'), ...p.push('\nid: 7\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r'), ...p.push('\nretry: 50\n'), ...p.push('id: 8\0\ndata\n\n')];
    expect(frames).toEqual([
      { kind: 'comment', text: 'hi' },
      { kind: 'event', event: 'x', data: 'a\nb', id: '7' },
      { kind: 'retry', ms: 50 },
      { kind: 'event', event: 'message', data: '', id: '7' },
    ]);
    expect(p.lastEventId).toBe('7');
    expect(p.push('retry: soon\n\n')).toEqual([]);
  });
});
