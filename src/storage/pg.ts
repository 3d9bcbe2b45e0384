// Server PostgreSQL adapter over `pg`. One pool for queries and transactions, and one dedicated
// client for LISTEN, re-established with backoff if the connection drops.
import pg from 'pg';
import type { Db, QueryOptions, QueryResult, Transaction } from './db.js';

// int8 (counts, sums) as JS numbers: our values stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export interface PgOptions {
  connectionString: string;
  /** search_path for every connection (tests isolate by schema). */
  schema?: string;
  /** Pool size (default 20, config's DEFAULT_DB_POOL_SIZE); the LISTEN connection comes on top. */
  maxConnections?: number;
  /**
   * How long opening one connection may take (TCP, TLS, authentication) before it fails (default
   * 5 s): a host that accepts and never answers fails the start and each request (503) instead of
   * hanging. Statements themselves have no time limit.
   */
  connectTimeoutMs?: number;
  /**
   * How long one statement may wait for its answer before its connection is closed and it fails
   * as the database gone (default DEFAULT_QUERY_TIMEOUT_MS): a peer gone silent (a partition, a
   * failover whose old address stopped answering) held its pooled connection — and every request
   * that drew it — for the OS's keepalive, over two hours. Statements that may rightly wait
   * longer (migrations: a lock, an index build) say so with QueryOptions.timeoutMs.
   */
  queryTimeoutMs?: number;
  /** Where the connection string came from, for start-up errors (e.g. `DATABASE_URL`). */
  source?: string;
  onError?: (err: Error) => void;
}

/** Default for PgOptions.connectTimeoutMs. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default for PgOptions.queryTimeoutMs: far above any statement of the request path. */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/**
 * The database named by a connection string cannot be used at start: the string is not a
 * postgres: URL, or the first connection failed (unknown host, refused, timed out, no such role or
 * database, authentication). One line, never the password; the CLI prints it without a stack.
 */
export class DatabaseConnectError extends Error {
  override name = 'DatabaseConnectError';
}

