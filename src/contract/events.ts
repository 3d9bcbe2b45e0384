// Event types and the wire name mapping used by SSE clients of the reference gateway.

export const EVENT_TYPES = [
  'WORKFLOW_STARTED', 'WORKFLOW_COMPLETED', 'WORKFLOW_FAILED', 'STREAM_END',
  'AGENT_STARTED', 'AGENT_THINKING', 'AGENT_COMPLETED',
  'LLM_PROMPT', 'LLM_PARTIAL', 'LLM_OUTPUT', 'TOOL_INVOKED', 'TOOL_OBSERVATION',
  'PROGRESS', 'ERROR_OCCURRED', 'WARNING', 'RETRYING',
  'APPROVAL_REQUESTED', 'APPROVAL_DECISION',
  'WORKFLOW_PAUSING', 'WORKFLOW_PAUSED', 'WORKFLOW_RESUMED', 'WORKFLOW_CANCELLING', 'WORKFLOW_CANCELLED',
  'BUDGET_THRESHOLD',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Live-only event types: fanned out, never stored. */
export const EPHEMERAL_EVENT_TYPES: ReadonlySet<string> = new Set(['LLM_PARTIAL']);

/** Events after which nothing more is written for the task. */
export const FINAL_EVENT_TYPES: ReadonlySet<string> = new Set(['STREAM_END']);

export interface TaskEvent {
  workflow_id: string;
  type: string;
  agent_id?: string | null;
  message?: string | null;
  payload?: Record<string, unknown> | null;
  timestamp: string;
  seq: number;
  stream_id?: string | null;
}

const SSE_NAMES: Record<string, string> = {
  LLM_PARTIAL: 'thread.message.delta',
  LLM_OUTPUT: 'thread.message.completed',
  ERROR_OCCURRED: 'error',
  WORKFLOW_PAUSING: 'workflow.pausing',
  WORKFLOW_PAUSED: 'workflow.paused',
  WORKFLOW_RESUMED: 'workflow.resumed',
  WORKFLOW_CANCELLING: 'workflow.cancelling',
  WORKFLOW_CANCELLED: 'workflow.cancelled',
};

export function sseEventName(type: string): string {
  return SSE_NAMES[type] ?? type;
}
