// Open streams lose their credential: revoking an API key closes its SSE streams with a final
// `event: error` frame (UNAUTHORIZED) and its WebSockets with 1008, at once, while another key's
// stream on the same task goes on; a key's expires_at and a JWT's exp close their streams at that
// time; a tenant-wide hint leaves valid keys open. On PostgreSQL also across servers: revoked on
// one, the stream on the other closes by NOTIFY. StreamCredentials' sweep and its check of
// streams set up while a hint arrived are tested without a server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { openPg } from '../../src/storage/pg.js';
import type { Db } from '../../src/storage/db.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { StreamCredentials } from '../../src/api/stream-credentials.js';
import type { Principal } from '../../src/auth/scopes.js';
import { usingPostgres } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, useTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { gates, isDone, openSse, openWs as openWsAt, type SseClient } from '../streaming/helpers.js';

const SECRET = 'stream-revocation-secret-at-least-32-bytes';
const ISSUER = 'https://issuer.example.test';
const AUDIENCE = 'taskgate-api';

/** PROGRESS 'before', then waits at gate `<key>:after`, then three PROGRESS 'after' and ends. */
const twoPhaseDef: TaskDefinition = {
  id: 'test-two-phase', name: 'two phase', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
  output_schema: { type: 'object' },
  async handler(input: { key: string }, ctx) {
    await ctx.progress('before');
    await gates.wait(`${input.key}:after`);
    for (let i = 1; i <= 3; i++) await ctx.progress(`after ${i}`);
    return {};
  },
};

const fixture = useTestServer(
  { TASKGATE_JWT_SECRET: SECRET, TASKGATE_JWT_ISSUER: ISSUER, TASKGATE_JWT_AUDIENCE: AUDIENCE, TASKGATE_JWT_CLOCK_SKEW_S: '0' },
  { definitions: [twoPhaseDef] },
);

async function newKey(s: TestServer, scopes: string[] = ['tasks:read'], expiresAt?: Date): Promise<{ id: string; key: string }> {
  const res = await s.call('POST', '/api/v1/auth/api-keys', { name: 'streamer', scopes, ...(expiresAt ? { expires_at: expiresAt.toISOString() } : {}) });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.id, key: res.body.key };
}

async function startTwoPhase(s: TestServer, key: string): Promise<string> {
  const id = await s.submit({ task_definition_id: 'test-two-phase', input: { key } });
  await waitForTask(s, id, (t) => t.status === 'RUNNING');
  return id;
}

const sseUrl = (s: TestServer, id: string) => `${s.url}/api/v1/stream/sse?workflow_id=${id}`;
const progress = (c: SseClient) => c.frames.filter((f) => f.event === 'PROGRESS').map((f) => JSON.parse(f.data!).message as string);
const errorFrame = (c: SseClient) => c.frames.find((f) => f.event === 'error');

/** The client's frames after its error frame (there must be none). */
function framesAfterError(c: SseClient) {
  const i = c.frames.findIndex((f) => f.event === 'error');
  return i < 0 ? undefined : c.frames.slice(i + 1);
}

const openWs = (s: TestServer, id: string, headers: Record<string, string>) => openWsAt(s.url, `workflow_id=${id}`, headers);

const isProgress = (msg: string) => (m: any) => m.type === 'PROGRESS' && m.message === msg;

