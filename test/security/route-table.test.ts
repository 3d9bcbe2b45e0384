// Generated from the live route table (routeTable(app)): every route declares what it needs; no
// credential → 401 with WWW-Authenticate; each scope gates exactly its routes (403 naming the
// scope, for every other scope's key); and tenant A reaching for tenant B's objects gets 404 and
// leaks nothing. A route added without an entry in FIXTURES fails here, so none can be forgotten.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, newTenant, startTestServer, type TestServer } from '../helpers/server.js';
import { routeTable, type RouteAccess } from '../../src/api/auth.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { SCOPES, type Scope } from '../../src/auth/scopes.js';

/** Tenant B's objects, which tenant A must never reach. */
interface Victim {
  tenantId: string;
  key: string;
  keyId: string;
  taskId: string;
  sessionId: string;
}

interface Fixture {
  /** The request, aimed at B's object where the route names one. */
  request(b: Victim): { path: string; body?: unknown };
  /**
   * not_found: names one of B's objects, A must get 404. no_leak: a collection or a create in A's
   * own tenant; nothing of B's may appear. shared: the same catalogue for every tenant.
   * operator: tenant administration, cross-tenant by design and refused to tenant admins.
   */
  crossTenant: 'not_found' | 'no_leak' | 'shared' | 'operator';
  /** A WebSocket route: requests are upgrades. */
  ws?: boolean;
}

