// Wire schemas of the session routes (PRODUCT.md §3 "Sessions", shapes of the reference gateway):
// the API validates and documents with them, the SDK is typed from them.
import { Type, type Static } from 'typebox';
import { Nullable, TaskEventSchema } from './tasks.js';

const Obj = Type.Record(Type.String(), Type.Unknown());

export const SessionView = Type.Object({
  session_id: Type.String(),
  user_id: Type.String(),
  title: Nullable(Type.String()),
  context: Obj,
  token_budget: Nullable(Type.Integer()),
  tokens_used: Type.Integer(),
  cost_usd: Type.Number(),
  task_count: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
  expires_at: Nullable(Type.String()),
  is_research_session: Type.Boolean(),
  research_strategy: Nullable(Type.String()),
});
export type SessionView = Static<typeof SessionView>;

export const SessionSummary = Type.Object({
  ...SessionView.properties,
  total_cost_usd: Type.Number(),
  successful_tasks: Type.Integer(),
  failed_tasks: Type.Integer(),
  last_activity_at: Nullable(Type.String()),
  latest_task_query: Nullable(Type.String()),
  latest_task_status: Nullable(Type.String()),
});
export type SessionSummary = Static<typeof SessionSummary>;

export const SessionList = Type.Object({ sessions: Type.Array(SessionSummary), total_count: Type.Integer() });
export type SessionList = Static<typeof SessionList>;

export const SessionHistoryItem = Type.Object({
  task_id: Type.String(), workflow_id: Type.String(), query: Type.String(), status: Type.String(), mode: Nullable(Type.String()),
  task_definition_id: Nullable(Type.String()), result: Nullable(Type.String()), error_message: Nullable(Type.String()),
  total_tokens: Type.Integer(), total_cost_usd: Type.Number(), duration_ms: Nullable(Type.Integer()),
  agents_used: Type.Integer(), tools_invoked: Type.Integer(),
  created_at: Type.String(), started_at: Nullable(Type.String()), completed_at: Nullable(Type.String()), metadata: Obj,
});
export const SessionHistory = Type.Object({ session_id: Type.String(), tasks: Type.Array(SessionHistoryItem), total: Type.Integer() });
export type SessionHistory = Static<typeof SessionHistory>;

export const SessionTurn = Type.Object({
  turn: Type.Integer(), task_id: Type.String(), user_query: Type.String(), final_output: Type.String(), timestamp: Type.String(),
  events: Type.Array(TaskEventSchema),
  metadata: Type.Object({ tokens_used: Type.Integer(), execution_time_ms: Type.Integer(), agents_involved: Type.Array(Type.String()) }),
});
export const SessionTurns = Type.Object({ session_id: Type.String(), count: Type.Integer(), turns: Type.Array(SessionTurn) });
export type SessionTurns = Static<typeof SessionTurns>;

export const SessionTitleBody = Type.Object({ title: Type.String({ maxLength: 10_000 }) }, { additionalProperties: false });
export const SessionTitleResponse = Type.Object({ session_id: Type.String(), title: Type.String(), updated_at: Type.String() });
export type SessionTitleResponse = Static<typeof SessionTitleResponse>;
