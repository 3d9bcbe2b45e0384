-- Durable human approvals. A task waiting for one stays RUNNING for clients but holds no lease
-- (lease_owner NULL, awaiting_approval_id set); the decision puts it back in the queue.

CREATE TABLE approvals (
  id              uuid PRIMARY KEY,
  tenant_id       text NOT NULL REFERENCES tenants(id),
  task_id         text NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  -- the durable step this approval belongs to (one approval per step name)
  step_name       text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
  message         text,
  payload         jsonb,
  feedback        text,
  modified_action jsonb,
  decided_by      text,
  requested_at    timestamptz NOT NULL DEFAULT now(),
  timeout_at      timestamptz NOT NULL,
  decided_at      timestamptz,
  UNIQUE (task_id, step_name)
);
CREATE INDEX approvals_tenant_pending_idx ON approvals (tenant_id, requested_at) WHERE status = 'pending';
CREATE INDEX approvals_timeout_idx ON approvals (timeout_at) WHERE status = 'pending';

ALTER TABLE tasks ADD COLUMN awaiting_approval_id uuid;
