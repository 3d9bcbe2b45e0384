// DML for agent tasks: a session's earlier turns (conversation memory), its token account, and
// the per-call usage roll-up that keeps the session's tokens_used and cost_usd current.
import type { Queryable } from '../db.js';

/** Turns read per task before trimming to the context budget (newest first). */
export const SESSION_HISTORY_MAX_TURNS = 50;

export interface SessionTurnRow {
  task_id: string;
  query: string;
  result: string;
}

/** Longest text PostgreSQL's left() takes a count for (int4). */
const MAX_LEFT_CHARS = 2_147_483_647;

/**
 * Completed agent turns of a session created before `beforeTaskId` (or all of them when that task
 * is unknown), oldest first, at most `limit` of the newest. `maxChars` cuts each query and result
 * in SQL (a result may be 4 MiB, and 50 of them were read to keep a few): pass the history
 * budget's characters + 1, so a cut turn is still over the budget and dropped as a whole one was.
 */
export async function agentSessionTurns(
  db: Queryable,
  p: { tenantId: string; sessionId: string; beforeTaskId: string; limit?: number; maxChars?: number },
): Promise<SessionTurnRow[]> {
  const maxChars = Math.max(0, Math.min(MAX_LEFT_CHARS, Math.floor(p.maxChars ?? MAX_LEFT_CHARS)));
  const res = await db.query<SessionTurnRow>(
    `SELECT id AS task_id, left(query, $5) AS query, left(result, $5) AS result FROM (
       SELECT id, query, result, created_at FROM tasks
        WHERE tenant_id = $1 AND session_id = $2 AND id <> $3 AND kind = 'agent'
          AND status = 'COMPLETED' AND result IS NOT NULL AND query <> ''
          AND created_at <= coalesce((SELECT created_at FROM tasks WHERE id = $3 AND tenant_id = $1), now())
        ORDER BY created_at DESC, id DESC LIMIT $4
     ) t ORDER BY created_at, id`,
    [p.tenantId, p.sessionId, p.beforeTaskId, p.limit ?? SESSION_HISTORY_MAX_TURNS, maxChars],
  );
  return res.rows;
}

export interface SessionAccountRow {
  tokens_used: number;
  token_budget: number | null;
}

export async function agentSessionAccount(db: Queryable, p: { tenantId: string; sessionId: string }): Promise<SessionAccountRow | undefined> {
  const res = await db.query<SessionAccountRow>(
    'SELECT tokens_used::float8 AS tokens_used, token_budget FROM sessions WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL',
    [p.tenantId, p.sessionId],
  );
  return res.rows[0];
}

/** Sets a session's own token budget (0 = unlimited); false when the session does not exist. */
export async function agentSessionSetBudget(db: Queryable, p: { tenantId: string; sessionId: string; tokenBudget: number }): Promise<boolean> {
  const res = await db.query(
    `UPDATE sessions SET token_budget = $3, updated_at = now()
      WHERE tenant_id = $1 AND id = $2 AND token_budget IS DISTINCT FROM $3`,
    [p.tenantId, p.sessionId, p.tokenBudget],
  );
  return res.rowCount > 0;
}

/** A count or amount the account may add: finite and non-negative, else 0. */
const addable = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0);

export interface SessionReservation {
  /** false: the estimate did not fit; nothing was reserved. */
  reserved: boolean;
  /** tokens_used after the reservation, or as it stood when refused (in-flight reservations included). */
  tokensUsed: number;
}

/**
 * Reserves `tokens` of a session's budget before an LLM call, atomically: tokens_used grows by
 * the estimate only while tokens_used + tokens ≤ budget, so concurrent tasks of one session never
 * start calls whose estimates exceed it. Settled by agentSessionAddUsage (reservedTokens) or
 * given back by agentSessionReleaseTokens. undefined when the session does not exist.
 */
export async function agentSessionReserveTokens(
  db: Queryable,
  p: { tenantId: string; sessionId: string; tokens: number; budget: number },
): Promise<SessionReservation | undefined> {
  const res = await db.query<{ reserved: boolean; tokens_used: number }>(
    `WITH r AS (
       UPDATE sessions SET tokens_used = tokens_used + $3
        WHERE tenant_id = $1 AND id = $2 AND tokens_used + $3 <= $4
        RETURNING tokens_used::float8 AS tokens_used
     )
     SELECT true AS reserved, tokens_used FROM r
     UNION ALL
     SELECT false AS reserved, tokens_used::float8 FROM sessions
      WHERE tenant_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM r)`,
    [p.tenantId, p.sessionId, Math.ceil(addable(p.tokens)), Math.floor(addable(p.budget))],
  );
  const row = res.rows[0];
  return row ? { reserved: row.reserved, tokensUsed: Number(row.tokens_used) } : undefined;
}

/** Gives back a reservation whose call was not made or failed (never below 0). */
export async function agentSessionReleaseTokens(db: Queryable, p: { tenantId: string; sessionId: string; tokens: number }): Promise<boolean> {
  const res = await db.query(
    'UPDATE sessions SET tokens_used = GREATEST(0, tokens_used - $3) WHERE tenant_id = $1 AND id = $2',
    [p.tenantId, p.sessionId, Math.ceil(addable(p.tokens))],
  );
  return res.rowCount > 0;
}

/**
 * Adds one LLM call's tokens and cost to its session, settling the call's reservation
 * (`reservedTokens`, already in tokens_used) in the same write; false when the session does not
 * exist. Never adds a non-finite value (NaN + x is NaN, and GREATEST(NaN, …) is NaN for good),
 * and a cost_usd that is already NaN or ±Infinity restarts from 0 (the view then shows the tasks' sum).
 */
export async function agentSessionAddUsage(
  db: Queryable,
  p: { tenantId: string; sessionId: string; tokens: number; costUsd: number; reservedTokens?: number },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE sessions SET tokens_used = GREATEST(0, tokens_used + $3 - $5),
            cost_usd = CASE WHEN cost_usd IN ('NaN', 'Infinity', '-Infinity') THEN 0 ELSE cost_usd END + $4,
            updated_at = now()
      WHERE tenant_id = $1 AND id = $2`,
    [p.tenantId, p.sessionId, Math.round(addable(p.tokens)), addable(p.costUsd), Math.ceil(addable(p.reservedTokens ?? 0))],
  );
  return res.rowCount > 0;
}
