// Stored rows → wire shapes (PRODUCT.md §3). Timestamps are RFC 3339 UTC.
import { ApiError } from '../contract/errors.js';
import { priorityFromRank } from '../domain/lifecycle.js';
import { parseJsonAnswer } from '../domain/json-answer.js';
import type { TaskRow } from '../storage/queries/tasks.js';
import type { TaskView } from '../contract/tasks.js';

export const iso = (d: Date | string | null | undefined): string | null =>
  d === null || d === undefined ? null : (d instanceof Date ? d : new Date(d)).toISOString();

/** The instants RFC 3339 can write in UTC — four-digit years: 0000-01-01T00:00:00Z … 9999-12-31T23:59:59.999Z. */
const FIRST_INSTANT_MS = Date.parse('0000-01-01T00:00:00.000Z');
const LAST_INSTANT_MS = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * A timestamp input (`run_at`, `expires_at`) as a Date, or a 400 naming `field`. An offset can
 * carry a valid RFC 3339 text past the four-digit years (`9999-12-31T23:59:59-23:59` is year
 * 10000 in UTC), which `iso` would then answer as `+010000-…`: refused, like text that is no time.
 */
export function parseInstant(text: string, field: string): Date {
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) throw new ApiError('VALIDATION_ERROR', `${field} must be an RFC 3339 timestamp`, { path: field, reason: 'invalid value' });
  if (at.getTime() < FIRST_INSTANT_MS || at.getTime() > LAST_INSTANT_MS) {
    throw new ApiError('VALIDATION_ERROR', `${field} must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z`, { path: field, reason: 'out of range' });
  }
  return at;
}

export function usageOf(row: Pick<TaskRow, 'usage'>) {
  const u = row.usage ?? {};
  const input = Number(u.input_tokens ?? 0);
  const output = Number(u.output_tokens ?? 0);
  return { input_tokens: input, output_tokens: output, total_tokens: Number(u.total_tokens ?? input + output), estimated_cost: Number(u.estimated_cost ?? 0) };
}

/**
 * A task's mode: the one it was submitted with, else the one the agent executor routed it to
 * (metadata.mode beside metadata.mode_source, both written by the run) — seed 002 reads mode as a
 * string. Null before an auto-routed task has run, and for definition tasks; a free `mode` key a
 * client put in metadata, without mode_source, is not taken for one.
 */
export function modeOf(row: { mode: string | null; metadata?: Record<string, unknown> | null }): string | null {
  const md = row.metadata;
  return row.mode ?? (typeof md?.mode === 'string' && typeof md.mode_source === 'string' ? md.mode : null);
}

export function taskView(row: TaskRow): TaskView {
  const start = row.started_at;
  const end = row.completed_at;
  const { traceparent: _t, ...metadata } = row.metadata ?? {};
  return {
    task_id: row.id,
    workflow_id: row.id,
    status: row.status,
    query: row.query ?? '',
    input: row.input ?? null,
    task_definition_id: row.task_definition_id,
    session_id: row.session_id,
    mode: modeOf(row),
    priority: priorityFromRank(row.priority),
    context: row.context ?? {},
    result: row.result,
    response: row.kind === 'definition' ? (row.output ?? null) : parseJsonAnswer(row.result),
    output: row.output ?? null,
    error: row.error,
    attempts: row.attempt,
    max_attempts: row.max_attempts,
    model_used: row.model_used,
    provider: row.provider,
    usage: usageOf(row),
    metadata,
    workflow_instance_id: row.workflow_instance_id,
    run_at: iso(row.run_at)!,
    execution_metadata: {
      start_time: iso(start),
      end_time: iso(end),
      duration_ms: start && end ? new Date(end).getTime() - new Date(start).getTime() : null,
      worker_id: row.last_worker,
    },
    created_at: iso(row.created_at)!,
    started_at: iso(start),
    completed_at: iso(end),
    updated_at: iso(row.updated_at)!,
  };
}

export function taskListItem(row: TaskRow) {
  const u = usageOf(row);
  return {
    task_id: row.id,
    query: row.query ?? '',
    status: row.status,
    // a list row's metadata holds only mode and mode_source (storage LIST_COLUMNS)
    mode: modeOf(row),
    priority: priorityFromRank(row.priority),
    task_definition_id: row.task_definition_id,
    session_id: row.session_id,
    created_at: iso(row.created_at)!,
    completed_at: iso(row.completed_at),
    total_token_usage: { total_tokens: u.total_tokens, cost_usd: u.estimated_cost, prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens },
  };
}
