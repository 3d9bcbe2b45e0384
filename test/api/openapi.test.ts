// /openapi.json tells the truth: every status a route answers is declared for it, with a body
// matching the declared schema. The audit's findings one by one (the SSE redirect, the compat
// routes, optional control bodies, error statuses the hooks answer), then a walk over every
// documented operation with representative requests — the normal one, no credential, a key
// lacking the scope, an oversized body, a wrong Content-Type, malformed JSON, a bad
// Idempotency-Key — and, on a second server with tight limits, 429s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv, type ValidateFunction } from 'ajv';
import WebSocket from 'ws';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, useTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { routeTable, type RouteAccess } from '../../src/api/auth.js';
import { createApiKey } from '../../src/auth/api-keys.js';

const BODY_LIMIT = 16_384;
const fx = useTestServer({ TASKGATE_BODY_LIMIT_BYTES: String(BODY_LIMIT) });

type Operation = { responses: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: object }> }>; requestBody?: { required?: boolean } };
type Doc = { paths: Record<string, Record<string, Operation>> };

/** `/api/v1/tasks/:id` → `/api/v1/tasks/{id}` */
const docPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

async function fetchDoc(server: TestServer): Promise<Doc> {
  const res = await server.call('GET', '/openapi.json', undefined, { key: null });
  expect(res.status).toBe(200);
  return res.body as Doc;
}

function operation(doc: Doc, method: string, url: string): Operation {
  const op = doc.paths[docPath(url)]?.[method.toLowerCase()];
  if (!op) throw new Error(`${method} ${url} is not in the OpenAPI document`);
  return op;
}

const declared = (doc: Doc, method: string, url: string) => Object.keys(operation(doc, method, url).responses).sort();

interface Ids {
  /** QUEUED, delayed an hour: stays put. */
  live: string;
  /** CANCELLED. */
  done: string;
  /** For cancel/pause/resume. */
  control: string;
  session: string;
  /** A session the DELETE may remove. */
  spareSession: string;
  keyId: string;
  /** A key the DELETE may revoke. */
  spareKeyId: string;
}

