// The Redis connection behind shared rate limits. It fails fast instead of queueing while Redis is
// away (no offline queue, 500 ms per command; after a failure the limiter stops asking until a
// PING answers), so a request is never held up by a dead or hung Redis:
// the rate-limit hook then limits per process, fails closed or open as configured, and /readiness
// reports it.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisRateLimiter } from './rate-limiter.js';

/** A Redis command that takes longer than this counts as a failure. */
const REDIS_COMMAND_TIMEOUT_MS = 500;
const REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** Reconnect backoff: 100 ms more per attempt, at most 2 s. */
const REDIS_MAX_RECONNECT_DELAY_MS = 2_000;
/** Connection errors are logged at most this often. */
const ERROR_LOG_INTERVAL_MS = 30_000;

export interface SharedRateLimits {
  limiter: RedisRateLimiter;
  /** Readiness check: resolves when Redis answers PING. Its name is the check's name. */
  redis: () => Promise<void>;
  /** Resolves once connected, or after `timeoutMs` (then requests follow the fail mode until it is). */
  connected(timeoutMs: number): Promise<boolean>;
}

export function openRedisRateLimits(url: string, log: Logger, opts: { prefix?: string } = {}): SharedRateLimits {
  let lastErrorLogMs = -Infinity;
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 100, REDIS_MAX_RECONNECT_DELAY_MS),
    lazyConnect: false,
  });
  client.on('error', (err: Error) => {
    if (Date.now() - lastErrorLogMs < ERROR_LOG_INTERVAL_MS) return;
    lastErrorLogMs = Date.now();
    // the message only: the URL (and any password in it) stays out of the log
    log.warn({ err: { message: err.message } }, 'redis unavailable for rate limits');
  });
  const limiter = new RedisRateLimiter(client, opts);
  return {
    limiter,
    async redis() {
      if (client.status !== 'ready') throw new Error(`redis ${client.status}`);
      await client.ping();
    },
    connected(timeoutMs) {
      if (client.status === 'ready') return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(timer);
          client.off('ready', onReady);
          resolve(ok);
        };
        const onReady = () => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        client.once('ready', onReady);
      });
    },
  };
}
