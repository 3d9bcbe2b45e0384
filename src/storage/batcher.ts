// The one batching mechanism behind group commit (submits, completions, attempt writes): items
// queue while up to `maxInFlight` flushes run; each flush takes what queued meanwhile, so an idle
// system flushes a lone item at once and a busy one shares each round trip and commit among many.
// A failed batch is retried item by item, so one bad item cannot fail its neighbours; an item
// whose own flush lost a deadlock or a serialization conflict (transient by definition) is tried
// once more before its error is passed on.

interface Pending<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions<I, O> {
  /** Flushes running at once (1 on PGlite, a few on a server pool). */
  maxInFlight: number;
  /** Items per flush: bounds parameter counts and how long one commit holds its locks. */
  maxBatch: number;
  /**
   * A flush beyond the first starts only once this many items wait (default 1). Fewer, fuller
   * batches cost less per item; a long queue still gets the extra flushes.
   */
  minBatchWhileBusy?: number;
  /**
   * Start each flush from a setImmediate, after pending I/O callbacks: for an in-process database
   * (PGlite) whose statements run on this thread, so requests that arrived meanwhile are parsed
   * and join the batch instead of each flushing alone.
   */
  deferFlush?: boolean;
  /** Writes a batch; returns one result per item, in order. */
  flush: (items: I[]) => Promise<O[]>;
}

export class Batcher<I, O> {
  readonly #o: BatcherOptions<I, O>;
  #queue: Pending<I, O>[] = [];
  #inFlight = 0;
  #flushes = 0;
  #items = 0;

  constructor(options: BatcherOptions<I, O>) {
    this.#o = options;
  }

  /** Average items per successful flush so far. */
  get itemsPerFlush(): number {
    return this.#flushes ? this.#items / this.#flushes : 0;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#o.maxInFlight && this.#queue.length >= (this.#inFlight === 0 ? 1 : (this.#o.minBatchWhileBusy ?? 1))) {
      this.#inFlight++;
      if (this.#o.deferFlush) setImmediate(() => this.#start());
      else this.#start();
    }
  }

  #start(): void {
    const batch = this.#queue.splice(0, this.#o.maxBatch);
    if (batch.length === 0) {
      this.#inFlight--; // a deferred start whose items an earlier one took
      return;
    }
    void this.#flush(batch).finally(() => {
      this.#inFlight--;
      this.#pump();
    });
  }

  async #flush(batch: Pending<I, O>[], retried = false): Promise<void> {
    let results: O[];
    try {
      results = await this.#o.flush(batch.map((p) => p.item));
    } catch (err) {
      if (batch.length > 1) await Promise.all(batch.map((p) => this.#flush([p])));
      else if (!retried && isTransient(err)) await this.#flush(batch, true);
      else batch[0]!.reject(err);
      return;
    }
    this.#flushes++;
    this.#items += batch.length;
    batch.forEach((p, i) => p.resolve(results[i]!));
  }
}

/** deadlock_detected, serialization_failure: the transaction was rolled back and may simply run again. */
const isTransient = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
};