const noop = { task_definition_id: 'noop', input: {} };
const FIXTURES: Record<string, Fixture> = {
  'POST /api/v1/tasks': { request: () => ({ path: '/api/v1/tasks', body: noop }), crossTenant: 'no_leak' },
  'POST /api/v1/tasks/stream': { request: () => ({ path: '/api/v1/tasks/stream', body: noop }), crossTenant: 'no_leak' },
  'GET /api/v1/tasks': { request: () => ({ path: '/api/v1/tasks?limit=100' }), crossTenant: 'no_leak' },
  'GET /api/v1/tasks/:id': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}` }), crossTenant: 'not_found' },
  'GET /api/v1/tasks/:id/events': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/events` }), crossTenant: 'not_found' },
  'GET /api/v1/tasks/:id/stream': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/stream` }), crossTenant: 'not_found' },
  'GET /api/v1/tasks/:id/timeline': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/timeline` }), crossTenant: 'not_found' },
  'GET /api/v1/tasks/:id/control-state': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/control-state` }), crossTenant: 'not_found' },
  'POST /api/v1/tasks/:id/cancel': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/cancel`, body: { reason: 'x' } }), crossTenant: 'not_found' },
  'POST /api/v1/tasks/:id/pause': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/pause`, body: {} }), crossTenant: 'not_found' },
  'POST /api/v1/tasks/:id/resume': { request: (b) => ({ path: `/api/v1/tasks/${b.taskId}/resume`, body: {} }), crossTenant: 'not_found' },
  'GET /api/v1/definitions': { request: () => ({ path: '/api/v1/definitions' }), crossTenant: 'shared' },
  'GET /api/v1/definitions/:id': { request: () => ({ path: '/api/v1/definitions/noop' }), crossTenant: 'shared' },
  // a PUT creates in the caller's own tenant (ids are per tenant), never touching B's; the DELETE
  // aims at another of B's ids, which no PUT here creates elsewhere
  'PUT /api/v1/definitions/:id': { request: () => ({ path: '/api/v1/definitions/victim-def', body: { kind: 'approval', name: 'pwned' } }), crossTenant: 'no_leak' },
  'DELETE /api/v1/definitions/:id': { request: () => ({ path: '/api/v1/definitions/victim-def-2' }), crossTenant: 'not_found' },
  'GET /api/v1/auth/me': { request: () => ({ path: '/api/v1/auth/me' }), crossTenant: 'no_leak' },
  'POST /api/v1/auth/api-keys': { request: () => ({ path: '/api/v1/auth/api-keys', body: { name: 'gen', scopes: ['keys:manage'] } }), crossTenant: 'no_leak' },
  'GET /api/v1/auth/api-keys': { request: () => ({ path: '/api/v1/auth/api-keys?limit=100' }), crossTenant: 'no_leak' },
  'GET /api/v1/auth/api-keys/:id': { request: (b) => ({ path: `/api/v1/auth/api-keys/${b.keyId}` }), crossTenant: 'not_found' },
  'DELETE /api/v1/auth/api-keys/:id': { request: (b) => ({ path: `/api/v1/auth/api-keys/${b.keyId}` }), crossTenant: 'not_found' },
  // every tenant's aggregate figures: operators only
  'GET /metrics': { request: () => ({ path: '/metrics' }), crossTenant: 'operator' },
  'POST /api/v1/admin/tenants': { request: () => ({ path: '/api/v1/admin/tenants', body: { name: 'generated' } }), crossTenant: 'operator' },
  'GET /api/v1/admin/tenants': { request: () => ({ path: '/api/v1/admin/tenants' }), crossTenant: 'operator' },
  'GET /api/v1/admin/tenants/:id': { request: (b) => ({ path: `/api/v1/admin/tenants/${b.tenantId}` }), crossTenant: 'operator' },
  'PATCH /api/v1/admin/tenants/:id': { request: (b) => ({ path: `/api/v1/admin/tenants/${b.tenantId}`, body: {} }), crossTenant: 'operator' },
  'POST /api/v1/admin/tenants/:id/api-keys': {
    request: (b) => ({ path: `/api/v1/admin/tenants/${b.tenantId}/api-keys`, body: { name: 'gen', scopes: ['tasks:read'] } }), crossTenant: 'operator',
  },
  // the whole embedded database (409 on PostgreSQL): every tenant's data
  'GET /api/v1/admin/backup': { request: () => ({ path: '/api/v1/admin/backup' }), crossTenant: 'operator' },
  'POST /api/v1/approvals/decision': {
    request: (b) => ({ path: '/api/v1/approvals/decision', body: { workflow_id: b.taskId, approval_id: '0b5d1b7e-3f7a-4d5e-9c1a-2b3c4d5e6f70', approved: true } }),
    crossTenant: 'not_found',
  },
  'GET /api/v1/approvals': { request: () => ({ path: '/api/v1/approvals' }), crossTenant: 'no_leak' },
  'GET /api/v1/stream/sse': { request: (b) => ({ path: `/api/v1/stream/sse?workflow_id=${b.taskId}` }), crossTenant: 'not_found' },
  'GET /api/v1/stream/ws': { request: (b) => ({ path: `/api/v1/stream/ws?workflow_id=${b.taskId}` }), crossTenant: 'not_found', ws: true },
  'GET /api/v1/sessions': { request: () => ({ path: '/api/v1/sessions' }), crossTenant: 'no_leak' },
  'GET /api/v1/sessions/:id': { request: (b) => ({ path: `/api/v1/sessions/${b.sessionId}` }), crossTenant: 'not_found' },
  'GET /api/v1/sessions/:id/history': { request: (b) => ({ path: `/api/v1/sessions/${b.sessionId}/history` }), crossTenant: 'not_found' },
  'GET /api/v1/sessions/:id/events': { request: (b) => ({ path: `/api/v1/sessions/${b.sessionId}/events` }), crossTenant: 'not_found' },
  'PATCH /api/v1/sessions/:id': { request: (b) => ({ path: `/api/v1/sessions/${b.sessionId}`, body: { title: 'pwned' } }), crossTenant: 'not_found' },
  'DELETE /api/v1/sessions/:id': { request: (b) => ({ path: `/api/v1/sessions/${b.sessionId}` }), crossTenant: 'not_found' },
  'POST /api/v1/task': { request: () => ({ path: '/api/v1/task', body: { type: 'noop', args: {} } }), crossTenant: 'no_leak' },
  'GET /api/v1/task/:id': { request: (b) => ({ path: `/api/v1/task/${b.taskId}` }), crossTenant: 'not_found' },
  'DELETE /api/v1/task/:id': { request: (b) => ({ path: `/api/v1/task/${b.taskId}` }), crossTenant: 'not_found' },
  'GET /v1/models': { request: () => ({ path: '/v1/models' }), crossTenant: 'shared' },
  'GET /v1/models/:id': { request: () => ({ path: '/v1/models/taskgate' }), crossTenant: 'shared' },
  'POST /v1/chat/completions': { request: () => ({ path: '/v1/chat/completions', body: { model: 'taskgate', messages: [{ role: 'user', content: 'hi' }] } }), crossTenant: 'no_leak' },
};

let tdb: TestDb;
let server: TestServer;
let routes: RouteAccess[];
let victim: Victim;
let attacker: { tenantId: string; key: string };
/** A key per scope holding exactly that scope (admin's in the system tenant, so operator routes pass). */
const exactKeys = new Map<Scope, string>();
/** A key per scope holding every other scope except admin. */
const allButKeys = new Map<Scope, string>();

const routeName = (r: Pick<RouteAccess, 'method' | 'url'>) => `${r.method} ${r.url}`;
const fixtureOf = (r: RouteAccess) => FIXTURES[routeName({ method: r.method === 'HEAD' ? 'GET' : r.method, url: r.url })];

interface Answer {
  status: number;
  text: string;
  headers: Headers | Record<string, string | string[] | undefined>;
}

async function send(r: RouteAccess, key: string | null, extraHeaders: Record<string, string> = {}): Promise<Answer> {
  const fx = fixtureOf(r)!;
  const { path, body } = fx.request(victim);
  const headers: Record<string, string> = { ...extraHeaders };
  if (key) headers['x-api-key'] = key;
  if (fx.ws && r.method === 'GET') {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}${path}`, { headers });
      ws.on('open', () => {
        ws.terminate();
        resolve({ status: 101, text: '', headers: {} });
      });
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
        res.on('error', reject);
      });
    });
  }
  const res = await server.call(r.method, path, r.method === 'GET' || r.method === 'HEAD' || r.method === 'DELETE' ? undefined : (body ?? {}), { key, headers });
  return { status: res.status, text: res.text, headers: res.headers };
}

