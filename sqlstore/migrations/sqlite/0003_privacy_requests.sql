-- 0003 privacy requests: data-subject requests (erasures and queued
-- exports) with their checkpointed steps, for privacy.RequestStore.
-- Times are TEXT in UTC, 2006-01-02T15:04:05.000000Z: fixed width, so
-- they compare and sort as strings.
CREATE TABLE steward_privacy_requests (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    actor            TEXT NOT NULL DEFAULT '',
    regime           TEXT NOT NULL,
    status           TEXT NOT NULL,
    received_at      TEXT NOT NULL,
    due_at           TEXT NOT NULL,
    extended_at      TEXT,
    extension_reason TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL DEFAULT '',
    updated_at       TEXT NOT NULL,
    completed_at     TEXT,
    location         TEXT NOT NULL DEFAULT '',
    steps            TEXT NOT NULL DEFAULT '[]', -- JSON array of privacy.Step
    version          INTEGER NOT NULL
);

-- A user has at most one open erasure request.
CREATE UNIQUE INDEX steward_privacy_requests_open_erasure
    ON steward_privacy_requests (user_id)
    WHERE kind = 'erasure' AND status IN ('pending', 'partial', 'held');

CREATE INDEX steward_privacy_requests_by_status
    ON steward_privacy_requests (status, received_at, id);

CREATE INDEX steward_privacy_requests_by_user
    ON steward_privacy_requests (user_id, received_at, id);
