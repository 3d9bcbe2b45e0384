// Key management and tenant administration over HTTP: keys shown once and stored as hashes, lists
// never carry them, scopes ⊆ the creator's, revocation effective on the next request (other nodes: by NOTIFY, at most the cache bound),
// expiry, operators only for tenant routes; and the same through the SDK and the CLI. keys:manage
// is bounded by the caller: no key outliving an expiring creator (API key or JWT), no revoking a
// key holding scopes the caller lacks (an admin key, the bootstrap key).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, newTenant, serverWithLogs, startTestServer, type TestServer } from '../helpers/server.js';
import { createApiKey, hashKey } from '../../src/auth/api-keys.js';
import { TaskgateClient, TaskgateError } from '../../src/sdk/index.js';
import { runCli } from '../helpers/cli.js';
import { DEFAULT_AUTH_CACHE_MS } from '../../src/config/security.js';

let tdb: TestDb;
let server: TestServer;
let node2: TestServer;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db);
  // a second API node on the same database: revocation must hold there at once too
  node2 = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
});
afterAll(async () => {
  await node2?.close();
  await server?.close();
  await tdb?.close();
});

const createKey = (body: unknown, key: string = ADMIN_KEY) => server.call('POST', '/api/v1/auth/api-keys', body, { key });

describe('auth/me and credentials', () => {
  it('describes the calling key', async () => {
    const res = await server.call('GET', '/api/v1/auth/me');
    expect(res.status).toBe(200);
    // the shared test server runs without rate limits (rate-limit.test.ts has them on)
    expect(res.body).toMatchObject({ tenant_id: 'default', principal_type: 'api_key', scopes: ['admin'], rate_limit: null });
    expect(res.body.subject).toMatch(/^key_/);
  });

  it('accepts the key as X-API-Key or Authorization: Bearer', async () => {
    const bearer = await server.call('GET', '/api/v1/auth/me', undefined, { key: null, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(bearer.status).toBe(200);
  });

  it.each([
    ['no credential', {}],
    ['an unknown key', { 'x-api-key': 'sk_AAAAAAAAAAAA_' + 'B'.repeat(43) }],
    ['garbage', { 'x-api-key': 'not a key' }],
    ['a bearer without token', { authorization: 'Bearer ' }],
    ['basic auth', { authorization: 'Basic YWRtaW46YWRtaW4=' }],
    ['a key one character off', { 'x-api-key': ADMIN_KEY.slice(0, -1) + (ADMIN_KEY.endsWith('f') ? 'e' : 'f') }],
  ])('answers 401 with WWW-Authenticate for %s', async (_name, headers) => {
    const res = await server.call('GET', '/api/v1/auth/me', undefined, { key: null, headers });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="taskgate"/);
  });

  it('refuses an expired key', async () => {
    const { key } = await createApiKey(tdb.db, { tenantId: 'default', userId: 'u', name: 'old', scopes: ['admin'], expiresAt: new Date(Date.now() - 1000) });
    const res = await server.call('GET', '/api/v1/auth/me', undefined, { key });
    expect(res.status).toBe(401);
  });
});

describe('API keys', () => {
  it('creates a key shown once, stored only as a hash, listed without the secret', async () => {
    const res = await createKey({ name: 'reader', scopes: ['tasks:read', 'tasks:list'] });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { key, id, prefix } = res.body;
    expect(key).toMatch(/^sk_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(key).toContain(prefix);
    expect(res.body).toMatchObject({ name: 'reader', scopes: ['tasks:read', 'tasks:list'], status: 'active', tenant_id: 'default', expires_at: null });

    const stored = await tdb.db.query<Record<string, unknown>>('SELECT * FROM api_keys WHERE id = $1', [id]);
    expect(stored.rows[0]!.key_hash).toBe(hashKey(key));
    expect(JSON.stringify(stored.rows[0])).not.toContain(key);

    const list = await server.call('GET', '/api/v1/auth/api-keys');
    expect(list.status).toBe(200);
    expect(list.body.api_keys.map((k: { id: string }) => k.id)).toContain(id);
    expect(list.text).not.toContain(key);
    expect(list.body.api_keys.every((k: Record<string, unknown>) => !('key' in k) && !('key_hash' in k))).toBe(true);
    const one = await server.call('GET', `/api/v1/auth/api-keys/${id}`);
    expect(one.status).toBe(200);
    expect(one.text).not.toContain(key);

    const me = await server.call('GET', '/api/v1/auth/me', undefined, { key });
    expect(me.body).toMatchObject({ subject: id, scopes: ['tasks:read', 'tasks:list'] });
  });

  it('records which credential created a key (created_by), and logs key and tenant changes with who made them', async () => {
    const { server: logged, entries } = await serverWithLogs(tdb.db, {});
    try {
      const admin = (await logged.call('GET', '/api/v1/auth/me')).body.subject as string;
      const manager = await logged.call('POST', '/api/v1/auth/api-keys', { name: 'manager', scopes: ['keys:manage', 'tasks:read'] });
      expect(manager.body.created_by).toBe(admin);
      const child = await logged.call('POST', '/api/v1/auth/api-keys', { name: 'child', scopes: ['tasks:read'] }, { key: manager.body.key });
      expect(child.status, child.text).toBe(201);
      expect(child.body.created_by).toBe(manager.body.id);
      const listed = (await logged.call('GET', '/api/v1/auth/api-keys?limit=100')).body.api_keys as { id: string; created_by: string | null }[];
      // an operator revoking the manager finds what it minted
      expect(listed.filter((k) => k.created_by === manager.body.id).map((k) => k.id)).toEqual([child.body.id]);
      expect((await logged.call('DELETE', `/api/v1/auth/api-keys/${child.body.id}`, undefined, { key: manager.body.key })).status).toBe(204);
      const tenant = await logged.call('POST', '/api/v1/admin/tenants', { name: 'audited' });
      expect(tenant.status).toBe(201);
      const audit = entries().filter((e) => e.audit === true).map((e) => [e.msg, e.by, e.key_id ?? e.target_tenant_id]);
      expect(audit).toEqual([
        ['api key created', admin, manager.body.id],
        ['api key created', manager.body.id, child.body.id],
        ['api key revoked', manager.body.id, child.body.id],
        ['tenant created', admin, tenant.body.tenant_id],
      ]);
      expect(JSON.stringify(entries())).not.toContain(child.body.key);
    } finally {
      await logged.close();
    }
  });

  it('a new key holds only what it was given: other routes answer 403 naming the scope', async () => {
    const { body } = await createKey({ name: 'reader2', scopes: ['tasks:read'] });
    const submit = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop' }, { key: body.key });
    expect(submit.status).toBe(403);
    expect(submit.body.error).toMatchObject({ code: 'FORBIDDEN', details: { required_scope: 'tasks:execute' } });
    expect(submit.body.error.message).toContain('tasks:execute');
  });

  it('refuses to grant scopes the caller does not hold', async () => {
    const { body: manager } = await createKey({ name: 'manager', scopes: ['keys:manage', 'tasks:read'] });
    const ok = await createKey({ name: 'sub', scopes: ['tasks:read'] }, manager.key);
    expect(ok.status).toBe(201);
    for (const scopes of [['tasks:execute'], ['admin'], ['tasks:read', 'tasks:cancel']]) {
      const res = await createKey({ name: 'escalate', scopes }, manager.key);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
  });

  it.each([
    [{ name: 'x', scopes: ['nope'] }],
    [{ name: 'x', scopes: [] }],
    [{ name: '', scopes: ['tasks:read'] }],
    [{ name: '   ', scopes: ['tasks:read'] }],
    [{ name: 'x', scopes: ['tasks:read'], extra: 1 }],
    [{ name: 'x', scopes: ['tasks:read'], expires_at: '2001-01-01T00:00:00Z' }],
    [{ name: 'x', scopes: ['tasks:read'], expires_at: 'tomorrow' }],
    [{ name: 'x', scopes: 'tasks:read' }],
  ])('validates the body %j', async (body) => {
    const res = await createKey(body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
  });

  it('takes an expiry and reports it', async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const res = await createKey({ name: 'temp', scopes: ['tasks:read'], expires_at: at });
    expect(res.status).toBe(201);
    expect(res.body.expires_at).toBe(at);
  });

  it('revocation holds on the next request on the revoking node, and on every other node within the cache bound', async () => {
    const { body } = await createKey({ name: 'doomed', scopes: ['tasks:read'] });
    // both nodes accept it first, and now hold it in their caches
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: body.key })).status).toBe(200);
    expect((await node2.call('GET', '/api/v1/auth/me', undefined, { key: body.key })).status).toBe(200);
    const del = await server.call('DELETE', `/api/v1/auth/api-keys/${body.id}`);
    expect(del.status).toBe(204);
    const res = await server.call('GET', '/api/v1/auth/me', undefined, { key: body.key });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBeTruthy();
    // node2 hears of it by NOTIFY on PostgreSQL (milliseconds); nodes sharing one PGlite in this
    // test have no NOTIFY between them, so there it is the cache's own bound (2 s by default)
    const deadline = Date.now() + DEFAULT_AUTH_CACHE_MS + 2_000;
    let status = 200;
    while (status !== 401 && Date.now() < deadline) {
      status = (await node2.call('GET', '/api/v1/auth/me', undefined, { key: body.key })).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);
    const listed = await server.call('GET', `/api/v1/auth/api-keys/${body.id}`);
    expect(listed.body.status).toBe('revoked');
    // revoking again is fine; an unknown id is not
    expect((await server.call('DELETE', `/api/v1/auth/api-keys/${body.id}`)).status).toBe(204);
    expect((await server.call('DELETE', '/api/v1/auth/api-keys/key_unknown')).status).toBe(404);
  });

  it("cannot see, read or revoke another tenant's keys", async () => {
    const other = await newTenant(tdb.db, ['admin']);
    const { body: mine } = await createKey({ name: 'mine', scopes: ['tasks:read'] });
    const list = await server.call('GET', '/api/v1/auth/api-keys', undefined, { key: other.key });
    expect(list.status).toBe(200);
    expect(list.body.api_keys.every((k: { tenant_id: string }) => k.tenant_id === other.tenantId)).toBe(true);
    expect((await server.call('GET', `/api/v1/auth/api-keys/${mine.id}`, undefined, { key: other.key })).status).toBe(404);
    expect((await server.call('DELETE', `/api/v1/auth/api-keys/${mine.id}`, undefined, { key: other.key })).status).toBe(404);
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: mine.key })).status).toBe(200);
  });

  it('caps page size', async () => {
    expect((await server.call('GET', '/api/v1/auth/api-keys?limit=101')).status).toBe(400);
    const page = await server.call('GET', '/api/v1/auth/api-keys?limit=1&offset=1');
    expect(page.body).toMatchObject({ limit: 1, offset: 1 });
    expect(page.body.api_keys).toHaveLength(1);
    expect(page.body.total_count).toBeGreaterThan(1);
  });
});

