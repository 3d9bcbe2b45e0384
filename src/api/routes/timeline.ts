// GET /api/v1/tasks/{id}/timeline: the attempt-level history of a task, derived from its
// persisted events (the log is the truth): claimed, steps finished, retried, lease lost, paused,
// resumed, approvals, finished — with per-attempt summaries and counts in `stats`.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { TimelineResponse, type AttemptSummary, type TimelineEntry } from '../../contract/timeline.js';
import { ApiError } from '../../contract/errors.js';
import { errorResponses, IdParam } from '../../contract/tasks.js';
import type { Db } from '../../storage/db.js';
import { eventsList } from '../../storage/queries/events.js';
import { tasksGet, type TaskRow } from '../../storage/queries/tasks.js';
import type { StoredEvent } from '../../storage/queries/transitions.js';
import { iso } from '../task-view.js';

/** Events read per query, and the most a timeline reads (a longer log is marked truncated). */
const PAGE = 1_000;
export const MAX_TIMELINE_EVENTS = 50_000;

type Entry = TimelineEntry;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : null);
const ms = (a: Date | string | null | undefined, b: Date | string | null | undefined): number | null =>
  a && b ? Math.max(0, new Date(b).getTime() - new Date(a).getTime()) : null;

/** Builds the timeline from events in seq order. Pure: tested without a database. */
export function buildTimeline(task: Pick<TaskRow, 'id' | 'status' | 'attempt' | 'created_at' | 'started_at' | 'completed_at'>, events: readonly StoredEvent[], truncated = false) {
  const entries: Entry[] = [];
  const counts: Record<string, number> = {};
  const attempts: AttemptSummary[] = [];
  let current: AttemptSummary | undefined;
  let awaiting = false;
  const tally = { steps: 0, retries: 0, leaseLost: 0, pauses: 0, resumes: 0, asked: 0, decided: 0 };

  const endAttempt = (outcome: string, at: string) => {
    if (!current || current.ended_at) return;
    current.ended_at = at;
    current.duration_ms = ms(current.started_at, at);
    current.outcome = outcome;
  };

  for (const e of events) {
    counts[e.type] = (counts[e.type] ?? 0) + 1;
    const p = e.payload ?? {};
    const at = iso(e.created_at)!;
    const add = (type: string, message: string, details: Record<string, unknown> = {}, worker: string | null = null) =>
      entries.push({
        workflow_id: e.task_id, seq: e.seq, type, message, timestamp: at,
        attempt: int(p.attempt) ?? current?.attempt ?? null, worker_id: worker ?? current?.worker_id ?? null, details,
      });
    switch (e.type) {
      case 'WORKFLOW_STARTED': {
        // a claim while the previous attempt is still open: it waited for an approval (and gave
        // its slot back), or it was lost without a LEASE_LOST record
        endAttempt(awaiting ? 'suspended' : 'lease_lost', at);
        awaiting = false;
        const attempt = int(p.attempt) ?? (current ? current.attempt + 1 : 1);
        current = { attempt, worker_id: str(p.worker_id), started_at: at, ended_at: null, duration_ms: null, outcome: 'running', steps_finished: 0 };
        attempts.push(current);
        add('CLAIMED', `attempt ${attempt} claimed${current.worker_id ? ` by ${current.worker_id}` : ''}`);
        break;
      }
      case 'PROGRESS':
        tally.steps++;
        if (current) current.steps_finished++;
        add('STEP_FINISHED', e.message ?? 'step finished', p);
        break;
      case 'ERROR_OCCURRED':
        add('ATTEMPT_FAILED', e.message ?? 'attempt failed', { retryable: p.retryable ?? null });
        break;
      case 'RETRYING':
        tally.retries++;
        endAttempt('retried', at);
        add('RETRY_SCHEDULED', e.message ?? 'retry scheduled', { next_attempt: p.next_attempt ?? null, delay_ms: p.delay_ms ?? null });
        break;
      case 'WARNING':
        if (p.reason === 'lease_lost') {
          tally.leaseLost++;
          endAttempt('lease_lost', at);
          add('LEASE_LOST', e.message ?? 'lease lost', {}, str(p.worker_id));
        } else if ((e.message ?? '').startsWith('worker shutting down')) {
          endAttempt('released', at);
          add('RELEASED', e.message ?? 'released back to the queue');
        } else add('WARNING', e.message ?? 'warning', p);
        break;
      case 'WORKFLOW_PAUSING':
        add('PAUSE_REQUESTED', e.message ?? 'pause requested', { reason: p.reason ?? null, paused_by: p.paused_by ?? null });
        break;
      case 'WORKFLOW_PAUSED':
        tally.pauses++;
        endAttempt('paused', at);
        add('PAUSED', e.message ?? 'paused', { reason: p.reason ?? null });
        break;
      case 'WORKFLOW_RESUMED':
        tally.resumes++;
        add('RESUMED', e.message ?? 'resumed', { resumed_by: p.resumed_by ?? null });
        break;
      case 'APPROVAL_REQUESTED':
        tally.asked++;
        awaiting = true;
        add('APPROVAL_REQUESTED', e.message ?? 'approval requested', { approval_id: p.approval_id ?? null });
        break;
      case 'APPROVAL_DECISION':
        tally.decided++;
        add('APPROVAL_DECIDED', e.message ?? 'approval decided', {
          approval_id: p.approval_id ?? null, approved: p.approved ?? null, feedback: p.feedback ?? null, decided_by: p.approved_by ?? p.decided_by ?? null,
          // who actually called (approved_by / decided_by is what the caller said)
          decided_by_principal: p.decided_by_principal ?? null,
        });
        break;
      case 'WORKFLOW_CANCELLING':
        add('CANCEL_REQUESTED', e.message ?? 'cancellation requested', { reason: p.reason ?? null, cancelled_by: p.cancelled_by ?? null });
        break;
      case 'WORKFLOW_CANCELLED':
        endAttempt('cancelled', at);
        add('CANCELLED', e.message ?? 'cancelled', { reason: p.reason ?? null });
        break;
      case 'WORKFLOW_COMPLETED':
        endAttempt('completed', at);
        add('COMPLETED', e.message ?? 'completed', { duration_ms: p.duration_ms ?? null });
        break;
      case 'WORKFLOW_FAILED': {
        const timedOut = p.status === 'TIMEOUT';
        endAttempt(timedOut ? 'timed_out' : 'failed', at);
        add(timedOut ? 'TIMED_OUT' : 'FAILED', e.message ?? 'failed', { status: p.status ?? null });
        break;
      }
      default:
        break; // agent, LLM, tool and stream events are in /events, not in the attempt-level view
    }
  }

  const end = task.completed_at ?? (task.started_at ? new Date() : null);
  return {
    workflow_id: task.id,
    events: entries,
    stats: {
      total: entries.length,
      events: events.length,
      status: task.status,
      attempts: task.attempt,
      claims: attempts.length,
      created_at: iso(task.created_at)!,
      started_at: iso(task.started_at),
      completed_at: iso(task.completed_at),
      duration_ms: ms(task.started_at, end),
      queue_ms: ms(task.created_at, task.started_at),
      steps_finished: tally.steps,
      retries: tally.retries,
      lease_losses: tally.leaseLost,
      pauses: tally.pauses,
      resumes: tally.resumes,
      approvals_requested: tally.asked,
      approvals_decided: tally.decided,
      counts,
      attempt_history: attempts,
      truncated,
    },
  };
}

export async function timelineRoutes(app: FastifyInstance, deps: { db: Db }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get('/api/v1/tasks/:id/timeline', {
    config: { scope: 'tasks:read' },
    schema: {
      tags: ['tasks'], summary: "A task's attempt-level history", params: IdParam,
      response: { 200: TimelineResponse, ...errorResponses('GET', 'scope', [400, 404]) },
    },
  }, async (req, reply) => {
    const task = await tasksGet(deps.db, req.principal.tenantId, req.params.id);
    if (!task) throw new ApiError('NOT_FOUND', `task ${req.params.id} not found`);
    const events: StoredEvent[] = [];
    for (;;) {
      const page = await eventsList(deps.db, { tenantId: task.tenant_id, taskId: task.id, afterSeq: events.at(-1)?.seq ?? 0, limit: PAGE });
      events.push(...page);
      if (page.length < PAGE || events.length >= MAX_TIMELINE_EVENTS) break;
    }
    reply.header('x-workflow-id', task.id);
    return buildTimeline(task, events, events.length >= MAX_TIMELINE_EVENTS && task.last_seq > events.length);
  });
}
