// A malformed-request storm: fast-check generates ≥ 10,000 requests across every route of the live
// route table (odd methods, odd ids, bad query values, bodies of the wrong type, huge, deep or
// invalid JSON, odd and hostile headers, valid and invalid credentials) and sends them through
// app.inject(). None may answer 5xx, hang or crash the process; JSON answers must parse. Then a few
// hundred malformed raw HTTP messages over TCP, which Node's parser must refuse without harm.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { connect } from 'node:net';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, newTenant, startTestServer, type TestServer } from '../helpers/server.js';
import { routeTable } from '../../src/api/auth.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const RAW_RUNS = 300;
/** A request that takes longer than this counts as a hang. */
const HANG_MS = 15_000;

let tdb: TestDb;
let server: TestServer;
let limitedKey: string;
let realTaskId: string;
let templates: { method: string; url: string }[];

beforeAll(async () => {
  tdb = await openTestDb();
  // api role: tasks are stored, not run; a 64 KiB body cap keeps oversized bodies cheap to build
  server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_BODY_LIMIT_BYTES: '65536' });
  limitedKey = (await newTenant(tdb.db, ['tasks:read', 'tasks:execute'])).key;
  const task = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', delay_ms: 3_600_000, session_id: 'fuzz-session' });
  realTaskId = task.body.task_id;
  templates = routeTable(server.app).map(({ method, url }) => ({ method, url }));
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

const oddIds = [
  '', '%00', '..', '%2e%2e', '%2F', '%', '%zz', 'a'.repeat(129), 'a'.repeat(300), '%F0%9F%98%80', '%3Cscript%3E', "'%20OR%201=1--",
  'null', 'undefined', '-1', '0', '1e309', 'NaN', '__proto__', 'constructor', 'prototype', 'task_', 'key_', 'sess_', 'tnt_', 'default', 'noop',
  '%E2%80%AE', '%C0%AF', '~', '*', ';', ',', '$', '@', 'a:b', 'a.b', '.', '-', '_',
];

const text = fc.string({ maxLength: 40 });
const id = fc.oneof(
  fc.constantFrom(...oddIds),
  text.map((s) => encodeURIComponent(s)),
  fc.stringMatching(/^[A-Za-z0-9:_\-.]{1,128}$/),
  fc.constant('__REAL_TASK__'),
);

const scalar = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), text, fc.constantFrom('', ' ', '\u0000', '-1', '1e400', 'true', '[]', '{}'));
const FIELDS = [
  'task_definition_id', 'taskDefinitionId', 'type', 'input', 'args', 'query', 'session_id', 'context', 'metadata', 'mode', 'model_tier', 'priority',
  'timeout_ms', 'delay_ms', 'run_at', 'retry_policy', 'executionConfig', 'workflow_instance_id', 'reason', 'force', 'name', 'scopes', 'expires_at',
  'rate_limit', 'tenant_id', 'user_id', 'title', 'workflow_id', 'approval_id', 'approved', 'feedback', 'model', 'messages', 'stream', '__proto__',
  'constructor',
];
const fieldValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(text, scalar, { maxKeys: 4 }), fc.jsonValue({ maxDepth: 3 }));
const shapedBody = fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 6 }).map((o) => JSON.stringify(o));

const body = fc.oneof(
  { weight: 4, arbitrary: shapedBody },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: text }, // mostly invalid JSON
  { weight: 1, arbitrary: fc.integer({ min: 20, max: 3000 }).map((n) => '['.repeat(n) + ']'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 20, max: 3000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 120_000 }).map((n) => JSON.stringify({ task_definition_id: 'noop', input: { s: 'x'.repeat(n) } })) },
  { weight: 1, arbitrary: fc.constantFrom('', 'null', '"str"', '0', '[]', '{', '{"a":1,}', '\u0000', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}') },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')) },
);

const query = fc.dictionary(
  fc.constantFrom('limit', 'offset', 'page', 'status', 'session_id', 'type', 'search', 'tag', 'workflow_id', 'types', 'last_event_id', 'api_key', 'token', 'x'),
  fc.oneof(fc.constantFrom('-1', '0', '1', '100', '101', '1e99', 'abc', '', '%', 'QUEUED,FOO', '__REAL_TASK__'), text.map(encodeURIComponent)),
  { maxKeys: 4 },
);

// valid credentials most of the time, so requests get past auth into validation and handlers
const credential = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<[string, string]>(['x-api-key', ADMIN_KEY], ['authorization', `Bearer ${ADMIN_KEY}`]) },
  { weight: 2, arbitrary: fc.constant<[string, string]>(['x-api-key', '__LIMITED__']) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<[string, string] | null>(
      null, ['x-api-key', 'sk_garbage'], ['authorization', 'Bearer a.b.c'], ['authorization', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'],
      ['authorization', 'Basic Zm9vOmJhcg=='], ['authorization', 'Bearer ' + 'A'.repeat(9000)], ['x-api-key', ''], ['authorization', 'Bearer'],
    ),
  },
);

const headerValue = fc.oneof(text.filter((s) => /^[\t\x20-\x7e]*$/.test(s)), fc.constantFrom('', 'x'.repeat(300), '00-zz-yy-01'));
const headers = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/octet-stream', '*/*', 'application/jsonx',
    ),
    'idempotency-key': headerValue,
    'x-request-id': headerValue,
    traceparent: fc.oneof(headerValue, fc.constant('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')),
    'last-event-id': headerValue,
    accept: fc.constantFrom('application/json', 'text/event-stream', '*/*', 'text/html'),
    origin: fc.constantFrom('https://evil.example', 'null'),
  },
  { requiredKeys: [] },
);

