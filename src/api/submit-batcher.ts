// Group commit for submits: while one insert transaction is in flight, concurrent submits queue
// up and go together in the next one — one commit and one wake-up per batch instead of per row,
// and no added latency when the server is idle (a lone submit is flushed at once). Each caller
// still gets its 200 only after its row is committed. A submit may bring work of its own for the
// same transaction (its Idempotency-Key record), so key row and task row commit together.
import type { Db, Queryable } from '../storage/db.js';
import { tasksInsertMany, type NewTask } from '../storage/queries/tasks.js';
import { sessionsTouch } from '../storage/queries/sessions.js';

/** Rows per INSERT: 20 columns × 256 rows stays well under the 65,535 bind-parameter limit. */
const MAX_BATCH = 256;

/** Runs inside the transaction that inserts the task, after the insert; throwing rolls it back. */
export type InTransaction = (tx: Queryable, createdAt: Date) => Promise<void>;

interface Pending {
  task: NewTask;
  inTx: InTransaction | undefined;
  resolve: (created: Date) => void;
  reject: (err: unknown) => void;
}

export class SubmitBatcher {
  readonly #db: Db;
  readonly #afterCommit: (count: number) => void;
  #queue: Pending[] = [];
  #inFlight = 0;
  readonly #maxInFlight: number;

  /** `maxInFlight` transactions may run at once (1 on PGlite, a few on a server pool). */
  constructor(db: Db, opts: { maxInFlight: number; afterCommit: (count: number) => void }) {
    this.#db = db;
    this.#maxInFlight = opts.maxInFlight;
    this.#afterCommit = opts.afterCommit;
  }

  submit(task: NewTask, inTx?: InTransaction): Promise<Date> {
    return new Promise<Date>((resolve, reject) => {
      this.#queue.push({ task, inTx, resolve, reject });
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
      const created = await this.#insert(batch);
      batch.forEach((p, i) => p.resolve(created[i]!));
      this.#afterCommit(batch.length);
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // one bad row must not fail its neighbours: retry each alone
      await Promise.all(batch.map((p) => this.#flush([p])));
    }
  }

  async #insert(batch: Pending[]): Promise<Date[]> {
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
