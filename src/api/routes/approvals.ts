// /api/v1/approvals: decide a pending approval (resumes or fails the waiting task) and list them.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ApiError } from '../../contract/errors.js';
import { ApprovalDecisionBody, ApprovalDecisionResponse, ApprovalList, ApprovalListQuery } from '../../contract/approvals.js';
import { errorResponses } from '../../contract/tasks.js';
import { approvalsCancelEnded, approvalsGet, approvalsList, type ApprovalRow } from '../../storage/queries/approvals.js';
import { tasksGet } from '../../storage/queries/tasks.js';
import { APPROVAL_TIMEOUT, decideApproval, expireApproval } from '../../events/approval-decisions.js';
import type { AppDeps } from '../deps.js';
import { iso } from '../task-view.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function approvalView(a: ApprovalRow) {
  return {
    approval_id: a.id,
    workflow_id: a.task_id,
    status: a.status,
    message: a.message,
    payload: a.payload,
    feedback: a.feedback,
    modified_action: a.modified_action ?? null,
    decided_by: a.decided_by,
    requested_at: iso(a.requested_at),
    timeout_at: iso(a.timeout_at),
    decided_at: iso(a.decided_at),
  };
}

export async function approvalRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/api/v1/approvals/decision', {
    config: { scope: 'approvals:decide', rateBudget: 'control' },
    schema: { tags: ['approvals'], summary: 'Approve or deny a pending approval', body: ApprovalDecisionBody, response: { 200: ApprovalDecisionResponse, ...errorResponses('POST', 'scope', [404, 409]) } },
  }, async (req) => {
    const { workflow_id, approval_id, approved, feedback, modified_action, approved_by } = req.body;
    const tenantId = req.principal.tenantId;
    const task = await tasksGet(deps.db, tenantId, workflow_id);
    // details.path says which of the two ids was not found (clients tell a missing task apart)
    if (!task) throw new ApiError('NOT_FOUND', `workflow ${workflow_id} not found`, { path: 'workflow_id' });
    const existing = UUID_RE.test(approval_id) ? await approvalsGet(deps.db, { tenantId, id: approval_id }) : undefined;
    if (!existing || existing.task_id !== workflow_id) throw new ApiError('NOT_FOUND', `approval ${approval_id} not found for workflow ${workflow_id}`, { path: 'approval_id' });
    const decided = existing.status === 'pending'
      ? await decideApproval(deps, {
        approvalId: approval_id, tenantId, approved, feedback: feedback ?? null, modifiedAction: modified_action,
        decidedBy: approved_by ?? req.principal.userId,
        principal: `${req.principal.kind}:${req.principal.subjectId}`,
        beforeTimeout: true,
      })
      : undefined;
    if (!decided) {
      // lost a race, or nothing to decide: say why from the approval as it is now
      let now = (await approvalsGet(deps.db, { tenantId, id: approval_id })) ?? existing;
      if (now.status === 'pending') {
        // still pending, yet refused: its timeout has passed, and the engine's sweep (every few
        // seconds) has not denied it yet — a decision after the deadline does not win; it is denied now
        await expireApproval(deps, approval_id);
        now = (await approvalsGet(deps.db, { tenantId, id: approval_id })) ?? now;
        if (now.status !== 'cancelled') throw new ApiError('INVALID_TASK_STATE', `approval ${approval_id} timed out at ${iso(now.timeout_at)}: it was denied ("${APPROVAL_TIMEOUT}")`, { status: now.status });
      }
      if (now.status === 'cancelled') {
        await approvalsCancelEnded(deps.db, approval_id);
        const ended = await tasksGet(deps.db, tenantId, workflow_id);
        throw new ApiError('TASK_ALREADY_FINISHED', `workflow ${workflow_id} already finished${ended ? ` (${ended.status})` : ''}: its approval can no longer be decided`, { status: 'cancelled' });
      }
      throw new ApiError('INVALID_TASK_STATE', `approval ${approval_id} was already decided`, { status: now.status });
    }
    return {
      status: 'sent', success: true, message: approved ? 'Approval sent' : 'Denial sent', workflow_id, approval_id,
    };
  });

  r.get('/api/v1/approvals', {
    config: { scope: 'tasks:read' },
    schema: { tags: ['approvals'], summary: "List the tenant's approvals (status=pending for those waiting)", querystring: ApprovalListQuery, response: { 200: ApprovalList, ...errorResponses('GET', 'scope', [400]) } },
  }, async (req) => {
    const limit = req.query.limit ?? 50;
    const offset = req.query.offset ?? 0;
    // one row past the page says whether there is a next one, without counting them all
    const rows = await approvalsList(deps.db, { tenantId: req.principal.tenantId, status: req.query.status, limit: limit + 1, offset });
    const page = rows.slice(0, limit);
    return { approvals: page.map(approvalView), count: page.length, has_more: rows.length > limit, limit, offset };
  });
}
