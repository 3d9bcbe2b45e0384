// The `approval` kind: a purely human task. It waits for a decision; approval completes it with
// the decision as output (feedback, modified_action), denial fails it.
import { PermanentError, type Executor, type TaskDefinition } from './types.js';

export const approvalExecutor: Executor = {
  kind: 'approval',
  async run(task, ctx) {
    const input = (task.input ?? {}) as { message?: string; details?: Record<string, unknown> };
    const d = await ctx.waitForApproval({
      name: 'decision',
      message: input.message ?? task.definition?.description ?? 'Approval requested',
      payload: { task_definition_id: task.definition?.id, details: input.details ?? null },
      timeoutMs: task.definition?.approval?.timeout_ms,
    });
    if (!d.approved) throw new PermanentError(`approval denied: ${d.feedback ?? 'no reason given'}`);
    return { output: { approved: true, feedback: d.feedback, modified_action: d.modified_action ?? null, approved_by: d.approved_by } };
  },
};

export const approvalDefinition: TaskDefinition = {
  id: 'approval',
  name: 'Human approval',
  description: 'Waits for a human decision (POST /api/v1/approvals/decision); completes with the decision.',
  version: '1.0.0',
  kind: 'approval',
  type: 'MANUAL',
  input_schema: {
    type: 'object',
    properties: { message: { type: 'string', maxLength: 2000 }, details: { type: 'object' } },
    additionalProperties: false,
  },
  output_schema: {
    type: 'object',
    properties: { approved: { type: 'boolean' }, feedback: { type: ['string', 'null'] }, modified_action: {}, approved_by: { type: ['string', 'null'] } },
    required: ['approved'],
  },
  retry_policy: { max_retries: 0 },
};
