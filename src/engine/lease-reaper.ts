// Returns tasks whose lease expired (their worker died or stalled) to the queue, or ends them
// when their attempts are spent, a cancel or a pause was asked for meanwhile.
import type { Db } from '../storage/db.js';
import { tasksListExpiredLeases, tasksTransition, sql, type EventSpec } from '../storage/queries/transitions.js';
import type { TaskStatus } from '../domain/lifecycle.js';
import type { EventHub } from '../events/hub.js';
import type { Signals } from '../events/signals.js';
import type { TaskLogger } from '../executors/types.js';
import { approvalsCancelEnded, approvalsListTimedOut } from '../storage/queries/approvals.js';
import { expireApproval } from '../events/approval-decisions.js';

const BATCH = 100;

export interface LeaseReaperDeps {
  db: Db;
  hub: EventHub;
  signals: Signals;
  intervalMs: number;
  log: TaskLogger;
}

export class LeaseReaper {
  readonly #d: LeaseReaperDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = true;

  constructor(deps: LeaseReaperDeps) {
    this.#d = deps;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const jitter = 0.75 + Math.random() * 0.5;
    this.#timer = setTimeout(() => {
      this.#running = this.reapOnce().catch((err) => {
        this.#d.log.warn('lease reaper failed', { err: (err as Error).message });
        return 0;
      });
      void this.#running.finally(() => this.#schedule());
    }, Math.round(this.#d.intervalMs * jitter));
  }

  /** One pass; returns how many tasks it took back (expired leases and approval timeouts). */
  async reapOnce(): Promise<number> {
    return (await this.#reapLeases()) + (await this.#expireApprovals());
  }

  /**
   * Pending approvals past their timeout are denied with reason `approval timeout`; those whose
   * task ended meanwhile are written `cancelled` (nothing waits for them).
   */
  async #expireApprovals(): Promise<number> {
    const due = await approvalsListTimedOut(this.#d.db, BATCH);
    let n = 0;
    for (const a of due) {
      if (a.status === 'cancelled') {
        await approvalsCancelEnded(this.#d.db, a.id);
        continue;
      }
      const decided = await expireApproval(this.#d, a.id);
      if (decided) n++;
    }
    return n;
  }

  async #reapLeases(): Promise<number> {
    const expired = await tasksListExpiredLeases(this.#d.db, BATCH);
    let reaped = 0;
    let requeued = false;
    for (const t of expired) {
      let status: TaskStatus;
      let events: EventSpec[];
      const lost: EventSpec = { type: 'WARNING', message: `lease lost by worker ${t.lease_owner} (attempt ${t.attempt})`, payload: { reason: 'lease_lost', attempt: t.attempt, worker_id: t.lease_owner } };
      const end = (s: TaskStatus): EventSpec => ({ type: 'STREAM_END', message: 'Stream ended', payload: { status: s } });
      if (t.cancel_requested) {
        status = 'CANCELLED';
        events = [lost, { type: 'WORKFLOW_CANCELLED', message: 'Task cancelled', payload: { attempt: t.attempt } }, end(status)];
      } else if (t.pause_requested && t.attempt < t.max_attempts) {
        // the lost attempt counts (a crash is not a pause at a step boundary, which gives its attempt
        // back): given back, the resumed claim reused its number — two "attempt 1"s from different
        // workers, and a fence (attempt, owner) the same worker, stalled past its lease, could match
        // again. With no attempt left, it fails as a lost last attempt does.
        status = 'PAUSED';
        events = [lost, { type: 'WORKFLOW_PAUSED', message: 'Task paused', payload: { attempt: t.attempt } }];
      } else if (t.attempt >= t.max_attempts) {
        status = 'FAILED';
        const msg = `lease expired on the last attempt (${t.attempt} of ${t.max_attempts})`;
        events = [lost, { type: 'ERROR_OCCURRED', message: msg, payload: { attempt: t.attempt, retryable: false } }, { type: 'WORKFLOW_FAILED', message: msg, payload: { status } }, end(status)];
      } else {
        status = 'QUEUED';
        events = [lost, { type: 'RETRYING', message: `requeued after lease loss (attempt ${t.attempt + 1} of ${t.max_attempts})`, payload: { attempt: t.attempt, next_attempt: t.attempt + 1, delay_ms: 0 } }];
      }
      const terminal = status !== 'QUEUED' && status !== 'PAUSED';
      const res = await tasksTransition(
        this.#d.db,
        // planned on the flags as read: a cancel or pause asked for since (a 202) is not lost in a
        // requeue or a failure — the row is left for the next sweep, which plans on the new flags
        {
          id: t.id, statuses: ['RUNNING'], attempt: t.attempt, leaseOwner: t.lease_owner ?? '', leaseExpired: true,
          cancelRequested: t.cancel_requested, pauseRequested: t.pause_requested,
        },
        {
          status, lease_owner: null, lease_expires_at: null,
          ...(terminal ? { completed_at: sql('now()') } : {}),
          ...(status === 'FAILED' ? { error: 'lease expired on the last attempt' } : {}),
          ...(status === 'QUEUED' ? { run_at: sql('now()') } : {}),
          ...(status === 'PAUSED' ? { pause_requested: false, paused_at: sql('now()') } : {}),
        },
        events,
      );
      if (res) {
        reaped++;
        this.#d.hub.publish(res.events);
        if (status === 'QUEUED') requeued = true;
      }
    }
    if (requeued) this.#d.signals.work();
    return reaped;
  }
}
