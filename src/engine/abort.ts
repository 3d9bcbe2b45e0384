// Why an attempt's AbortSignal fired. The reason decides what the runner writes afterwards.
export type AbortKind = 'cancel' | 'timeout' | 'lease_lost' | 'shutdown' | 'pause' | 'suspend';

export class AttemptAborted extends Error {
  override name = 'AttemptAborted';
  constructor(readonly kind: AbortKind, message: string) {
    super(message);
  }
}

/** Why `x` (an AbortSignal or an AttemptControl) was aborted, if it was aborted by us. */
export function abortKindOf(x: { readonly reason: unknown }): AbortKind | undefined {
  const r = x.reason;
  return r instanceof AttemptAborted ? r.kind : undefined;
}

/**
 * An attempt's abort switch. Its AbortSignal is only made when something reads it (an executor
 * that waits on I/O): most short tasks never do, and an AbortController plus the runner's abort
 * listener cost ~4 µs per attempt, a twentieth of a no-op task's server CPU. The runner's grace
 * timer hooks `onAbort` instead of listening on the signal.
 */
export class AttemptControl {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #onAbort: (() => void) | undefined;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Aborts once (later calls are ignored, as with AbortController). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const f = this.#onAbort;
    this.#onAbort = undefined;
    f?.();
  }

  throwIfAborted(): void {
    if (this.#aborted) throw this.#reason;
  }

  /** The one callback run on abort (at once if already aborted). */
  onAbort(f: () => void): void {
    if (this.#aborted) f();
    else this.#onAbort = f;
  }

  offAbort(): void {
    this.#onAbort = undefined;
  }
}
