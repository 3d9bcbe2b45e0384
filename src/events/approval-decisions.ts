// Recording an approval decision: the approval row (fenced on `pending`), an APPROVAL_DECISION
// event on the task, and — if the task is parked waiting for it — its return to the queue.
// Used by the decision route and by the engine's timeout sweep.
import type { Db } from '../storage/db.js';
import { approvalsDecide, type ApprovalRow } from '../storage/queries/approvals.js';
import { tasksTransition, sql } from '../storage/queries/transitions.js';
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
}

/** Returns the decided row, or undefined if it was not pending (already decided) or not found. */
export async function decideApproval(deps: DecisionDeps, d: Decision): Promise<ApprovalRow | undefined> {
  const row = await approvalsDecide(deps.db, {
    id: d.approvalId, tenantId: d.tenantId, approved: d.approved, feedback: d.feedback, modifiedAction: d.modifiedAction, decidedBy: d.decidedBy,
  });
  if (!row) return undefined;
  const event = {
    type: 'APPROVAL_DECISION',
    message: `Approval ${row.id} ${d.approved ? 'approved' : 'denied'}${d.feedback ? `: ${d.feedback}` : ''}`,
    payload: { approval_id: row.id, approved: d.approved, feedback: d.feedback, modified_action: d.modifiedAction ?? null, decided_by: d.decidedBy, decided_by_principal: d.principal ?? 'system' },
  };
  // parked for this approval: back to the queue with the event
  let res = await tasksTransition(
    deps.db,
    { id: row.task_id, statuses: ['RUNNING'], awaitingApprovalId: row.id },
    { status: 'QUEUED', run_at: sql('now()'), awaiting_approval_id: null },
    [event],
  );
  if (res) deps.signals.work();
  // still running (it has not parked yet: it checks the decision after parking), or paused
  else res = await tasksTransition(deps.db, { id: row.task_id, statuses: ['QUEUED', 'RUNNING', 'PAUSED'] }, {}, [event]);
  if (res) deps.hub.publish(res.events);
  return row;
}