/** `host:port/db` of a postgres: URL, without user or password; refuses other schemes and non-URLs. */
export function describeConnectionString(connectionString: string, source?: string): { where: string; password: string } {
  const from = source ? ` (${source})` : '';
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new DatabaseConnectError(`database URL${from} is not a valid URL; expected postgres://user[:password]@host[:port]/database`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new DatabaseConnectError(`database URL${from} has scheme ${url.protocol.replace(/:$/, '')}; expected postgres:// or postgresql://`);
  }
  const host = url.searchParams.get('host') || url.hostname || 'localhost';
  const port = url.searchParams.get('port') || url.port || '5432';
  const db = decoded(url.pathname.replace(/^\//, ''));
  return { where: `${host}:${port}/${db || decoded(url.username) || '?'}`, password: decoded(url.password) };
}

/** A URL component percent-decoded, or as written when it is not valid percent-encoding. */
function decoded(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component;
  }
}

/** The reason of a failed first connection, one line (several addresses tried make an AggregateError). */
function connectReason(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown; errors?: unknown; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return String(err);
  let msg = typeof e.message === 'string' ? e.message : '';
  if (!msg && Array.isArray(e.errors) && e.errors.length) msg = connectReason(e.errors[0]);
  if (!msg && typeof e.code === 'string') msg = e.code;
  return (msg || String(err)).split('\n')[0]!;
}

/**
 * Runs `issue` (which sends statements on `client`) with the socket corked, so that its statements
 * leave in one write: with pipelining, one round trip for all of them.
 */
function pipelined<T>(client: pg.PoolClient, issue: () => T): T {
  const stream = (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
  stream?.cork?.();
  try {
    return issue();
  } finally {
    stream?.uncork?.();
  }
}

/**
 * The connection string and startup `options` every connection opens with: the URL's own
 * `options` (if any), then the date and interval styles `pg` parses — a database or role whose
 * default DateStyle is German, SQL or Postgres gave every timestamp as "" or null and every
 * event's as 1970 — then the schema. (`pg` takes the URL's `options` over the config's, so they
 * are merged here and the URL goes without them.)
 */
function sessionSettings(connectionString: string, schema: string | undefined): { connectionString: string; options: string } {
  const url = new URL(connectionString);
  const own = url.searchParams.get('options');
  url.searchParams.delete('options');
  const settings = [own, '-c DateStyle=ISO,MDY -c IntervalStyle=postgres', schema ? `-c search_path=${schema}` : undefined];
  return { connectionString: own === null ? connectionString : url.toString(), options: settings.filter(Boolean).join(' ') };
}

/** Every connection's application_name: an operator finds ours in pg_stat_activity. */
const APPLICATION_NAME = 'taskgate';

export async function openPg(options: PgOptions): Promise<Db> {
  if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) throw new Error(`invalid schema name ${options.schema}`);
  const { where, password } = describeConnectionString(options.connectionString, options.source);
  // every connection: a bounded connect (a stalled host fails instead of hanging) and TCP
  // keepalive (a peer gone without a FIN or RST is noticed on an idle or LISTEN connection)
  const connection = {
    ...sessionSettings(options.connectionString, options.schema),
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    query_timeout: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    keepAlive: true,
    // idle connections too: probes start after 10 s idle instead of the OS's two hours
    keepAliveInitialDelayMillis: 10_000,
  };
  const pool = new pg.Pool({
    ...connection,
    max: options.maxConnections ?? 20,
    // statements issued back to back on one client go out without waiting for each other's
    // answers (transaction() relies on it); a lone query behaves exactly as without
    pipeline: true,
  } as pg.PoolConfig);
  pool.on('error', (err) => options.onError?.(err));
  // fail fast with a clear error if the server is not there
  try {
    const probe = await pool.connect();
    probe.release();
  } catch (err) {
    await pool.end().catch(() => {});
    let reason = connectReason(err);
    if (password) reason = reason.split(password).join('***');
    throw new DatabaseConnectError(`cannot connect to PostgreSQL at ${where}${options.source ? ` (${options.source})` : ''}: ${reason}`, { cause: err });
  }

  const listeners = new Map<string, Set<(payload: string) => void>>();
  let listenClient: pg.Client | undefined;
  let listenConnecting: Promise<pg.Client> | undefined;
  let closed = false;

  /**
   * The LISTEN connection went away (a database restart, a terminated backend, a network cut):
   * connect again, backing off from 0.5 s to 5 s, until it works or the Db is closed — hints sent
   * meanwhile are lost, and the periodic re-reads of their listeners cover them.
   */
  function reconnectListener(delayMs = 500): void {
    if (closed || listenClient || listenConnecting) return;
    setTimeout(() => {
      if (closed || listenClient || listenConnecting) return;
      ensureListener().catch(() => reconnectListener(Math.min(delayMs * 2, 5_000)));
    }, delayMs).unref();
  }

  async function connectListener(): Promise<pg.Client> {
    const client = new pg.Client(connection);
    client.on('notification', (msg) => {
      // a listener's throw here would be an uncaught exception: the process would go down
      for (const fn of listeners.get(msg.channel) ?? []) {
        try {
          fn(msg.payload ?? '');
        } catch (err) {
          options.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
      }
    });
    const lost = (err?: Error) => {
      if (err) options.onError?.(err);
      if (listenClient !== client) return;
      listenClient = undefined;
      reconnectListener();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      for (const channel of listeners.keys()) await client.query(`LISTEN "${channel}"`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  async function ensureListener(): Promise<pg.Client> {
    if (listenClient) return listenClient;
    listenConnecting ??= connectListener().then(
      (c) => {
        listenClient = c;
        listenConnecting = undefined;
        return c;
      },
      (err) => {
        listenConnecting = undefined;
        throw err;
      },
    );
    return listenConnecting;
  }

  const config = (text: string, params?: readonly unknown[], options?: QueryOptions): pg.QueryConfig =>
    ({ text, values: params as unknown[] | undefined, name: options?.name, ...(options?.timeoutMs ? { query_timeout: options.timeoutMs } : {}) }) as pg.QueryConfig;
  const query = async <T>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>> => {
    const res = await pool.query(config(sql, params, options));
    return { rows: res.rows as T[], rowCount: res.rowCount ?? 0 };
  };

  return {
    kind: 'pg',
    schema: options.schema,
    query,
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // a checked-out client has no error listener of the pool's: a connection lost between two
      // statements (a claim window's transaction waits for its attempts) would be an uncaught
      // 'error' event, i.e. a crash. The failure reaches the caller through the next statement.
      let lost: Error | undefined;
      const onError = (err: Error) => (lost = err);
      client.on('error', onError);
      // Round trips are what a short transaction costs here (a loopback round trip took ~200 µs
      // of client CPU and ~150 µs of the backend's on the benchmark machine): BEGIN goes out in
      // one write with the first statement (BEGIN only fails with the connection, which fails that
      // statement too), and commitEarly() sends the COMMIT behind the last ones.
      let begun = false;
      let commit: Promise<pg.QueryResult> | undefined;
      const send = (c: pg.QueryConfig): Promise<pg.QueryResult> => {
        if (commit) throw new Error('transaction: a statement after commitEarly()');
        // the connection went while the transaction waited between statements (its backend
        // terminated: a failover, pg_terminate_backend): that error, with its SQLSTATE, says the
        // database went away — pg's own "not queryable" of the next query said nothing of it, and a
        // running attempt's write failed its task instead of waiting for the database
        if (lost) return Promise.reject(lost);
        if (begun) return client.query(c);
        begun = true;
        return pipelined(client, () => Promise.all([client.query('BEGIN'), client.query(c)])).then((r) => r[1]);
      };
      try {
        const tx: Transaction = {
          async query<R>(sql: string, params?: readonly unknown[], options?: QueryOptions) {
            const res = await send(config(sql, params, options));
            return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
          },
          commitEarly() {
            if (!begun || commit) return;
            commit = client.query('COMMIT');
            commit.catch(() => {}); // awaited below unless a statement failed first
          },
        };
        const out = await fn(tx);
        if (begun) {
          const res = await (commit ?? client.query('COMMIT'));
          // COMMIT of a transaction a failed statement aborted answers ROLLBACK, not an error
          if (res.command !== 'COMMIT') throw new Error(`transaction ended with ${res.command}, not COMMIT`);
        }
        return out;
      } catch (err) {
        // (after a pipelined COMMIT this is a no-op with a warning: nothing is in progress)
        if (!lost && begun) await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.off('error', onError);
        // a broken connection is closed, not given back to the pool
        client.release(lost);
      }
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async listen(channel, onPayload) {
      let set = listeners.get(channel);
      const first = !set;
      if (!set) listeners.set(channel, (set = new Set()));
      set.add(onPayload);
      const client = await ensureListener();
      if (first) await client.query(`LISTEN "${channel}"`);
      return async () => {
        set!.delete(onPayload);
        if (set!.size === 0) {
          listeners.delete(channel);
          await listenClient?.query(`UNLISTEN "${channel}"`).catch(() => {});
        }
      };
    },
    async notify(channel, payload) {
      // a hint carries no data to keep: its transaction need not wait for the WAL flush (which
      // under load queued every NOTIFY behind the data commits' fsyncs)
      await pool.query({
        text: `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)`, values: [channel, payload], name: 'taskgate_notify',
      });
    },
    async close() {
      closed = true;
      const c = listenClient;
      listenClient = undefined;
      await c?.end().catch(() => {});
      await pool.end();
    },
  };
}
