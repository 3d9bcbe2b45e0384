// Group commit for submits: while one insert is in flight, concurrent submits queue up and go
// together in the next one (one statement: the tasks plus the sessions they touch) — one round
// trip, one commit and one wake-up per batch instead of per row, and no added latency when the
// server is idle (a lone submit is flushed at once). Each caller
// still gets its 200 only after its row is committed. A submit may bring work of its own for the
// same transaction (its Idempotency-Key record), so key row and task row commit together.
import type { Db, Queryable } from '../storage/db.js';
import { directlyClaimed, runsNow, tasksInsertMany, type InsertedTask, type NewTask, type RunNow } from '../storage/queries/tasks.js';
import type { ClaimResult } from '../storage/queries/transitions.js';
import { Batcher } from '../storage/batcher.js';

/** Rows per INSERT: bounds the statement's size and how long its commit holds locks. */
const MAX_BATCH = 256;

/** Runs inside the transaction that inserts the task, after the insert; throwing rolls it back. */
export type InTransaction = (tx: Queryable, createdAt: Date) => Promise<void>;

/**
 * A worker in this process that can take tasks at insert time (engine/Worker implements it): the
 * insert writes them RUNNING under its lease and they start on commit, skipping the claim.
 */
export interface LocalDispatch {
  readonly workerId: string;
  readonly leaseMs: number;
  /** Whether a tenant's tasks may be dispatched directly: not when it caps its running tasks (a claim counts them). */
  dispatchesDirectly(tenantId: string): boolean;
  /** The insert found the tenant capped (set by another process, not yet heard of here). */
  capSeen(tenantId: string): void;
  reserve(max: number): number;
  unreserve(n: number): void;
  launchReserved(claimed: readonly ClaimResult[]): void;
}

interface Submit {
  task: NewTask;
  inTx: InTransaction | undefined;
}

export class SubmitBatcher {
  readonly #db: Db;
  readonly #batcher: Batcher<Submit, Date>;
  readonly #dispatch: LocalDispatch | undefined;
  readonly #afterCommit: (count: number, queued: number) => void;

  /**
   * `maxInFlight` inserts may run at once (1 on PGlite, a few on a server pool); `afterCommit`
   * gets each batch's size and how many of its tasks went to the queue (not dispatched directly).
   */
  constructor(
    db: Db,
    opts: { maxInFlight: number; minBatchWhileBusy?: number; afterCommit: (count: number, queued: number) => void; dispatch?: LocalDispatch },
  ) {
    this.#db = db;
    this.#dispatch = opts.dispatch;
    this.#afterCommit = opts.afterCommit;
    this.#batcher = new Batcher({
      maxInFlight: opts.maxInFlight, maxBatch: MAX_BATCH, minBatchWhileBusy: opts.minBatchWhileBusy, deferFlush: db.kind === 'pglite', flush: (batch) => this.#insert(batch),
    });
  }

  submit(task: NewTask, inTx?: InTransaction): Promise<Date> {
    return this.#batcher.submit({ task, inTx });
  }

  async #insert(batch: Submit[]): Promise<Date[]> {
    const tasks = batch.map((p) => p.task);
    const runNow = this.#reserve(batch);
    const insert = async (db: Queryable): Promise<InsertedTask[]> => {
      const byId = new Map((await tasksInsertMany(db, tasks, runNow)).map((r) => [r.id, r]));
      for (const p of batch) if (p.inTx) await p.inTx(db, byId.get(p.task.id)!.created_at);
      return tasks.map((t) => byId.get(t.id)!);
    };
    let rows: InsertedTask[];
    try {
      // the insert is one statement, hence its own transaction; an explicit one only when a
      // submit brings work that must commit with it (an Idempotency-Key record)
      rows = batch.some((p) => p.inTx) ? await this.#db.transaction(insert) : await insert(this.#db);
    } catch (err) {
      if (runNow) this.#dispatch!.unreserve(runNow.indexes.size);
      throw err;
    }
    let launched = 0;
    if (runNow) launched = this.#launch(tasks, rows, runNow);
    this.#afterCommit(tasks.length, tasks.length - launched);
    return rows.map((r) => r.created_at);
  }

  /**
   * Starts the reserved tasks the insert wrote RUNNING. One it queued instead belongs to a tenant
   * capped since this worker last read the caps (by another process): its slot goes back and the
   * worker learns of the cap now rather than when the notification arrives.
   */
  #launch(tasks: NewTask[], rows: InsertedTask[], runNow: RunNow): number {
    const d = this.#dispatch!;
    const claimed: ClaimResult[] = [];
    for (const i of runNow.indexes) {
      if (rows[i]!.running) claimed.push(directlyClaimed(tasks[i]!, rows[i]!.created_at, runNow));
      else d.capSeen(tasks[i]!.tenant_id);
    }
    if (claimed.length < runNow.indexes.size) d.unreserve(runNow.indexes.size - claimed.length);
    d.launchReserved(claimed);
    return claimed.length;
  }

  /** Slots of the local worker for the batch's immediately runnable tasks, first come first served. */
  #reserve(batch: Submit[]): RunNow | undefined {
    const d = this.#dispatch;
    if (!d) return undefined;
    const eligible = batch.flatMap((p, i) => (runsNow(p.task) && d.dispatchesDirectly(p.task.tenant_id) ? [i] : []));
    const n = eligible.length ? d.reserve(eligible.length) : 0;
    return n ? { indexes: new Set(eligible.slice(0, n)), owner: d.workerId, leaseMs: d.leaseMs } : undefined;
  }
}
