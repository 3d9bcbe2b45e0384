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

/** The bucket arithmetic shared by both stores (the Lua script mirrors it line for line). */
export function refill(tokens: number, elapsedMs: number, limit: BucketLimit): number {
  return Math.min(limit.burst, tokens + Math.max(0, elapsedMs) * (limit.perMinute / 60_000));
}

export function outcome(tokensAfter: number, allowed: boolean, limit: BucketLimit): TakeResult {
  const perMs = limit.perMinute / 60_000;
  return {
    allowed,
    remaining: Math.max(0, Math.floor(tokensAfter)),
    resetMs: Math.ceil((limit.burst - tokensAfter) / perMs),
    retryAfterMs: allowed ? 0 : Math.ceil((1 - tokensAfter) / perMs),
  };
}

/** Buckets in this process. Idle full buckets are dropped so memory follows active principals. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; atMs: number; fullAtMs: number }>();
  readonly #now: () => number;
  #takes = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    const now = this.#now();
    if (++this.#takes % 10_000 === 0) this.#sweep(now);
    const b = this.#buckets.get(key);
    let tokens = b ? refill(b.tokens, now - b.atMs, limit) : limit.burst;
    const allowed = tokens >= 1;
    if (allowed) tokens -= 1;
    const res = outcome(tokens, allowed, limit);
    this.#buckets.set(key, { tokens, atMs: now, fullAtMs: now + res.resetMs });
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
 * KEYS[1] bucket hash; ARGV burst, tokens per ms. Returns {allowed, tokens after (string: Lua
 * numbers are truncated to integers on the way out)}. TIME makes every node use Redis's clock.
 */
const TAKE_LUA = `
local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
else
  local elapsed = now - at
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tokens + elapsed * per_ms)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / per_ms) + 1000)
return {allowed, tostring(tokens)}
`;

interface TakeCommand {
  taskgateTakeToken(key: string, burst: number, perMs: number): Promise<[number, string]>;
}

/** Buckets in Redis, shared by every node pointing at it. */
export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis & TakeCommand;
  readonly #prefix: string;

  /** `redis` should fail fast when disconnected (enableOfflineQueue: false), or takes would hang. */
  constructor(redis: Redis, opts: { prefix?: string } = {}) {
    redis.defineCommand('taskgateTakeToken', { numberOfKeys: 1, lua: TAKE_LUA });
    this.#redis = redis as Redis & TakeCommand;
    this.#prefix = opts.prefix ?? 'taskgate:rl:';
  }

  async take(key: string, limit: BucketLimit): Promise<TakeResult> {
    const [allowed, tokens] = await this.#redis.taskgateTakeToken(this.#prefix + key, limit.burst, limit.perMinute / 60_000);
    return outcome(Number(tokens), allowed === 1, limit);
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
