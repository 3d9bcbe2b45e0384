// Wire schema of GET /api/v1/tasks/{id}/timeline (PRODUCT.md §3): the attempt-level history.
import { Type, type Static } from 'typebox';
import { Nullable } from './tasks.js';


export const TimelineEntry = Type.Object({
  workflow_id: Type.String(),
  seq: Type.Integer(),
  type: Type.String({ description: 'CLAIMED, STEP_FINISHED, ATTEMPT_FAILED, RETRY_SCHEDULED, LEASE_LOST, RELEASED, PAUSE_REQUESTED, PAUSED, RESUMED, APPROVAL_REQUESTED, APPROVAL_DECIDED, CANCEL_REQUESTED, CANCELLED, COMPLETED, FAILED, TIMED_OUT, WARNING' }),
  message: Type.String(),
  timestamp: Type.String(),
  attempt: Nullable(Type.Integer()),
  worker_id: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
});
export type TimelineEntry = Static<typeof TimelineEntry>;

export const AttemptSummary = Type.Object({
  attempt: Type.Integer(),
  worker_id: Nullable(Type.String()),
  started_at: Type.String(),
  ended_at: Nullable(Type.String()),
  duration_ms: Nullable(Type.Integer()),
  outcome: Type.String({ description: 'running, completed, failed, retried, lease_lost, released, paused, suspended (waited for an approval), cancelled, timed_out' }),
  steps_finished: Type.Integer(),
});
export type AttemptSummary = Static<typeof AttemptSummary>;

export const TimelineResponse = Type.Object({
  workflow_id: Type.String(),
  events: Type.Array(TimelineEntry),
  stats: Type.Object({
    total: Type.Integer({ description: 'Timeline entries' }),
    events: Type.Integer({ description: 'Persisted events read' }),
    status: Type.String(),
    attempts: Type.Integer({ description: "The task's attempt counter (a pause or a shutdown release does not count one)" }),
    claims: Type.Integer({ description: 'Times a worker started the task' }),
    created_at: Type.String(),
    started_at: Nullable(Type.String()),
    completed_at: Nullable(Type.String()),
    duration_ms: Nullable(Type.Integer({ description: 'First start to completion (or now while unfinished)' })),
    queue_ms: Nullable(Type.Integer({ description: 'Submit to first start' })),
    steps_finished: Type.Integer(),
    retries: Type.Integer(),
    lease_losses: Type.Integer(),
    pauses: Type.Integer(),
    resumes: Type.Integer(),
    approvals_requested: Type.Integer(),
    approvals_decided: Type.Integer(),
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'Persisted events by type' }),
    attempt_history: Type.Array(AttemptSummary),
    truncated: Type.Boolean(),
  }),
});
export type TimelineResponse = Static<typeof TimelineResponse>;
