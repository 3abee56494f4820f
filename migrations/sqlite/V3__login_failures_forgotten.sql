-- Failure records are forgotten a day after their last block ended
-- (auth::service::FAILURES_FORGOTTEN_AFTER_MS), so that names tried once by
-- a guesser do not pile up forever; this index finds the old ones.
CREATE INDEX login_failures_blocked_until ON login_failures (blocked_until);
