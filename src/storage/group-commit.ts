// Group commit for small independent writes (attempt outcomes, events, step records): writes
// that arrive while a transaction commits share the next one. A commit costs a WAL flush
// (~1–5 ms on ordinary disks); sharing it is what lets many concurrent attempts finish per flush.
import type { Db, Queryable } from './db.js';
import { Batcher } from './batcher.js';

type Write = (tx: Queryable) => Promise<unknown>;

export class GroupCommit {
  readonly #batcher: Batcher<Write, unknown>;

  constructor(db: Db, opts: { maxInFlight?: number } = {}) {
    this.#batcher = new Batcher<Write, unknown>({
      maxInFlight: opts.maxInFlight ?? (db.kind === 'pglite' ? 1 : 2),
      maxBatch: 200,
      deferFlush: db.kind === 'pglite',
      flush: (writes) =>
        db.transaction(async (tx) => {
          const out: unknown[] = [];
          for (const w of writes) out.push(await w(tx));
          return out;
        }),
    });
  }

  /** Average writes per commit so far (metrics, benchmarks). */
  get writesPerCommit(): number {
    return this.#batcher.itemsPerFlush;
  }

  /** Runs `fn` inside a shared transaction; resolves after that transaction committed. */
  run<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#batcher.submit(fn) as Promise<T>;
  }
}
