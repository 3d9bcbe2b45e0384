// A start that fails after its event hub and signals have started (here: the port taken between
// the start's probe and its listen) stops them again, and the app: on an injected database
// (embedders, tests) their LISTENs stayed behind on the database's listener connection.
import { createServer, type Server as NetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import type { Db } from '../../src/storage/db.js';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await openTestDb();
});
afterAll(async () => tdb?.close());

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

describe('a start that fails late', () => {
  it('stops its hub, signals and app: no LISTEN stays on an injected database', async () => {
    const port = await freePort();
    let blocker: NetServer | undefined;
    let listening = 0;
    let listens = 0;
    // the real database; its LISTENs counted, and the port taken once the start has passed its probe
    const db = new Proxy(tdb.db, {
      get(target, prop, receiver) {
        if (prop === 'listen') {
          return async (channel: string, fn: (payload: string) => void) => {
            const unlisten = await target.listen(channel, fn);
            listening++;
            listens++;
            return async () => {
              listening--;
              await unlisten();
            };
          };
        }
        if (prop === 'query') {
          return async (sql: string, params?: readonly unknown[]) => {
            if (!blocker && sql.includes('tenant_definitions')) {
              blocker = createServer();
              await new Promise<void>((r) => blocker!.listen(port, '127.0.0.1', () => r()));
            }
            return target.query(sql, params);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Db;
    try {
      await expect(startTestServer(db, { PORT: String(port), HOST: '127.0.0.1' })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(blocker).toBeDefined();
      // PostgreSQL: the hub and the signals LISTENed, and stopped again (PGlite needs no LISTEN)
      if (tdb.db.kind === 'pg') expect(listens).toBeGreaterThan(0);
      expect(listening).toBe(0);
    } finally {
      await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    }
    // the database is still good for a server that starts
    const server = await startTestServer(tdb.db);
    try {
      expect((await server.call('GET', '/readiness', undefined, { key: null })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
