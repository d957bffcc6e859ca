-- 0012 erasure that proves itself: the grace period of an erasure
-- (not_before) and the expiry of a queued export (expires_at), one pending
-- export per user, and the ledger of erased users, which holds keyed
-- pseudonyms only and outlives their requests (privacy.Ledger).
ALTER TABLE steward_privacy_requests
    ADD COLUMN not_before TIMESTAMPTZ,
    ADD COLUMN expires_at TIMESTAMPTZ;

-- A user has at most one pending (or partial) export. Older duplicates
-- from before this rule are cancelled, the latest kept.
UPDATE steward_privacy_requests AS r
    SET status = 'cancelled', reason = 'superseded: one pending export per user', completed_at = r.updated_at
    WHERE r.kind = 'export' AND r.status IN ('pending', 'partial')
      AND EXISTS (SELECT 1 FROM steward_privacy_requests AS n
                  WHERE n.kind = 'export' AND n.status IN ('pending', 'partial') AND n.user_id = r.user_id
                    AND (n.received_at, n.id) > (r.received_at, r.id));

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
    erased_at  TIMESTAMPTZ NOT NULL
);
