// DML for the append-only task event log.
import type { Queryable } from '../db.js';
import type { StoredEvent } from './transitions.js';

export type ReplayRow = StoredEvent & { upto: number };

/**
 * The next events of a replay (stream.ts): at most `limit` after `afterSeq`, cut once they hold
 * `maxBytes` (sizes of message and payload as text — not their stored sizes, which compression
 * makes small; the first is always included), each with
 * `upto`, the page's bytes up to it: a last `upto` under `maxBytes` means nothing was cut. A stream waits
 * for its client while it holds the page: a fixed 200 of 30 KB events kept ~6 MB per client that
 * had stopped reading. The running sum streams with the index scan, so the cut costs no more rows.
 */
export async function eventsReplayPage(
  db: Queryable,
  p: { tenantId: string; taskId: string; afterSeq: number; limit: number; maxBytes: number },
): Promise<ReplayRow[]> {
  const res = await db.query<ReplayRow>(
    `SELECT task_id, tenant_id, seq, type, agent_id, message, payload, created_at, upto::float8 AS upto FROM (
       SELECT e.*, sum(coalesce(octet_length(e.payload::text), 0) + coalesce(octet_length(e.message), 0)) OVER (ORDER BY e.seq) AS upto,
              coalesce(octet_length(e.payload::text), 0) + coalesce(octet_length(e.message), 0) AS size
         FROM task_events e
        WHERE e.task_id = $1 AND e.tenant_id = $2 AND e.seq > $3 ORDER BY e.seq LIMIT $4
     ) page WHERE upto - size < $5 ORDER BY seq`,
    [p.taskId, p.tenantId, p.afterSeq, p.limit, p.maxBytes],
    { name: 'events_replay_page' },
  );
  return res.rows;
}

export async function eventsList(
  db: Queryable,
  p: { tenantId: string; taskId: string; afterSeq?: number; limit: number; offset?: number },
): Promise<StoredEvent[]> {
  const res = await db.query<StoredEvent>(
    `SELECT task_id, tenant_id, seq, type, agent_id, message, payload, created_at FROM task_events
      WHERE task_id = $1 AND tenant_id = $2 AND seq > $3 ORDER BY seq LIMIT $4 OFFSET $5`,
    [p.taskId, p.tenantId, p.afterSeq ?? 0, p.limit, p.offset ?? 0],
  );
  return res.rows;
}

/**
 * The payload of the task's newest PROGRESS event that names `step` and `steps` (seed 004's
 * progress), found by a backward scan of the task's primary-key range.
 */
export async function eventsLatestStepProgress(db: Queryable, p: { tenantId: string; taskId: string }): Promise<{ step: number; steps: number } | undefined> {
  const res = await db.query<{ payload: { step: number; steps: number } }>(
    `SELECT payload FROM task_events
      WHERE task_id = $1 AND tenant_id = $2 AND type = 'PROGRESS' AND payload ? 'step' AND payload ? 'steps'
      ORDER BY seq DESC LIMIT 1`,
    [p.taskId, p.tenantId],
  );
  return res.rows[0]?.payload;
}

export async function eventsCount(db: Queryable, p: { tenantId: string; taskId: string }): Promise<number> {
  const res = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND tenant_id = $2',
    [p.taskId, p.tenantId],
  );
  return res.rows[0]?.n ?? 0;
}

/**
 * The newest seq of each of `taskIds` that has events (a followed task's sweep, events/hub.ts):
 * one primary-key probe per task in one statement.
 */
export async function eventsLatestSeqs(db: Queryable, taskIds: readonly string[]): Promise<Map<string, number>> {
  const res = await db.query<{ task_id: string; seq: number | null }>(
    `SELECT t.id AS task_id, (SELECT max(e.seq) FROM task_events e WHERE e.task_id = t.id) AS seq
       FROM unnest($1::text[]) AS t(id)`,
    [taskIds],
  );
  const out = new Map<string, number>();
  for (const r of res.rows) if (r.seq !== null) out.set(r.task_id, r.seq);
  return out;
}
