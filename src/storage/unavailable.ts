// Telling a database that cannot be reached (a restart, a failover, too many connections) from
// an error of the statement itself: the API answers the first with 503, the engine waits it out.

/** Socket-level failures of a database connection (Node's codes; several addresses make an AggregateError). */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * SQLSTATEs of a database that cannot write (its disk is full, its memory or I/O failing): every
 * write fails while reads may still work, so a read-only readiness probe would not see it.
 */
const STORAGE_FAILURES: Record<string, string> = {
  '53000': 'insufficient resources', '53100': 'disk full', '53200': 'out of memory', '58030': 'I/O error',
};

/** How long after the last storage failure readiness keeps reporting it. */
export const STORAGE_FAILURE_WINDOW_MS = 10_000;

/**
 * The storage failures a process's requests met, for /readiness: not ready while the last was
 * less than STORAGE_FAILURE_WINDOW_MS ago (a full disk answers reads, so only the failing writes
 * show it). Cleared by time, not by a success: a node taken out of rotation gets no writes to
 * succeed with; it comes back after the window and leaves again if the disk is still full.
 */
export class StorageHealth {
  #last: { atMs: number; code: string } | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Records `err` if it is a storage failure. */
  note(err: unknown): void {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && STORAGE_FAILURES[code] !== undefined) this.#last = { atMs: this.now(), code };
  }

  /** What is failing, while it is recent; undefined otherwise. */
  failing(): string | undefined {
    const last = this.#last;
    if (!last || this.now() - last.atMs >= STORAGE_FAILURE_WINDOW_MS) return undefined;
    return `writes failing: ${STORAGE_FAILURES[last.code]} (SQLSTATE ${last.code}) ${Math.round((this.now() - last.atMs) / 1000)} s ago`;
  }
}

/**
 * The database could not be reached or went away mid-request (a restart, a failover, too many
 * connections): nothing was done that the client cannot simply retry, so it is a 503, not a 500; and
 * a worker's write may simply be tried again once it is back.
 * SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown, cannot connect now), 53300,
 * and the storage failures below (a full disk: the statement did not commit; space may return).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  if (STORAGE_FAILURES[code] !== undefined) return true;
  // 55000 is also a statement's error (object not in prerequisite state): only this one is a connect's
  // pg's messages for a connection that is gone (no SQLSTATE: the socket closed, or a client used after it)
  if (typeof e.message === 'string' && /^Connection terminated|timeout exceeded when trying to connect|is not currently accepting connections|^Client has encountered a connection error and is not queryable|^Client was closed and is not queryable|^Query read timeout/.test(e.message)) return true;
  return Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable);
}
