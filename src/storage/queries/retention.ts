// Retention (engine/retention.ts): ended tasks and soft-deleted sessions older than the configured
// age are deleted in small batches. Ages are measured on the database's clock, the one that wrote
// completed_at and deleted_at.
import type { Queryable } from '../db.js';
import { TERMINAL_STATUSES } from '../../domain/lifecycle.js';

const ENDED = [...TERMINAL_STATUSES];

/**
 * Deletes up to `limit` of `tenantId`'s tasks that ended (a terminal status: domain/lifecycle.ts)
 * more than `olderThanMs` ago, with their events; steps and approvals go with them (ON DELETE
 * CASCADE). Returns how many tasks it deleted.
 *
 * The rows are found through the (tenant_id, created_at) list index — a task created after the
 * cutoff cannot have ended before it — so no index is added to the write path for this. Rows
 * another sweeper or a transition holds are skipped, never waited for.
 */
export async function tasksDeleteEnded(db: Queryable, p: { tenantId: string; olderThanMs: number; limit: number }): Promise<number> {
  const res = await db.query<{ id: string }>(
    `WITH cutoff AS (SELECT now() - $2::bigint * interval '1 millisecond' AS at),
     doomed AS (
       SELECT t.id FROM tasks t, cutoff
        WHERE t.tenant_id = $1 AND t.created_at < cutoff.at AND t.completed_at < cutoff.at
          AND t.status = ANY ($4::text[])
        ORDER BY t.created_at
        LIMIT $3
        FOR UPDATE OF t SKIP LOCKED
     ), events AS (
       DELETE FROM task_events WHERE task_id = ANY (ARRAY(SELECT id FROM doomed))
     )
     DELETE FROM tasks WHERE id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING id`,
    [p.tenantId, p.olderThanMs, p.limit, ENDED],
    { name: 'tasks_delete_ended' },
  );
  return res.rowCount;
}

/** Deletes up to `limit` sessions soft-deleted more than `olderThanMs` ago; returns how many. */
export async function sessionsDeleteRemoved(db: Queryable, p: { olderThanMs: number; limit: number }): Promise<number> {
  const res = await db.query(
    `DELETE FROM sessions WHERE ctid IN (
       SELECT ctid FROM sessions WHERE deleted_at < now() - $1::bigint * interval '1 millisecond' LIMIT $2
     )`,
    [p.olderThanMs, p.limit],
  );
  return res.rowCount;
}
