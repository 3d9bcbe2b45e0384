-- Fair claims across tenants. Before, a claim took runnable tasks in one global order, so a
-- tenant with 5,000 queued tasks made another tenant's task of the same priority wait behind all
-- of them (measured: 29.8 s). Now, when more than one tenant has queued work, a claim hands each
-- free slot to the tenant with the fewest tasks RUNNING (counting the ones this claim already gave
-- it), ties going round-robin from the tenant after `p_after` (the last one the caller served).
-- Priority still comes first: `urgent` work of any tenant goes ahead of everyone's `high`.
--
-- The queue per tenant, in claim order: a claim finds the tenants with queued work by skipping
-- through it (one probe per tenant), and reads each one's first runnable tasks from it.
CREATE INDEX tasks_tenant_claim_idx ON tasks (tenant_id, priority, run_at, id) WHERE status = 'QUEUED';

-- The old one-argument function goes: a call with one argument (a worker of the previous release,
-- still running through the upgrade) resolves to the new one's default `p_after`.
DROP FUNCTION taskgate_claimable(integer);

-- Locks up to p_limit runnable task ids in claim order. With one tenant queued (the common case,
-- and every single-tenant deployment) this is the statement of migration 0005 after two probes of
-- the tenant index; with several it considers at most 32 of them per claim, starting after
-- p_after in id order and wrapping around, so every tenant is reached in turn.
CREATE FUNCTION taskgate_claimable(p_limit integer, p_after text DEFAULT '') RETURNS SETOF text
LANGUAGE plpgsql VOLATILE ROWS 50
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
SET jit = off
AS $$
DECLARE
  v_after text := coalesce(p_after, '');
  v_tenants text[] := '{}';
  v_next text;
  v_id text;
  v_taken integer := 0;
  v_wrapped boolean := false;
BEGIN
  IF p_limit IS NULL OR p_limit < 1 THEN
    RETURN;
  END IF;
  -- One tenant queued (p_after's, or the first one's on a caller's first claim): the claim of
  -- migration 0005. Both probes land beside the tenant's own entries, never walking through them.
  IF v_after = '' THEN
    SELECT tenant_id INTO v_after FROM tasks WHERE status = 'QUEUED' ORDER BY tenant_id LIMIT 1;
    IF NOT FOUND THEN
      RETURN;
    END IF;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM tasks WHERE status = 'QUEUED' AND tenant_id > v_after ORDER BY tenant_id LIMIT 1)
     AND NOT EXISTS (SELECT 1 FROM tasks WHERE status = 'QUEUED' AND tenant_id < v_after ORDER BY tenant_id DESC LIMIT 1) THEN
    RETURN QUERY
      SELECT id FROM tasks
       WHERE status = 'QUEUED' AND run_at <= now()
       ORDER BY priority, run_at, id
       LIMIT p_limit
       FOR UPDATE SKIP LOCKED;
    RETURN;
  END IF;

  -- Several: windows of up to 32 tenants, the ones after p_after first, then from the first one
  -- up to p_after, until the claim is full or every tenant was looked at.
  v_next := v_after;
  LOOP
    v_tenants := '{}';
    LOOP
      IF NOT v_wrapped THEN
        SELECT tenant_id INTO v_next FROM tasks
         WHERE status = 'QUEUED' AND tenant_id > v_next ORDER BY tenant_id LIMIT 1;
        IF NOT FOUND THEN
          v_wrapped := true;
          v_next := '';
          CONTINUE;
        END IF;
      ELSE
        SELECT tenant_id INTO v_next FROM tasks
         WHERE status = 'QUEUED' AND tenant_id > v_next AND tenant_id <= v_after ORDER BY tenant_id LIMIT 1;
        EXIT WHEN NOT FOUND;
      END IF;
      v_tenants := v_tenants || v_next;
      EXIT WHEN cardinality(v_tenants) >= 32;
    END LOOP;
    EXIT WHEN cardinality(v_tenants) = 0;

    -- Each tenant's first runnable tasks, unlocked, in fair order: priority, then the tenant's
    -- load were the task given a slot (its RUNNING tasks + those ahead of it here), then
    -- round-robin position, then age. They are locked one by one in that order, skipping any a
    -- concurrent claim holds, so two claimers take different tasks. (Sorting the candidates is
    -- the plan; disabled, its penalty cost made a plan the size JIT compiles: 175 ms a claim.)
    PERFORM set_config('enable_sort', 'on', true);
    FOR v_id IN
      WITH tn AS MATERIALIZED (
        SELECT u.tenant_id, u.pos,
               (SELECT count(*) FROM tasks r WHERE r.tenant_id = u.tenant_id AND r.status = 'RUNNING') AS running
          FROM unnest(v_tenants) WITH ORDINALITY AS u(tenant_id, pos)
      )
      SELECT c.id
        FROM tn CROSS JOIN LATERAL (
          SELECT q.id, q.priority, q.run_at, row_number() OVER (ORDER BY q.priority, q.run_at, q.id) - 1 AS ahead
            FROM (SELECT t.id, t.priority, t.run_at FROM tasks t
                   WHERE t.tenant_id = tn.tenant_id AND t.status = 'QUEUED' AND t.run_at <= now()
                   ORDER BY t.priority, t.run_at, t.id
                   LIMIT p_limit - v_taken) q
        ) c
       ORDER BY c.priority, tn.running + c.ahead, tn.pos, c.run_at, c.id
    LOOP
      PERFORM 1 FROM tasks WHERE id = v_id AND status = 'QUEUED' AND run_at <= now() FOR UPDATE SKIP LOCKED;
      IF FOUND THEN
        RETURN NEXT v_id;
        v_taken := v_taken + 1;
        EXIT WHEN v_taken >= p_limit;
      END IF;
    END LOOP;
    EXIT WHEN v_taken >= p_limit OR cardinality(v_tenants) < 32;
  END LOOP;
END
$$;
