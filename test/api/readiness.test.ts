// /readiness is public: concurrent probes share one check, so a flood of them is one database
// read at a time (not one each), and each still answers the check's report.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type { Db } from '../../src/storage/db.js';

let tdb: TestDb;
let server: TestServer;
let versionReads = 0;

beforeAll(async () => {
  tdb = await openTestDb();
  // the real database, counting the readiness check's version reads
  const counted = new Proxy(tdb.db, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return async (sql: string, params?: readonly unknown[]) => {
          if (sql.includes('max(version)')) {
            versionReads++;
            // a slow read: every probe of the burst arrives while it runs, however loaded the machine
            await new Promise((r) => setTimeout(r, 300));
          }
          return target.query(sql, params);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as Db;
  server = await startTestServer(counted, {});
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

describe('GET /readiness', () => {
  it('concurrent probes share one check; a later probe runs its own', async () => {
    versionReads = 0;
    const answers = await Promise.all(Array.from({ length: 50 }, () => server.app.inject({ method: 'GET', url: '/readiness' })));
    for (const a of answers) {
      expect(a.statusCode).toBe(200);
      expect(a.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', migrations: 'ok' } });
    }
    expect(versionReads).toBeGreaterThanOrEqual(1);
    expect(versionReads).toBeLessThan(10);
    const before = versionReads;
    expect((await server.app.inject({ method: 'GET', url: '/readiness' })).statusCode).toBe(200);
    expect(versionReads).toBe(before + 1);
  });
});
