// The one storage seam: every SQL statement in Taskgate goes through `Queryable`. Two adapters
// implement it (pg.ts for server PostgreSQL, pglite.ts for the embedded database).

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/** QueryOptions.timeoutMs for a statement that may wait as long as it needs (a timer's longest, ~24.8 days). */
export const NO_QUERY_TIMEOUT_MS = 2 ** 31 - 1;

export interface QueryOptions {
  /**
   * Prepares the statement once per connection under this name and reuses its plan (server
   * PostgreSQL; PGlite ignores it). Only for hot statements whose text never changes.
   */
  name?: string;
  /** Server PostgreSQL: how long this statement may wait for its answer (default: the pool's, PgOptions.queryTimeoutMs). */
  timeoutMs?: number;
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>>;
}

/** The statements of one transaction (Db.transaction). */
export interface Transaction extends Queryable {
  /**
   * Sends the COMMIT now, behind the statements already issued and still in flight, instead of
   * after the transaction's function returns: on server PostgreSQL those statements and the COMMIT
   * share one round trip (the connection pipelines them). No statement may be issued after it.
   * The transaction still commits only if every statement succeeded, and Db.transaction resolves
   * only once the COMMIT has. PGlite commits when the function returns; there it does nothing.
   */
  commitEarly(): void;
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** The schema on the search_path when not `public` (tests and side-by-side deployments). */
  readonly schema: string | undefined;
  /** Runs `fn` in one transaction; rolls back if it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs several statements separated by semicolons, without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** LISTEN on a channel; returns the function that stops listening. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /**
   * PGlite only (absent on server PostgreSQL, whose backup is pg_dump): the data directory as one
   * gzip'd tarball, taken online — a CHECKPOINT, then a copy made while no statement or transaction
   * runs, so it is a crash image PostgreSQL recovers from (`taskgate restore` loads it). Built
   * whole in memory: about the size of the compressed directory.
   */
  dumpDataDir?(): Promise<Blob>;
  close(): Promise<void>;
}

/** Channel names are namespaced per schema so tests sharing one server do not cross-talk. */
export function channelName(schema: string | undefined, base: string): string {
  return schema && schema !== 'public' ? `${base}_${schema}` : base;
}
