// A database host that accepts TCP and never answers (a stalled server, a black-holed proxy): the
// start fails within the connect timeout with one clear line instead of hanging, and a request
// whose pool connection times out is a 503 UNAVAILABLE with Retry-After — no PostgreSQL needed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import Fastify from 'fastify';
import pg from 'pg';
import { DatabaseConnectError, openPg } from '../../src/storage/pg.js';
import { errorHandler } from '../../src/api/errors.js';
import { isDatabaseUnavailable } from '../../src/storage/unavailable.js';

let server: Server;
let port = 0;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('a database that accepts and never answers', () => {
  it('openPg rejects within the default connect timeout (5 s) with one clear line', async () => {
    const started = Date.now();
    const err = await openPg({ connectionString: `postgres://x:s3cret@127.0.0.1:${port}/x` }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(DatabaseConnectError);
    expect((err as Error).message).toBe(`cannot connect to PostgreSQL at 127.0.0.1:${port}/x: Connection terminated due to connection timeout`);
    expect((err as Error).message).not.toContain('s3cret');
    expect(elapsed).toBeGreaterThanOrEqual(4_500);
    expect(elapsed).toBeLessThan(8_000);
  }, 20_000);

  it('a shorter connectTimeoutMs is honoured', async () => {
    const started = Date.now();
    await expect(openPg({ connectionString: `postgres://x@127.0.0.1:${port}/x`, connectTimeoutMs: 300, source: 'DATABASE_URL' }))
      .rejects.toThrow(`cannot connect to PostgreSQL at 127.0.0.1:${port}/x (DATABASE_URL): Connection terminated due to connection timeout`);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("a pool's connect timeout and a wait for a pooled connection are 503 UNAVAILABLE with Retry-After: 1", async () => {
    const pool = new pg.Pool({ connectionString: `postgres://x@127.0.0.1:${port}/x`, connectionTimeoutMillis: 300, max: 1 });
    pool.on('error', () => {});
    // the first waits on a new connection, the second for the pool's only slot
    const errs = await Promise.all([pool.query('SELECT 1').catch((e: unknown) => e), pool.query('SELECT 1').catch((e: unknown) => e)]);
    await pool.end().catch(() => {});
    const messages = errs.map((e) => (e as Error).message).sort();
    expect(messages).toEqual(['Connection terminated due to connection timeout', 'timeout exceeded when trying to connect']);
    const app = Fastify({ logger: false });
    app.setErrorHandler(errorHandler);
    app.get('/e/:i', async (req) => {
      throw errs[Number((req.params as { i: string }).i)];
    });
    for (const i of [0, 1]) {
      expect(isDatabaseUnavailable(errs[i])).toBe(true);
      const res = await app.inject({ method: 'GET', url: `/e/${i}` });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json().error.code).toBe('UNAVAILABLE');
    }
    await app.close();
  });
});

describe('connection strings refused before connecting', () => {
  it('a scheme other than postgres: / postgresql:, or no URL at all', async () => {
    await expect(openPg({ connectionString: 'mysql://u:pw@db/x', source: 'DATABASE_URL' }))
      .rejects.toThrow('database URL (DATABASE_URL) has scheme mysql; expected postgres:// or postgresql://');
    await expect(openPg({ connectionString: 'not a url' })).rejects.toBeInstanceOf(DatabaseConnectError);
  });
});
