// Recording an approval decision: the approval row (fenced on `pending`), an APPROVAL_DECISION
// event on the task, and — if the task is parked waiting for it — its return to the queue, all in
// one transaction holding the task's row, so a racing cancel comes wholly before or after it.
// Used by the decision route and by the engine's timeout sweep.
import type { Db } from '../storage/db.js';
import { approvalsDecide, approvalsLockTask, type ApprovalRow } from '../storage/queries/approvals.js';
import { tasksTransition, sql, type StoredEvent } from '../storage/queries/transitions.js';
import type { EventHub } from './hub.js';
import type { Signals } from './signals.js';

export interface DecisionDeps {
  db: Db;
  hub: EventHub;
  signals: Signals;
}

export interface Decision {
  approvalId: string;
  /** Scope to a tenant (API); the engine's timeout sweep passes none. */
  tenantId?: string;
  approved: boolean;
  feedback: string | null;
  modifiedAction?: unknown;
  decidedBy: string | null;
  /** Who actually called (`api_key:<key id>`, `jwt:<sub>`; `system` for the timeout sweep): decidedBy may be a label the caller chose (`approved_by`). */
  principal?: string;
  /** Only while the approval's timeout_at is ahead (a person's decision; the timeout's own is after it). */
  beforeTimeout?: boolean;
}

/** The denial an approval gets when its timeout passes (the engine's sweep, or a decision that came too late). */
export const expireApproval = (deps: DecisionDeps, approvalId: string): Promise<ApprovalRow | undefined> =>
  decideApproval(deps, { approvalId, approved: false, feedback: APPROVAL_TIMEOUT, decidedBy: 'system' });
export const APPROVAL_TIMEOUT = 'approval timeout';

/** Thrown in a decision's transaction to roll the decision back: its task can no longer take it. */
class TaskEnded extends Error {}

/**
 * Returns the decided row, or undefined if it was not pending (already decided), not found, or its
 * task has ended (then nothing is written: the approval reads `cancelled`).
 */
export async function decideApproval(deps: DecisionDeps, d: Decision): Promise<ApprovalRow | undefined> {
  let requeued = false;
  let decided: { row: ApprovalRow; events: StoredEvent[] } | undefined;
  try {
    decided = await deps.db.transaction(async (tx) => {
      // the task's row first: a cancel writes it before the approval, so it waits for this
      // transaction or ran wholly before it (and then the fence below refuses the decision)
      if (!(await approvalsLockTask(tx, { id: d.approvalId, tenantId: d.tenantId }))) return undefined;
      const row = await approvalsDecide(tx, {
        id: d.approvalId, tenantId: d.tenantId, approved: d.approved, feedback: d.feedback, modifiedAction: d.modifiedAction, decidedBy: d.decidedBy, beforeTimeout: d.beforeTimeout,
      });
      if (!row) return undefined;
      const event = {
        type: 'APPROVAL_DECISION',
        message: `Approval ${row.id} ${d.approved ? 'approved' : 'denied'}${d.feedback ? `: ${d.feedback}` : ''}`,
        payload: { approval_id: row.id, approved: d.approved, feedback: d.feedback, modified_action: d.modifiedAction ?? null, decided_by: d.decidedBy, decided_by_principal: d.principal ?? 'system' },
      };
      // parked for this approval: back to the queue with the event
      let res = await tasksTransition(
        tx,
        { id: row.task_id, statuses: ['RUNNING'], awaitingApprovalId: row.id },
        { status: 'QUEUED', run_at: sql('now()'), awaiting_approval_id: null },
        [event],
      );
      requeued = res !== undefined;
      // still running (it has not parked yet: it checks the decision after parking), or paused
      res ??= await tasksTransition(tx, { id: row.task_id, statuses: ['QUEUED', 'RUNNING', 'PAUSED'] }, {}, [event]);
      // the task ended: a decision nothing will read is not recorded either
      if (!res) throw new TaskEnded();
      return { row, events: res.events };
    });
  } catch (err) {
    if (err instanceof TaskEnded) return undefined;
    throw err;
  }
  if (!decided) return undefined;
  if (requeued) deps.signals.work();
  deps.hub.publish(decided.events);
  return decided.row;
}
