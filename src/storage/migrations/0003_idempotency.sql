-- Idempotency-Key records (PRODUCT.md §3): one row per (tenant, principal, route, key). A row is
-- 'in_flight' while its first request runs (others get 409) and 'done' once the first 2xx response
-- is stored (others get it replayed byte for byte). A submit's row turns 'done' in the same
-- transaction that inserts the task. Rows past expires_at count as absent and are deleted in batches.

CREATE TABLE idempotency_keys (
  tenant_id        text NOT NULL,
  principal        text NOT NULL,
  route            text NOT NULL,
  key              text NOT NULL,
  -- sha256 of method, path and canonical body: the same key with another request is refused (422)
  request_hash     text NOT NULL,
  state            text NOT NULL CHECK (state IN ('in_flight', 'done')),
  -- random per acquisition: only the request that took the row may complete or release it
  lock_token       text NOT NULL,
  -- an in-flight row whose request died (crash) can be taken over after this
  locked_until     timestamptz NOT NULL,
  status_code      integer,
  response_headers jsonb,
  response_body    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, principal, route, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
