// Idempotency-Key on POST (PRODUCT.md §3): first 2xx stored and replayed byte for byte with
// Idempotent-Replayed: true; another body → 422; in flight → 409; refused requests store nothing;
// scoped to tenant + principal + route; ≤ 255 chars; 24 h expiry with cleanup; the key row commits
// in the task's own transaction; 50 concurrent submits with one key create exactly one task.
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { newTenant, until, useTestServer } from '../helpers/server.js';
import { usingPostgres } from '../helpers/db.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/main.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logger.js';
import { cleanupExpired, registerIdempotency, requestHash } from '../../src/api/idempotency.js';
import Fastify from 'fastify';
import type { Principal } from '../../src/auth/scopes.js';
import { SubmitBatcher } from '../../src/api/submit-batcher.js';
import { idempotencyKeysComplete, idempotencyKeysInsert } from '../../src/storage/queries/idempotency.js';
import { newTaskId } from '../../src/domain/ids.js';
import type { NewTask } from '../../src/storage/queries/tasks.js';

const fixture = useTestServer({ TASKGATE_ROLE: 'api', TASKGATE_IDEMPOTENCY_CLEANUP_INTERVAL_MS: '1000' });

const taskCount = async (tenantId: string) =>
  (await fixture.tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE tenant_id = $1', [tenantId])).rows[0]!.n;
const post = (path: string, body: unknown, key: string, idem?: string) =>
  fixture.server.call('POST', path, body, { key, headers: idem === undefined ? {} : { 'idempotency-key': idem } });
const noop = (input: Record<string, unknown> = {}) => ({ task_definition_id: 'noop', input });

async function principalOf(key: string): Promise<string> {
  const me = await fixture.server.call('GET', '/api/v1/auth/me', undefined, { key });
  return `${me.body.principal_type}:${me.body.subject}`;
}

describe('replay', () => {
  it('stores the first response and replays it byte for byte, creating one task', async () => {
    const t = await newTenant(fixture.tdb.db);
    const first = await post('/api/v1/tasks', noop({ n: 1 }), t.key, 'order-1');
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await post('/api/v1/tasks', noop({ n: 1 }), t.key, 'order-1');
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('x-workflow-id')).toBe(first.body.task_id);
    expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(again.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
    expect(await taskCount(t.tenantId)).toBe(1);

    const row = await fixture.tdb.db.query<{ state: string; response_body: string }>('SELECT state, response_body FROM idempotency_keys WHERE key = $1 AND tenant_id = $2', ['order-1', t.tenantId]);
    expect(row.rows[0]).toMatchObject({ state: 'done', response_body: first.text });
  });

  it('replays 201 and its Link header for /tasks/stream', async () => {
    const t = await newTenant(fixture.tdb.db);
    const first = await post('/api/v1/tasks/stream', noop(), t.key, 'stream-1');
    const again = await post('/api/v1/tasks/stream', noop(), t.key, 'stream-1');
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('link')).toBe(first.headers.get('link'));
  });

  it('the same body with keys in another order is the same request', async () => {
    const t = await newTenant(fixture.tdb.db);
    const a = await post('/api/v1/tasks', JSON.stringify({ task_definition_id: 'noop', input: { a: 1, b: 2 } }), t.key, 'order-k');
    const b = await post('/api/v1/tasks', JSON.stringify({ input: { b: 2, a: 1 }, task_definition_id: 'noop' }), t.key, 'order-k');
    expect(b.text).toBe(a.text);
  });

  it('control calls replay too (a repeated cancel does not turn into 409)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const task = await post('/api/v1/tasks', { ...noop(), delay_ms: 3_600_000 }, t.key);
    const path = `/api/v1/tasks/${task.body.task_id}/cancel`;
    const first = await post(path, { reason: 'changed my mind' }, t.key, 'cancel-1');
    expect(first.status).toBe(202);
    const again = await post(path, { reason: 'changed my mind' }, t.key, 'cancel-1');
    expect(again.status).toBe(202);
    expect(again.text).toBe(first.text);
    expect((await post(path, { reason: 'changed my mind' }, t.key)).status).toBe(409);
  });

  it('a new API key is replayed without its secret (secrets are never stored)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const first = await post('/api/v1/auth/api-keys', { name: 'ci', scopes: ['tasks:read'] }, t.key, 'key-1');
    expect(first.status).toBe(201);
    const again = await post('/api/v1/auth/api-keys', { name: 'ci', scopes: ['tasks:read'] }, t.key, 'key-1');
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual({ ...first.body, key: null });
    const stored = await fixture.tdb.db.query<{ response_body: string }>('SELECT response_body FROM idempotency_keys WHERE tenant_id = $1', [t.tenantId]);
    expect(stored.rows.map((r) => r.response_body).join()).not.toContain(first.body.key);
    const list = await fixture.server.call('GET', '/api/v1/auth/api-keys', undefined, { key: t.key });
    expect(list.body.api_keys.filter((k: { name: string }) => k.name === 'ci')).toHaveLength(1);
  });

  it('a GET ignores the header', async () => {
    const t = await newTenant(fixture.tdb.db);
    const res = await fixture.server.call('GET', '/api/v1/auth/me', undefined, { key: t.key, headers: { 'idempotency-key': 'x'.repeat(300) } });
    expect(res.status).toBe(200);
  });
});

