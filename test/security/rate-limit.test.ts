// Token-bucket rate limits: the bucket arithmetic on a fake clock; over HTTP, the burst then 429
// with X-RateLimit-* and Retry-After, separate read and write budgets, per principal, per-tenant
// overrides; two app instances sharing Redis allow one budget, not two; Redis down limits with
// each process's own buckets (default), fails closed (503) or open, as configured, counted either
// way. Budgets use 1/min so no token refills mid-test.
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, newTenant, startTestServer, type TestServer } from '../helpers/server.js';
import { MemoryRateLimiter, UNITS_PER_TOKEN, refill } from '../../src/auth/rate-limiter.js';
import { tenantsUpdate } from '../../src/storage/queries/tenants.js';

const REDIS_URL = process.env.REDIS_URL;
const SLOW = { TASKGATE_RATE_LIMIT_PER_MIN: '1', TASKGATE_RATE_LIMIT_BURST: '10' };

let tdb: TestDb;
beforeAll(async () => {
  tdb = await openTestDb();
});
afterAll(async () => {
  await tdb?.close();
});

/** Fires `n` requests (alternating between servers), returns the statuses in order. */
async function burst(servers: TestServer[], n: number, key: string, method = 'GET', path = '/api/v1/auth/me', body?: unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await servers[i % servers.length]!.call(method, path, body, { key })).status);
  return out;
}
const count = (statuses: number[], s: number) => statuses.filter((x) => x === s).length;

describe('token bucket arithmetic', () => {
  it('allows the burst, then one token per 60/perMinute seconds, exactly', async () => {
    let t = 1_000_000;
    const limiter = new MemoryRateLimiter({ now: () => t });
    const limit = { perMinute: 60, burst: 10 };
    const first = [];
    for (let i = 0; i < 12; i++) first.push(await limiter.take('k', limit));
    expect(first.filter((r) => r.allowed)).toHaveLength(10);
    expect(first.map((r) => r.remaining).slice(0, 10)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(first[10]).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1000, resetMs: 10_000 });

    // 10 simulated minutes of a client asking every 100 ms: burst + 60/min × 10, not one more
    let allowed = 0;
    for (let i = 0; i < 6000; i++) {
      t += 100;
      if ((await limiter.take('k', limit)).allowed) allowed++;
    }
    expect(allowed).toBe(600);
    t += 600_000;
    expect((await limiter.take('k', limit)).remaining).toBe(9);
    // buckets are per key
    expect((await limiter.take('other', limit)).remaining).toBe(9);
  });

  it('refills linearly in exact integer units and caps at the burst', () => {
    const limit = { perMinute: 60, burst: 10 };
    expect(refill(0, 500, limit)).toBe(UNITS_PER_TOKEN / 2);
    expect(refill(9.5 * UNITS_PER_TOKEN, 60_000, limit)).toBe(10 * UNITS_PER_TOKEN);
    expect(refill(3, -5, limit)).toBe(3);
    let units = 0;
    for (let i = 0; i < 10; i++) units = refill(units, 100, limit);
    expect(units).toBe(UNITS_PER_TOKEN);
  });
});