/** One ordinary request per documented operation (what a client would send). */
const FIXTURES: Record<string, (ids: Ids) => { path: string; body?: unknown; ws?: boolean }> = {
  'GET /health': () => ({ path: '/health' }),
  'GET /readiness': () => ({ path: '/readiness' }),
  'GET /openapi.json': () => ({ path: '/openapi.json' }),
  'POST /api/v1/tasks': () => ({ path: '/api/v1/tasks', body: { task_definition_id: 'noop', input: {} } }),
  'GET /api/v1/tasks': () => ({ path: '/api/v1/tasks' }),
  'POST /api/v1/tasks/stream': () => ({ path: '/api/v1/tasks/stream', body: { task_definition_id: 'noop', input: {} } }),
  'GET /api/v1/tasks/:id': (i) => ({ path: `/api/v1/tasks/${i.live}` }),
  'GET /api/v1/tasks/:id/events': (i) => ({ path: `/api/v1/tasks/${i.live}/events` }),
  'GET /api/v1/tasks/:id/stream': (i) => ({ path: `/api/v1/tasks/${i.live}/stream` }),
  'GET /api/v1/tasks/:id/timeline': (i) => ({ path: `/api/v1/tasks/${i.live}/timeline` }),
  // bodies left out: they are optional
  'POST /api/v1/tasks/:id/cancel': (i) => ({ path: `/api/v1/tasks/${i.control}/cancel` }),
  'POST /api/v1/tasks/:id/pause': (i) => ({ path: `/api/v1/tasks/${i.control}/pause` }),
  'POST /api/v1/tasks/:id/resume': (i) => ({ path: `/api/v1/tasks/${i.control}/resume` }),
  'GET /api/v1/tasks/:id/control-state': (i) => ({ path: `/api/v1/tasks/${i.live}/control-state` }),
  'GET /api/v1/definitions': () => ({ path: '/api/v1/definitions' }),
  'GET /api/v1/definitions/:id': () => ({ path: '/api/v1/definitions/openapi-def' }),
  'PUT /api/v1/definitions/:id': () => ({ path: '/api/v1/definitions/openapi-def', body: { kind: 'approval', name: 'renamed' } }),
  'DELETE /api/v1/definitions/:id': () => ({ path: '/api/v1/definitions/openapi-def-2' }),
  'GET /api/v1/auth/me': () => ({ path: '/api/v1/auth/me' }),
  'POST /api/v1/auth/api-keys': () => ({ path: '/api/v1/auth/api-keys', body: { name: 'gen', scopes: ['tasks:read'] } }),
  'GET /api/v1/auth/api-keys': () => ({ path: '/api/v1/auth/api-keys' }),
  'GET /api/v1/auth/api-keys/:id': (i) => ({ path: `/api/v1/auth/api-keys/${i.keyId}` }),
  'DELETE /api/v1/auth/api-keys/:id': (i) => ({ path: `/api/v1/auth/api-keys/${i.spareKeyId}` }),
  'POST /api/v1/admin/tenants': () => ({ path: '/api/v1/admin/tenants', body: { name: 'generated' } }),
  'GET /api/v1/admin/tenants': () => ({ path: '/api/v1/admin/tenants' }),
  'GET /api/v1/admin/tenants/:id': () => ({ path: '/api/v1/admin/tenants/default' }),
  'PATCH /api/v1/admin/tenants/:id': () => ({ path: '/api/v1/admin/tenants/default', body: {} }),
  'POST /api/v1/admin/tenants/:id/api-keys': () => ({ path: '/api/v1/admin/tenants/default/api-keys', body: { name: 'gen', scopes: ['tasks:read'] } }),
  // a binary body (200 on PGlite) or the envelope (409 on PostgreSQL)
  'GET /api/v1/admin/backup': () => ({ path: '/api/v1/admin/backup' }),
  'POST /api/v1/approvals/decision': (i) => ({
    path: '/api/v1/approvals/decision', body: { workflow_id: i.live, approval_id: '0b5d1b7e-3f7a-4d5e-9c1a-2b3c4d5e6f70', approved: true },
  }),
  'GET /api/v1/approvals': () => ({ path: '/api/v1/approvals' }),
  'GET /api/v1/health': () => ({ path: '/api/v1/health' }),
  'POST /api/v1/task': () => ({ path: '/api/v1/task', body: { type: 'noop', args: {} } }),
  'GET /api/v1/task/:id': (i) => ({ path: `/api/v1/task/${i.live}` }),
  'DELETE /api/v1/task/:id': (i) => ({ path: `/api/v1/task/${i.done}` }),
  // a finished task's stream replays and ends
  'GET /api/v1/stream/sse': (i) => ({ path: `/api/v1/stream/sse?workflow_id=${i.done}` }),
  'GET /api/v1/stream/ws': (i) => ({ path: `/api/v1/stream/ws?workflow_id=${i.done}`, ws: true }),
  'GET /api/v1/sessions': () => ({ path: '/api/v1/sessions' }),
  'GET /api/v1/sessions/:id': (i) => ({ path: `/api/v1/sessions/${i.session}` }),
  'GET /api/v1/sessions/:id/history': (i) => ({ path: `/api/v1/sessions/${i.session}/history` }),
  'GET /api/v1/sessions/:id/events': (i) => ({ path: `/api/v1/sessions/${i.session}/events` }),
  'PATCH /api/v1/sessions/:id': (i) => ({ path: `/api/v1/sessions/${i.session}`, body: { title: 'renamed' } }),
  'DELETE /api/v1/sessions/:id': (i) => ({ path: `/api/v1/sessions/${i.spareSession}` }),
  'GET /v1/models': () => ({ path: '/v1/models' }),
  'GET /v1/models/:id': () => ({ path: '/v1/models/taskgate' }),
  'POST /v1/chat/completions': () => ({ path: '/v1/chat/completions', body: { model: 'taskgate', messages: [{ role: 'user', content: 'hi' }] } }),
};

