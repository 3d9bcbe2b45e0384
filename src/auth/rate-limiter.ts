// Token buckets per principal (PRODUCT.md §3 "Limits, rate limits"): `burst` tokens, refilled at
// `perMinute / 60` per second. In memory for one process, or in Redis (one Lua script per take,
// atomic, on Redis's clock) so that every API node draws from the same bucket.
import type { Redis } from 'ioredis';

export interface BucketLimit {
  perMinute: number;
  burst: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this take. */
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
  /** Milliseconds until one token is available (0 when allowed). */
  retryAfterMs: number;
}

export interface RateLimiter {
  /** Takes one token from `key`'s bucket. Rejects when the backing store is unreachable. */
  take(key: string, limit: BucketLimit): Promise<TakeResult>;
  close(): Promise<void>;
}

/**
 * The bucket arithmetic shared by both stores (the Lua script mirrors it line for line), in
 * integer units of 1/60,000 token: one ms refills `perMinute` units and a request costs 60,000,
 * so no rounding ever loses or invents a token (a float 0.1 × 10 is 0.9999…, and a token late).
 */
export const UNITS_PER_TOKEN = 60_000;

export function refill(units: number, elapsedMs: number, limit: BucketLimit): number {
  return Math.min(limit.burst * UNITS_PER_TOKEN, units + Math.max(0, elapsedMs) * limit.perMinute);
}

export function outcome(unitsAfter: number, allowed: boolean, limit: BucketLimit): TakeResult {
  return {
    allowed,
    remaining: Math.floor(unitsAfter / UNITS_PER_TOKEN),
    resetMs: Math.ceil((limit.burst * UNITS_PER_TOKEN - unitsAfter) / limit.perMinute),
    retryAfterMs: allowed ? 0 : Math.ceil((UNITS_PER_TOKEN - unitsAfter) / limit.perMinute),
  };
}

/** Buckets in this process. Idle full buckets are dropped so memory follows active principals. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #buckets = new Map<string, { units: number; atMs: number; fullAtMs: number }>();
  readonly #now: () => number;
  #takes = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    const now = this.#now();
    if (++this.#takes % 10_000 === 0) this.#sweep(now);
    const b = this.#buckets.get(key);
    let units = b ? refill(b.units, now - b.atMs, limit) : limit.burst * UNITS_PER_TOKEN;
    const allowed = units >= UNITS_PER_TOKEN;
    if (allowed) units -= UNITS_PER_TOKEN;
    const res = outcome(units, allowed, limit);
    this.#buckets.set(key, { units, atMs: now, fullAtMs: now + res.resetMs });
    return res;
  }

  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (b.fullAtMs <= now) this.#buckets.delete(k);
  }

  async close(): Promise<void> {
    this.#buckets.clear();
  }
}

/**
 * KEYS[1] bucket hash; ARGV capacity and cost in units, units per ms (= perMinute). Returns
 * {allowed, units after} (integers, exact in Lua's doubles). TIME puts every node on Redis's clock.
 */
const TAKE_LUA = `
local capacity = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local per_ms = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'units', 'at')
local units = tonumber(b[1])
local at = tonumber(b[2])
if units == nil or at == nil then
  units = capacity
else
  local elapsed = now - at
  if elapsed < 0 then elapsed = 0 end
  units = math.min(capacity, units + elapsed * per_ms)
end
local allowed = 0
if units >= cost then
  units = units - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'units', string.format('%.0f', units), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - units) / per_ms) + 1000)
return {allowed, string.format('%.0f', units)}
`;

interface TakeCommand {
  taskgateTakeToken(key: string, capacity: number, cost: number, perMs: number): Promise<[number, string]>;
}

/** After a failed take, how long until the next probe of a Redis that is down or not answering. */
const PROBE_INTERVAL_MS = 1_000;

/**
 * Buckets in Redis, shared by every node pointing at it. A failed take (refused, or no answer
 * within the client's command timeout) marks the store down: until a background PING answers,
 * takes reject at once instead of each waiting out the timeout on a Redis that hangs with its
 * connection open (the rate-limit hook then falls back — local buckets, 503 or open — without delay).
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis & TakeCommand;
  readonly #prefix: string;
  readonly #now: () => number;
  #down = false;
  #nextProbeMs = 0;
  #probing = false;

  /** `redis` should fail fast when disconnected (enableOfflineQueue: false), or takes would hang. */
  constructor(redis: Redis, opts: { prefix?: string; now?: () => number } = {}) {
    redis.defineCommand('taskgateTakeToken', { numberOfKeys: 1, lua: TAKE_LUA });
    this.#redis = redis as Redis & TakeCommand;
    this.#prefix = opts.prefix ?? 'taskgate:rl:';
    this.#now = opts.now ?? Date.now;
    // a (re)connection that passed the client's ready check answers again
    redis.on('ready', () => {
      this.#down = false;
    });
  }

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    if (this.#down) {
      this.#probe();
      throw new Error('rate-limit store unavailable (its last command failed; probing again in the background)');
    }
    try {
      const [allowed, units] = await this.#redis.taskgateTakeToken(this.#prefix + key, limit.burst * UNITS_PER_TOKEN, UNITS_PER_TOKEN, limit.perMinute);
      return outcome(Number(units), allowed === 1, limit);
    } catch (err) {
      if (!this.#down) {
        this.#down = true;
        this.#nextProbeMs = this.#now() + PROBE_INTERVAL_MS;
      }
      throw err;
    }
  }

  /** One PING at a time, at most once a second: its answer brings the store back. */
  #probe(): void {
    if (this.#probing || this.#now() < this.#nextProbeMs) return;
    this.#probing = true;
    this.#redis.ping().then(
      () => {
        this.#down = false;
      },
      () => {
        this.#nextProbeMs = this.#now() + PROBE_INTERVAL_MS;
      },
    ).finally(() => {
      this.#probing = false;
    });
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
