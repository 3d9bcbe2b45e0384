// Batches successful completions into one statement per flush (River's "completer"): while one
// batch is being written, finished attempts queue up for the next. With 50 slots finishing no-op
// tasks this turns ~50 round trips and commits into one.
import type { Db } from '../storage/db.js';
import { Batcher } from '../storage/batcher.js';
import { tasksCompleteMany, type CompletionInput, type StoredEvent } from '../storage/queries/transitions.js';

export class Completer {
  readonly #batcher: Batcher<CompletionInput, StoredEvent[] | undefined>;

  constructor(db: Db, opts: { maxInFlight?: number } = {}) {
    this.#batcher = new Batcher({
      maxInFlight: opts.maxInFlight ?? (db.kind === 'pglite' ? 1 : 2),
      deferFlush: db.kind === 'pglite',
      // rows per statement: bounds the jsonb parameter and the time row locks are held
      maxBatch: 500,
      flush: async (rows) => {
        const byTask = new Map<string, StoredEvent[]>();
        for (const e of await tasksCompleteMany(db, rows)) {
          const list = byTask.get(e.task_id);
          if (list) list.push(e);
          else byTask.set(e.task_id, [e]);
        }
        return rows.map((r) => byTask.get(r.id));
      },
    });
  }

  /** Resolves with the task's written events, or undefined when the fence refused (lost race). */
  complete(row: CompletionInput): Promise<StoredEvent[] | undefined> {
    return this.#batcher.submit(row);
  }
}
