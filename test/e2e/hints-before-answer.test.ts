// A route whose answer promises a change on every process (a tenant's new cap, a revoked key)
// answers only once the hint to the other processes has gone out (PostgreSQL: NOTIFY): a client
// that then turned to another process reached it before it was told — 2 rounds in 100 ran a whole
// worker's concurrency past a cap of 2 set a moment before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/storage/db.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, type TestServer } from '../helpers/server.js';

describe.skipIf(!usingPostgres())('hints to other processes go out before the answer', () => {
  let tdb: TestDb;
  let server: TestServer;
  /** The channels of the NOTIFYs that have completed, in order. */
  const notified: string[] = [];
  let slowNotify = false;

  beforeAll(async () => {
    tdb = await openTestDb();
    // the NOTIFYs are slowed: an answer that does not wait for them arrives first
    const db = new Proxy(tdb.db, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        if (prop !== 'notify') return typeof v === 'function' ? v.bind(target) : v;
        return async (channel: string, payload: string) => {
          if (slowNotify) await new Promise((r) => setTimeout(r, 300));
          await target.notify(channel, payload);
          notified.push(channel);
        };
      },
    }) as Db;
    server = await startTestServer(db);
    slowNotify = true;
  });
  afterAll(async () => {
    await server?.close();
    await tdb?.close();
  });

  it('a tenant cap set by PATCH', async () => {
    const { tenantId } = await newTenant(tdb.db);
    notified.length = 0;
    const res = await server.call('PATCH', `/api/v1/admin/tenants/${tenantId}`, { max_running: 2 });
    expect(res.status).toBe(200);
    expect(notified.some((c) => c.includes('tenant'))).toBe(true);
  });

  it('a tenant created with a cap', async () => {
    notified.length = 0;
    const res = await server.call('POST', '/api/v1/admin/tenants', { name: 'capped', max_running: 1 });
    expect(res.status).toBe(201);
    expect(notified.some((c) => c.includes('tenant'))).toBe(true);
  });

  it('a revoked key', async () => {
    const created = await server.call('POST', '/api/v1/auth/api-keys', { name: 'short-lived', scopes: ['tasks:read'] });
    expect(created.status).toBe(201);
    notified.length = 0;
    const res = await server.call('DELETE', `/api/v1/auth/api-keys/${created.body.id}`);
    expect(res.status).toBe(204);
    expect(notified.some((c) => c.includes('credential'))).toBe(true);
  });
});
