// Server PostgreSQL going away and coming back (a restart, a failover, a network cut), between
// Taskgate and a real PostgreSQL through a TCP relay the test can cut: the pool serves queries
// again, and the LISTEN connection comes back by itself — however long the outage, so hints
// (events, work, control) flow again instead of leaving every process on its slow re-reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { openPg } from '../../src/storage/pg.js';
import type { Db } from '../../src/storage/db.js';
import { isDatabaseUnavailable } from '../../src/storage/unavailable.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { startTestServer, until, waitForTask } from '../helpers/server.js';

/** A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored. */
class Relay {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Stops forwarding on every open connection without closing any (a peer gone silent); new ones still pass. */
  freeze(): void {
    for (const s of this.#sockets) s.pause();
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

describe.skipIf(!usingPostgres())('PostgreSQL going away and coming back', () => {
  let tdb: TestDb;
  let relay: Relay;
  let db: Db;

  beforeAll(async () => {
    tdb = await openTestDb();
    const url = new URL(process.env.DATABASE_URL!);
    relay = new Relay({ host: url.hostname, port: Number(url.port || 5432) });
    await relay.start();
    url.host = `127.0.0.1:${relay.port}`;
    db = await openPg({ connectionString: url.toString(), schema: tdb.schema, maxConnections: 3, onError: () => {} });
  });
  afterAll(async () => {
    await db?.close();
    await relay?.cut();
    await tdb?.close();
  });

  it("a backend terminated while its transaction waits between statements fails the next one as the database gone (SQLSTATE 57P01), which a worker waits out", async () => {
    const err = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await tdb.db.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      // the connection's error arrives while the transaction waits (a group commit, a claim window)
      await until(async () => {
        const { rows: left } = await tdb.db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0]!.pid]);
        return left.length === 0;
      }, 'the backend gone');
      await new Promise((r) => setTimeout(r, 50));
      return tx.query('SELECT 1');
    }).then(() => undefined, (e: unknown) => e);
    expect(isDatabaseUnavailable(err), String(err)).toBe(true);
    expect((await db.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('a statement whose connection went silent fails as the database gone after the query timeout, and the pool goes on with a new connection', async () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.host = `127.0.0.1:${relay.port}`;
    const quick = await openPg({ connectionString: url.toString(), schema: tdb.schema, maxConnections: 1, queryTimeoutMs: 500, onError: () => {} });
    try {
      expect((await quick.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      relay.freeze();
      const err = await quick.query('SELECT 2').then(() => undefined, (e: unknown) => e);
      expect(isDatabaseUnavailable(err), String(err)).toBe(true);
      // the silent connection was closed, not kept for the OS's keepalive: the next statement gets a new one
      expect((await quick.query<{ ok: number }>('SELECT 3 AS ok')).rows).toEqual([{ ok: 3 }]);
      // a statement that may wait says so
      expect((await quick.query<{ ok: number }>('SELECT 4 AS ok FROM pg_sleep(0.8)', [], { timeoutMs: 5_000 })).rows).toEqual([{ ok: 4 }]);
    } finally {
      await quick.close();
    }
  });

  it('queries work again and notifications reach the listener again after a multi-second outage', async () => {
    const heard: string[] = [];
    await db.listen('taskgate_reconnect_probe', (p) => heard.push(p));
    // notifications are sent straight to PostgreSQL, not through the relay
    const send = (p: string) => tdb.db.notify('taskgate_reconnect_probe', p);
    await send('before');
    await until(() => heard.includes('before'), 'a notification before the outage');

    await relay.cut();
    await expect(db.query('SELECT 1')).rejects.toThrow();
    // longer than the first reconnect attempts (0.5 s, then 1 s): they fail while it lasts
    await new Promise((r) => setTimeout(r, 2_500));
    await relay.start();

    await until(async () => (await db.query('SELECT 1 AS one').then(() => true, () => false)), 'a query through the pool', 10_000);
    let n = 0;
    await until(async () => {
      await send(`after-${++n}`);
      return heard.some((p) => p.startsWith('after-'));
    }, 'a notification after the outage (the listener connected again)', 15_000);
  });

  it('a server rides it out: readiness 503 while the database is away, tasks run again after', async () => {
    const server = await startTestServer(db);
    try {
      expect((await waitForTask(server, await server.submit({ task_definition_id: 'noop', input: {} }))).status).toBe('COMPLETED');
      await relay.cut();
      const ready = await server.call('GET', '/readiness', undefined, { key: null });
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 'not_ready', checks: { database: 'unreachable' } });
      const refused = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
      // nothing was stored: a 503 the client retries after Retry-After, not a 500
      expect(refused.status, refused.text).toBe(503);
      expect(refused.body.error.code).toBe('UNAVAILABLE');
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body.error.message).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|stack/i);
      await new Promise((r) => setTimeout(r, 2_000));
      await relay.start();
      await until(async () => (await server.call('GET', '/readiness', undefined, { key: null })).status === 200, 'readiness again', 15_000);
      const id = await server.submit({ task_definition_id: 'noop', input: {} });
      expect((await waitForTask(server, id)).status).toBe('COMPLETED');
    } finally {
      await server.close();
    }
  });
});
