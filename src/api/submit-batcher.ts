// Group commit for submits: while one insert transaction is in flight, concurrent submits queue
// up and go together in the next one — one commit and one wake-up per batch instead of per row,
// and no added latency when the server is idle (a lone submit is flushed at once). Each caller
// still gets its 200 only after its row is committed. A submit may bring work of its own for the
// same transaction (its Idempotency-Key record), so key row and task row commit together.
import type { Db, Queryable } from '../storage/db.js';
import { tasksInsertMany, type NewTask } from '../storage/queries/tasks.js';
import { sessionsTouch } from '../storage/queries/sessions.js';
import { Batcher } from '../storage/batcher.js';

/** Rows per INSERT: 20 columns × 256 rows stays well under the 65,535 bind-parameter limit. */
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
  constructor(db: Db, opts: { maxInFlight: number; afterCommit: (count: number) => void }) {
    this.#db = db;
    this.#batcher = new Batcher({ maxInFlight: opts.maxInFlight, maxBatch: MAX_BATCH, flush: (batch) => this.#insert(batch), afterFlush: opts.afterCommit });
  }

  submit(task: NewTask, inTx?: InTransaction): Promise<Date> {
    return this.#batcher.submit({ task, inTx });
  }

  async #insert(batch: Submit[]): Promise<Date[]> {
    const tasks = batch.map((p) => p.task);
    return this.#db.transaction(async (tx) => {
      const rows = await tasksInsertMany(tx, tasks);
      const sessions = new Map<string, { tenantId: string; id: string; userId: string; count: number; researchStrategy: string | null }>();
      for (const t of tasks) {
        if (!t.session_id) continue;
        const key = `${t.tenant_id}\u0000${t.session_id}`;
        const s = sessions.get(key);
        if (s) s.count++;
        else sessions.set(key, { tenantId: t.tenant_id, id: t.session_id, userId: t.user_id, count: 1, researchStrategy: (t.options.research_strategy as string | undefined) ?? null });
      }
      for (const s of sessions.values()) await sessionsTouch(tx, s);
      const byId = new Map(rows.map((r) => [r.id, r.created_at]));
      for (const p of batch) if (p.inTx) await p.inTx(tx, byId.get(p.task.id)!);
      return tasks.map((t) => byId.get(t.id)!);
    });
  }
}