describe('over HTTP, in memory', () => {
  let server: TestServer;
  let defaults: TestServer;
  beforeAll(async () => {
    server = await startTestServer(tdb.db, SLOW);
    defaults = await startTestServer(tdb.db, { TASKGATE_RATE_LIMIT_PER_MIN: '60', TASKGATE_ROLE: 'api' });
  });
  afterAll(async () => {
    await server?.close();
    await defaults?.close();
  });

  it('defaults: 60/min burst 10 for submits, the same apart for control calls, 10× for reads, headers on every limited route', async () => {
    const { key } = await newTenant(tdb.db, ['admin']);
    const read = await defaults.call('GET', '/api/v1/tasks', undefined, { key });
    expect(read.headers.get('x-ratelimit-limit')).toBe('600');
    expect(read.headers.get('x-ratelimit-remaining')).toBe('99');
    const write = await defaults.call('POST', '/api/v1/tasks', { task_definition_id: 'noop' }, { key });
    expect(write.status).toBe(200);
    expect(write.headers.get('x-ratelimit-limit')).toBe('60');
    expect(write.headers.get('x-ratelimit-remaining')).toBe('9');
    const reset = Number(write.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 2);
    const me = await defaults.call('GET', '/api/v1/auth/me', undefined, { key });
    expect(me.body.rate_limit).toEqual({ per_minute: 60, burst: 10, read_per_minute: 600, read_burst: 100 });
    // public routes are not limited
    const health = await defaults.call('GET', '/health', undefined, { key: null });
    expect(health.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it('a burst over the limit gets 429 RATE_LIMITED with Retry-After; control calls have a bucket of their own', async () => {
    const { key } = await newTenant(tdb.db, ['admin']);
    const submits = await burst([server], 10, key, 'POST', '/api/v1/tasks', { task_definition_id: 'noop' });
    expect(submits).toEqual(Array(10).fill(200));
    // the write burst is spent: a cancel still goes through (stopping work never waits on creating it)
    const controls = await burst([server], 10, key, 'POST', '/api/v1/tasks/task_nope/cancel', {});
    expect(controls).toEqual(Array(10).fill(404));
    const overControl = await server.call('POST', '/api/v1/approvals/decision', { workflow_id: 'task_nope', approval_id: 'x', approved: true }, { key });
    expect([overControl.status, overControl.body.error.details?.budget]).toEqual([429, 'control']);
    const over = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop' }, { key });
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('RATE_LIMITED');
    expect(over.body.error.details).toMatchObject({ budget: 'write', per_minute: 1, burst: 10 });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(over.headers.get('x-ratelimit-limit')).toBe('1');
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(over.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    // the refused submit created nothing
    const list = await server.call('GET', '/api/v1/tasks?limit=100', undefined, { key });
    expect(list.body.total_count).toBe(10);
    // reads have their own budget
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key })).status).toBe(200);
    const metrics = await server.call('GET', '/metrics');
    expect(metrics.text).toMatch(/taskgate_rate_limited_total\{budget="write"\} [1-9]/);
  });

  it('reads get 10× the budget and are limited too', async () => {
    // 1/min, burst 3 → reads 10/min, burst 30: one read token refills every 6 s
    const t = await newTenant(tdb.db, ['admin']);
    await tenantsUpdate(tdb.db, { id: t.tenantId, rate_limit: { per_minute: 1, burst: 3 } });
    const started = Date.now();
    const statuses = await burst([server], 35, t.key);
    const refilled = Math.floor((Date.now() - started) / 6000);
    expect(statuses.slice(0, 30).every((s) => s === 200)).toBe(true);
    expect(count(statuses, 200)).toBeLessThanOrEqual(30 + refilled);
    expect(count(statuses, 429)).toBeGreaterThanOrEqual(5 - refilled);
  });

  it('stream connects are bounded by the stream cap, not the read budget', async () => {
    // burst 3 → reads burst 30; 40 SSE connects on one key still all open (cap: 1,000 streams)
    const t = await newTenant(tdb.db, ['admin']);
    await tenantsUpdate(tdb.db, { id: t.tenantId, rate_limit: { per_minute: 1, burst: 3 } });
    const sub = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 }, { key: t.key });
    expect(sub.status).toBe(200);
    const controllers = Array.from({ length: 40 }, () => new AbortController());
    try {
      const statuses = await Promise.all(controllers.map(async (ac) => {
        const res = await fetch(`${server.url}/api/v1/stream/sse?workflow_id=${sub.body.task_id}`, { headers: { 'x-api-key': t.key }, signal: ac.signal });
        return res.status;
      }));
      expect(statuses.every((x) => x === 200)).toBe(true);
    } finally {
      for (const ac of controllers) ac.abort();
    }
  });

  it('budgets are per principal', async () => {
    const a = await newTenant(tdb.db, ['admin']);
    expect(count(await burst([server], 12, a.key, 'POST', '/api/v1/auth/api-keys', { name: 'n', scopes: ['tasks:read'] }), 201)).toBe(10);
    const other = await server.call('POST', '/api/v1/auth/api-keys', { name: 'n', scopes: ['tasks:read'] }, { key: ADMIN_KEY });
    expect(other.status).toBe(201);
  });

  it("a tenant's override replaces the default", async () => {
    const t = await newTenant(tdb.db, ['admin']);
    await tenantsUpdate(tdb.db, { id: t.tenantId, rate_limit: { per_minute: 1, burst: 3 } });
    const statuses = await burst([server], 5, t.key, 'POST', '/api/v1/tasks', { task_definition_id: 'noop' });
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const me = await server.call('GET', '/api/v1/auth/me', undefined, { key: t.key });
    expect(me.body.rate_limit).toEqual({ per_minute: 1, burst: 3, read_per_minute: 10, read_burst: 30 });
  });

  it("a tenant's limit changed over the admin API applies at once to its keys' cached principals", async () => {
    const t = await newTenant(tdb.db, ['admin']);
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: t.key })).body.rate_limit).toMatchObject({ per_minute: 1, burst: 10 });
    expect((await server.call('PATCH', `/api/v1/admin/tenants/${t.tenantId}`, { rate_limit: { per_minute: 2, burst: 4 } }, { key: ADMIN_KEY })).status).toBe(200);
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: t.key })).body.rate_limit).toMatchObject({ per_minute: 2, burst: 4 });
    expect((await server.call('PATCH', `/api/v1/admin/tenants/${t.tenantId}`, { rate_limit: null }, { key: ADMIN_KEY })).status).toBe(200);
    expect((await server.call('GET', '/api/v1/auth/me', undefined, { key: t.key })).body.rate_limit).toMatchObject({ per_minute: 1, burst: 10 });
  });

  it('two nodes with in-memory buckets each allow a budget (why Redis is needed)', async () => {
    const other = await startTestServer(tdb.db, { ...SLOW, TASKGATE_ROLE: 'api' });
    try {
      const { key } = await newTenant(tdb.db, ['admin']);
      const statuses = await burst([server, other], 30, key, 'POST', '/api/v1/auth/api-keys', { name: 'n', scopes: ['tasks:read'] });
      expect(count(statuses, 201)).toBe(20);
    } finally {
      await other.close();
    }
  });
});

