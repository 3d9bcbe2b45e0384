// Failed authentications per client address: a token bucket each (TASKGATE_AUTH_FAILURES_PER_MIN,
// burst TASKGATE_AUTH_FAILURE_BURST), in memory. An address whose bucket is empty gets 429 before
// its credential is looked up, so a flood of made-up keys costs neither a database lookup nor a
// log line each, and guessing is slowed to the refill rate. Only invalid credentials count: a
// request without any costs nothing to refuse.

/** Addresses tracked at most; past it the oldest entry goes (a full bucket is as good as none). */
const MAX_ADDRESSES = 10_000;

export class AuthFailureLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMin: number, burst: number, private readonly now: () => number = Date.now) {
    this.#perMs = perMin / 60_000;
    this.#burst = burst;
  }

  #refilled(ip: string): { tokens: number; at: number } | undefined {
    const b = this.#buckets.get(ip);
    if (!b) return undefined;
    const t = this.now();
    b.tokens = Math.min(this.#burst, b.tokens + (t - b.at) * this.#perMs);
    b.at = t;
    if (b.tokens >= this.#burst) {
      this.#buckets.delete(ip);
      return undefined;
    }
    return b;
  }

  /** Milliseconds until `ip` may try again; 0 when it may now. */
  retryAfterMs(ip: string): number {
    const b = this.#refilled(ip);
    return !b || b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / this.#perMs);
  }

  /** Counts one failed authentication from `ip`. */
  failed(ip: string): void {
    let b = this.#refilled(ip);
    if (!b) {
      if (this.#buckets.size >= MAX_ADDRESSES) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.#burst, at: this.now() };
      this.#buckets.set(ip, b);
    }
    b.tokens = Math.max(0, b.tokens - 1);
  }
}
