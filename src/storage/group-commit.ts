// Group commit for small independent writes (attempt outcomes, events, step records): while one
// transaction is committing, new writes queue up and go together in the next one. A commit costs
// a WAL flush (~1–5 ms on ordinary disks); sharing it among every write that arrived meanwhile is
// what lets hundreds of concurrent attempts finish per second instead of one per flush.
// If a batch fails, each write is retried alone so one bad write cannot fail its neighbours.
import type { Db, Queryable } from './db.js';

interface Pending {
  fn: (tx: Queryable) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Writes per transaction; bounds the time one commit holds its row locks. */
const MAX_BATCH = 200;

export class GroupCommit {
  readonly #db: Db;
  readonly #maxInFlight: number;
  #queue: Pending[] = [];
  #inFlight = 0;
  #batches = 0;
  #writes = 0;

  constructor(db: Db, opts: { maxInFlight?: number } = {}) {
    this.#db = db;
    this.#maxInFlight = opts.maxInFlight ?? (db.kind === 'pglite' ? 1 : 2);
  }

  /** Average writes per commit so far (metrics, benchmarks). */
  get writesPerCommit(): number {
    return this.#batches ? this.#writes / this.#batches : 0;
  }

  /** Runs `fn` inside a shared transaction; resolves after that transaction committed. */
  run<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      this.#inFlight++;
      void this.#flush(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #flush(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const p = batch[0]!;
      try {
        p.resolve(await this.#db.transaction((tx) => p.fn(tx)));
      } catch (err) {
        p.reject(err);
      }
      this.#count(1);
      return;
    }
    let results: unknown[];
    try {
      results = await this.#db.transaction(async (tx) => {
        const out: unknown[] = [];
        for (const p of batch) out.push(await p.fn(tx));
        return out;
      });
    } catch {
      // isolate the failure: each write alone
      await Promise.all(batch.map((p) => this.#flush([p])));
      return;
    }
    this.#count(batch.length);
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  #count(writes: number): void {
    this.#batches++;
    this.#writes += writes;
  }
}
