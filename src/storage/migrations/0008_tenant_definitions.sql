-- Task definitions a tenant adds through the admin API (PUT /api/v1/definitions/{id}): declarative
-- kinds only (http, agent, approval). Every process keeps them in memory (Registry) and reloads a
-- tenant's set on a NOTIFY hint and all of them periodically; this table is the truth.
CREATE TABLE tenant_definitions (
  tenant_id   text COLLATE "C" NOT NULL REFERENCES tenants(id),
  id          text COLLATE "C" NOT NULL,
  -- the definition as submitted (without its id): kind, schemas, policies, executor config
  definition  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
