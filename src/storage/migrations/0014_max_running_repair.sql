-- Repair: tenants.max_running for databases first migrated by a build whose 0010 did not have it
-- yet. That migration was changed after it had shipped (builds of 2026-12-06/07 between the
-- fair-claim commit and the tenant cap), and a database that had recorded version 10 never got
-- the column: every claim then failed ("column max_running does not exist") and nothing ran,
-- while /readiness said the migrations were current. Migrations are never edited once shipped
-- (test/unit/migrations-frozen.test.ts); a change goes in a new one, as this.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS max_running integer CHECK (max_running IS NULL OR max_running >= 1);
