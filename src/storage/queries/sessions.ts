// DML for sessions (conversations of tasks).
import type { Queryable } from '../db.js';

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

/** Creates the session on first use, or counts one more task in it. */
export async function sessionsTouch(
  db: Queryable,
  p: { tenantId: string; id: string; userId: string; count: number; researchStrategy: string | null },
): Promise<void> {
  await db.query(
    `INSERT INTO sessions (tenant_id, id, user_id, task_count, is_research_session, research_strategy)
     VALUES ($1, $2, $3, $4, $5 IS NOT NULL, $5)
     ON CONFLICT (tenant_id, id) DO UPDATE SET task_count = sessions.task_count + excluded.task_count,
       updated_at = now(), deleted_at = NULL`,
    [p.tenantId, p.id, p.userId, p.count, p.researchStrategy],
  );
}