interface Answer {
  status: number;
  text: string;
  contentType: string;
}

interface Variant {
  name: string;
  key: string | null;
  headers?: Record<string, string>;
  /** A raw body (string) instead of the fixture's; `undefined` keeps the fixture's. */
  raw?: string;
  /** A query parameter added to the fixture's path (raw, already encoded). */
  query?: string;
}

async function send(server: TestServer, method: string, req: { path: string; body?: unknown; ws?: boolean }, v: Variant): Promise<Answer> {
  const headers: Record<string, string> = { ...(v.headers ?? {}) };
  if (v.key) headers['x-api-key'] = v.key;
  if (req.ws) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}${req.path}`, { headers });
      ws.on('open', () => {
        ws.terminate();
        resolve({ status: 101, text: '', contentType: '' });
      });
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, contentType: String(res.headers['content-type'] ?? '') }));
        res.on('error', reject);
      });
    });
  }
  const body = v.raw !== undefined ? v.raw : req.body;
  const path = v.query ? `${req.path}${req.path.includes('?') ? '&' : '?'}${v.query}` : req.path;
  const res = await server.call(method, path, body, { key: v.key, headers });
  return { status: res.status, text: res.text, contentType: res.headers.get('content-type') ?? '' };
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<object, ValidateFunction>();

/** The answer's status is declared for the operation, and a JSON body matches its declared schema. */
function expectDeclared(doc: Doc, method: string, url: string, a: Answer, label: string): void {
  const op = operation(doc, method, url);
  expect(Object.keys(op.responses), `${label}: answered ${a.status} (${a.text.slice(0, 200)})`).toContain(String(a.status));
  const schema = op.responses[String(a.status)]?.content?.['application/json']?.schema;
  if (!schema || !a.contentType.includes('json') || !a.text) return;
  let v = validators.get(schema);
  if (!v) validators.set(schema, (v = ajv.compile(schema)));
  expect(v(JSON.parse(a.text)), `${label}: the ${a.status} body ${a.text.slice(0, 300)} does not match the declared schema: ${ajv.errorsText(v.errors)}`).toBe(true);
}

let doc: Doc;
let ids: Ids;
let routes: RouteAccess[];
/** Keys holding one scope each (in the default tenant). */
const keys: Record<'tasksRead' | 'sessionsRead', string> = { tasksRead: '', sessionsRead: '' };

beforeAll(async () => {
  const { server, tdb } = fx;
  doc = await fetchDoc(server);
  routes = routeTable(server.app);
  const submit = (body: Record<string, unknown>) => server.submit({ task_definition_id: 'noop', input: {}, ...body });
  const live = await submit({ delay_ms: 3_600_000, session_id: 'sess-openapi-1' });
  const done = await submit({ delay_ms: 3_600_000 });
  expect((await server.call('POST', `/api/v1/tasks/${done}/cancel`)).status).toBe(202);
  const control = await submit({ delay_ms: 3_600_000 });
  await submit({ delay_ms: 3_600_000, session_id: 'sess-openapi-2' });
  for (const id of ['openapi-def', 'openapi-def-2']) {
    expect((await server.call('PUT', `/api/v1/definitions/${id}`, { kind: 'approval', name: id })).status).toBe(201);
  }
  keys.tasksRead = (await createApiKey(tdb.db, { tenantId: 'default', userId: 'u', name: 'tasks:read', scopes: ['tasks:read'], expiresAt: null })).key;
  keys.sessionsRead = (await createApiKey(tdb.db, { tenantId: 'default', userId: 'u', name: 'sessions:read', scopes: ['sessions:read'], expiresAt: null })).key;
  const made = await server.call('POST', '/api/v1/auth/api-keys', { name: 'kept', scopes: ['tasks:read'] });
  const spare = await server.call('POST', '/api/v1/auth/api-keys', { name: 'spare', scopes: ['tasks:read'] });
  ids = { live, done, control, session: 'sess-openapi-1', spareSession: 'sess-openapi-2', keyId: made.body.id, spareKeyId: spare.body.id };
});

describe('the audit, item by item', () => {
  it('GET /api/v1/tasks/{id}/stream: 307 with a Location header, and its errors', async () => {
    const { server } = fx;
    const op = operation(doc, 'GET', '/api/v1/tasks/:id/stream');
    expect(Object.keys(op.responses)).not.toContain('200');
    expect(op.responses['307']?.headers).toHaveProperty('location');
    expect(op.responses['307']?.content).toBeUndefined();
    for (const s of ['400', '401', '403', '404', '429']) expect(Object.keys(op.responses), s).toContain(s);

    const res = await server.call('GET', `/api/v1/tasks/${ids.live}/stream?last_event_id=3`);
    expect(res.status).toBe(307);
    expect(res.text).toBe('');
    expect(res.headers.get('location')).toBe(`/api/v1/stream/sse?workflow_id=${ids.live}&last_event_id=3`);
    expect(declared(doc, 'GET', '/api/v1/tasks/:id/stream')).toContain('307');
    const missing = await server.call('GET', '/api/v1/tasks/task_missing/stream');
    expectDeclared(doc, 'GET', '/api/v1/tasks/:id/stream', { status: missing.status, text: missing.text, contentType: missing.headers.get('content-type') ?? '' }, 'unknown task');
    expect(missing.status).toBe(404);
  });

  it('compat: POST /api/v1/task is a 201, DELETE of a finished task a 400, in seed 004 shapes', async () => {
    const { server } = fx;
    expect(declared(doc, 'POST', '/api/v1/task')).toContain('201');
    expect(declared(doc, 'POST', '/api/v1/task')).not.toContain('200');
    const posted = await server.call('POST', '/api/v1/task', { type: 'noop', args: {} });
    expect(posted.status).toBe(201);
    expect(Object.keys(posted.body).sort()).toEqual(['estimated_completion', 'message', 'status', 'task_id', 'timestamp']);
    expectDeclared(doc, 'POST', '/api/v1/task', { status: posted.status, text: posted.text, contentType: posted.headers.get('content-type') ?? '' }, 'compat submit');

    const task = await server.call('GET', `/api/v1/task/${posted.body.task_id}`);
    expect(task.status).toBe(200);
    expect(Object.keys(task.body).sort()).toEqual(['created_at', 'error', 'progress', 'result', 'status', 'task_id', 'updated_at']);
    expectDeclared(doc, 'GET', '/api/v1/task/:id', { status: task.status, text: task.text, contentType: task.headers.get('content-type') ?? '' }, 'compat status');

    expect(declared(doc, 'DELETE', '/api/v1/task/:id')).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404']));
    const finished = await server.call('DELETE', `/api/v1/task/${ids.done}`);
    expect(finished.status).toBe(400);
    expect(finished.body).toEqual({ task_id: ids.done, status: 'error', message: expect.any(String), timestamp: expect.any(String) });
    // sent as built, key order included (the schema only documents it)
    expect(Object.keys(finished.body)).toEqual(['task_id', 'status', 'message', 'timestamp']);
    expectDeclared(doc, 'DELETE', '/api/v1/task/:id', { status: finished.status, text: finished.text, contentType: finished.headers.get('content-type') ?? '' }, 'compat cancel of a finished task');

    // the compat error schema is seed 004's, not the envelope
    const schema = JSON.stringify(operation(doc, 'DELETE', '/api/v1/task/:id').responses['400']?.content);
    expect(schema).toContain('timestamp');
    expect(schema).not.toContain('request_id');
  });

  it('cancel/pause/resume: the body is optional in the document and on the wire; a bad body is still a 400', async () => {
    const { server } = fx;
    for (const action of ['cancel', 'pause', 'resume']) {
      const op = operation(doc, 'POST', `/api/v1/tasks/:id/${action}`);
      expect(op.requestBody, action).toBeDefined();
      expect(op.requestBody?.required, action).toBe(false);
      expect(op, action).not.toHaveProperty('x-body-optional');
    }
    // other bodies stay required
    expect(operation(doc, 'POST', '/api/v1/tasks').requestBody?.required).toBe(true);

    const id = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    const bare = await fetch(`${server.url}/api/v1/tasks/${id}/pause`, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY } });
    expect(bare.status).toBe(202);
    expect(declared(doc, 'POST', '/api/v1/tasks/:id/pause')).toContain('202');
    const emptyJson = await server.call('POST', `/api/v1/tasks/${id}/resume`, '', { headers: { 'content-type': 'application/json' } });
    expect(emptyJson.status).toBe(202);
    for (const body of [{ reason: 5 }, { bogus: true }]) {
      const bad = await server.call('POST', `/api/v1/tasks/${id}/pause`, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    }
    expect((await server.call('GET', `/api/v1/tasks/${id}`)).body.status).toBe('QUEUED');
  });

  it('error statuses the hooks answer are declared: 413, 415 on a submit; 401; 403', async () => {
    const { server } = fx;
    const asAnswer = (r: Awaited<ReturnType<TestServer['call']>>): Answer => ({ status: r.status, text: r.text, contentType: r.headers.get('content-type') ?? '' });

    const big = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: { pad: 'x'.repeat(BODY_LIMIT) } });
    expect(big.status).toBe(413);
    expectDeclared(doc, 'POST', '/api/v1/tasks', asAnswer(big), 'oversized submit');
    const text = await server.call('POST', '/api/v1/tasks', 'hello', { headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expectDeclared(doc, 'POST', '/api/v1/tasks', asAnswer(text), 'text/plain submit');
    expect(declared(doc, 'POST', '/api/v1/tasks')).toContain('429');

    const anonymous = await server.call('GET', `/api/v1/tasks/${ids.live}/control-state`, undefined, { key: null });
    expect(anonymous.status).toBe(401);
    expectDeclared(doc, 'GET', '/api/v1/tasks/:id/control-state', asAnswer(anonymous), 'control-state without a key');

    const decision = FIXTURES['POST /api/v1/approvals/decision']!(ids);
    const noKey = await server.call('POST', decision.path, decision.body, { key: null });
    expect(noKey.status).toBe(401);
    expectDeclared(doc, 'POST', '/api/v1/approvals/decision', asAnswer(noKey), 'decision without a key');
    const noScope = await server.call('POST', decision.path, decision.body, { key: keys.tasksRead });
    expect(noScope.status).toBe(403);
    expectDeclared(doc, 'POST', '/api/v1/approvals/decision', asAnswer(noScope), 'decision without approvals:decide');

    const def = await server.call('GET', '/api/v1/definitions/openapi-def', undefined, { key: keys.tasksRead });
    expect(def.status).toBe(403);
    expectDeclared(doc, 'GET', '/api/v1/definitions/:id', asAnswer(def), 'definition without tasks:definitions:read');
  });

  it('headers the schemas cannot say: Idempotency-Key on every POST, rate-limit headers, Retry-After, the submit ids', async () => {
    const full = doc as Doc & { components: { headers: Record<string, unknown> }; paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
    for (const [url, path] of Object.entries(full.paths)) {
      if (!url.startsWith('/api/v1/') && !url.startsWith('/v1/')) continue;
      if (path.post) expect(path.post.parameters?.some((p) => p.name === 'Idempotency-Key' && p.in === 'header'), `POST ${url}`).toBe(true);
    }
    const submit = operation(doc, 'POST', '/api/v1/tasks');
    expect(Object.keys(submit.responses['200']!.headers!)).toEqual(
      expect.arrayContaining(['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-Workflow-ID', 'X-Session-ID', 'Idempotent-Replayed']),
    );
    expect(Object.keys(submit.responses['429']!.headers!)).toEqual(expect.arrayContaining(['Retry-After', 'X-RateLimit-Reset']));
    expect(full.components.headers).toHaveProperty('X-Workflow-ID');
    // what they describe is what the server sends
    const res = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { headers: { 'idempotency-key': 'openapi-headers' } });
    expect(res.headers.get('x-workflow-id')).toBe(res.body.task_id);
    const again = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { headers: { 'idempotency-key': 'openapi-headers' } });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // public routes are not limited and take no key
    expect(operation(doc, 'GET', '/health').responses['200']!.headers ?? {}).not.toHaveProperty('X-RateLimit-Limit');
    // nor do the streams (rateLimit: false): an SSE answer carries no X-RateLimit-* headers
    expect(operation(doc, 'GET', '/api/v1/stream/sse').responses['200']!.headers ?? {}).not.toHaveProperty('X-RateLimit-Limit');
    const sse = await fx.server.call('GET', `/api/v1/stream/sse?workflow_id=${res.body.task_id}`);
    expect(sse.headers.get('x-ratelimit-limit')).toBeNull();
    // the task's id in a header, where it is sent: declared on each of those operations
    expect(sse.headers.get('x-workflow-id')).toBe(res.body.task_id);
    expect((await fx.server.call('GET', `/api/v1/tasks/${res.body.task_id}`)).headers.get('x-workflow-id')).toBe(res.body.task_id);
    for (const [method, url] of [['GET', '/api/v1/stream/sse'], ['GET', '/api/v1/tasks/{id}'], ['POST', '/v1/chat/completions'], ['POST', '/api/v1/tasks/stream']] as const) {
      const ok = Object.entries(operation(doc, method, url).responses).find(([s]) => s.startsWith('2'))![1];
      expect(ok.headers ?? {}, `${method} ${url}`).toHaveProperty('X-Workflow-ID');
    }
    // seed 004's routes relay their canonical route's (compat.test.ts sees them sent)
    expect(operation(doc, 'POST', '/api/v1/task').responses['201']!.headers ?? {}).toHaveProperty('X-RateLimit-Limit');
  });

  it('declares the headers PRODUCT §3 names: Link on the stream submit, WWW-Authenticate on every 401 — as sent', async () => {
    const streamed = operation(doc, 'POST', '/api/v1/tasks/stream');
    expect(streamed.responses['201']!.headers ?? {}).toHaveProperty('Link');
    const res = await fx.server.call('POST', '/api/v1/tasks/stream', { task_definition_id: 'noop', input: {} });
    expect(res.status).toBe(201);
    expect(res.headers.get('link')).toBe(`<${res.body.stream_url}>; rel=stream`);

    for (const [url, path] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(path)) {
        if (op.responses?.['401']) expect(op.responses['401'].headers ?? {}, `${method} ${url}`).toHaveProperty('WWW-Authenticate');
      }
    }
    const anonymous = await fx.server.call('GET', '/api/v1/tasks', undefined, { key: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it('list parameters declare the defaults the routes apply (approvals limit 50, offset 0; definitions limit 20)', async () => {
    const full = doc as Doc & { paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema: { default?: unknown } }[] }>> };
    const defaults = (url: string) => Object.fromEntries((full.paths[url]!.get!.parameters ?? []).filter((p) => p.in === 'query').map((p) => [p.name, p.schema.default]));
    expect(defaults('/api/v1/approvals')).toMatchObject({ limit: 50, offset: 0 });
    expect(defaults('/api/v1/definitions')).toMatchObject({ limit: 20 });
    const approvals = await fx.server.call('GET', '/api/v1/approvals');
    expect(approvals.body).toMatchObject({ limit: 50, offset: 0 });
    const definitions = await fx.server.call('GET', '/api/v1/definitions');
    expect(definitions.body.pagination).toMatchObject({ page: 1, limit: 20 });
    expect((await fx.server.call('GET', '/api/v1/definitions?page=2&limit=1')).body.pagination).toMatchObject({ page: 2, limit: 1 });
  });

  it('says which operations need no credential (security: []), and takes the document-wide requirement everywhere else', () => {
    const full = doc as Doc & { security?: unknown[]; paths: Record<string, Record<string, { security?: unknown[] }>> };
    expect(full.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
    const open = documented().filter((o) => o.access.access === 'public').map((o) => `${o.method} ${o.url}`);
    expect(open).toEqual(expect.arrayContaining(['GET /health', 'GET /readiness', 'GET /openapi.json', 'GET /api/v1/health']));
    for (const { method, url, access } of documented()) {
      const op = full.paths[docPath(url)]![method.toLowerCase()]!;
      expect(op.security, `${method} ${url}`).toEqual(access.access === 'public' ? [] : undefined);
    }
  });

  it('/readiness: 503 with its report when a check fails', async () => {
    const { server, tdb } = fx;
    expect(declared(doc, 'GET', '/readiness')).toEqual(expect.arrayContaining(['200', '503']));
    // a migration this build does not know: not ready
    await tdb.db.query(`INSERT INTO taskgate_migrations (version, name) VALUES (999999, 'from the future')`);
    try {
      const res = await server.call('GET', '/readiness', undefined, { key: null });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'not_ready', checks: { database: 'ok', migrations: expect.stringContaining('999999') } });
      expectDeclared(doc, 'GET', '/readiness', { status: res.status, text: res.text, contentType: res.headers.get('content-type') ?? '' }, 'readiness not ready');
    } finally {
      await tdb.db.query('DELETE FROM taskgate_migrations WHERE version = 999999');
    }
    expect((await server.call('GET', '/readiness', undefined, { key: null })).status).toBe(200);
  });
});

/** The documented operations, with what each route requires. */
function documented(): { method: string; url: string; access: RouteAccess }[] {
  const out: { method: string; url: string; access: RouteAccess }[] = [];
  for (const r of routes) {
    if (r.method === 'HEAD' || r.method === 'OPTIONS') continue;
    if (!doc.paths[docPath(r.url)]?.[r.method.toLowerCase()]) continue;
    out.push({ method: r.method, url: r.url, access: r });
  }
  return out;
}

describe('every documented operation', () => {
  it('has a fixture here, and the document lists no operation the server does not route', () => {
    const ops = documented();
    expect(ops.length).toBeGreaterThan(40);
    expect(ops.map((o) => `${o.method} ${o.url}`).filter((n) => !FIXTURES[n])).toEqual([]);
    const inDoc = Object.entries(doc.paths).flatMap(([p, m]) => Object.keys(m).map((x) => `${x.toUpperCase()} ${p}`));
    expect(inDoc.length).toBe(ops.length);
  });

  it('declares what the hooks answer on routes of its kind (credential, scope, body, Idempotency-Key)', () => {
    for (const { method, url, access } of documented()) {
      const codes = declared(doc, method, url);
      const must = ['400', '500', '503'];
      if (access.access !== 'public') must.push('401', '429');
      if (access.access === 'scope') must.push('403');
      if (method !== 'GET') must.push('400', '413', '415');
      if (method === 'POST' && access.access !== 'public') must.push('409', '422');
      expect(codes, `${method} ${url}`).toEqual(expect.arrayContaining(must));
    }
  });

  it('answers only declared statuses, with declared bodies, to representative requests', async () => {
    const { server } = fx;
    let checked = 0;
    for (const { method, url, access } of documented()) {
      const req = FIXTURES[`${method} ${url}`]!(ids);
      const variants: Variant[] = [{ name: 'the ordinary request', key: ADMIN_KEY }];
      // every route refuses a query value PostgreSQL could not store, declared or not by the route
      if (!req.ws) variants.push({ name: 'a NUL in a query value', key: ADMIN_KEY, query: 'zz=%00' });
      if (access.access !== 'public') variants.push({ name: 'no credential', key: null });
      if (access.access === 'scope') variants.push({ name: 'a key lacking the scope', key: access.scope === 'tasks:read' ? keys.sessionsRead : keys.tasksRead });
      if (method !== 'GET') {
        variants.push(
          { name: 'an oversized body', key: ADMIN_KEY, raw: JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT) }), headers: { 'content-type': 'application/json' } },
          { name: 'text/plain', key: ADMIN_KEY, raw: 'hello', headers: { 'content-type': 'text/plain' } },
          { name: 'malformed JSON', key: ADMIN_KEY, raw: '{"a":', headers: { 'content-type': 'application/json' } },
        );
      }
      if (method === 'POST' && access.access !== 'public') {
        variants.push({ name: 'a malformed Idempotency-Key', key: ADMIN_KEY, headers: { 'idempotency-key': 'k'.repeat(300) } });
        // the second answered from the first when that one succeeded: stored bodies are declared too
        // (a replayed key creation's `key` is null: the secret is not stored)
        const keyed = { 'idempotency-key': `openapi-replay ${method} ${url}` };
        variants.push({ name: 'an Idempotency-Key', key: ADMIN_KEY, headers: keyed }, { name: 'the same Idempotency-Key again', key: ADMIN_KEY, headers: keyed });
      }
      for (const v of variants) {
        const a = await send(server, method, req, v);
        const label = `${method} ${url} with ${v.name}`;
        expect(a.status, `${label}: ${a.text.slice(0, 300)}`).not.toBe(500);
        expectDeclared(doc, method, url, a, label);
        if (v.name === 'no credential') expect(a.status, label).toBe(401);
        if (v.name === 'a key lacking the scope') expect(a.status, label).toBe(403);
        if (v.name === 'an oversized body') expect(a.status, label).toBe(413);
        if (v.name === 'text/plain') expect(a.status, label).toBe(415);
        if (v.name === 'malformed JSON' || v.name === 'a malformed Idempotency-Key' || v.name === 'a NUL in a query value') expect(a.status, label).toBe(400);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(150);
  });
});

describe('429s (a server with tight limits)', () => {
  let tdb: TestDb;
  let server: TestServer;
  beforeAll(async () => {
    tdb = await openTestDb();
    server = await startTestServer(tdb.db, {
      TASKGATE_RATE_LIMIT_PER_MIN: '1', TASKGATE_RATE_LIMIT_BURST: '1',
      TASKGATE_AUTH_FAILURES_PER_MIN: '1', TASKGATE_AUTH_FAILURE_BURST: '1',
    });
  });
  afterAll(async () => {
    await server?.close();
    await tdb?.close();
  });

  it('a submit over the rate limit: 429, declared', async () => {
    const body = { task_definition_id: 'noop', input: {} };
    const first = await server.call('POST', '/api/v1/tasks', body);
    expect(first.status).toBe(200);
    await waitForTask(server, first.body.task_id).catch(() => undefined);
    const second = await server.call('POST', '/api/v1/tasks', body);
    expect(second.status).toBe(429);
    expectDeclared(doc, 'POST', '/api/v1/tasks', { status: second.status, text: second.text, contentType: second.headers.get('content-type') ?? '' }, 'submit over the limit');
  });

  it('after failed authentications every route behind a credential answers 429, declared', async () => {
    const own = await fetchDoc(server);
    for (let i = 0; i < 5; i++) {
      if ((await server.call('GET', '/api/v1/auth/me', undefined, { key: 'sk_AAAAAAAAAAAA_' + 'x'.repeat(43) })).status === 429) break;
    }
    const placeholder: Ids = { live: 'task_x', done: 'task_x', control: 'task_x', session: 'sess_x', spareSession: 'sess_x', keyId: 'key_x', spareKeyId: 'key_x' };
    const ops = routeTable(server.app).filter((r) => r.access !== 'public' && r.method !== 'HEAD' && own.paths[docPath(r.url)]?.[r.method.toLowerCase()]);
    expect(ops.length).toBeGreaterThan(35);
    for (const r of ops) {
      const a = await send(server, r.method, FIXTURES[`${r.method} ${r.url}`]!(placeholder), { name: 'rate limited', key: ADMIN_KEY });
      expect(a.status, `${r.method} ${r.url}`).toBe(429);
      expectDeclared(own, r.method, r.url, a, `${r.method} ${r.url} after failed authentications`);
    }
  });
});
