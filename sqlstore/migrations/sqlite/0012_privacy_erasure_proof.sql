-- 0012 erasure that proves itself: the grace period of an erasure
-- (not_before) and the expiry of a queued export (expires_at), one pending
-- export per user, and the ledger of erased users, which holds keyed
-- pseudonyms only and outlives their requests (privacy.Ledger). Times
-- are TEXT in UTC, 2006-01-02T15:04:05.000000Z, as in 0003.
ALTER TABLE steward_privacy_requests ADD COLUMN not_before TEXT;
ALTER TABLE steward_privacy_requests ADD COLUMN expires_at TEXT;

-- A user has at most one pending (or partial) export. Older duplicates
-- from before this rule are cancelled, the latest kept.
UPDATE steward_privacy_requests
    SET status = 'cancelled', reason = 'superseded: one pending export per user', completed_at = updated_at
    WHERE kind = 'export' AND status IN ('pending', 'partial')
      AND EXISTS (SELECT 1 FROM steward_privacy_requests AS n
                  WHERE n.kind = 'export' AND n.status IN ('pending', 'partial')
                    AND n.user_id = steward_privacy_requests.user_id
                    AND (n.received_at > steward_privacy_requests.received_at
                         OR n.received_at = steward_privacy_requests.received_at AND n.id > steward_privacy_requests.id));

CREATE UNIQUE INDEX steward_privacy_requests_pending_export
    ON steward_privacy_requests (user_id)
    WHERE kind = 'export' AND status IN ('pending', 'partial');

-- Finished requests are purged after their proof period.
CREATE INDEX steward_privacy_requests_finished
    ON steward_privacy_requests (completed_at, id)
    WHERE status IN ('completed', 'cancelled', 'expired');

CREATE INDEX steward_privacy_requests_expiring
    ON steward_privacy_requests (expires_at)
    WHERE kind = 'export' AND status = 'completed';

CREATE TABLE steward_privacy_ledger (
    subject    TEXT PRIMARY KEY,            -- hmac-sha256:<key ID>:<hex>, never a user ID
    key_id     TEXT NOT NULL,
    request_id TEXT NOT NULL,
    erased_at  TEXT NOT NULL
);
