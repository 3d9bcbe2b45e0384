-- Taskgate schema v1: tenants, API keys, sessions, tasks (the queue), events, durable steps.
-- Statuses are enforced here with CHECK constraints; src/domain/lifecycle.ts holds the same set.

CREATE TABLE tenants (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  rate_limit  jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  tenant_id    text NOT NULL REFERENCES tenants(id),
  user_id      text NOT NULL,
  name         text NOT NULL,
  -- non-secret lookup prefix; the secret is compared as a SHA-256 hash in constant time
  prefix       text NOT NULL,
  key_hash     text NOT NULL,
  scopes       text[] NOT NULL,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_prefix_idx ON api_keys (prefix);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

CREATE TABLE sessions (
  tenant_id      text NOT NULL REFERENCES tenants(id),
  id             text NOT NULL,
  user_id        text NOT NULL,
  title          text,
  context        jsonb NOT NULL DEFAULT '{}'::jsonb,
  token_budget   integer,
  tokens_used    bigint NOT NULL DEFAULT 0,
  cost_usd       double precision NOT NULL DEFAULT 0,
  task_count     integer NOT NULL DEFAULT 0,
  is_research_session boolean NOT NULL DEFAULT false,
  research_strategy text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz,
  deleted_at     timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sessions_tenant_created_idx ON sessions (tenant_id, created_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE tasks (
  id                 text PRIMARY KEY,
  tenant_id          text NOT NULL REFERENCES tenants(id),
  user_id            text NOT NULL,
  session_id         text,
  kind               text NOT NULL CHECK (kind IN ('agent', 'definition')),
  task_definition_id text,
  query              text NOT NULL DEFAULT '',
  input              jsonb,
  context            jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- agent options (mode, tiers, overrides, strategy, limits) as submitted
  options            jsonb NOT NULL DEFAULT '{}'::jsonb,
  mode               text,
  -- 0 urgent, 1 high, 2 medium, 3 low: the claim index orders ascending
  priority           smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3),
  status             text NOT NULL DEFAULT 'QUEUED'
                     CHECK (status IN ('QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')),
  attempt            integer NOT NULL DEFAULT 0,
  max_attempts       integer NOT NULL CHECK (max_attempts >= 1),
  retry_interval_ms  integer NOT NULL,
  backoff_multiplier double precision NOT NULL,
  timeout_ms         integer NOT NULL,
  run_at             timestamptz NOT NULL DEFAULT now(),
  lease_owner        text,
  lease_expires_at   timestamptz,
  cancel_requested   boolean NOT NULL DEFAULT false,
  cancel_reason      text,
  cancelled_by       text,
  pause_requested    boolean NOT NULL DEFAULT false,
  pause_reason       text,
  paused_by          text,
  paused_at          timestamptz,
  output             jsonb,
  result             text,
  error              text,
  model_used         text,
  provider           text,
  usage              jsonb,
  metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
  tags               text[] NOT NULL DEFAULT '{}',
  workflow_instance_id text,
  last_worker        text,
  last_seq           integer NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  completed_at       timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now()
);
-- the queue: claim reads this partial index in order and stops at LIMIT
CREATE INDEX tasks_claim_idx ON tasks (priority, run_at, id) WHERE status = 'QUEUED';
-- the lease reaper
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE status = 'RUNNING';
-- list: newest first per tenant, with the common filters
CREATE INDEX tasks_tenant_created_idx ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX tasks_tenant_status_idx ON tasks (tenant_id, status, created_at DESC);
CREATE INDEX tasks_tenant_session_idx ON tasks (tenant_id, session_id, created_at DESC) WHERE session_id IS NOT NULL;
CREATE INDEX tasks_tenant_definition_idx ON tasks (tenant_id, task_definition_id, created_at DESC);
CREATE INDEX tasks_tenant_wfi_idx ON tasks (tenant_id, workflow_instance_id, created_at DESC) WHERE workflow_instance_id IS NOT NULL;
CREATE INDEX tasks_tags_idx ON tasks USING gin (tags);

CREATE TABLE task_events (
  task_id    text NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  seq        integer NOT NULL,
  tenant_id  text NOT NULL,
  type       text NOT NULL,
  agent_id   text,
  message    text,
  payload    jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, seq)
);

CREATE TABLE task_steps (
  task_id      text NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  name         text NOT NULL,
  -- how many times the step's body started (across attempts)
  runs         integer NOT NULL DEFAULT 1,
  done         boolean NOT NULL DEFAULT false,
  result       jsonb,
  attempt      integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  PRIMARY KEY (task_id, name)
);