describe('refusals', () => {
  it('the same key with a different body → 422 IDEMPOTENCY_KEY_REUSED, nothing created', async () => {
    const t = await newTenant(fixture.tdb.db);
    await post('/api/v1/tasks', noop({ n: 1 }), t.key, 'k');
    const res = await post('/api/v1/tasks', noop({ n: 2 }), t.key, 'k');
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await taskCount(t.tenantId)).toBe(1);
  });

  it('a request refused by validation stores nothing: the corrected retry with the same key works', async () => {
    const t = await newTenant(fixture.tdb.db);
    const bad = await post('/api/v1/tasks', { task_definition_id: 'noop', priority: 7 }, t.key, 'fix-me');
    expect(bad.status).toBe(400);
    const unknown = await post('/api/v1/tasks', { task_definition_id: 'no-such-definition' }, t.key, 'fix-me');
    expect(unknown.status).toBe(404);
    const good = await post('/api/v1/tasks', noop(), t.key, 'fix-me');
    expect(good.status).toBe(200);
    expect(good.headers.get('idempotent-replayed')).toBeNull();
  });

  it('while the first request is in flight → 409 IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After', async () => {
    const t = await newTenant(fixture.tdb.db);
    const body = noop({ slow: true });
    // the state a concurrent first request leaves while it runs
    await idempotencyKeysInsert(fixture.tdb.db, {
      tenantId: t.tenantId, principal: await principalOf(t.key), route: 'POST /api/v1/tasks', key: 'busy',
      requestHash: requestHash('POST', '/api/v1/tasks', body), lockToken: 'other-request', lockMs: 60_000,
    });
    const res = await post('/api/v1/tasks', body, t.key, 'busy');
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('IDEMPOTENCY_KEY_IN_PROGRESS');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await taskCount(t.tenantId)).toBe(0);
  });

  it('a claim whose request died (lock expired) is taken over', async () => {
    const t = await newTenant(fixture.tdb.db);
    await idempotencyKeysInsert(fixture.tdb.db, {
      tenantId: t.tenantId, principal: await principalOf(t.key), route: 'POST /api/v1/tasks', key: 'crashed',
      requestHash: requestHash('POST', '/api/v1/tasks', noop()), lockToken: 'dead-request', lockMs: -1,
    });
    const res = await post('/api/v1/tasks', noop(), t.key, 'crashed');
    expect(res.status).toBe(200);
    expect(await taskCount(t.tenantId)).toBe(1);
  });

  it.each<[string, string, number]>([
    ['255 characters', 'k'.repeat(255), 200],
    ['256 characters', 'k'.repeat(256), 400],
    ['a UUID', randomUUID(), 200],
    ['inner spaces', 'order 42 retry', 200],
  ])('a key of %s → %s', async (_name, key, status) => {
    const t = await newTenant(fixture.tdb.db);
    const res = await post('/api/v1/tasks', noop(), t.key, key);
    expect(res.status).toBe(status);
    if (status === 400) {
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'Idempotency-Key' } });
      expect(await taskCount(t.tenantId)).toBe(0);
    }
  });

  it('refuses empty and non-ASCII keys', async () => {
    const t = await newTenant(fixture.tdb.db);
    for (const key of ['', 'ключ', 'tab\there']) {
      const res = await fixture.server.app.inject({
        method: 'POST', url: '/api/v1/tasks', payload: noop(),
        headers: { 'x-api-key': t.key, 'idempotency-key': Buffer.from(key, 'utf8').toString('latin1') },
      });
      expect(res.statusCode, JSON.stringify(key)).toBe(400);
    }
  });
});

