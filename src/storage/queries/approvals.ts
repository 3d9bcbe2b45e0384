// DML for approvals. Decisions are fenced on `status = 'pending'` and on the task not having
// ended: a decision that lost the race (another decision, the timeout, the task's end) changes
// nothing. An approval whose task ended undecided reads as `cancelled` (APPROVAL_STATUS_SQL),
// whether or not its row has been written so yet. Writers that touch both rows lock the task's
// first, then the approval's (approvalsLockTask, the cancel route): one order, no deadlock.
import type { Queryable } from '../db.js';
import { nowPlusMsSql } from './transitions.js';
import { storableJson, storableText } from '../storable.js';

export interface ApprovalRow {
  id: string;
  tenant_id: string;
  task_id: string;
  step_name: string;
  status: 'pending' | 'approved' | 'denied' | 'cancelled';
  message: string | null;
  payload: Record<string, unknown> | null;
  feedback: string | null;
  modified_action: unknown;
  decided_by: string | null;
  requested_at: Date;
  timeout_at: Date;
  decided_at: Date | null;
}

/** Creates the approval for a task's step, or returns the existing one (idempotent per step). */
export async function approvalsEnsure(
  db: Queryable,
  a: { id: string; tenantId: string; taskId: string; stepName: string; message: string | null; payload: Record<string, unknown> | null; timeoutMs: number },
): Promise<{ row: ApprovalRow; created: boolean }> {
  const ins = await db.query<ApprovalRow>(
    `INSERT INTO approvals (id, tenant_id, task_id, step_name, message, payload, timeout_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, ${nowPlusMsSql('$7')})
     ON CONFLICT (task_id, step_name) DO NOTHING RETURNING *`,
    [a.id, a.tenantId, a.taskId, a.stepName, a.message === null ? null : storableText(a.message), a.payload ? storableJson(a.payload) : null, a.timeoutMs],
  );
  if (ins.rows[0]) return { row: ins.rows[0], created: true };
  const res = await db.query<ApprovalRow>('SELECT * FROM approvals WHERE task_id = $1 AND step_name = $2', [a.taskId, a.stepName]);
  return { row: res.rows[0]!, created: false };
}

const TASK_ENDED = `t.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')`;
/** An approval's status as clients see it: a pending one whose task ended is `cancelled`. */
const APPROVAL_STATUS_SQL = `CASE WHEN a.status = 'pending' AND ${TASK_ENDED} THEN 'cancelled' ELSE a.status END`;
const APPROVAL_COLUMNS = `a.id, a.tenant_id, a.task_id, a.step_name, ${APPROVAL_STATUS_SQL} AS status, a.message, a.payload, a.feedback,
  a.modified_action, a.decided_by, a.requested_at, a.timeout_at, a.decided_at`;

export async function approvalsGet(db: Queryable, p: { tenantId: string; id: string }): Promise<ApprovalRow | undefined> {
  const res = await db.query<ApprovalRow>(
    `SELECT ${APPROVAL_COLUMNS} FROM approvals a JOIN tasks t ON t.id = a.task_id WHERE a.id = $1 AND a.tenant_id = $2`,
    [p.id, p.tenantId],
  );
  return res.rows[0];
}

export async function approvalsGetById(db: Queryable, id: string): Promise<ApprovalRow | undefined> {
  const res = await db.query<ApprovalRow>('SELECT * FROM approvals WHERE id = $1', [id]);
  return res.rows[0];
}

/**
 * Locks the task of approval `id` until the transaction ends (FOR NO KEY UPDATE: event inserts,
 * whose foreign key takes KEY SHARE, do not wait), so the decision written next and its effect on
 * the task commit with the task as it is now; a concurrent cancel waits, or ran already. Returns
 * the task's status, or undefined for an unknown (or foreign) approval.
 */
export async function approvalsLockTask(tx: Queryable, p: { id: string; tenantId?: string }): Promise<{ status: string } | undefined> {
  const res = await tx.query<{ status: string }>(
    `SELECT t.status FROM tasks t
      WHERE t.id = (SELECT a.task_id FROM approvals a WHERE a.id = $1 AND ($2::text IS NULL OR a.tenant_id = $2::text))
        FOR NO KEY UPDATE OF t`,
    [p.id, p.tenantId ?? null],
  );
  return res.rows[0];
}

/** Decides a pending approval of a task that has not ended; call it after approvalsLockTask, in its transaction. */
export async function approvalsDecide(
  db: Queryable,
  p: { id: string; tenantId?: string; approved: boolean; feedback: string | null; modifiedAction: unknown; decidedBy: string | null; beforeTimeout?: boolean },
): Promise<ApprovalRow | undefined> {
  const res = await db.query<ApprovalRow>(
    `UPDATE approvals a SET status = $2, feedback = $3, modified_action = $4::jsonb, decided_by = $5, decided_at = now()
       FROM tasks t
      WHERE a.id = $1 AND a.status = 'pending' AND ($6::text IS NULL OR a.tenant_id = $6::text)
        AND (NOT $7::boolean OR a.timeout_at > now())
        AND t.id = a.task_id AND NOT (${TASK_ENDED})
      RETURNING a.*`,
    [p.id, p.approved ? 'approved' : 'denied', p.feedback, p.modifiedAction === undefined ? null : JSON.stringify(p.modifiedAction), p.decidedBy, p.tenantId ?? null, p.beforeTimeout === true],
  );
  return res.rows[0];
}

export async function approvalsList(
  db: Queryable,
  p: { tenantId: string; status?: string; limit: number; offset: number },
): Promise<ApprovalRow[]> {
  const res = await db.query<ApprovalRow>(
    `SELECT ${APPROVAL_COLUMNS} FROM approvals a JOIN tasks t ON t.id = a.task_id
      WHERE a.tenant_id = $1 AND ($2::text IS NULL OR ${APPROVAL_STATUS_SQL} = $2::text)
      ORDER BY a.requested_at DESC, a.id LIMIT $3 OFFSET $4`,
    [p.tenantId, p.status ?? null, p.limit, p.offset],
  );
  return res.rows;
}

/** Pending approvals whose timeout passed (with their status as clients see it: `cancelled` if the task ended). */
export async function approvalsListTimedOut(db: Queryable, limit: number): Promise<ApprovalRow[]> {
  const res = await db.query<ApprovalRow>(
    `SELECT ${APPROVAL_COLUMNS} FROM approvals a JOIN tasks t ON t.id = a.task_id
      WHERE a.status = 'pending' AND a.timeout_at < now() ORDER BY a.timeout_at LIMIT $1`,
    [limit],
  );
  return res.rows;
}

/** Writes `cancelled` on a pending approval whose task has ended (it can no longer be decided). */
export async function approvalsCancelEnded(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE approvals a SET status = 'cancelled', decided_at = now() FROM tasks t
      WHERE a.id = $1 AND a.status = 'pending' AND t.id = a.task_id AND ${TASK_ENDED}`,
    [id],
  );
  return res.rowCount > 0;
}

/**
 * Writes `cancelled` on the pending approvals of task `taskId` once it has ended: the cancel route
 * runs it in the transaction that ends the task, so no decision lands between the two.
 */
export async function approvalsCancelForEndedTask(db: Queryable, taskId: string): Promise<number> {
  const res = await db.query(
    `UPDATE approvals a SET status = 'cancelled', decided_at = now() FROM tasks t
      WHERE a.task_id = $1 AND a.status = 'pending' AND t.id = a.task_id AND ${TASK_ENDED}`,
    [taskId],
  );
  return res.rowCount;
}
