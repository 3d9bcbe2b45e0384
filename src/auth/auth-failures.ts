// Failed authentications per client address: a token bucket each (TASKGATE_AUTH_FAILURES_PER_MIN,
// burst TASKGATE_AUTH_FAILURE_BURST), in memory, with the rate limiter's bucket arithmetic. An
// address whose bucket is empty gets 429 before its credential is looked up, so a flood of
// made-up keys costs neither a database lookup nor a log line each, and guessing is slowed to the
// refill rate. Only invalid credentials take a token: a request without any costs nothing to refuse.
// An IPv6 client is one bucket per /64: a single host is routinely given a whole /64, and one
// address per try from it would have been a fresh bucket each time.
import { outcome, refill, UNITS_PER_TOKEN, type BucketLimit } from './rate-limiter.js';

/** Addresses tracked at most; past it the oldest entry goes (a full bucket is as good as none). */
const MAX_ADDRESSES = 10_000;

/**
 * The 16-bit groups of an IPv6 address (a zone index dropped, an embedded IPv4 tail as two
 * groups), or undefined when it is not one.
 */
function ipv6Groups(ip: string): number[] | undefined {
  const addr = ip.split('%')[0]!; // a zone index names the link, not the host
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined): number[] | undefined => {
    const out: number[] = [];
    const pieces = part ? part.split(':') : [];
    for (const [i, g] of pieces.entries()) {
      if (i === pieces.length - 1 && g.includes('.')) {
        const v4 = g.split('.');
        if (v4.length !== 4 || v4.some((o) => !/^\d{1,3}$/.test(o) || Number(o) > 255)) return undefined;
        const [a, b, c, d] = v4.map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-f]{1,4}$/i.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const gap = 8 - head.length - tail.length;
  return gap >= 1 ? [...head, ...Array<number>(gap).fill(0), ...tail] : undefined;
}

const ipv4Of = (g: number[]) => `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;

/**
 * The bucket an address counts against: an IPv4 address itself; an IPv6 address its /64
 * (`2001:db8:0:1::/64`: one host is routinely given a whole /64), except where the address
 * stands for one IPv4 host — IPv4-mapped (`::ffff:a.b.c.d`, in any notation) and NAT64's
 * well-known prefix (`64:ff9b::a.b.c.d`: a translator's clients) count as that IPv4 address —
 * and the addresses under `::/96` (loopback, IPv4-compatible), each its own. Anything else (not
 * an address) as given.
 */
export function addressBucket(ip: string): string {
  if (!ip.includes(':')) return ip;
  const g = ipv6Groups(ip);
  if (!g) return ip;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return ipv4Of(g);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return ipv4Of(g);
  if (zeros(0, 6)) return g.map((x) => x.toString(16)).join(':');
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

export class AuthFailureLimiter {
  readonly #limit: BucketLimit;
  readonly #buckets = new Map<string, { units: number; atMs: number }>();
  /** Credential lookups running per address, and the requests waiting to start one. */
  readonly #lookups = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(perMinute: number, burst: number, private readonly now: () => number = Date.now) {
    this.#limit = { perMinute, burst };
  }

  /** The bucket's units now; a full one is forgotten. */
  #units(ip: string, now: number): number {
    const b = this.#buckets.get(ip);
    const units = b ? refill(b.units, now - b.atMs, this.#limit) : this.#limit.burst * UNITS_PER_TOKEN;
    if (b && units >= this.#limit.burst * UNITS_PER_TOKEN) this.#buckets.delete(ip);
    return units;
  }

  /** Failed authentications allowed per minute (the refill rate). */
  get perMinute(): number {
    return this.#limit.perMinute;
  }

  /** Why `ip` is refused now (when it may try again, when its bucket is full); undefined when it may try. */
  refusal(ip: string): { retryAfterMs: number; resetMs: number } | undefined {
    const units = this.#units(ip, this.now());
    if (units >= UNITS_PER_TOKEN) return undefined;
    const { retryAfterMs, resetMs } = outcome(units, false, this.#limit);
    return { retryAfterMs, resetMs };
  }

  /** Milliseconds until `ip` may try again; 0 when it may now. */
  retryAfterMs(ip: string): number {
    return this.refusal(ip)?.retryAfterMs ?? 0;
  }

  /**
   * Lets `ip` start one more credential lookup, or says why not: no more lookups at once than the
   * failures its bucket has left, the rest waiting for one to end — checked only before the
   * lookup and counted after it, 200 made-up tokens sent at once while the key set was slow were
   * 200 lookups (and 401s) against a budget of 5. Valid credentials are only ever delayed (by a
   * lookup's time, and only while the address is near its limit), never refused. Pair with end().
   */
  async begin(ip: string): Promise<{ retryAfterMs: number; resetMs: number } | undefined> {
    for (;;) {
      const refused = this.refusal(ip);
      if (refused) return refused;
      const left = Math.floor(this.#units(ip, this.now()) / UNITS_PER_TOKEN);
      let lookups = this.#lookups.get(ip);
      if (!lookups) this.#lookups.set(ip, (lookups = { running: 0, waiting: [] }));
      if (lookups.running < left) {
        lookups.running++;
        return undefined;
      }
      await new Promise<void>((r) => lookups.waiting.push(r));
    }
  }

  /** A lookup begin() let start has ended; `failed`: the credential was not valid (a token taken). */
  end(ip: string, failed: boolean): void {
    if (failed) this.failed(ip);
    const lookups = this.#lookups.get(ip);
    if (!lookups) return;
    lookups.running--;
    // every waiter looks again: one may start, or all be refused now that the bucket is empty
    for (const wake of lookups.waiting.splice(0)) wake();
    if (lookups.running === 0 && lookups.waiting.length === 0) this.#lookups.delete(ip);
  }

  /** Counts one failed authentication from `ip`. */
  failed(ip: string): void {
    const now = this.now();
    const units = Math.max(0, this.#units(ip, now) - UNITS_PER_TOKEN);
    if (!this.#buckets.has(ip) && this.#buckets.size >= MAX_ADDRESSES) this.#buckets.delete(this.#buckets.keys().next().value!);
    this.#buckets.set(ip, { units, atMs: now });
  }
}