describe('revoking an API key closes its open streams', () => {
  it('SSE: the revoked key gets a final UNAUTHORIZED error frame and the stream ends; another key on the same task gets the rest', async () => {
    const doomed = await newKey(fixture.server);
    const other = await newKey(fixture.server);
    const id = await startTwoPhase(fixture.server, 'sse-revoke');
    const a = openSse(sseUrl(fixture.server, id), { headers: { 'x-api-key': doomed.key } });
    const b = openSse(sseUrl(fixture.server, id), { headers: { 'x-api-key': other.key } });
    let aEndedAt = 0;
    void a.ended.then(() => (aEndedAt = Date.now()));
    await a.waitFor((f) => f.event === 'PROGRESS');
    await b.waitFor((f) => f.event === 'PROGRESS');

    // a tenant-wide hint (`*`) re-reads the key: still valid, the stream stays open
    expect((await fixture.server.call('PATCH', '/api/v1/admin/tenants/default', { rate_limit: null })).status).toBe(200);

    const revokedAt = Date.now();
    expect((await fixture.server.call('DELETE', `/api/v1/auth/api-keys/${doomed.id}`)).status).toBe(204);
    await a.ended;
    expect(aEndedAt - revokedAt).toBeLessThan(3_000);
    const err = errorFrame(a);
    expect(err, a.frames.map((f) => f.event).join()).toBeDefined();
    const body = JSON.parse(err!.data!);
    expect(body).toMatchObject({ error: { code: 'UNAUTHORIZED', details: { reason: 'revoked' } } });
    expect(typeof body.request_id).toBe('string');
    expect(framesAfterError(a)).toEqual([]);

    gates.open('sse-revoke:after');
    await b.waitFor(isDone);
    expect(progress(b)).toEqual(['before', 'after 1', 'after 2', 'after 3']);
    expect(errorFrame(b)).toBeUndefined();
    // the revoked stream never saw the second phase
    expect(progress(a)).toEqual(['before']);
    // and the key cannot open a new one
    const again = openSse(sseUrl(fixture.server, id), { headers: { 'x-api-key': doomed.key } });
    expect(await again.status).toBe(401);
  });

  it('WebSocket: the revoked key is closed with 1008 and a reason; another key on the same task gets the rest', async () => {
    const doomed = await newKey(fixture.server);
    const other = await newKey(fixture.server);
    const id = await startTwoPhase(fixture.server, 'ws-revoke');
    const a = openWs(fixture.server, id, { 'x-api-key': doomed.key });
    const b = openWs(fixture.server, id, { 'x-api-key': other.key });
    await Promise.all([a.opened, b.opened]);
    await a.waitFor(isProgress('before'));
    await b.waitFor(isProgress('before'));

    const revokedAt = Date.now();
    expect((await fixture.server.call('DELETE', `/api/v1/auth/api-keys/${doomed.id}`)).status).toBe(204);
    const closed = await a.close;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toContain('UNAUTHORIZED');
    expect(closed.at - revokedAt).toBeLessThan(3_000);
    const seen = a.messages.length;

    gates.open('ws-revoke:after');
    await b.waitFor(isProgress('after 3'));
    expect((await b.close).code).toBe(1000);
    expect(b.messages.filter((m) => m.type === 'PROGRESS').map((m) => m.message)).toEqual(['before', 'after 1', 'after 2', 'after 3']);
    expect(a.messages).toHaveLength(seen);
    expect(a.messages.some((m) => m.message?.startsWith('after'))).toBe(false);
  });
});

describe('credentials that expire while their stream is open', () => {
  it('SSE: a key whose expires_at passes is closed then with UNAUTHORIZED (reason expired)', async () => {
    const expiresAt = new Date(Date.now() + 2_000);
    const short = await newKey(fixture.server, ['tasks:read'], expiresAt);
    const id = await startTwoPhase(fixture.server, 'sse-expire');
    const c = openSse(sseUrl(fixture.server, id), { headers: { 'x-api-key': short.key } });
    expect(await c.status).toBe(200);
    await c.waitFor((f) => f.event === 'PROGRESS');
    await c.ended;
    const endedAt = Date.now();
    expect(endedAt).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(endedAt - expiresAt.getTime()).toBeLessThan(2_000);
    expect(JSON.parse(errorFrame(c)!.data!)).toMatchObject({ error: { code: 'UNAUTHORIZED', details: { reason: 'expired' } } });
    expect(framesAfterError(c)).toEqual([]);
    gates.open('sse-expire:after');
  });

  it('WebSocket: a key whose expires_at passes is closed then with 1008', async () => {
    const expiresAt = new Date(Date.now() + 2_000);
    const short = await newKey(fixture.server, ['tasks:read'], expiresAt);
    const id = await startTwoPhase(fixture.server, 'ws-expire');
    const w = openWs(fixture.server, id, { 'x-api-key': short.key });
    await w.opened;
    await w.waitFor(isProgress('before'));
    const closed = await w.close;
    expect(closed.code).toBe(1008);
    expect(closed.at).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(closed.at - expiresAt.getTime()).toBeLessThan(2_000);
    gates.open('ws-expire:after');
  });

  it("SSE with a JWT: closed when the token's exp passes", async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({ sub: 'stream-user', tenant_id: 'default', scopes: 'tasks:read', iss: ISSUER, aud: AUDIENCE, exp })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(createSecretKey(Buffer.from(SECRET)));
    const id = await startTwoPhase(fixture.server, 'jwt-expire');
    const c = openSse(sseUrl(fixture.server, id), { headers: { authorization: `Bearer ${token}` } });
    expect(await c.status).toBe(200);
    await c.waitFor((f) => f.event === 'PROGRESS');
    await c.ended;
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    expect(JSON.parse(errorFrame(c)!.data!)).toMatchObject({ error: { code: 'UNAUTHORIZED', details: { reason: 'expired' } } });
    gates.open('jwt-expire:after');
  });
});