describe('scope', () => {
  it('is per principal and per route', async () => {
    const t = await newTenant(fixture.tdb.db);
    const other = await newTenant(fixture.tdb.db);
    const a = await post('/api/v1/tasks', noop(), t.key, 'shared-key');
    const b = await post('/api/v1/tasks', noop(), other.key, 'shared-key');
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(b.body.task_id).not.toBe(a.body.task_id);
    const stream = await post('/api/v1/tasks/stream', noop(), t.key, 'shared-key');
    expect(stream.status).toBe(201);
    expect(stream.headers.get('idempotent-replayed')).toBeNull();
    expect(await taskCount(t.tenantId)).toBe(2);
  });
});

describe('atomicity and concurrency', () => {
  it('50 concurrent submits with the same key create exactly one task', async () => {
    const t = await newTenant(fixture.tdb.db);
    const results = await Promise.all(Array.from({ length: 50 }, () => post('/api/v1/tasks', noop({ race: 1 }), t.key, 'race')));
    const ok = results.filter((r) => r.status === 200);
    const busy = results.filter((r) => r.status === 409);
    expect(ok.length + busy.length).toBe(50);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.body.task_id)).size).toBe(1);
    expect(busy.every((r) => r.body.error.code === 'IDEMPOTENCY_KEY_IN_PROGRESS')).toBe(true);
    expect(await taskCount(t.tenantId)).toBe(1);
    // and every later retry gets the same task
    const later = await post('/api/v1/tasks', noop({ race: 1 }), t.key, 'race');
    expect(later.body.task_id).toBe(ok[0]!.body.task_id);
    console.log(`[idempotency] 50 concurrent submits, one key: ${ok.length} answered 200 (one task), ${busy.length} answered 409`);
  });

  it('the key row commits in the transaction that inserts the task (both or neither)', async () => {
    const t = await newTenant(fixture.tdb.db);
    const batcher = new SubmitBatcher(fixture.tdb.db, { maxInFlight: 1, afterCommit: () => {} });
    const task = (): NewTask => ({
      id: newTaskId(), tenant_id: t.tenantId, user_id: 'u', session_id: null, kind: 'definition', task_definition_id: 'noop', query: '',
      input: {}, context: {}, options: {}, mode: null, priority: 2, max_attempts: 1, retry_interval_ms: 0, backoff_multiplier: 1,
      timeout_ms: 1000, run_at: null, metadata: {}, tags: [], workflow_instance_id: null,
    });
    const scope = { tenantId: t.tenantId, principal: 'api_key:x', route: 'POST /api/v1/tasks' };
    const claim = async (key: string) =>
      idempotencyKeysInsert(fixture.tdb.db, { ...scope, key, requestHash: 'h', lockToken: 'mine', lockMs: 60_000 });
    const complete = (key: string, lockToken: string) => async (tx: Parameters<typeof idempotencyKeysComplete>[0]) => {
      if (!(await idempotencyKeysComplete(tx, { ...scope, key, lockToken, statusCode: 200, headers: {}, body: '{}', ttlMs: 86_400_000 }))) throw new Error('lost the claim');
    };

    await claim('good');
    const good = task();
    await batcher.submit(good, complete('good', 'mine'));
    // a claim someone else took over: the completion fails, so the task insert rolls back with it
    await claim('stolen');
    const orphan = task();
    const companion = task();
    const results = await Promise.allSettled([batcher.submit(orphan, complete('stolen', 'not-mine')), batcher.submit(companion)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);

    const ids = (await fixture.tdb.db.query<{ id: string }>('SELECT id FROM tasks WHERE tenant_id = $1', [t.tenantId])).rows.map((r) => r.id);
    expect(ids.sort()).toEqual([good.id, companion.id].sort());
    const states = await fixture.tdb.db.query<{ key: string; state: string }>('SELECT key, state FROM idempotency_keys WHERE tenant_id = $1 ORDER BY key', [t.tenantId]);
    expect(states.rows).toEqual([{ key: 'good', state: 'done' }, { key: 'stolen', state: 'in_flight' }]);
  });
});

