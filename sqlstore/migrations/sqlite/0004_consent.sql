-- 0004 consent: append-only consent records and the outbox of users whose
-- consent still has to be mirrored to the identity provider. Times are
-- TEXT in UTC, 2006-01-02T15:04:05.000000Z: fixed width, so they compare
-- and sort as strings.
CREATE TABLE steward_consent_records (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    granted        INTEGER NOT NULL,
    policy_version INTEGER NOT NULL,
    source         TEXT NOT NULL DEFAULT '',
    actor          TEXT NOT NULL DEFAULT '',
    at             TEXT NOT NULL
);

CREATE INDEX steward_consent_records_by_user ON steward_consent_records (user_id, seq);

-- Records are never changed; only erasure (DELETE) removes them.
CREATE TRIGGER steward_consent_records_no_update
    BEFORE UPDATE ON steward_consent_records
BEGIN
    SELECT RAISE(ABORT, 'steward_consent_records is append-only');
END;

-- Tokens of the outbox: AUTOINCREMENT never reuses a value.
CREATE TABLE steward_consent_outbox_tokens (
    token INTEGER PRIMARY KEY AUTOINCREMENT
);

CREATE TABLE steward_consent_outbox (
    user_id    TEXT PRIMARY KEY,
    token      INTEGER NOT NULL,
    due        TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);

CREATE INDEX steward_consent_outbox_by_due ON steward_consent_outbox (due, token);
