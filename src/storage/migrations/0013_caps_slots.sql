-- Tenant caps (max_running), two mends of migration 0011's taskgate_claimable, otherwise unchanged:
-- - A task parked for an approval (RUNNING, its lease given up: lease_owner NULL) holds no worker
--   slot and no longer counts against its tenant's cap: a tenant capped at N with N approvals
--   pending ran nothing else until they were decided or timed out (60 min by default).
-- - The one-tenant claim answered the queue in global order without looking at tenants: tasks of
--   another tenant committed between its probes and its pick came back past that tenant's cap (a
--   tenant capped at 1: 3 ids in a multi-process audit). The claim statement's own snapshot kept
--   them from being written RUNNING, but they took the claim's limit and a poll's existence check
--   counted them. Tasks of other capped tenants are left to the claims that count them, as the
--   several-tenants path's fill-up does.
CREATE OR REPLACE FUNCTION taskgate_claimable(p_limit integer, p_after text DEFAULT '') RETURNS SETOF text
LANGUAGE plpgsql VOLATILE ROWS 50
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
SET jit = off
AS $$
DECLARE
  v_after text := coalesce(p_after, '');
  v_only text := v_after;
  v_tenants text[] := '{}';
  v_window integer;
  v_each integer;
  v_ids text[] := '{}';
  v_picks text[];
  v_from integer;
  v_want integer;
  v_cap integer;
  v_key integer;
  v_limit integer := p_limit;