describe.skipIf(!usingPostgres())('across servers (PostgreSQL)', () => {
  let apiDb: Db;
  let api: TestServer;

  beforeAll(async () => {
    apiDb = await openPg({ connectionString: process.env.DATABASE_URL!, schema: fixture.tdb.schema, maxConnections: 5 });
    api = await startTestServer(apiDb, { TASKGATE_ROLE: 'api' }, { definitions: [twoPhaseDef] });
  });
  afterAll(async () => {
    await api?.close();
    await apiDb?.close();
  });

  it('a key revoked on server A closes its SSE and WebSocket streams on server B; another key stays open', async () => {
    const doomed = await newKey(fixture.server);
    const other = await newKey(fixture.server);
    const id = await startTwoPhase(fixture.server, 'xp-revoke');
    const a = openSse(sseUrl(api, id), { headers: { 'x-api-key': doomed.key } });
    const w = openWs(api, id, { 'x-api-key': doomed.key });
    const b = openSse(sseUrl(api, id), { headers: { 'x-api-key': other.key } });
    await a.waitFor((f) => f.event === 'PROGRESS');
    await b.waitFor((f) => f.event === 'PROGRESS');
    await w.waitFor(isProgress('before'));

    const revokedAt = Date.now();
    expect((await fixture.server.call('DELETE', `/api/v1/auth/api-keys/${doomed.id}`, undefined, { key: ADMIN_KEY })).status).toBe(204);
    await a.ended;
    const closed = await w.close;
    expect(Date.now() - revokedAt).toBeLessThan(3_000);
    expect(JSON.parse(errorFrame(a)!.data!)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect(framesAfterError(a)).toEqual([]);
    expect(closed.code).toBe(1008);

    gates.open('xp-revoke:after');
    await b.waitFor(isDone);
    expect(progress(b)).toEqual(['before', 'after 1', 'after 2', 'after 3']);
    expect(progress(a)).toEqual(['before']);
  });
});

describe('StreamCredentials', () => {
  const keyPrincipal = (id: string): Principal => ({ kind: 'api_key', tenantId: 't', userId: 'u', subjectId: id, scopes: ['tasks:read'], rateLimit: null });

  function harness(valid: Set<string>, sweepMs?: number) {
    const hints = new Set<(id: string) => void>();
    const lookups: string[][] = [];
    const creds = new StreamCredentials({
      lookup: async (ids) => {
        lookups.push([...ids]);
        return ids.filter((id) => valid.has(id)).map((id) => ({ id, expires_at: null }));
      },
      onCredentials: (fn) => {
        hints.add(fn);
        return () => hints.delete(fn);
      },
      sweepMs,
    });
    return { creds, lookups, hint: (id: string) => hints.forEach((fn) => fn(id)) };
  }

  it('a hint re-reads only the named key (or every key for `*`) and closes the invalid ones', async () => {
    const valid = new Set(['k1', 'k2']);
    const h = harness(valid);
    const closed: string[] = [];
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    h.creds.watch(keyPrincipal('k1'), Date.now(), () => {
      closed.push('k1');
      resolve();
    });
    h.creds.watch(keyPrincipal('k2'), Date.now(), () => closed.push('k2'));
    h.hint('k3'); // no stream: nothing read
    expect(h.lookups).toEqual([]);
    h.hint('*');
    await new Promise((r) => setImmediate(r));
    expect(h.lookups).toEqual([['k1', 'k2']]);
    expect(closed).toEqual([]);
    valid.delete('k1');
    h.hint('k1');
    await done;
    expect(closed).toEqual(['k1']);
    expect(h.creds.trackedKeys).toBe(2); // unwatching is the stream's, when its sink closes
    h.creds.stop();
  });

  it('a hint that arrived while a stream was being set up re-reads its key at watch', async () => {
    const h = harness(new Set());
    const start = Date.now() - 10;
    h.hint('k9'); // before the stream was tracked: no stream yet
    const closed = new Promise<string>((resolve) => h.creds.watch(keyPrincipal('k9'), start, resolve));
    expect(await closed).toBe('revoked');
    h.creds.stop();
  });

  it('the sweep closes a revoked key whose hint was lost', async () => {
    const valid = new Set(['k5']);
    const h = harness(valid, 50);
    const closed = new Promise<string>((resolve) => h.creds.watch(keyPrincipal('k5'), Date.now(), resolve));
    valid.delete('k5'); // and nobody hints
    expect(await closed).toBe('revoked');
    h.creds.stop();
  });
});
