// Batches successful completions into one statement per flush (River's "completer"): while one
// batch is being written, finished attempts queue up for the next. With 50 slots finishing no-op
// tasks this turns ~50 round trips and commits into one.
import type { Db } from '../storage/db.js';
import { Batcher } from '../storage/batcher.js';
import { tasksCompleteMany, type CompletionInput, type StoredEvent } from '../storage/queries/transitions.js';

export class Completer {
  readonly #batcher: Batcher<CompletionInput, StoredEvent[] | undefined>;

  /** Completions of the attempts `owner` (a worker id) holds. */
  constructor(db: Db, owner: string, opts: { maxInFlight?: number } = {}) {
    this.#batcher = new Batcher({
      maxInFlight: opts.maxInFlight ?? (db.kind === 'pglite' ? 1 : 2),
      // attempts finishing in one turn of the event loop (a claimed batch of short tasks) share a
      // statement: without the deferral the first of them flushed alone
      deferFlush: true,
      // rows per statement: bounds the jsonb parameter and the time row locks are held
      maxBatch: 500,
      flush: async (rows) => {
        const written = await tasksCompleteMany(db, owner, rows);
        return rows.map((r) => written.get(r.id));
      },
    });
  }

  /** Resolves with the task's written events, or undefined when the fence refused (lost race). */
  complete(row: CompletionInput): Promise<StoredEvent[] | undefined> {
    return this.#batcher.submit(row);
  }
}
