-- `jobs.delivered` now means "the author has the outcome": the result posted, or, for a failed or cancelled job,
-- the notice that it ended and what was refunded. Jobs that ended before this migration count as told.
UPDATE jobs SET delivered = 1 WHERE status IN ('failed', 'cancelled');
CREATE INDEX jobs_untold ON jobs (created_at) WHERE delivered = 0 AND status IN ('succeeded', 'failed', 'cancelled');
