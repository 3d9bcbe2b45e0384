-- The claim's row selection keeps its pinned plan (0005) but is cached per connection: a SQL
-- function with SET clauses is never inlined and re-parses and re-plans its body on every call
-- (~0.3 ms per claim); PL/pgSQL prepares the statement once per connection and session.
CREATE OR REPLACE FUNCTION taskgate_claimable(p_limit integer) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE ROWS 50
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
AS $$
BEGIN
  RETURN QUERY
    SELECT id FROM tasks
     WHERE status = 'QUEUED' AND run_at <= now()
     ORDER BY priority, run_at, id
     LIMIT p_limit
     FOR UPDATE SKIP LOCKED; -- (migrate.ts splits statements at a line-final semicolon)
END
$$;

-- Most tasks carry no tags: indexing their empty arrays cost two GIN insertions per task state
-- change (every change is a new row version). The list's tag filter adds `tags <> '{}'` so the
-- planner can prove it matches this predicate.
DROP INDEX tasks_tags_idx;
CREATE INDEX tasks_tags_idx ON tasks USING gin (tags) WHERE tags <> '{}';

-- Events are only ever appended by the statement that changes their task (queries/transitions.ts,
-- the submit statement) and tasks are never deleted, so the foreign key only re-read the task row
-- for every event: ~10 µs per event, a quarter of a claim's and of a completion's cost per task.
ALTER TABLE task_events DROP CONSTRAINT task_events_task_id_fkey;
