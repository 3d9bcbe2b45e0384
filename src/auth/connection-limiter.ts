// Caps concurrent long-lived connections (SSE, WebSocket) per principal in one process
// (PRODUCT.md §3 "Limits"). Each API process enforces its own cap: streams are pinned to the
// process that serves them, so a shared counter would only add a failure mode.
import type { Principal } from './scopes.js';

/** The key a principal's connections are counted under: one API key, or one JWT subject. */
export function principalKey(p: Pick<Principal, 'tenantId' | 'kind' | 'subjectId'>): string {
  // '/' is in no tenant id, kind or subject (ids and JWT claims are checked): joined with ':',
  // which both may hold, tenant `x` and sub `q:api_key:key_Z` made the key of tenant `x:jwt:q`'s
  // API key key_Z — one rate-limit bucket and one stream cap for two principals
  return `${p.tenantId}/${p.kind}/${p.subjectId}`;
}

export class ConnectionLimiter {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  /** `maxPerKey` concurrent slots per key (TASKGATE_MAX_STREAMS_PER_PRINCIPAL, default 1,000). */
  constructor(maxPerKey: number) {
    this.#max = maxPerKey;
  }

  get maxPerKey(): number {
    return this.#max;
  }

  /** Takes one slot for `key`; returns its release function (safe to call twice), or undefined at the cap. */
  acquire(key: string): (() => void) | undefined {
    const n = this.#open.get(key) ?? 0;
    if (n >= this.#max) return undefined;
    this.#open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left <= 0) this.#open.delete(key);
      else this.#open.set(key, left);
    };
  }

  /** Open connections for `key`. */
  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}
