// Hardening: CORS allow-list (no wildcard with credentials), security headers (and /docs still
// works), caps (body, JSON depth, page size, streams per principal), header timeout, logs that
// never carry keys/tokens/Authorization, 5xx bodies without stacks or SQL, and dev mode (auth off
// on loopback only, with a loud warning).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'node:http';
import { SignJWT } from 'jose';
import { createSecretKey } from 'node:crypto';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, newTenant, serverWithLogs as sharedServerWithLogs, startTestServer, type TestServer } from '../helpers/server.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ConnectionLimiter, principalKey } from '../../src/auth/connection-limiter.js';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await openTestDb();
});
afterAll(async () => {
  await tdb?.close();
});

/** A server whose pino output is kept in memory (helpers/server.ts). */
const serverWithLogs = (env: Record<string, string>, flags: Record<string, string | boolean> = {}, db = tdb.db) => sharedServerWithLogs(db, env, flags);

describe('CORS', () => {
  let server: TestServer;
  let wildcard: TestServer;
  let none: TestServer;
  const ORIGIN = 'https://app.example.com';
  beforeAll(async () => {
    server = await startTestServer(tdb.db, { TASKGATE_CORS_ORIGINS: `${ORIGIN},https://admin.example.com`, TASKGATE_ROLE: 'api' });
    wildcard = await startTestServer(tdb.db, { TASKGATE_CORS_ORIGINS: '*', TASKGATE_ROLE: 'api' });
    none = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
  });
  afterAll(async () => {
    for (const s of [server, wildcard, none]) await s?.close();
  });

  const preflight = (s: TestServer, origin: string) =>
    s.call('OPTIONS', '/api/v1/tasks', undefined, {
      key: null, headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key,idempotency-key' },
    });

  it('answers preflights from allowed origins before auth, with credentials', async () => {
    const res = await preflight(server, ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-headers')!.toLowerCase()).toContain('idempotency-key');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it("allows the headers the official OpenAI SDKs send from a browser, on the /v1 routes' preflight", async () => {
    const sent = ['x-stainless-arch', 'x-stainless-lang', 'x-stainless-os', 'x-stainless-package-version', 'x-stainless-retry-count',
      'x-stainless-runtime', 'x-stainless-runtime-version', 'x-stainless-timeout', 'openai-organization', 'openai-project', 'authorization', 'content-type'];
    const res = await server.call('OPTIONS', '/v1/chat/completions', undefined, {
      key: null, headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': sent.join(',') },
    });
    expect(res.status).toBe(204);
    const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase().split(/\s*,\s*/);
    expect(sent.filter((h) => !allowed.includes(h))).toEqual([]);
  });

  it('exposes the rate-limit and idempotency headers to allowed origins only', async () => {
    const ok = await server.call('GET', '/api/v1/auth/me', undefined, { headers: { origin: ORIGIN } });
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('vary')).toContain('Origin');
    expect(ok.headers.get('access-control-expose-headers')).toContain('Idempotent-Replayed');
    const evil = await server.call('GET', '/api/v1/auth/me', undefined, { headers: { origin: 'https://evil.example' } });
    // without an Allow-Origin naming it, a browser hands the page nothing
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const evilPreflight = await preflight(server, 'https://evil.example');
    expect(evilPreflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('never pairs a wildcard with credentials', async () => {
    const res = await wildcard.call('GET', '/api/v1/auth/me', undefined, { headers: { origin: 'https://anyone.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('sends no CORS headers when no origin is configured', async () => {
    const res = await none.call('GET', '/api/v1/auth/me', undefined, { headers: { origin: ORIGIN } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('security headers and limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_BODY_LIMIT_BYTES: '4096', TASKGATE_MAX_JSON_DEPTH: '8' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('every response carries the security headers; JSON gets a deny-all CSP', async () => {
    for (const [path, key] of [['/api/v1/auth/me', ADMIN_KEY], ['/api/v1/auth/me', null], ['/nope', ADMIN_KEY], ['/health', null]] as const) {
      const res = await server.call('GET', path, undefined, { key });
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'none'");
      expect(res.headers.get('x-powered-by'), path).toBeNull();
    }
  });

  it('/docs still works, under a same-origin CSP', async () => {
    const page = await server.call('GET', '/docs/', undefined, { key: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    // every script the page loads comes from the server itself, as the CSP requires
    const scripts = [...page.text.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    expect(page.text).not.toMatch(/<script(?![^>]*src=)[^>]*>\s*\S/);
    for (const src of scripts) {
      expect(src).not.toMatch(/^https?:/);
      expect((await server.call('GET', new URL(src, `${server.url}/docs/`).pathname, undefined, { key: null })).status, src).toBe(200);
    }
    expect((await server.call('GET', '/openapi.json', undefined, { key: null })).status).toBe(200);
    // a path the static files refuse is a 403 in the envelope (it read as a 400 VALIDATION_ERROR)
    // (sent as written: a URL parser would fold the dot segments first)
    const raw = (path: string) =>
      new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
        const req = request(`${server.url}${path}`, { method: 'GET', path }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const escape = await raw('/docs/static/%2e%2e/%2e%2e/package.json');
    expect({ status: escape.status, code: JSON.parse(escape.body).error?.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
  });

  it('caps body size, JSON depth and page size', async () => {
    const big = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: { s: 'x'.repeat(5000) } });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const deep = await server.call('POST', '/api/v1/tasks', JSON.stringify({ task_definition_id: 'noop', input: JSON.parse('['.repeat(10) + ']'.repeat(10)) }));
    expect(deep.status).toBe(400);
    for (const path of ['/api/v1/tasks?limit=101', '/api/v1/tasks/task_x/events?limit=201', '/api/v1/auth/api-keys?limit=1000', '/api/v1/admin/tenants?limit=101']) {
      expect((await server.call('GET', path)).status, path).toBe(400);
    }
    const text = await server.call('POST', '/api/v1/tasks', 'query=x', { headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
  });

  it('sets the header, request and keep-alive timeouts on the HTTP server', () => {
    const http = server.app.server;
    expect(http.headersTimeout).toBe(10_000);
    expect(http.requestTimeout).toBe(30_000);
    expect(http.keepAliveTimeout).toBe(72_000);
  });
});

/** Writes `text` on a new connection to `server` and sends nothing more; resolves with all it was answered once the server closes it. */
function sendRaw(server: TestServer, text: string): Promise<string> {
  const { port } = server.app.server.address() as { port: number };
  return new Promise<string>((resolve, reject) => {
    let got = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    socket.on('data', (d) => (got += d.toString()));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

describe('header timeout', () => {
  it('cuts off a client that never finishes its headers', async () => {
    const server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_HEADERS_TIMEOUT_MS: '200' });
    try {
      const answer = await sendRaw(server, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      // in the standard envelope, with the request id it names in a header
      const [head, body] = answer.split('\r\n\r\n');
      const requestId = /\r\nX-Request-ID: ([0-9a-f-]{36})\r\n/.exec(head!)?.[1];
      expect(requestId).toBeDefined();
      expect(head).toMatch(/\r\nConnection: close/);
      expect(JSON.parse(body!)).toEqual({ error: { code: 'REQUEST_TIMEOUT', message: expect.any(String) }, request_id: requestId });
    } finally {
      await server.close();
    }
  });
});

describe('request timeout', () => {
  it('answers 408 to a request whose body stops arriving (its socket was destroyed first, without an answer)', async () => {
    const server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_REQUEST_TIMEOUT_MS: '1500' });
    try {
      const answer = await sendRaw(server, `POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"a":`);
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]!).error.code).toBe('REQUEST_TIMEOUT');
    } finally {
      await server.close();
    }
  });
});

describe('retention settings an operator could get wrong', () => {
  it('warns when TASKGATE_TASK_RETENTION is set on an api process (which never sweeps) or is shorter than the idempotency TTL', async () => {
    const { server, logs } = await serverWithLogs({ TASKGATE_TASK_RETENTION: '2h', LOG_LEVEL: 'warn' });
    try {
      expect(server.retention).toBeUndefined();
      expect(logs()).toContain('TASKGATE_TASK_RETENTION is set on an api process');
      expect(logs()).toContain('shorter than the idempotency TTL');
    } finally {
      await server.close();
    }
    const quiet = await serverWithLogs({ TASKGATE_TASK_RETENTION: '30d', TASKGATE_ROLE: 'worker', LOG_LEVEL: 'warn' });
    try {
      expect(quiet.server.retention).toBeDefined();
      expect(quiet.logs()).not.toContain('TASKGATE_TASK_RETENTION');
    } finally {
      await quiet.server.close();
    }
  });
});

/** Writes `bytes` to a fresh connection and resolves with everything answered until it closes. */
const rawAnswer = (port: number, bytes: string) =>
  new Promise<string>((resolve, reject) => {
    let got = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (d) => (got += d.toString()));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });

describe('requests Node refuses before they exist', () => {
  it('answers oversized headers with 431 and bytes that are not HTTP with 400, in the envelope', async () => {
    const server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
    try {
      const { port } = server.app.server.address() as { port: number };
      const big = await rawAnswer(port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expect(big).toMatch(/^HTTP\/1\.1 431 /);
      expect(JSON.parse(big.split('\r\n\r\n')[1]!).error.code).toBe('HEADERS_TOO_LARGE');
      const junk = await rawAnswer(port, 'NOT HTTP AT ALL\r\n\r\n');
      expect(junk).toMatch(/^HTTP\/1\.1 400 /);
      expect(JSON.parse(junk.split('\r\n\r\n')[1]!)).toMatchObject({ error: { code: 'VALIDATION_ERROR', message: 'Malformed HTTP request' } });
      // CONNECT asks the server to be a proxy: a 405 in the envelope (Node closed it unanswered)
      const tunnel = await rawAnswer(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Request-ID: connect-1\r\n\r\n');
      expect(tunnel).toMatch(/^HTTP\/1\.1 405 /);
      expect(tunnel).toContain('X-Request-ID: connect-1');
      expect(JSON.parse(tunnel.split('\r\n\r\n')[1]!)).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' }, request_id: 'connect-1' });
      // HTTP/1.1 without Host: a 400 in the envelope with its request id (Node's own was bare);
      // HTTP/1.0 needs none, on the seed 004 route its own shape
      const hostless = await rawAnswer(port, 'GET /api/v1/tasks HTTP/1.1\r\nX-API-Key: x\r\nConnection: close\r\n\r\n');
      expect(hostless).toMatch(/^HTTP\/1\.1 400 /);
      const hostlessBody = JSON.parse(hostless.split('\r\n\r\n')[1]!);
      expect(hostlessBody).toMatchObject({ error: { code: 'VALIDATION_ERROR', details: { path: 'host' } } });
      expect(hostless).toContain(`x-request-id: ${hostlessBody.request_id}`);
      expect(await rawAnswer(port, 'GET /health HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
      const compatHostless = await rawAnswer(port, 'GET /api/v1/health HTTP/1.1\r\nConnection: close\r\n\r\n');
      expect(JSON.parse(compatHostless.split('\r\n\r\n')[1]!)).toMatchObject({ status: 'error' });
      // answered before a request exists, they still carry every security header
      for (const answer of [big, junk, tunnel]) {
        const head = answer.split('\r\n\r\n')[0]!.toLowerCase();
        for (const h of ["content-security-policy: default-src 'none'", 'x-frame-options: deny', 'referrer-policy: no-referrer', 'x-content-type-options: nosniff', 'strict-transport-security:', 'cross-origin-opener-policy:', 'x-permitted-cross-domain-policies: none']) {
          expect(head, h).toContain(h);
        }
        expect(head.match(/x-content-type-options/g)).toHaveLength(1);
      }
      // paths the router refuses: a parameter over the length cap, bad percent-encoding
      for (const path of [`/api/v1/tasks/${'a'.repeat(300)}`, '/api/v1/tasks/%zz']) {
        const res = await fetch(server.url + path, { headers: { 'x-api-key': ADMIN_KEY } });
        expect(res.status, path).toBe(400);
        const body = (await res.json()) as any;
        expect(body).toMatchObject({ error: { code: 'VALIDATION_ERROR', details: { location: 'path' } }, request_id: res.headers.get('x-request-id') });
        // refused by the router, before the hooks that set them: every security header all the same
        expect(res.headers.get('content-security-policy'), path).toMatch(/^default-src 'none'/);
        expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      }
      // the server goes on serving
      expect((await fetch(server.url + '/health')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('streams per principal', () => {
  it('ConnectionLimiter: a slot per connection, released once', () => {
    const limiter = new ConnectionLimiter(2);
    const key = principalKey({ tenantId: 't', kind: 'api_key', subjectId: 'key_1' });
    const r1 = limiter.acquire(key)!;
    const r2 = limiter.acquire(key)!;
    expect(limiter.acquire(key)).toBeUndefined();
    expect(limiter.acquire('other')).toBeDefined();
    r1();
    r1();
    expect(limiter.count(key)).toBe(1);
    expect(limiter.acquire(key)).toBeDefined();
    r2();
  });

  it('principalKey tells apart principals whose parts hold the separator', () => {
    // a JWT sub may hold ':', and so may a tenant id
    const jwt = principalKey({ tenantId: 'x', kind: 'jwt', subjectId: 'q:api_key:key_Z' });
    const apiKey = principalKey({ tenantId: 'x:jwt:q', kind: 'api_key', subjectId: 'key_Z' });
    expect(jwt).not.toBe(apiKey);
  });

  it('the SSE route is capped per principal (TASKGATE_MAX_STREAMS_PER_PRINCIPAL)', async () => {
    const server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_MAX_STREAMS_PER_PRINCIPAL: '2' });
    const aborts: AbortController[] = [];
    try {
      const t = await newTenant(tdb.db);
      const other = await newTenant(tdb.db);
      const task = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', delay_ms: 3_600_000 }, { key: t.key });
      const open = async (key: string, id = task.body.task_id) => {
        const ac = new AbortController();
        aborts.push(ac);
        const res = await fetch(`${server.url}/api/v1/stream/sse?workflow_id=${id}`, { headers: { 'x-api-key': key }, signal: ac.signal });
        return { status: res.status, ac };
      };
      const first = await open(t.key);
      expect((await open(t.key)).status).toBe(200);
      expect(first.status).toBe(200);
      expect((await open(t.key)).status).toBe(429);
      // another principal has its own slots
      const theirs = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', delay_ms: 3_600_000 }, { key: other.key });
      expect((await open(other.key, theirs.body.task_id)).status).toBe(200);
      // closing a stream gives its slot back (the server sees the close asynchronously)
      first.ac.abort();
      let status = 429;
      for (const deadline = Date.now() + 20_000; status === 429 && Date.now() < deadline; ) {
        status = (await open(t.key)).status;
        if (status === 429) await new Promise((r) => setTimeout(r, 25));
      }
      expect(status).toBe(200);
    } finally {
      for (const ac of aborts) ac.abort();
      await server.close();
    }
  });
});

describe('logs', () => {
  it('never contain API keys, tokens or Authorization headers', async () => {
    const secret = 'log-test-secret-that-is-32-bytes-or-more';
    const { server, logs } = await serverWithLogs({ LOG_LEVEL: 'debug', TASKGATE_JWT_SECRET: secret, TASKGATE_JWT_ISSUER: 'https://idp.test', TASKGATE_JWT_AUDIENCE: 'taskgate' });
    try {
      const t = await newTenant(tdb.db);
      const jwt = await new SignJWT({ tenant_id: t.tenantId, scopes: 'tasks:read' }).setProtectedHeader({ alg: 'HS256' }).setSubject('someone').setIssuer('https://idp.test').setAudience('taskgate').setExpirationTime('5m')
        .sign(createSecretKey(Buffer.from(secret)));
      const bogus = 'sk_BOGUSBOGUSBO_' + 'z'.repeat(43);
      const task = await fetch(`${server.url}/api/v1/tasks`, {
        method: 'POST', headers: { 'x-api-key': t.key, 'content-type': 'application/json' }, body: JSON.stringify({ task_definition_id: 'noop', delay_ms: 3_600_000 }),
      }).then((r) => r.json() as Promise<{ task_id: string }>);
      const requests: [string, Record<string, string>][] = [
        ['/api/v1/auth/me', { authorization: `Bearer ${t.key}` }],
        ['/api/v1/auth/me', { authorization: `Bearer ${jwt}` }],
        ['/api/v1/auth/me', { 'x-api-key': bogus }],
        ['/api/v1/auth/me', { authorization: `Bearer ${bogus}` }],
        [`/api/v1/stream/sse?workflow_id=task_missing&api_key=${t.key}`, {}],
        [`/api/v1/stream/sse?workflow_id=task_missing&token=${jwt}`, {}],
        [`/api/v1/stream/sse?workflow_id=task_missing&api_key=${bogus}`, {}],
        [`/api/v1/tasks/${task.task_id}?api_key=${t.key}&x=1`, { 'x-api-key': t.key }],
        [`/nope?token=${jwt}`, { cookie: `session=${t.key}` }],
      ];
      for (const [path, headers] of requests) await fetch(server.url + path, { headers });
      // requests Node's parser refuses (logged at debug): the error carries the raw bytes read
      const { port } = server.app.server.address() as { port: number };
      const refused = [
        `GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nX-API-Key: ${t.key}\r\nAuthorization: Bearer ${jwt}\r\nBad Header: y\r\n\r\n`,
        `GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nX-API-Key: ${t.key}\r\nCookie: ${'c'.repeat(20_000)}\r\n\r\n`,
      ];
      for (const bytes of refused) expect(await rawAnswer(port, bytes)).toMatch(/^HTTP\/1\.1 4\d\d /);
      const text = logs();
      expect(text).toContain('client error before a request');
      expect(text).not.toContain('rawPacket');
      expect(text).toContain('incoming request');
      expect(text).toContain('[REDACTED]');
      for (const s of [t.key, jwt, bogus, secret, t.key.slice(16), jwt.split('.')[2]!]) expect(text).not.toContain(s);
      expect(text.toLowerCase()).not.toMatch(/"authorization":"(?!\[redacted\])/);
    } finally {
      await server.close();
    }
  });

  it("never contain a key sent after a raw '#' in the query or under a bracketed name", async () => {
    const { server, logs } = await serverWithLogs({ LOG_LEVEL: 'info' });
    try {
      const t = await newTenant(tdb.db);
      const { port } = server.app.server.address() as { port: number };
      const get = (target: string) => rawAnswer(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      // the query parser reads past the '#': the key authenticates (404: no such task, not 401)
      expect(await get(`/api/v1/stream/sse?workflow_id=task_missing&x=#&api_key=${t.key}`)).toMatch(/^HTTP\/1\.1 404 /);
      expect(await get(`/api/v1/stream/sse?workflow_id=task_missing&api_key[]=${t.key}`)).toMatch(/^HTTP\/1\.1 401 /);
      const text = logs();
      expect(text).toContain('[REDACTED]');
      for (const s of [t.key, t.key.slice(16)]) expect(text).not.toContain(s);
    } finally {
      await server.close();
    }
  });

  it('carry the request id and trace id on every line of a request', async () => {
    const { server, logs } = await serverWithLogs({ LOG_LEVEL: 'info' });
    try {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const res = await fetch(`${server.url}/api/v1/auth/me`, {
        headers: { 'x-api-key': ADMIN_KEY, 'x-request-id': 'req-log-test', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      });
      expect(res.headers.get('x-trace-id')).toBe(traceId);
      const lines = logs().split('\n').filter((l) => l.includes('req-log-test')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
      for (const l of lines) expect(l).toMatchObject({ reqId: 'req-log-test', trace_id: traceId });
      // without a traceparent the id is new, and still on the lines
      const other = await fetch(`${server.url}/health`, { headers: { 'x-request-id': 'req-log-test-2' } });
      const generated = other.headers.get('x-trace-id');
      expect(generated).toMatch(/^[0-9a-f]{32}$/);
      const more = logs().split('\n').filter((l) => l.includes('req-log-test-2')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(more.length).toBeGreaterThan(0);
      for (const l of more) expect(l.trace_id).toBe(generated);
    } finally {
      await server.close();
    }
  });
});

describe('5xx bodies', () => {
  it('never carry stack traces or SQL; the detail goes to the log only', async () => {
    const broken = await openTestDb();
    const { server, logs } = await serverWithLogs({}, {}, broken.db);
    try {
      await broken.db.exec('ALTER TABLE tasks RENAME TO tasks_moved_away');
      const res = await fetch(`${server.url}/api/v1/tasks`, { headers: { 'x-api-key': ADMIN_KEY } });
      const text = await res.text();
      expect(res.status).toBe(500);
      expect(JSON.parse(text).error).toEqual({ code: 'INTERNAL_ERROR', message: 'Internal server error' });
      for (const leak of ['tasks_moved_away', 'relation', 'SELECT', 'FROM', ' at ', '.ts:', '.js:', 'postgres', 'pglite']) expect(text).not.toContain(leak);
      expect(logs()).toContain('request failed');
    } finally {
      await server.close();
      await broken.close();
    }
  });
});

describe('dev mode', () => {
  it.each(['0.0.0.0', '::', '192.168.1.10', '127.0.0.1.example.com', 'example.com'])('refuses to turn auth off when bound to %s', (host) => {
    expect(() => loadConfig({ 'no-auth': true, host }, {})).toThrow(ConfigError);
    expect(() => loadConfig({}, { TASKGATE_AUTH_DISABLED: 'true', HOST: host })).toThrow(ConfigError);
  });

  it.each(['127.0.0.1', '127.0.0.2', 'localhost', '::1'])('allows it on loopback %s', (host) => {
    expect(loadConfig({ 'no-auth': true, host }, {}).authDisabled).toBe(true);
  });

  it('warns loudly at start and answers without credentials', async () => {
    const { server, logs } = await serverWithLogs({ TASKGATE_AUTH_DISABLED: 'true', HOST: '127.0.0.1' });
    try {
      const warning = logs().split('\n').find((l) => l.includes('AUTHENTICATION IS DISABLED'));
      expect(warning).toBeDefined();
      expect(JSON.parse(warning!).level).toBe(40);
      const me = await fetch(`${server.url}/api/v1/auth/me`).then((r) => r.json() as Promise<Record<string, unknown>>);
      expect(me).toMatchObject({ principal_type: 'anonymous', tenant_id: 'default' });
    } finally {
      await server.close();
    }
  });
});

describe('numbers that are not finite', () => {
  it('are a 400 naming the parameter in a query string or a body, never reaching SQL or the serializer', async () => {
    const server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
    try {
      const get = (path: string) => fetch(server.url + path, { headers: { 'x-api-key': ADMIN_KEY } });
      for (const path of [
        '/api/v1/definitions?offset=Infinity', '/api/v1/definitions?limit=Infinity', '/api/v1/tasks?limit=Infinity',
        '/api/v1/tasks?offset=-Infinity', '/api/v1/tasks?page=Infinity', '/api/v1/sessions?limit=1e309', '/api/v1/approvals?offset=NaN',
      ]) {
        const res = await get(path);
        const body = (await res.json()) as { error: { code: string; details?: Record<string, unknown> } };
        expect([path, res.status]).toEqual([path, 400]);
        expect(body.error.code).toBe('VALIDATION_ERROR');
        expect(body.error.details?.sqlstate).toBeUndefined();
        expect(JSON.stringify(body.error)).toContain(path.split('?')[1]!.split('=')[0]);
      }
      // in a body: a typed field, and free-form input a double cannot hold (it would be stored as null)
      for (const body of ['{"task_definition_id":"noop","delay_ms":1e309}', '{"task_definition_id":"noop","input":{"n":-1e400}}']) {
        const res = await fetch(`${server.url}/api/v1/tasks`, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }, body });
        expect([body, res.status]).toEqual([body, 400]);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_ERROR');
      }
    } finally {
      await server.close();
    }
  });
});