describe('keys:manage is bounded by the caller', () => {
  const inAnHour = () => new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);

  it('an expiring creator cannot create a key without expiry or expiring after it (400 naming the limit); up to its own expiry is fine', async () => {
    const creatorExpiry = inAnHour();
    const { body: manager } = await createKey({ name: 'short manager', scopes: ['keys:manage', 'tasks:read'], expires_at: creatorExpiry.toISOString() });
    expect(manager.expires_at).toBe(creatorExpiry.toISOString());

    const forever = await createKey({ name: 'forever', scopes: ['tasks:read'] }, manager.key);
    expect(forever.status, forever.text).toBe(400);
    expect(forever.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'expires_at', max_expires_at: creatorExpiry.toISOString() } });
    expect(forever.body.error.message).toContain(creatorExpiry.toISOString());

    const later = await createKey({ name: 'later', scopes: ['tasks:read'], expires_at: new Date(creatorExpiry.getTime() + 1000).toISOString() }, manager.key);
    expect(later.status, later.text).toBe(400);
    expect(later.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'expires_at', max_expires_at: creatorExpiry.toISOString() } });

    const same = await createKey({ name: 'same', scopes: ['tasks:read'], expires_at: creatorExpiry.toISOString() }, manager.key);
    expect(same.status, same.text).toBe(201);
    expect(same.body.expires_at).toBe(creatorExpiry.toISOString());
    const sooner = new Date(creatorExpiry.getTime() - 60_000).toISOString();
    const earlier = await createKey({ name: 'earlier', scopes: ['tasks:read'], expires_at: sooner }, manager.key);
    expect(earlier.status, earlier.text).toBe(201);
    expect(earlier.body.expires_at).toBe(sooner);
  });

  it('a creator without expiry still creates keys without expiry', async () => {
    const { body: manager } = await createKey({ name: 'lasting manager', scopes: ['keys:manage', 'tasks:read'] });
    const res = await createKey({ name: 'lasting child', scopes: ['tasks:read'] }, manager.key);
    expect(res.status, res.text).toBe(201);
    expect(res.body.expires_at).toBeNull();
  });

  it("an expiring operator's tenant keys are bounded the same way", async () => {
    const creatorExpiry = inAnHour();
    const { key } = await createApiKey(tdb.db, { tenantId: 'default', userId: 'op', name: 'short operator', scopes: ['admin'], expiresAt: creatorExpiry });
    const other = await newTenant(tdb.db, ['admin']);
    const res = await server.call('POST', `/api/v1/admin/tenants/${other.tenantId}/api-keys`, { name: 'x', scopes: ['tasks:read'] }, { key });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.details).toMatchObject({ path: 'expires_at', max_expires_at: creatorExpiry.toISOString() });
  });

  it("a JWT creator's keys cannot outlive the token's exp", async () => {
    const secret = 'keys-test-secret-that-is-at-least-32-bytes';
    const jwtServer = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_JWT_SECRET: secret, TASKGATE_JWT_ISSUER: 'https://issuer.test', TASKGATE_JWT_AUDIENCE: 'taskgate' });
    try {
      const exp = Math.floor(Date.now() / 1000) + 600;
      const token = await new SignJWT({ sub: 'jwt-manager', tenant_id: 'default', scopes: 'keys:manage tasks:read', iss: 'https://issuer.test', aud: 'taskgate', exp })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(createSecretKey(Buffer.from(secret)));
      const post = (body: unknown) => jwtServer.call('POST', '/api/v1/auth/api-keys', body, { key: null, headers: { authorization: `Bearer ${token}` } });
      const expIso = new Date(exp * 1000).toISOString();
      const forever = await post({ name: 'jwt child', scopes: ['tasks:read'] });
      expect(forever.status, forever.text).toBe(400);
      expect(forever.body.error.details).toMatchObject({ path: 'expires_at', max_expires_at: expIso });
      const later = await post({ name: 'jwt child', scopes: ['tasks:read'], expires_at: new Date(exp * 1000 + 60_000).toISOString() });
      expect(later.status, later.text).toBe(400);
      const ok = await post({ name: 'jwt child', scopes: ['tasks:read'], expires_at: expIso });
      expect(ok.status, ok.text).toBe(201);
      expect(ok.body.expires_at).toBe(expIso);
    } finally {
      await jwtServer.close();
    }
  });

  it("a manager cannot revoke a key holding scopes it lacks (an admin key, the bootstrap key): 403 naming them, and the key keeps working", async () => {
    const { body: manager } = await createKey({ name: 'revoking manager', scopes: ['keys:manage', 'tasks:read'] });
    const { body: admin } = await createKey({ name: 'another admin', scopes: ['admin'] });
    const { body: wider } = await createKey({ name: 'wider', scopes: ['tasks:read', 'tasks:execute'] });
    const { body: narrow } = await createKey({ name: 'narrow', scopes: ['tasks:read'] });
    const bootstrapId = (await server.call('GET', '/api/v1/auth/me')).body.subject as string;

    for (const [target, missing] of [[admin.id, ['admin']], [bootstrapId, ['admin']], [wider.id, ['tasks:execute']]] as const) {
      const res = await server.call('DELETE', `/api/v1/auth/api-keys/${target}`, undefined, { key: manager.key });
      expect(res.status, `${target}: ${res.text}`).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: { required_scope: missing[0], missing_scopes: missing } });
      for (const m of missing) expect(res.body.error.message).toContain(m);
      expect((await server.call('GET', `/api/v1/auth/api-keys/${target}`)).body.status).toBe('active');
    }
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: admin.key })).status).toBe(200);
    expect((await server.call('GET', '/api/v1/auth/me')).status).toBe(200);

    // a key within the manager's scopes, and the manager itself, it may revoke
    expect((await server.call('DELETE', `/api/v1/auth/api-keys/${narrow.id}`, undefined, { key: manager.key })).status).toBe(204);
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: narrow.key })).status).toBe(401);
    // admin covers every scope
    expect((await server.call('DELETE', `/api/v1/auth/api-keys/${wider.id}`)).status).toBe(204);
    expect((await server.call('DELETE', `/api/v1/auth/api-keys/${admin.id}`)).status).toBe(204);
    expect((await server.call('DELETE', `/api/v1/auth/api-keys/${manager.id}`, undefined, { key: manager.key })).status).toBe(204);
  });
});

