-- The claim's row selection, as a function that pins its plan: an ordered scan of tasks_claim_idx
-- that stops at the limit. Left to the planner, a table whose statistics predate a burst of
-- submits (autovacuum analyzes about once a minute) is estimated to hold a handful of QUEUED rows,
-- and the cheaper-looking bitmap scan + sort then reads and sorts every queued row on every claim
-- (measured: 9 ms instead of 0.4 ms per claim of 50 with 5,000 queued; worse as the queue grows).
-- Callers take the ids as an array (`id = ANY(ARRAY(SELECT taskgate_claimable(n)))`) so the
-- UPDATE finds each row through the primary key instead of joining a set the planner cannot size.
CREATE FUNCTION taskgate_claimable(p_limit integer) RETURNS SETOF text
LANGUAGE sql VOLATILE ROWS 50
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
AS $$
  SELECT id FROM tasks
   WHERE status = 'QUEUED' AND run_at <= now()
   ORDER BY priority, run_at, id
   LIMIT p_limit
   FOR UPDATE SKIP LOCKED
$$;

-- The lease index keyed on "has a lease" instead of status = 'RUNNING': a partial index on a
-- status keeps an entry for every row that ever had it until vacuum, and the planner, which
-- thinks few rows are RUNNING, used it to find the handful of rows a completion or heartbeat
-- names by id (measured: a bitmap over 10,000 stale entries and 413 heap pages for 49 rows).
-- Statements that name rows by id and check status = 'RUNNING' now only match the primary key;
-- the reaper (lease_expires_at < now() implies IS NOT NULL) still uses this one.
DROP INDEX tasks_lease_idx;
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
