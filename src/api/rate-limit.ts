// Per-principal rate limits on every authenticated route (PRODUCT.md §3). Three buckets per
// principal: `write` (submits and every other non-GET) at the configured budget (default 60/min,
// burst 10, or the tenant's override), `control` (cancel, pause, resume, approval decisions) the
// same size apart from it, and `read` (GET: status reads, lists, events) at `readMultiplier` times
// that. Public routes (health, readiness, metrics, docs) and stream connects (bounded by the
// per-principal stream cap instead) are not limited. The shared store failing → this process's own
// buckets (default), 503, or no limit, as TASKGATE_RATE_LIMIT_FAIL_MODE says (counted, warned).
import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { ApiError } from '../contract/errors.js';
import { principalKey } from '../auth/connection-limiter.js';
import { MemoryRateLimiter, type BucketLimit, type RateLimiter, type TakeResult } from '../auth/rate-limiter.js';
import type { RateLimitFailMode } from '../config/security.js';

/** Warn about an unreachable store at most this often (every failure is counted). */
const STORE_WARN_INTERVAL_MS = 30_000;

/** `taskgate_rate_limit_store_errors_total{outcome}`: what a request got instead of the shared bucket. */
const STORE_ERROR_OUTCOME: Record<RateLimitFailMode, string> = { local: 'local', closed: 'refused', open: 'allowed' };
const STORE_ERROR_WARNING: Record<RateLimitFailMode, string> = {
  local: "limiting with this process's own buckets",
  closed: 'failing closed',
  open: 'failing open',
};

export interface RateLimitOptions {
  limiter: RateLimiter;
  /** Write budget per principal and minute; 0 disables rate limiting. */
  perMinute: number;
  burst: number;
  /** Reads get this many times the write budget. */
  readMultiplier: number;
  /**
   * `limiter` rejecting (its store unreachable): `local` takes from in-process buckets of the same
   * budgets, `closed` answers 503, `open` lets the request through unlimited. Default `local`.
   */
  failMode?: RateLimitFailMode;
  registry: Registry;
  now?: () => number;
}

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  return (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

/** What a limited answer carries about its budget (routes that call another in-process pass them on). */
export const RATE_LIMIT_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after'] as const;

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `control`: the route stops or steers work (cancel, pause, resume, an approval's decision) and
     * draws on a bucket of its own, the size of the write budget — a cancel right after a burst of
     * submits must not wait for the burst to refill.
     */
    rateBudget?: 'control';
  }
}

export type Budget = 'read' | 'write' | 'control';

export function budgetOf(method: string, rateBudget?: 'control'): Budget {
  if (rateBudget) return rateBudget;
  return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
}

export function registerRateLimit(app: FastifyInstance, opts: RateLimitOptions): void {
  if (opts.perMinute === 0) return;
  const now = opts.now ?? Date.now;
  const limited = counter(opts.registry, 'taskgate_rate_limited_total', 'Requests refused with 429', ['budget']);
  const storeErrors = counter(opts.registry, 'taskgate_rate_limit_store_errors_total', 'Rate-limit store failures, by what the request got instead (local, refused, allowed)', ['outcome']);
  const failMode = opts.failMode ?? 'local';
  // made at the first failure; kept across outages (not cleared when the store answers again): a
  // bucket refills by the time elapsed, so a flapping store hands no client a fresh burst
  let local: MemoryRateLimiter | undefined;
  if (failMode === 'local') app.addHook('onClose', async () => local?.close());
  let lastWarnMs = -Infinity;

  app.addHook('onRequest', async (req, reply) => {
    if (!req.routeOptions.url || req.routeOptions.config.public || req.routeOptions.config.rateLimit === false || !req.principal) return;
    const budget = budgetOf(req.method, req.routeOptions.config.rateBudget);
    const base = req.principal.rateLimit ?? { per_minute: opts.perMinute, burst: opts.burst };
    const factor = budget === 'read' ? opts.readMultiplier : 1;
    const limit: BucketLimit = { perMinute: base.per_minute * factor, burst: base.burst * factor };
    const key = `${budget}:${principalKey(req.principal)}`;
    let res: TakeResult;
    try {
      res = await opts.limiter.take(key, limit);
    } catch (err) {
      storeErrors.inc({ outcome: STORE_ERROR_OUTCOME[failMode] });
      if (now() - lastWarnMs >= STORE_WARN_INTERVAL_MS) {
        lastWarnMs = now();
        req.log.warn({ err: { message: (err as Error).message } }, `rate-limit store unreachable: ${STORE_ERROR_WARNING[failMode]}`);
      }
      if (failMode === 'closed') throw new ApiError('UNAVAILABLE', 'Rate limiting is unavailable; try again shortly', undefined, { 'retry-after': '1' });
      if (failMode === 'open') return;
      local ??= new MemoryRateLimiter({ now });
      res = await local.take(key, limit);
    }
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(limit.perMinute),
      'x-ratelimit-remaining': String(res.remaining),
      'x-ratelimit-reset': String(Math.ceil((now() + res.resetMs) / 1000)),
    };
    reply.headers(headers);
    if (!res.allowed) {
      limited.inc({ budget });
      const retryAfterS = Math.max(1, Math.ceil(res.retryAfterMs / 1000));
      throw new ApiError(
        'RATE_LIMITED',
        `Rate limit exceeded: ${limit.perMinute} ${budget === 'read' ? 'reads' : 'requests'} per minute, bursts of ${limit.burst}; retry in ${retryAfterS} s`,
        { budget, per_minute: limit.perMinute, burst: limit.burst, retry_after_s: retryAfterS },
        { ...headers, 'retry-after': String(retryAfterS) },
      );
    }
  });
}