describe('tenant administration', () => {
  it('creates tenants with a rate limit, lists them, and mints their keys', async () => {
    const created = await server.call('POST', '/api/v1/admin/tenants', { name: 'Acme', rate_limit: { per_minute: 120, burst: 20 } });
    expect(created.status).toBe(201);
    const tenantId = created.body.tenant_id;
    expect(tenantId).toMatch(/^tnt_/);
    expect(created.body.rate_limit).toEqual({ per_minute: 120, burst: 20 });

    const list = await server.call('GET', '/api/v1/admin/tenants?limit=100');
    expect(list.body.tenants.map((t: { tenant_id: string }) => t.tenant_id)).toContain(tenantId);

    const key = await server.call('POST', `/api/v1/admin/tenants/${tenantId}/api-keys`, { name: 'acme app', scopes: ['tasks:execute', 'tasks:read'] });
    expect(key.status).toBe(201);
    expect(key.body).toMatchObject({ tenant_id: tenantId, scopes: ['tasks:execute', 'tasks:read'] });
    const me = await server.call('GET', '/api/v1/auth/me', undefined, { key: key.body.key });
    expect(me.body).toMatchObject({ tenant_id: tenantId, scopes: ['tasks:execute', 'tasks:read'] });

    const patched = await server.call('PATCH', `/api/v1/admin/tenants/${tenantId}`, { name: 'Acme Inc', rate_limit: null });
    expect(patched.body).toMatchObject({ name: 'Acme Inc', rate_limit: null });
    expect((await server.call('GET', `/api/v1/admin/tenants/${tenantId}`)).body).toMatchObject({ name: 'Acme Inc', rate_limit: null });
  });

  it('takes a chosen tenant id once', async () => {
    const first = await server.call('POST', '/api/v1/admin/tenants', { name: 'Chosen', tenant_id: 'chosen-tenant' });
    expect(first.status).toBe(201);
    const again = await server.call('POST', '/api/v1/admin/tenants', { name: 'Chosen', tenant_id: 'chosen-tenant' });
    expect(again.status).toBe(409);
    expect((await server.call('POST', '/api/v1/admin/tenants/tnt_nope/api-keys', { name: 'k', scopes: ['tasks:read'] })).status).toBe(404);
    expect((await server.call('POST', '/api/v1/admin/tenants', { name: 'x', rate_limit: { per_minute: 0, burst: 1 } })).status).toBe(400);
  });

  it("a tenant's own admin cannot administer tenants", async () => {
    const other = await newTenant(tdb.db, ['admin']);
    for (const [method, path, body] of [
      ['POST', '/api/v1/admin/tenants', { name: 'evil' }],
      ['GET', '/api/v1/admin/tenants', undefined],
      ['POST', '/api/v1/admin/tenants/default/api-keys', { name: 'evil', scopes: ['admin'] }],
      ['PATCH', `/api/v1/admin/tenants/${other.tenantId}`, { rate_limit: { per_minute: 1_000_000, burst: 1_000_000 } }],
    ] as const) {
      const res = await server.call(method, path, body, { key: other.key });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });
});

describe('SDK and CLI', () => {
  it('manages keys and tenants through the SDK', async () => {
    const sdk = new TaskgateClient({ baseUrl: server.url, apiKey: ADMIN_KEY });
    expect((await sdk.me()).tenant_id).toBe('default');
    const t = await sdk.createTenant({ name: 'via sdk' });
    const k = await sdk.createTenantApiKey(t.tenant_id, { name: 'sdk', scopes: ['keys:manage', 'tasks:read'] });
    const tenantSdk = new TaskgateClient({ baseUrl: server.url, apiKey: k.key! });
    const k2 = await tenantSdk.createApiKey({ name: 'child', scopes: ['tasks:read'] });
    expect((await tenantSdk.listApiKeys()).api_keys.map((x) => x.id).sort()).toEqual([k.id, k2.id].sort());
    await tenantSdk.revokeApiKey(k2.id);
    const err = await new TaskgateClient({ baseUrl: server.url, apiKey: k2.key! }).me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskgateError);
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    const denied = await tenantSdk.createApiKey({ name: 'x', scopes: ['admin'] }).catch((e: unknown) => e);
    expect(denied).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    const down = await new TaskgateClient({ baseUrl: 'http://127.0.0.1:1' }).me().catch((e: unknown) => e);
    expect(down).toMatchObject({ status: 0, code: 'NETWORK_ERROR' });
  });

  const cli = runCli;

  it('taskgate tenants create|list and keys create|list|revoke', async () => {
    // the key comes from <data-dir>/admin.key when neither --key nor TASKGATE_API_KEY is given
    const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-cli-'));
    writeFileSync(join(dataDir, 'admin.key'), ADMIN_KEY + '\n');
    const env = { TASKGATE_URL: server.url, TASKGATE_DATA_DIR: dataDir };

    const t = await cli(['tenants', 'create', '--name', 'CLI tenant', '--rate-per-min', '30', '--burst', '5', '--max-running', '3'], env);
    expect(t.code).toBe(0);
    const tenantId = t.out.trim();
    expect(tenantId).toMatch(/^tnt_/);
    const list = await cli(['tenants', 'list', '--limit', '100', '--json'], env);
    expect(JSON.parse(list.out).tenants.find((x: { tenant_id: string }) => x.tenant_id === tenantId)).toMatchObject({ rate_limit: { per_minute: 30, burst: 5 }, max_running: 3 });
    expect((await cli(['tenants', 'list', '--limit', '100'], env)).out).toContain('30/min burst 5');
    expect((await cli(['tenants', 'list', '--limit', '100'], env)).out).toContain('no cap');
    const updated = await cli(['tenants', 'update', tenantId, '--max-running', '7', '--default-rate', '--json'], env);
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.out)).toMatchObject({ tenant_id: tenantId, rate_limit: null, max_running: 7 });
    const uncapped = await cli(['tenants', 'update', tenantId, '--no-cap', '--name', 'Renamed'], env);
    expect(uncapped.out).toContain('Renamed');
    expect(uncapped.out).toContain('no cap');
    expect((await cli(['tenants', 'update', tenantId], env)).code).toBe(2); // nothing to change
    expect((await cli(['tenants', 'update', tenantId, '--no-cap', '--max-running', '2'], env)).code).toBe(2);
    expect((await cli(['tenants', 'update', 'tnt_missing', '--no-cap'], env))).toMatchObject({ code: 1 });
    expect((await cli(['tenants', 'update', tenantId, '--max-running', '0'], env))).toMatchObject({ code: 1 }); // the server's 400

    const made = await cli(['keys', 'create', '--tenant', tenantId, '--name', 'cli key', '--scopes', 'keys:manage,tasks:read'], env);
    expect(made.code).toBe(0);
    const key = made.out.trim();
    expect(key).toMatch(/^sk_/);
    expect(made.err).toContain('shown only once');

    // as the tenant's key, via TASKGATE_API_KEY
    const tenantEnv = { TASKGATE_URL: server.url, TASKGATE_API_KEY: key };
    const child = await cli(['keys', 'create', '--name', 'child', '--scopes', 'tasks:read', '--json'], tenantEnv);
    const childKey = JSON.parse(child.out);
    const keys = await cli(['keys', 'list'], tenantEnv);
    expect(keys.out).toContain(childKey.id);
    expect(keys.out).not.toContain(childKey.key);
    expect((await cli(['keys', 'revoke', childKey.id], tenantEnv)).code).toBe(0);
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: childKey.key })).status).toBe(401);

    // errors: the server's code on stderr, exit 1; usage errors exit 2
    const denied = await cli(['keys', 'create', '--name', 'x', '--scopes', 'admin', '--key', key], { TASKGATE_URL: server.url });
    expect(denied).toMatchObject({ code: 1 });
    expect(denied.err).toContain('FORBIDDEN');
    expect((await cli(['keys', 'create', '--scopes', 'tasks:read'], env)).code).toBe(2);
    expect((await cli(['keys', 'frobnicate'], env)).code).toBe(2);
    const noKey = await cli(['keys', 'list'], { TASKGATE_URL: server.url, TASKGATE_DATA_DIR: join(dataDir, 'missing') });
    expect(noKey.code).toBe(2);
    expect(noKey.err).toContain('no API key');
    // an empty key file, or a key no header can carry, is named as such (was a 401 "Missing
    // credentials" and a NETWORK_ERROR "invalid header value" that blamed the server)
    const emptyDir = mkdtempSync(join(tmpdir(), 'taskgate-emptykey-'));
    writeFileSync(join(emptyDir, 'admin.key'), '\n');
    const empty = await cli(['keys', 'list'], { TASKGATE_URL: server.url, TASKGATE_DATA_DIR: emptyDir });
    expect(empty).toMatchObject({ code: 2 });
    expect(empty.err).toContain(`${join(emptyDir, 'admin.key')} is empty`);
    const broken = await cli(['keys', 'list'], { TASKGATE_URL: server.url, TASKGATE_API_KEY: 'sk_abc\ndef' });
    expect(broken).toMatchObject({ code: 2 });
    expect(broken.err).toContain('the API key from TASKGATE_API_KEY is not one');
    expect(broken.err).not.toContain('NETWORK_ERROR');
  });
});
