// Batches successful completions into one statement per flush (River's "completer"): while one
// batch is being written, finished attempts queue up for the next. With 50 slots finishing no-op
// tasks this turns ~50 round trips and commits into one.
import type { Db } from '../storage/db.js';
import { tasksCompleteMany, type CompletionInput, type StoredEvent } from '../storage/queries/transitions.js';

/** Rows per statement: bounds the size of one jsonb parameter and the time locks are held. */
const MAX_BATCH = 500;

interface Pending {
  row: CompletionInput;
  resolve: (events: StoredEvent[] | undefined) => void;
  reject: (err: unknown) => void;
}

export class Completer {
  readonly #db: Db;
  readonly #maxInFlight: number;
  #queue: Pending[] = [];
  #inFlight = 0;

  constructor(db: Db, opts: { maxInFlight?: number } = {}) {
    this.#db = db;
    this.#maxInFlight = opts.maxInFlight ?? (db.kind === 'pglite' ? 1 : 2);
  }

  /** Resolves with the task's written events, or undefined when the fence refused (lost race). */
  complete(row: CompletionInput): Promise<StoredEvent[] | undefined> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ row, resolve, reject });
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
    try {
      const events = await tasksCompleteMany(this.#db, batch.map((p) => p.row));
      const byTask = new Map<string, StoredEvent[]>();
      for (const e of events) {
        const list = byTask.get(e.task_id);
        if (list) list.push(e);
        else byTask.set(e.task_id, [e]);
      }
      for (const p of batch) p.resolve(byTask.get(p.row.id));
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err);
      else await Promise.all(batch.map((p) => this.#flush([p])));
    }
  }
}
