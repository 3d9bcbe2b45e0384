// Caps concurrent SSE/WebSocket streams per principal (PRODUCT.md §3 "Limits"). In-process
// only: each API process enforces its own cap. Minimal stand-in until src/auth/ ships a
// shared ConnectionLimiter; the interface is the same acquire/release pair.

export interface StreamLimiter {
  /** Takes one slot for `key`; returns the release function, or undefined when the cap is reached. */
  acquire(key: string): (() => void) | undefined;
  /** Open streams for `key` (tests, metrics). */
  count(key: string): number;
}

export class ConnectionLimiter implements StreamLimiter {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  /** `maxPerKey` concurrent slots per key. */
  constructor(maxPerKey: number) {
    this.#max = maxPerKey;
  }

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

  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}