const header = (a: Answer, name: string) => (a.headers instanceof Headers ? a.headers.get(name) : (a.headers[name] as string | undefined));

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db);
  routes = routeTable(server.app).filter((r) => r.access !== 'public' && r.method !== 'OPTIONS');

  const b = await newTenant(tdb.db, ['admin']);
  const sessionId = 'sess-victim-1';
  // delayed far ahead: the task stays QUEUED, so a cancel or pause that got through would show
  const task = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', session_id: sessionId, delay_ms: 3_600_000 }, { key: b.key });
  expect(task.status, task.text).toBe(200);
  const me = await server.call('GET', '/api/v1/auth/me', undefined, { key: b.key });
  victim = { tenantId: b.tenantId, key: b.key, keyId: me.body.subject, taskId: task.body.task_id, sessionId };
  for (const id of ['victim-def', 'victim-def-2']) {
    expect((await server.call('PUT', `/api/v1/definitions/${id}`, { kind: 'approval', name: 'victim' }, { key: b.key })).status).toBe(201);
  }
  attacker = await newTenant(tdb.db, ['admin']);

  for (const scope of SCOPES) {
    const tenantId = scope === 'admin' ? 'default' : attacker.tenantId;
    exactKeys.set(scope, (await createApiKey(tdb.db, { tenantId, userId: 'u', name: scope, scopes: [scope], expiresAt: null })).key);
    const others = SCOPES.filter((s) => s !== scope && s !== 'admin');
    allButKeys.set(scope, (await createApiKey(tdb.db, { tenantId: attacker.tenantId, userId: 'u', name: `not ${scope}`, scopes: others, expiresAt: null })).key);
  }
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

describe('the route table', () => {
  it('every route declares its access (scope, authenticated or public)', () => {
    const undeclared = routeTable(server.app).filter((r) => !r.declared && r.url !== '*').map(routeName);
    expect(undeclared, 'routes without config.scope / authenticated / public are admin-only by default').toEqual([]);
  });

  it('every non-public route has a fixture here (add one to FIXTURES for a new route)', () => {
    const missing = routes.filter((r) => !fixtureOf(r)).map(routeName);
    expect(missing).toEqual([]);
    expect(routes.length).toBeGreaterThan(20);
  });

  it("docs/security.md's scope table lists every route with its scope", () => {
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Scopes per route'), doc.indexOf('\n## ', doc.indexOf('## Scopes per route') + 1));
    const documented = new Map<string, string>();
    for (const m of section.matchAll(/^\| `([A-Z]+ \S+)` \| (?:`([a-z:]+)`|(any credential))/gm)) documented.set(m[1]!, m[2] ?? 'authenticated');
    const actual = new Map(routes.filter((r) => r.method !== 'HEAD').map((r) => [routeName(r), r.access === 'authenticated' ? 'authenticated' : r.scope!]));
    expect(Object.fromEntries(documented), 'update the table in docs/security.md').toEqual(Object.fromEntries(actual));
  });

  it('only health, readiness, metrics, the API docs and the static dashboard are public', () => {
    const publicRoutes = routeTable(server.app).filter((r) => r.access === 'public');
    for (const { url } of publicRoutes) expect(url, url).toMatch(/^(\/health|\/api\/v1\/health|\/readiness|\/metrics|\/openapi\.json|\/docs(\/.*)?|\/|\/dashboard|\/dashboard\/:file|\*)$/);
    // the dashboard's routes only read (GET/HEAD): its files hold no data, the API behind them checks every call
    const dashboard = publicRoutes.filter((r) => r.url === '/' || r.url.startsWith('/dashboard'));
    expect(dashboard.map((r) => `${r.method} ${r.url}`).sort()).toEqual(
      ['GET /', 'GET /dashboard', 'GET /dashboard/:file', 'HEAD /', 'HEAD /dashboard', 'HEAD /dashboard/:file'],
    );
  });
});