BEGIN
  IF p_limit IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  -- Every probe of tasks_tenant_claim_idx below reads it backwards, landing on the end of a
  -- tenant's entries: its newest and least urgent, still queued. A tenant's first entries are the
  -- ones claims took, dead until vacuum, and while any transaction is open (a claim window) they
  -- cannot even be marked so: a probe landing there read them all, every claim. Each probe orders
  -- by all of the index's columns: no other index gives that order, and with sorts disabled the
  -- planner takes this one whatever the statistics say (ordered by tenant_id alone, with
  -- statistics from a time most tasks were queued, it read other indexes on tenant_id and filtered
  -- on status — through every finished task of the tenants it passed). NOT EXISTS would drop the
  -- order: the probes are scalar subqueries.
  --
  -- One tenant queued (p_after's, or on a claimer's first claim the last one's): the claim of
  -- migration 0005.
  IF v_only = '' THEN
    SELECT tenant_id INTO v_only FROM tasks WHERE status = 'QUEUED'
     ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1;
    IF NOT FOUND THEN
      RETURN;
    END IF;
  END IF;
  IF (SELECT tenant_id FROM tasks WHERE status = 'QUEUED' AND tenant_id > v_only
       ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1) IS NULL
     AND (SELECT tenant_id FROM tasks WHERE status = 'QUEUED' AND tenant_id < v_only
           ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1) IS NULL THEN
    SELECT max_running INTO v_cap FROM tenants WHERE id = v_only;
    IF v_cap IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(727270002, hashtext(v_only));
      SELECT least(p_limit, v_cap - count(*)) INTO v_limit FROM tasks WHERE tenant_id = v_only AND status = 'RUNNING' AND lease_owner IS NOT NULL;
      IF v_limit < 1 THEN
        RETURN;
      END IF;
    END IF;
    RETURN QUERY
      SELECT id FROM tasks t
       WHERE status = 'QUEUED' AND run_at <= now()
         AND (t.tenant_id = v_only OR NOT EXISTS (SELECT 1 FROM tenants x WHERE x.id = t.tenant_id AND x.max_running IS NOT NULL))
       ORDER BY priority, run_at, id
       LIMIT v_limit
       FOR UPDATE SKIP LOCKED;
    RETURN;
  END IF;

  -- Several: going down in id order, the tenants below p_after, then from the last one down to
  -- p_after (one probe per tenant).
  v_window := least(greatest(32, p_limit), 256);
  WITH RECURSIVE s(t, n) AS (
    SELECT (SELECT tenant_id FROM tasks WHERE status = 'QUEUED' AND tenant_id < v_after
             ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1), 1
    UNION ALL
    SELECT (SELECT tenant_id FROM tasks WHERE status = 'QUEUED' AND tenant_id < s.t
             ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1), s.n + 1
      FROM s WHERE s.t IS NOT NULL AND s.n < v_window
  )
  SELECT coalesce(array_agg(s.t ORDER BY s.n), '{}') INTO v_tenants FROM s WHERE s.t IS NOT NULL;
  IF cardinality(v_tenants) < v_window THEN
    WITH RECURSIVE s(t, n) AS (
      SELECT (SELECT tenant_id FROM tasks WHERE status = 'QUEUED' AND tenant_id >= v_after
               ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1), 1
      UNION ALL
      SELECT (SELECT tenant_id FROM tasks WHERE status = 'QUEUED' AND tenant_id < s.t AND tenant_id >= v_after
               ORDER BY tenant_id DESC, priority DESC, run_at DESC, id DESC LIMIT 1), s.n + 1
        FROM s WHERE s.t IS NOT NULL AND s.n < v_window - cardinality(v_tenants)
    )
    SELECT v_tenants || coalesce(array_agg(s.t ORDER BY s.n), '{}') INTO v_tenants FROM s WHERE s.t IS NOT NULL;
  END IF;

  -- Each tenant's first runnable tasks (read per priority, each read stopping at the first task
  -- not yet due: one read in claim order went through every scheduled task of a tenant that had
  -- none due — 2 ms a claim beside 20,000 scheduled ones), p_limit of them (fewer when many
  -- tenants share a budget of
  -- max(256, 2 × p_limit) rows), unlocked, in fair order: priority, then the tenant's load were
  -- the task given a slot (its RUNNING tasks + those ahead of it here), then round-robin
  -- position, then age. Sorts stay disabled (the function's setting), so each tenant's reads take
  -- tasks_tenant_claim_idx in its order: with sorts on and statistics older than a tenant's
  -- backlog the planner read all of its queued tasks through the tenant/status index and sorted
  -- them, four times a claim (auto_explain: 14 ms a claim among 4 tenants with 3,000 queued each;
  -- 2.7 ms without sorting).
  v_each := least(p_limit, greatest(1, ceil(greatest(256, 2 * p_limit)::numeric / cardinality(v_tenants))::integer));
  -- capped tenants' locks first, in one order for every claimer (no deadlock), before counting
  FOR v_key IN
    SELECT DISTINCT hashtext(x.id) AS k FROM tenants x WHERE x.id = ANY (v_tenants) AND x.max_running IS NOT NULL ORDER BY k
  LOOP
    PERFORM pg_advisory_xact_lock(727270002, v_key);
  END LOOP;
  WITH tn AS MATERIALIZED (
    SELECT u.tenant_id, u.pos,
           (SELECT count(*) FROM tasks r WHERE r.tenant_id = u.tenant_id AND r.status = 'RUNNING' AND r.lease_owner IS NOT NULL) AS running,
           (SELECT x.max_running FROM tenants x WHERE x.id = u.tenant_id) AS cap
      FROM unnest(v_tenants) WITH ORDINALITY AS u(tenant_id, pos)
  )
  SELECT array_agg(c.id ORDER BY c.priority, tn.running + c.ahead, tn.pos, c.run_at, c.id) INTO v_picks
    FROM tn CROSS JOIN LATERAL (
      SELECT q.id, q.priority, q.run_at, row_number() OVER (ORDER BY q.priority, q.run_at, q.id) - 1 AS ahead
        FROM (SELECT u.id, u.priority, u.run_at
                FROM ((SELECT t.id, t.priority, t.run_at FROM tasks t
                        WHERE t.tenant_id = tn.tenant_id AND t.status = 'QUEUED' AND t.priority = 0 AND t.run_at <= now()
                        ORDER BY t.run_at, t.id LIMIT v_each)
                      UNION ALL
                      (SELECT t.id, t.priority, t.run_at FROM tasks t
                        WHERE t.tenant_id = tn.tenant_id AND t.status = 'QUEUED' AND t.priority = 1 AND t.run_at <= now()
                        ORDER BY t.run_at, t.id LIMIT v_each)
                      UNION ALL
                      (SELECT t.id, t.priority, t.run_at FROM tasks t
                        WHERE t.tenant_id = tn.tenant_id AND t.status = 'QUEUED' AND t.priority = 2 AND t.run_at <= now()
                        ORDER BY t.run_at, t.id LIMIT v_each)
                      UNION ALL
                      (SELECT t.id, t.priority, t.run_at FROM tasks t
                        WHERE t.tenant_id = tn.tenant_id AND t.status = 'QUEUED' AND t.priority = 3 AND t.run_at <= now()
                        ORDER BY t.run_at, t.id LIMIT v_each)) u
               ORDER BY u.priority, u.run_at, u.id
               LIMIT v_each) q
    ) c
   WHERE tn.cap IS NULL OR c.ahead < tn.cap - tn.running;
  -- The first picks still needed, locked in one statement through the primary key; any a
  -- concurrent claim holds are skipped and the next picks tried. (The status test is an
  -- expression no index has, so the primary key is the only way in: with statistics older than
  -- the queue, `= 'QUEUED'` had the planner answer it from a queue index and 0010's
  -- `IN ('QUEUED', '')` from the tenant/status index, each by reading every queued entry — 44 ms
  -- a claim.)
  v_from := 1;
  WHILE cardinality(v_ids) < p_limit AND v_from <= coalesce(cardinality(v_picks), 0) LOOP
    v_want := p_limit - cardinality(v_ids);
    SELECT v_ids || coalesce(array_agg(l.id), '{}') INTO v_ids
      FROM (SELECT t.id FROM tasks t
             WHERE t.id = ANY (v_picks[v_from:v_from + v_want - 1]) AND t.status || '' = 'QUEUED' AND t.run_at <= now()
             FOR UPDATE SKIP LOCKED) l;
    v_from := v_from + v_want;
  END LOOP;
  RETURN QUERY SELECT unnest(v_ids);

  -- Slots left while tasks may wait beyond what was looked at (tenants past the window, tasks past
  -- a tenant's share): the global order fills them, so a claim that is not full means a drained
  -- queue — with tasks of capped tenants left to the rounds that count them.
  IF cardinality(v_ids) < p_limit THEN
    RETURN QUERY
      SELECT id FROM tasks t
       WHERE status = 'QUEUED' AND run_at <= now() AND id <> ALL (v_ids)
         AND NOT EXISTS (SELECT 1 FROM tenants x WHERE x.id = t.tenant_id AND x.max_running IS NOT NULL)
       ORDER BY priority, run_at, id
       LIMIT p_limit - cardinality(v_ids)
       FOR UPDATE SKIP LOCKED;
  END IF;
END
$$;
