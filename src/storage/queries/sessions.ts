// DML for sessions (conversations of tasks). Token and cost totals are rolled up from the
// session's tasks' `usage` at read time (never double-counted: the larger of the rollup and the
// session's own running account wins, for agents that record usage per LLM call).
import type { Queryable } from '../db.js';
import type { StoredEvent } from './transitions.js';

export interface SessionRow {
  tenant_id: string;
  id: string;
  user_id: string;
  title: string | null;
  context: Record<string, unknown>;
  token_budget: number | null;
  tokens_used: number;
  cost_usd: number;
  task_count: number;
  is_research_session: boolean;
  research_strategy: string | null;
  created_at: Date;
  updated_at: Date;
  expires_at: Date | null;
  deleted_at: Date | null;
}

/** A session with its tasks rolled up. */
export interface SessionRollupRow extends SessionRow {
  successful_tasks: number;
  failed_tasks: number;
  last_activity_at: Date | null;
  latest_task_query: string | null;
  latest_task_status: string | null;
}

/** usage->>key as a number, 0 when absent or not a number. */
const usageNum = (key: string) => `CASE WHEN jsonb_typeof(t.usage->'${key}') = 'number' THEN (t.usage->>'${key}')::float8 ELSE 0 END`;
const TASK_TOKENS = `CASE WHEN jsonb_typeof(t.usage->'total_tokens') = 'number' THEN (t.usage->>'total_tokens')::float8
  ELSE ${usageNum('input_tokens')} + ${usageNum('output_tokens')} END`;

const ROLLUP_SELECT = `
  SELECT s.tenant_id, s.id, s.user_id, s.title, s.context, s.token_budget, s.is_research_session, s.research_strategy,
         s.created_at, s.updated_at, s.expires_at, s.deleted_at,
         GREATEST(s.tokens_used::float8, coalesce(u.tokens, 0)) AS tokens_used,
         GREATEST(CASE WHEN s.cost_usd IN ('NaN', 'Infinity', '-Infinity') THEN 0 ELSE s.cost_usd END, coalesce(u.cost, 0)) AS cost_usd,
         coalesce(u.n, 0) AS task_count,
         coalesce(u.ok, 0) AS successful_tasks,
         coalesce(u.failed, 0) AS failed_tasks,
         u.last_activity_at,
         (SELECT l.query FROM tasks l WHERE l.tenant_id = s.tenant_id AND l.session_id = s.id ORDER BY l.created_at DESC, l.id DESC LIMIT 1) AS latest_task_query,
         (SELECT l.status FROM tasks l WHERE l.tenant_id = s.tenant_id AND l.session_id = s.id ORDER BY l.created_at DESC, l.id DESC LIMIT 1) AS latest_task_status
    FROM sessions s
    LEFT JOIN LATERAL (
      SELECT count(*)::int AS n,
             (count(*) FILTER (WHERE t.status = 'COMPLETED'))::int AS ok,
             (count(*) FILTER (WHERE t.status IN ('FAILED', 'TIMEOUT')))::int AS failed,
             sum(${TASK_TOKENS}) AS tokens,
             sum(${usageNum('estimated_cost')}) AS cost,
             max(coalesce(t.completed_at, t.started_at, t.created_at)) AS last_activity_at
        FROM tasks t WHERE t.tenant_id = s.tenant_id AND t.session_id = s.id
    ) u ON true`;

/** A live (not deleted) session of the tenant, with its rollup. */
export async function sessionsGet(db: Queryable, tenantId: string, id: string): Promise<SessionRollupRow | undefined> {
  const res = await db.query<SessionRollupRow>(`${ROLLUP_SELECT} WHERE s.tenant_id = $1 AND s.id = $2 AND s.deleted_at IS NULL`, [tenantId, id]);
  return res.rows[0];
}

