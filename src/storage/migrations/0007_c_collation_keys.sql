-- Identifier and status columns compare byte-wise ("C" collation): every index insertion of a
-- task state change compares them, and under the database's default locale each comparison went
-- through strcoll (~15 % of the server's time in the end-to-end benchmark). Every value they hold
-- is ASCII (generated ids, tenant ids, definition ids, status names), where the two orders agree.
ALTER TABLE tasks
  ALTER COLUMN id TYPE text COLLATE "C",
  ALTER COLUMN tenant_id TYPE text COLLATE "C",
  ALTER COLUMN status TYPE text COLLATE "C",
  ALTER COLUMN task_definition_id TYPE text COLLATE "C";
ALTER TABLE task_events
  ALTER COLUMN task_id TYPE text COLLATE "C",
  ALTER COLUMN tenant_id TYPE text COLLATE "C";
ALTER TABLE task_steps ALTER COLUMN task_id TYPE text COLLATE "C";
ALTER TABLE approvals ALTER COLUMN task_id TYPE text COLLATE "C";
