// The control transitions of a task (cancel, pause, resume): a plan read from the row, applied
// under a fence on what it was read from, re-read on a lost race. Used by the control routes and
// by the server's own cancels (a chat call's client that went away: agent-wiring.ts).
import { ApiError } from '../contract/errors.js';
import { isTerminal, type TaskStatus } from '../domain/lifecycle.js';
import { tasksGet, type TaskRow } from '../storage/queries/tasks.js';
import { tasksTransition, sql, type EventSpec, type Fence, type StoredEvent } from '../storage/queries/transitions.js';
import { approvalsCancelForEndedTask } from '../storage/queries/approvals.js';
import type { Db, Queryable, Transaction } from '../storage/db.js';
import type { AppDeps } from './deps.js';

export type ControlDeps = Pick<AppDeps, 'db' | 'hub' | 'signals'>;

export interface ControlPlan {
  statuses: TaskStatus[];
  /** The rest of the precondition the plan was read from, beyond the status. */
  fence?: Pick<Fence, 'awaitingApprovalId' | 'pauseRequested' | 'cancelRequested' | 'leased'>;
  set: Parameters<typeof tasksTransition>[2];
  events: EventSpec[];
  status: string;
  message: string;
  signal?: 'work' | 'control';
}
/** An answer that writes nothing: the request asks for what the task already has. */
export interface ControlAnswer {
  unchanged: true;
  status: string;
  message: string;
}

/** Tries on the row as read, unlocked, before one under the row's lock. */
const OPTIMISTIC_TRIES = 3;

/**
 * Applies the first control transition whose precondition holds; re-reads on a lost race. A plan
 * that ends the task writes its pending approvals `cancelled` in the same transaction, after the
 * task's row (the order a decision locks them in): a decision comes wholly before or after it.
 * After OPTIMISTIC_TRIES lost races the row is read under its lock, which no writer can move until
 * the plan is applied: a busy task (400 pauses and resumes at once over two processes) got 409
 * CONFLICT "changed state repeatedly" instead of the answer it would get one after another.
 */
export async function control(deps: ControlDeps, tenantId: string, id: string, decide: (row: TaskRow) => ControlPlan | ControlAnswer) {
  for (let i = 0; i <= OPTIMISTIC_TRIES; i++) {
    const applied = i < OPTIMISTIC_TRIES
      ? await decideAndApply(deps.db, tenantId, id, decide)
      : await deps.db.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM tasks WHERE id = $1 AND tenant_id = $2 FOR UPDATE', [id, tenantId]);
        return decideAndApply(tx, tenantId, id, decide);
      });
    if (!applied) continue; // the task moved meanwhile: decide again
    if ('events' in applied) {
      deps.hub.publish(applied.events);
      if (applied.plan.signal === 'work') deps.signals.work();
      if (applied.plan.signal === 'control') deps.signals.control(id);
    } else {
      // the worker is told again: the first request's hint may not have reached it
      deps.signals.control(id);
    }
    return { success: true, message: applied.plan.message, task_id: id, status: applied.plan.status };
  }
  throw new ApiError('CONFLICT', 'the task changed state repeatedly; try again');
}

/**
 * Reads the task, decides and applies the plan under its fence: undefined when the fence did not
 * hold. `q` is the database, or a transaction (the locked try) that a terminal plan's two writes
 * join.
 */
async function decideAndApply(
  q: Db | Transaction, tenantId: string, id: string, decide: (row: TaskRow) => ControlPlan | ControlAnswer,
): Promise<{ plan: ControlAnswer } | { plan: ControlPlan; events: StoredEvent[] } | undefined> {
  const row = await tasksGet(q, tenantId, id);
  if (!row) throw new ApiError('NOT_FOUND', `task ${id} not found`);
  const plan = decide(row);
  if ('unchanged' in plan) return { plan };
  const fence = { id, tenantId, statuses: plan.statuses, ...plan.fence };
  const end = async (tx: Queryable) => {
    const ended = await tasksTransition(tx, fence, plan.set, plan.events);
    if (ended) await approvalsCancelForEndedTask(tx, id);
    return ended;
  };
  const res = !isTerminal(plan.status as TaskStatus)
    ? await tasksTransition(q, fence, plan.set, plan.events)
    : 'transaction' in q ? await q.transaction(end) : await end(q);
  return res ? { plan, events: res.events } : undefined;
}

/**
 * Cancels a task (the tenant's): a queued, paused or parked one at once, a running one by asking
 * its attempt to stop (or at once with `force`). 404 for no such task, 409 TASK_ALREADY_FINISHED.
 */
export function cancelTask(deps: ControlDeps, tenantId: string, id: string, o: { reason: string | null; by: string; force?: boolean }) {
  const { reason, by } = o;
  return control(deps, tenantId, id, (row) => {
    if (isTerminal(row.status)) throw new ApiError('TASK_ALREADY_FINISHED', `task ${row.id} already finished with status ${row.status}`, { status: row.status });
    const cancelled = (from: TaskStatus[], fence?: ControlPlan['fence']): ControlPlan => ({
      statuses: from,
      fence,
      set: { status: 'CANCELLED', cancel_requested: true, cancel_reason: reason, cancelled_by: by, lease_owner: null, lease_expires_at: null, completed_at: sql('now()') },
      events: [
        { type: 'WORKFLOW_CANCELLED', message: reason ? `Task cancelled: ${reason}` : 'Task cancelled', payload: { reason, cancelled_by: by, forced: row.status === 'RUNNING' } },
        { type: 'STREAM_END', message: 'Stream ended', payload: { status: 'CANCELLED' } },
      ],
      status: 'CANCELLED', message: 'Task cancelled', signal: 'control',
    });
    if (row.status === 'QUEUED' || row.status === 'PAUSED') return cancelled([row.status]);
    // parked for an approval: no worker holds it, so it ends now (unless a decision requeued it meanwhile)
    if (row.status === 'RUNNING' && row.awaiting_approval_id && !row.lease_owner) return cancelled(['RUNNING'], { awaitingApprovalId: row.awaiting_approval_id });
    if (o.force) return cancelled(['RUNNING']);
    // asked already: still a 202 (a cancel is idempotent until the task ends), with no new event
    if (row.cancel_requested) return { unchanged: true, status: row.status, message: 'Cancellation already requested; the running attempt is being stopped' };
    return {
      statuses: ['RUNNING'],
      // as read: a cancel that came first makes this one the repeat above; and still leased — a
      // task that parked for an approval meanwhile has no worker to tell, so it ends instead
      fence: { cancelRequested: false, leased: true },
      set: { cancel_requested: true, cancel_reason: reason, cancelled_by: by },
      events: [{ type: 'WORKFLOW_CANCELLING', message: 'Cancellation requested', payload: { reason, cancelled_by: by } }],
      // the answer's status is the task's (RUNNING until the attempt stops): CANCELLING is an event, not a status
      status: 'RUNNING', message: 'Cancellation requested; the running attempt is being stopped', signal: 'control',
    };
  });
}