describe.skipIf(!REDIS_URL)('in Redis (REDIS_URL)', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer(tdb.db, { ...SLOW, REDIS_URL: REDIS_URL!, TASKGATE_READ_RATE_LIMIT_MULTIPLIER: '1' });
    b = await startTestServer(tdb.db, { ...SLOW, REDIS_URL: REDIS_URL!, TASKGATE_READ_RATE_LIMIT_MULTIPLIER: '1', TASKGATE_ROLE: 'api' });
    // the client connects in the background: wait until both report Redis ready
    for (const s of [a, b]) {
      for (let i = 0; (await s.call('GET', '/readiness', undefined, { key: null })).body?.checks?.redis !== 'ok'; i++) {
        if (i > 200) throw new Error('redis never became ready');
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('two app instances sharing Redis allow one budget, not two', async () => {
    const { key } = await newTenant(tdb.db, ['admin']);
    const statuses = await burst([a, b], 40, key);
    // limiter accuracy: exactly the burst across both nodes, none over
    expect(count(statuses, 200)).toBe(10);
    expect(count(statuses, 429)).toBe(30);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    const last = await b.call('GET', '/api/v1/auth/me', undefined, { key });
    expect(last.headers.get('retry-after')).toBeTruthy();
    expect(last.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it('concurrent requests on both nodes still draw one budget (the Lua take is atomic)', async () => {
    const { key } = await newTenant(tdb.db, ['admin']);
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => [a, b][i % 2]!.call('GET', '/api/v1/auth/me', undefined, { key }).then((r) => r.status)));
    expect(count(statuses, 200)).toBe(10);
  });

  it('readiness reports Redis', async () => {
    const res = await a.call('GET', '/readiness', undefined, { key: null });
    expect(res.body.checks).toMatchObject({ redis: 'ok', database: 'ok' });
  });
});

describe('Redis unreachable (REDIS_URL at a closed port)', () => {
  const DOWN = { ...SLOW, REDIS_URL: 'redis://127.0.0.1:1', TASKGATE_ROLE: 'api' };

  it('limits per process by default: the burst passes, the next is 429 with its headers; counted as local; not ready (PRODUCT: Redis reachable)', async () => {
    const server = await startTestServer(tdb.db, DOWN);
    try {
      const { key } = await newTenant(tdb.db, ['admin']);
      const statuses = await burst([server], 10, key, 'POST', '/api/v1/auth/api-keys', { name: 'n', scopes: ['tasks:read'] });
      expect(statuses).toEqual(Array(10).fill(201));
      const over = await server.call('POST', '/api/v1/auth/api-keys', { name: 'n', scopes: ['tasks:read'] }, { key });
      expect(over.status).toBe(429);
      expect(over.body.error.code).toBe('RATE_LIMITED');
      expect(over.body.error.details).toMatchObject({ budget: 'write', per_minute: 1, burst: 10 });
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(over.headers.get('x-ratelimit-limit')).toBe('1');
      expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(Number(over.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
      // the local buckets keep the read budget apart too (1/min × 10 → 10 reads, burst 100)
      const read = await server.call('GET', '/api/v1/auth/me', undefined, { key });
      expect([read.status, read.headers.get('x-ratelimit-limit'), read.headers.get('x-ratelimit-remaining')]).toEqual([200, '10', '99']);
      const metrics = await server.call('GET', '/metrics');
      expect(metrics.text).toMatch(/taskgate_rate_limit_store_errors_total\{outcome="local"\} (1[2-9]|[2-9]\d)/);
      expect(metrics.text).not.toMatch(/taskgate_rate_limit_store_errors_total\{outcome="allowed"\}/);
      // readiness is "database and Redis reachable" (PRODUCT §3), whatever requests get meanwhile
      const ready = await server.call('GET', '/readiness', undefined, { key: null });
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 'not_ready', checks: { database: 'ok' } });
      expect(ready.body.checks.redis).not.toMatch(/^(ok|degraded)/);
    } finally {
      await server.close();
    }
  });

  it('fails open with TASKGATE_RATE_LIMIT_FAIL_MODE=open: requests pass unlimited, counted as allowed; TASKGATE_READINESS_REDIS=advisory keeps it ready', async () => {
    const server = await startTestServer(tdb.db, { ...DOWN, TASKGATE_RATE_LIMIT_FAIL_MODE: 'open', TASKGATE_READINESS_REDIS: 'advisory' });
    try {
      const { key } = await newTenant(tdb.db, ['admin']);
      const statuses = await burst([server], 15, key, 'POST', '/api/v1/auth/api-keys', { name: 'n', scopes: ['tasks:read'] });
      expect(statuses.every((s) => s === 201)).toBe(true);
      const metrics = await server.call('GET', '/metrics');
      expect(metrics.text).toMatch(/taskgate_rate_limit_store_errors_total\{outcome="allowed"\} (1[5-9]|[2-9]\d)/);
      const ready = await server.call('GET', '/readiness', undefined, { key: null });
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ready', checks: { database: 'ok', redis: expect.stringMatching(/^degraded: /) } });
    } finally {
      await server.close();
    }
  });

  it('fails closed with TASKGATE_RATE_LIMIT_FAIL_MODE=closed: 503 with Retry-After', async () => {
    // advisory readiness does not apply: here Redis gates the limited routes themselves
    const server = await startTestServer(tdb.db, { ...DOWN, TASKGATE_RATE_LIMIT_FAIL_MODE: 'closed', TASKGATE_READINESS_REDIS: 'advisory' });
    try {
      const res = await server.call('GET', '/api/v1/auth/me');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.text).not.toContain('127.0.0.1:1');
      // public routes stay up
      expect((await server.call('GET', '/health', undefined, { key: null })).status).toBe(200);
      const metrics = await server.call('GET', '/metrics');
      expect(metrics.text).toMatch(/taskgate_rate_limit_store_errors_total\{outcome="refused"\} [1-9]/);
      // here Redis gates the limited routes, so the process is not ready without it
      const ready = await server.call('GET', '/readiness', undefined, { key: null });
      expect(ready.status).toBe(503);
      expect(ready.body.checks.redis).not.toMatch(/^(ok|degraded)/);
    } finally {
      await server.close();
    }
    // a worker limits nothing: Redis never makes it unready (here through the older variable, an alias)
    const worker = await startTestServer(tdb.db, { ...DOWN, TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'true', TASKGATE_ROLE: 'worker' });
    try {
      const ready = await worker.call('GET', '/readiness', undefined, { key: null });
      expect(ready.status).toBe(200);
      expect(ready.body.checks.redis).toMatch(/^degraded: /);
    } finally {
      await worker.close();
    }
  });
});

/**
 * A Redis that hangs with its connection open (stopped, partitioned): it passes the client's
 * connection handshake and ready check (HELLO, CLIENT SETINFO, INFO), then answers nothing until
 * `resume()` — when, like a Redis woken from SIGSTOP, it answers everything asked meanwhile in
 * order (a take is always allowed: this is no bucket, only a protocol).
 */
async function hangingRedis() {
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const pending = new Map<Socket, string[]>();
  let answering = false;
  const reply = (name: string) => (name === 'PING' ? '+PONG\r\n' : '*2\r\n:1\r\n$6\r\n540000\r\n');
  const server = createServer((socket) => {
    sockets.add(socket);
    pending.set(socket, []);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (buf) => {
      for (const m of buf.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)) {
        const name = m[1]!.toUpperCase();
        commands.push(name);
        if (name === 'HELLO') socket.write("-ERR unknown command 'HELLO'\r\n"); // an older Redis: RESP2
        else if (name === 'CLIENT') socket.write('+OK\r\n');
        else if (name === 'INFO') {
          const info = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
          socket.write(`$${info.length}\r\n${info}\r\n`);
        } else if (answering) socket.write(reply(name));
        else pending.get(socket)!.push(name);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    commands,
    resume() {
      answering = true;
      for (const s of sockets) for (const name of pending.get(s)!.splice(0)) s.write(reply(name));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('Redis hanging with its connection open', () => {
  it('one take waits out the command timeout, the next ones use the local buckets at once; a background PING brings Redis back', async () => {
    const redis = await hangingRedis();
    const server = await startTestServer(tdb.db, { ...SLOW, REDIS_URL: redis.url, TASKGATE_ROLE: 'api' });
    try {
      const { key } = await newTenant(tdb.db, ['admin']);
      // connected and through the ready check: readiness's PING times out instead of being refused
      for (let i = 0; !/timed out/i.test((await server.call('GET', '/readiness', undefined, { key: null })).body?.checks?.redis ?? ''); i++) {
        if (i > 100) throw new Error('the client never got ready');
      }
      const takes = () => redis.commands.filter((c) => c === 'EVALSHA' || c === 'EVAL').length;
      const statuses = await burst([server], 20, key);
      expect(statuses.every((s) => s === 200)).toBe(true);
      // answered from the local read bucket (1/min × 10 → burst 100), headers and all
      const local = await server.call('GET', '/api/v1/auth/me', undefined, { key });
      expect(local.headers.get('x-ratelimit-limit')).toBe('10');
      expect(Number(local.headers.get('x-ratelimit-remaining'))).toBeLessThan(100);
      // without the breaker each of the 20 requests sent its take and waited 500 ms for it
      expect(takes()).toBe(1);
      redis.resume();
      // the probe (at most once a second) gets its PONG and the next request asks Redis again
      for (let i = 0; takes() === 1; i++) {
        if (i > 100) throw new Error('the limiter never tried Redis again');
        await server.call('GET', '/api/v1/auth/me', undefined, { key });
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(redis.commands).toContain('PING');
    } finally {
      await server.close();
      await redis.close();
    }
  });
});
