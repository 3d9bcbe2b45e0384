// DML for approvals. Decisions are fenced on `status = 'pending'`: a decision that lost the race
// (another decision, or the timeout) changes nothing.
import type { Queryable } from '../db.js';
import { nowPlusMsSql } from './transitions.js';

export interface ApprovalRow {
  id: string;
  tenant_id: string;
  task_id: string;
  step_name: string;
  status: 'pending' | 'approved' | 'denied';
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
    [a.id, a.tenantId, a.taskId, a.stepName, a.message, a.payload ? JSON.stringify(a.payload) : null, a.timeoutMs],
  );
  if (ins.rows[0]) return { row: ins.rows[0], created: true };
  const res = await db.query<ApprovalRow>('SELECT * FROM approvals WHERE task_id = $1 AND step_name = $2', [a.taskId, a.stepName]);
  return { row: res.rows[0]!, created: false };
}

export async function approvalsGet(db: Queryable, p: { tenantId: string; id: string }): Promise<ApprovalRow | undefined> {
  const res = await db.query<ApprovalRow>('SELECT * FROM approvals WHERE id = $1 AND tenant_id = $2', [p.id, p.tenantId]);
  return res.rows[0];
}

export async function approvalsGetById(db: Queryable, id: string): Promise<ApprovalRow | undefined> {
  const res = await db.query<ApprovalRow>('SELECT * FROM approvals WHERE id = $1', [id]);
  return res.rows[0];
}

export async function approvalsDecide(
  db: Queryable,
  p: { id: string; tenantId?: string; approved: boolean; feedback: string | null; modifiedAction: unknown; decidedBy: string | null },
): Promise<ApprovalRow | undefined> {
  const res = await db.query<ApprovalRow>(
    `UPDATE approvals SET status = $2, feedback = $3, modified_action = $4::jsonb, decided_by = $5, decided_at = now()
      WHERE id = $1 AND status = 'pending' AND ($6::text IS NULL OR tenant_id = $6::text) RETURNING *`,
    [p.id, p.approved ? 'approved' : 'denied', p.feedback, p.modifiedAction === undefined ? null : JSON.stringify(p.modifiedAction), p.decidedBy, p.tenantId ?? null],
  );
  return res.rows[0];
}

export async function approvalsList(
  db: Queryable,
  p: { tenantId: string; status?: string; limit: number; offset: number },
): Promise<ApprovalRow[]> {
  const res = await db.query<ApprovalRow>(
    `SELECT * FROM approvals WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2::text)
      ORDER BY requested_at DESC, id LIMIT $3 OFFSET $4`,
    [p.tenantId, p.status ?? null, p.limit, p.offset],
  );
  return res.rows;
}

/** Pending approvals whose timeout passed. */
export async function approvalsListTimedOut(db: Queryable, limit: number): Promise<ApprovalRow[]> {
  const res = await db.query<ApprovalRow>(
    `SELECT * FROM approvals WHERE status = 'pending' AND timeout_at < now() ORDER BY timeout_at LIMIT $1`,
    [limit],
  );
  return res.rows;
}
