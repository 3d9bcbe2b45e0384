-- An approval whose task ended before anyone decided (cancelled, failed, timed out) is `cancelled`:
-- it is no longer pending and can no longer be decided. Until a row is written so (the timeout
-- sweep, or a decision that finds the task finished), reads derive it from the task's status.
ALTER TABLE approvals DROP CONSTRAINT approvals_status_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_status_check CHECK (status IN ('pending', 'approved', 'denied', 'cancelled'));