describe('retention', () => {
  it('an expired record no longer counts, and the periodic cleanup deletes it', async () => {
    const t = await newTenant(fixture.tdb.db);
    const principal = await principalOf(t.key);
    // a response stored longer ago than the TTL
    const stored = async (key: string, hash: string) => {
      const scope = { tenantId: t.tenantId, principal, route: 'POST /api/v1/tasks', key };
      await idempotencyKeysInsert(fixture.tdb.db, { ...scope, requestHash: hash, lockToken: 'l', lockMs: 1000 });
      await idempotencyKeysComplete(fixture.tdb.db, { ...scope, lockToken: 'l', statusCode: 200, headers: {}, body: '{}', ttlMs: -1 });
    };
    await stored('old', requestHash('POST', '/api/v1/tasks', noop({ v: 1 })));
    // another body with the expired key: a new request, not a 422
    const res = await post('/api/v1/tasks', noop({ v: 2 }), t.key, 'old');
    expect(res.status).toBe(200);
    expect(res.headers.get('idempotent-replayed')).toBeNull();

    await stored('older', 'h');
    const left = async () => (await fixture.tdb.db.query('SELECT 1 FROM idempotency_keys WHERE tenant_id = $1 AND key = $2', [t.tenantId, 'older'])).rows.length;
    // the server's janitor runs every second here (TASKGATE_IDEMPOTENCY_CLEANUP_INTERVAL_MS)
    const deadline = Date.now() + 30_000;
    while ((await left()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await left()).toBe(0);
    expect(await cleanupExpired(fixture.tdb.db)).toBe(0);
    // records not yet expired stay
    expect((await fixture.tdb.db.query('SELECT 1 FROM idempotency_keys WHERE tenant_id = $1 AND key = $2', [t.tenantId, 'old'])).rows).toHaveLength(1);
  });
});

describe.skipIf(!usingPostgres())('a TTL shorter than a request (PostgreSQL: a table lock holds the first one)', () => {
  const short = useTestServer({ TASKGATE_ROLE: 'api', TASKGATE_IDEMPOTENCY_TTL_MS: '1000' });

  it('the claim of a request still in flight is not handed to another body when the TTL passes; the TTL counts from the stored response', async () => {
    const t = await newTenant(short.tdb.db);
    const send = (input: Record<string, unknown>) =>
      short.server.call('POST', '/api/v1/tasks', noop(input), { key: t.key, headers: { 'idempotency-key': 'slow' } });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked = false;
    const holder = short.tdb.db.transaction(async (tx) => {
      await tx.query('LOCK TABLE tasks IN EXCLUSIVE MODE');
      locked = true;
      await released;
    });
    await until(() => locked, 'the table lock');
    const first = send({ slow: 1 });
    await until(async () => (await short.tdb.db.query('SELECT 1 FROM idempotency_keys WHERE tenant_id = $1', [t.tenantId])).rows.length > 0, 'the first claim');
    await new Promise((r) => setTimeout(r, 1_500)); // past the TTL, well inside the claim's lock
    const second = send({ slow: 2 });
    // before the fix the second request took the key over and then waited on the lock too
    await Promise.race([second, new Promise((r) => setTimeout(r, 2_000))]);
    release();
    await holder;
    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(422);
    expect(b.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await short.tdb.db.query('SELECT input FROM tasks WHERE tenant_id = $1', [t.tenantId]).then((r) => r.rows.map((x) => x.input))).toEqual([{ slow: 1 }]);
    // stored just now: replayed for a TTL from here, though claimed more than a TTL ago
    const again = await send({ slow: 1 });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(a.text);
  });
});

describe.skipIf(usingPostgres())('an embedded database after a kill (PGlite serves one process)', () => {
  it('frees at start the keys of requests the previous run did not finish; answered ones stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskgate-idem-'));
    const config = loadConfig({ 'data-dir': dir }, { TASKGATE_ROLE: 'api', TASKGATE_RATE_LIMIT_PER_MIN: '0' });
    const start = () => startServer(config, { noListen: true, logger: createLogger('silent') });
    const first = await start();
    const scope = { tenantId: 'default', principal: 'api_key:admin', route: 'POST /api/v1/tasks' };
    // what a process killed mid-request leaves: its claim in flight, locked for a minute more
    await idempotencyKeysInsert(first.db, { ...scope, key: 'cut-off', requestHash: 'h1', lockToken: 'dead', lockMs: 60_000 });
    await idempotencyKeysInsert(first.db, { ...scope, key: 'answered', requestHash: 'h2', lockToken: 'done', lockMs: 60_000 });
    await idempotencyKeysComplete(first.db, { ...scope, key: 'answered', lockToken: 'done', statusCode: 200, headers: {}, body: '{}', ttlMs: 60_000 });
    await first.close();
    const second = await start();
    try {
      const rows = await second.db.query<{ key: string }>('SELECT key FROM idempotency_keys ORDER BY key');
      expect(rows.rows.map((r) => r.key)).toEqual(['answered']);
    } finally {
      await second.close();
    }
  });
});

