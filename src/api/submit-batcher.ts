// Group commit for submits: while one insert is in flight, concurrent submits queue up and go
// together in the next one (one statement: the tasks plus the sessions they touch) — one round
// trip, one commit and one wake-up per batch instead of per row, and no added latency when the
// server is idle (a lone submit is flushed at once). Each caller
// still gets its 200 only after its row is committed. A submit may bring work of its own for the
// same transaction (its Idempotency-Key record), so key row and task row commit together.
import type { Db, Queryable } from '../storage/db.js';
import { tasksInsertMany, type NewTask } from '../storage/queries/tasks.js';
import { Batcher } from '../storage/batcher.js';

/** Rows per INSERT: bounds the statement's size and how long its commit holds locks. */
const MAX_BATCH = 256;

/** Runs inside the transaction that inserts the task, after the insert; throwing rolls it back. */
export type InTransaction = (tx: Queryable, createdAt: Date) => Promise<void>;

interface Submit {
  task: NewTask;
  inTx: InTransaction | undefined;
}

export class SubmitBatcher {
  readonly #db: Db;
  readonly #batcher: Batcher<Submit, Date>;

  /** `maxInFlight` transactions may run at once (1 on PGlite, a few on a server pool). */
  constructor(db: Db, opts: { maxInFlight: number; minBatchWhileBusy?: number; afterCommit: (count: number) => void }) {
    this.#db = db;
    this.#batcher = new Batcher({
      maxInFlight: opts.maxInFlight, maxBatch: MAX_BATCH, minBatchWhileBusy: opts.minBatchWhileBusy, flush: (batch) => this.#insert(batch), afterFlush: opts.afterCommit,
    });
  }

  submit(task: NewTask, inTx?: InTransaction): Promise<Date> {
    return this.#batcher.submit({ task, inTx });
  }

  async #insert(batch: Submit[]): Promise<Date[]> {
    const tasks = batch.map((p) => p.task);
    const insert = async (db: Queryable): Promise<Date[]> => {
      const byId = new Map((await tasksInsertMany(db, tasks)).map((r) => [r.id, r.created_at]));
      for (const p of batch) if (p.inTx) await p.inTx(db, byId.get(p.task.id)!);
      return tasks.map((t) => byId.get(t.id)!);
    };
    // the insert is one statement, hence its own transaction; an explicit one only when a
    // submit brings work that must commit with it (an Idempotency-Key record)
    return batch.some((p) => p.inTx) ? this.#db.transaction(insert) : insert(this.#db);
  }
}