/** The tenant's live sessions, newest first, with their rollups. */
export async function sessionsList(db: Queryable, p: { tenantId: string; limit: number; offset: number }): Promise<SessionRollupRow[]> {
  const res = await db.query<SessionRollupRow>(
    `${ROLLUP_SELECT} WHERE s.tenant_id = $1 AND s.deleted_at IS NULL ORDER BY s.created_at DESC, s.id DESC LIMIT $2 OFFSET $3`,
    [p.tenantId, p.limit, p.offset],
  );
  return res.rows;
}

export async function sessionsCount(db: Queryable, tenantId: string): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE tenant_id = $1 AND deleted_at IS NULL', [tenantId]);
  return res.rows[0]?.n ?? 0;
}

/** Sets the title of a live session; false when there is none. */
export async function sessionsSetTitle(db: Queryable, p: { tenantId: string; id: string; title: string }): Promise<{ updated_at: Date } | undefined> {
  const res = await db.query<{ updated_at: Date }>(
    `UPDATE sessions SET title = $3, updated_at = now()
      WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING updated_at`,
    [p.tenantId, p.id, p.title],
  );
  return res.rows[0];
}

/** Soft-deletes a session (idempotent: an already deleted one keeps its first deleted_at); false when it never existed. */
export async function sessionsSoftDelete(db: Queryable, p: { tenantId: string; id: string }): Promise<boolean> {
  const res = await db.query(
    `UPDATE sessions SET deleted_at = coalesce(deleted_at, now()),
            updated_at = CASE WHEN deleted_at IS NULL THEN now() ELSE updated_at END
      WHERE tenant_id = $1 AND id = $2 RETURNING id`,
    [p.tenantId, p.id],
  );
  return res.rowCount > 0;
}

/** A task of a session as its history and turns show it. */
export interface SessionTaskRow {
  id: string;
  query: string;
  status: string;
  mode: string | null;
  task_definition_id: string | null;
  result: string | null;
  output: unknown;
  error: string | null;
  usage: Record<string, number> | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  total_tokens: number;
  total_cost_usd: number;
  agents_used: number;
  tools_invoked: number;
}

/** The session's tasks, oldest first (a conversation reads top to bottom). */
export async function sessionsTasks(
  db: Queryable,
  p: { tenantId: string; sessionId: string; limit: number; offset: number },
): Promise<SessionTaskRow[]> {
  const res = await db.query<SessionTaskRow>(
    `SELECT t.id, t.query, t.status, t.mode, t.task_definition_id, t.result, t.output, t.error, t.usage, t.metadata,
            t.created_at, t.started_at, t.completed_at,
            ${TASK_TOKENS} AS total_tokens, ${usageNum('estimated_cost')} AS total_cost_usd,
            (SELECT count(DISTINCT e.agent_id)::int FROM task_events e WHERE e.task_id = t.id AND e.agent_id IS NOT NULL) AS agents_used,
            (SELECT count(*)::int FROM task_events e WHERE e.task_id = t.id AND e.type = 'TOOL_INVOKED') AS tools_invoked
       FROM tasks t
      WHERE t.tenant_id = $1 AND t.session_id = $2
      ORDER BY t.created_at, t.id LIMIT $3 OFFSET $4`,
    [p.tenantId, p.sessionId, p.limit, p.offset],
  );
  return res.rows;
}

/** Persisted events of several tasks of one tenant, by task then seq, at most `limit`. */
export async function sessionsTaskEvents(db: Queryable, p: { tenantId: string; taskIds: string[]; limit: number }): Promise<StoredEvent[]> {
  if (p.taskIds.length === 0) return [];
  const res = await db.query<StoredEvent>(
    `SELECT task_id, tenant_id, seq, type, agent_id, message, payload, created_at FROM task_events
      WHERE task_id = ANY($1::text[]) AND tenant_id = $2 ORDER BY task_id, seq LIMIT $3`,
    [p.taskIds, p.tenantId, p.limit],
  );
  return res.rows;
}
