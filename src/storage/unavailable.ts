// Telling a database that cannot be reached (a restart, a failover, too many connections) from
// an error of the statement itself: the API answers the first with 503, the engine waits it out.

/** Socket-level failures of a database connection (Node's codes; several addresses make an AggregateError). */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The database could not be reached or went away mid-request (a restart, a failover, too many
 * connections): nothing was done that the client cannot simply retry, so it is a 503, not a 500; and
 * a worker's write may simply be tried again once it is back.
 * SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown, cannot connect now), 53300.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  if (typeof e.message === 'string' && /^Connection terminated|timeout exceeded when trying to connect/.test(e.message)) return true;
  return Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable);
}