describe('a claim whose request outlasts its lock', () => {
  it('is kept locked while the request runs: a retry meanwhile is 409, not a second run, and afterwards replays the answer', async () => {
    const app = Fastify();
    app.decorateRequest('principal', null as unknown as Principal);
    app.addHook('onRequest', async (req) => {
      req.principal = { kind: 'api_key', tenantId: 'default', userId: 'u', subjectId: 'key_slow', scopes: ['admin'], rateLimit: null };
    });
    // a lock of 300 ms, a handler of 1.2 s (a chat completion waiting for its task)
    registerIdempotency(app, { db: fixture.tdb.db, ttlMs: 60_000, cleanupIntervalMs: 60_000, lockMs: 300 });
    let runs = 0;
    app.post('/slow', async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 1_200));
      return { run: runs };
    });
    await app.ready();
    try {
      const key = `slow-${randomUUID()}`;
      const send = () => app.inject({ method: 'POST', url: '/slow', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, payload: '{}' });
      const first = send();
      await new Promise((r) => setTimeout(r, 800)); // the lock, unrenewed, ran out 500 ms ago
      const retry = await send();
      expect(retry.statusCode, retry.body).toBe(409);
      expect((await first).json()).toEqual({ run: 1 });
      const after = await send();
      expect({ status: after.statusCode, body: after.json(), replayed: after.headers['idempotent-replayed'] }).toEqual({ status: 200, body: { run: 1 }, replayed: 'true' });
      expect(runs).toBe(1);
    } finally {
      await app.close();
    }
  });
});
