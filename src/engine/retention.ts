// Retention: deletes ended tasks (with their events, steps and approvals) and soft-deleted
// sessions once they are older than TASKGATE_TASK_RETENTION. Off by default: nothing is deleted
// unless an operator asks. Runs in worker processes beside the lease reaper; several processes
// sweeping at once skip each other's rows instead of waiting for them.
import type { Db } from '../storage/db.js';
import { sessionsDeleteRemoved, tasksDeleteEnded } from '../storage/queries/retention.js';
import { tenantsIdsAfter } from '../storage/queries/tenants.js';
import type { TaskLogger } from '../executors/types.js';

/** Rows per DELETE: one short transaction each (~10–30 ms), so nothing waits long behind it. */
export const RETENTION_BATCH = 500;
/** Pause between batches, leaving the database to the work that matters while a backlog drains. */
export const RETENTION_BATCH_PAUSE_MS = 20;
const TENANT_PAGE = 1000;

export interface RetentionOptions {
  /** Age (ms) past which ended tasks and removed sessions are deleted; > 0. */
  retentionMs: number;
  /** Time between sweeps (ms; jittered ±25 %). */
  intervalMs: number;
  batchSize?: number;
  batchPauseMs?: number;
}

export interface RetentionDeps {
  db: Db;
  /** Sweep results and scheduled sweeps' failures (none: a one-off sweep reports them itself). */
  log?: TaskLogger;
  /** Called after each batch with what it deleted (metrics). */
  onDeleted?: (kind: 'tasks' | 'sessions', n: number) => void;
}

export interface SweepResult {
  tasks: number;
  sessions: number;
}

type State = 'idle' | 'started' | 'stopping';

export class RetentionSweeper {
  readonly #o: Required<RetentionOptions>;
  readonly #d: RetentionDeps;
  #state: State = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(options: RetentionOptions, deps: RetentionDeps) {
    if (!(options.retentionMs > 0)) throw new Error('RetentionSweeper: retentionMs must be > 0');
    this.#o = { batchSize: RETENTION_BATCH, batchPauseMs: RETENTION_BATCH_PAUSE_MS, ...options };
    this.#d = deps;
  }

  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'started';
    this.#schedule();
  }

  /** Stops scheduling; a sweep in progress ends after its current batch. */
  async stop(): Promise<void> {
    if (this.#state !== 'started') return;
    this.#state = 'stopping';
    clearTimeout(this.#timer);
    await this.#running;
    this.#state = 'idle';
  }

  #schedule(): void {
    const jitter = 0.75 + Math.random() * 0.5;
    this.#timer = setTimeout(() => {
      this.#running = this.sweepOnce()
        .catch((err: unknown) => this.#d.log?.warn('retention sweep failed (retried at the next one)', { err: (err as Error).message }))
        .finally(() => {
          if (this.#state === 'started') this.#schedule();
        });
    }, Math.round(this.#o.intervalMs * jitter));
    this.#timer.unref();
  }

  /** One sweep over every tenant; resolves with what it deleted. Stops early once stopped. */
  async sweepOnce(): Promise<SweepResult> {
    const result: SweepResult = { tasks: 0, sessions: 0 };
    const { retentionMs: olderThanMs, batchSize: limit } = this.#o;
    let after = '';
    for (;;) {
      const tenants = await tenantsIdsAfter(this.#d.db, { after, limit: TENANT_PAGE });
      for (const tenantId of tenants) {
        result.tasks += await this.#drain('tasks', () => tasksDeleteEnded(this.#d.db, { tenantId, olderThanMs, limit }));
      }
      if (tenants.length < TENANT_PAGE || this.#halted()) break;
      after = tenants[tenants.length - 1]!;
    }
    result.sessions = await this.#drain('sessions', () => sessionsDeleteRemoved(this.#d.db, { olderThanMs, limit }));
    if (result.tasks || result.sessions) {
      this.#d.log?.info('retention: deleted ended tasks and removed sessions past their age', { ...result, retention_ms: olderThanMs });
    }
    return result;
  }

  /** Runs `batch` until it deletes less than a full batch (or the sweeper stops); returns the total. */
  async #drain(kind: 'tasks' | 'sessions', batch: () => Promise<number>): Promise<number> {
    let total = 0;
    while (!this.#halted()) {
      const n = await batch();
      total += n;
      if (n) this.#d.onDeleted?.(kind, n);
      if (n < this.#o.batchSize) break;
      await new Promise((r) => setTimeout(r, this.#o.batchPauseMs));
    }
    return total;
  }

  #halted(): boolean {
    return this.#state === 'stopping';
  }
}