const request = fc.record({
  template: fc.nat(),
  // mostly the route's own method, one in five another (405s, and routes reached the wrong way)
  methodOverride: fc.oneof(
    { weight: 4, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'PURGE') },
  ),
  ids: fc.array(id, { minLength: 3, maxLength: 3 }),
  // one in eight: a path of random segments instead of a route's
  randomPath: fc.oneof(
    { weight: 7, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.array(fc.oneof(id, text.map(encodeURIComponent)), { minLength: 1, maxLength: 5 }) },
  ),
  query,
  credential,
  headers,
  body: fc.option(body, { freq: 6 }), // one in six without a body
});

type Req = typeof request extends fc.Arbitrary<infer T> ? T : never;

function build(r: Req): { method: string; url: string; headers: Record<string, string>; payload?: string } {
  const t = templates[r.template % templates.length]!;
  const method = r.methodOverride ?? t.method;
  let i = 0;
  const path = r.randomPath
    ? '/' + r.randomPath.join('/')
    : t.url.replace(/:[A-Za-z0-9_]+|\*/g, () => r.ids[i++ % r.ids.length]!);
  // a real task id everywhere but the streaming routes (a real stream would not end)
  const real = (s: string) => s.replaceAll('__REAL_TASK__', /stream/.test(t.url) ? 'task_missing' : realTaskId);
  const qs = Object.entries(r.query).map(([k, v]) => `${k}=${real(v)}`).join('&');
  const hs: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) hs[k] = v;
  if (r.credential) hs[r.credential[0]] = r.credential[1] === '__LIMITED__' ? limitedKey : r.credential[1];
  return { method, url: real(path) + (qs ? `?${qs}` : ''), headers: hs, payload: r.body ?? undefined };
}

describe('fuzz', () => {
  it(`${RUNS} malformed requests across all routes: no 5xx, no hang, no crash`, async () => {
    const statuses = new Map<number, number>();
    const fivexx: string[] = [];
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const req = build(r);
        let timer: NodeJS.Timeout | undefined;
        const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang: ${req.method} ${req.url}`)), HANG_MS)));
        const res = await Promise.race([server.app.inject({ ...req, method: req.method as 'GET' }), hang]).finally(() => clearTimeout(timer));
        sent++;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500) fivexx.push(`${res.statusCode} ${req.method} ${req.url.slice(0, 120)} → ${res.body.slice(0, 200)}`);
        expect(res.statusCode, `${req.method} ${req.url.slice(0, 200)} → ${res.body.slice(0, 300)}`).toBeLessThan(500);
        if (String(res.headers['content-type'] ?? '').includes('application/json') && res.body) expect(() => JSON.parse(res.body)).not.toThrow();
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined, endOnFailure: true },
    );
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    console.log(`[fuzz] ${sent} requests over ${templates.length} routes: ${fivexx.length} answered 5xx; statuses ${summary}`);
    expect(sent).toBeGreaterThanOrEqual(RUNS);
    expect(fivexx).toEqual([]);
    // still alive and still correct afterwards
    expect((await server.call('GET', '/health', undefined, { key: null })).status).toBe(200);
    expect((await server.call('GET', `/api/v1/tasks/${realTaskId}`)).status).toBe(200);
  }, 600_000);

  it(`${RAW_RUNS} malformed raw HTTP messages: refused with 4xx or closed, never 5xx`, async () => {
    const { port } = server.app.server.address() as { port: number };
    const raw = fc.oneof(
      fc.string({ maxLength: 200 }).map((s) => s + '\r\n\r\n'),
      fc.record({ m: fc.constantFrom('GET', 'POST', 'G E T', '', 'POST\u0000'), p: fc.string({ maxLength: 60 }), v: fc.constantFrom('HTTP/1.1', 'HTTP/9.9', 'HTTP/1', '') })
        .map(({ m, p, v }) => `${m} /${p} ${v}\r\nHost: x\r\n\r\n`),
      fc.constantFrom(
        'POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
        'POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
        'GET /health HTTP/1.1\r\nHost: x\r\nX: ' + 'a'.repeat(20_000) + '\r\n\r\n',
        'GET /health HTTP/1.1\r\nBad Header\r\n\r\n',
        'GET /api/v1/tasks/%zz HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
      ),
    );
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(raw, async (msg) => {
        const answer = await new Promise<string>((resolve) => {
          let got = '';
          const socket = connect(port, '127.0.0.1', () => socket.end(Buffer.from(msg, 'latin1')));
          socket.setTimeout(HANG_MS, () => socket.destroy());
          socket.on('data', (d) => (got += d.toString('latin1')));
          socket.on('close', () => resolve(got));
          socket.on('error', () => resolve(got));
        });
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1];
        if (status) expect(Number(status), msg.slice(0, 80)).toBeLessThan(500);
        refused++;
      }),
      { numRuns: RAW_RUNS },
    );
    console.log(`[fuzz] ${refused} raw malformed HTTP messages: none answered 5xx`);
    expect((await server.call('GET', '/health', undefined, { key: null })).status).toBe(200);
  }, 120_000);
});