describe('authentication on every route', () => {
  it('no credential → 401 with WWW-Authenticate', async () => {
    for (const r of routes) {
      const res = await send(r, null);
      expect(res.status, routeName(r)).toBe(401);
      expect(header(res, 'www-authenticate'), routeName(r)).toMatch(/^Bearer realm="taskgate"/);
    }
  });

  it('an unknown, malformed or revoked credential → 401', async () => {
    const revoked = await createApiKey(tdb.db, { tenantId: attacker.tenantId, userId: 'u', name: 'revoked', scopes: ['admin'], expiresAt: null });
    await tdb.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [revoked.row.id]);
    for (const r of routes) {
      for (const key of ['sk_AAAAAAAAAAAA_' + 'x'.repeat(43), 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', revoked.key]) {
        const res = await send(r, key);
        expect(res.status, `${routeName(r)} with ${key.slice(0, 12)}…`).toBe(401);
      }
    }
  });
});

describe('scopes gate exactly their routes', () => {
  it('a key lacking the route scope → 403 naming it', async () => {
    for (const r of routes.filter((x) => x.access === 'scope')) {
      const res = await send(r, allButKeys.get(r.scope!)!);
      expect(res.status, routeName(r)).toBe(403);
      if (r.method !== 'HEAD') expect(res.text, routeName(r)).toContain(r.scope!);
    }
  });

  it("every other scope's key is refused; the route's own scope passes", async () => {
    let checked = 0;
    for (const r of routes) {
      for (const scope of SCOPES) {
        const res = await send(r, exactKeys.get(scope)!);
        const allowed = r.access === 'authenticated' || scope === r.scope || scope === 'admin';
        const label = `${routeName(r)} with only ${scope}`;
        if (allowed) expect([401, 403], label).not.toContain(res.status);
        else expect(res.status, label).toBe(403);
        checked++;
      }
    }
    expect(checked).toBe(routes.length * SCOPES.length);
  });
});

describe('tenant isolation on every route', () => {
  it("tenant A (admin of its own tenant) gets 404 for B's objects and never sees them", async () => {
    const secrets = [victim.taskId, victim.keyId, victim.tenantId, victim.key];
    for (const r of routes) {
      const fx = fixtureOf(r)!;
      const res = await send(r, attacker.key);
      const label = routeName(r);
      if (fx.ws && r.method === 'HEAD') {
        // HEAD cannot upgrade: refused before the task is looked up
        expect([400, 404], label).toContain(res.status);
      } else if (fx.crossTenant === 'not_found') {
        expect(res.status, label).toBe(404);
      } else if (fx.crossTenant === 'operator') {
        expect(res.status, label).toBe(403);
      } else {
        expect(res.status, label).toBeLessThan(500);
        for (const s of secrets) expect(res.text, `${label} leaks ${s}`).not.toContain(s);
      }
    }
  });

  it("B's objects are untouched after all of the above", async () => {
    const task = await server.call('GET', `/api/v1/tasks/${victim.taskId}`, undefined, { key: victim.key });
    expect(task.body).toMatchObject({ status: 'QUEUED' });
    expect(task.body.cancel_reason ?? null).toBeNull();
    const me = await server.call('GET', '/api/v1/auth/me', undefined, { key: victim.key });
    expect(me.status).toBe(200);
    const session = await server.call('GET', `/api/v1/sessions/${victim.sessionId}`, undefined, { key: victim.key });
    expect(session.status).toBe(200);
    expect(session.body.title ?? null).not.toBe('pwned');
    for (const id of ['victim-def', 'victim-def-2']) {
      expect((await server.call('GET', `/api/v1/definitions/${id}`, undefined, { key: victim.key })).body.name).toBe('victim');
    }
    const tenant = await server.call('GET', `/api/v1/admin/tenants/${victim.tenantId}`, undefined, { key: ADMIN_KEY });
    expect(tenant.body.rate_limit).toBeNull();
  });
});
