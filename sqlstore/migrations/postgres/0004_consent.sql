-- 0004 consent: append-only consent records and the outbox of users whose
-- consent still has to be mirrored to the identity provider.
CREATE TABLE steward_consent_records (
    seq            BIGSERIAL PRIMARY KEY,
    user_id        TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    granted        BOOLEAN NOT NULL,
    policy_version INTEGER NOT NULL,
    source         TEXT NOT NULL DEFAULT '',
    actor          TEXT NOT NULL DEFAULT '',
    at             TIMESTAMPTZ NOT NULL
);

CREATE INDEX steward_consent_records_by_user ON steward_consent_records (user_id, seq);

-- Records are never changed; only erasure (DELETE) removes them.
CREATE FUNCTION steward_consent_records_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'steward_consent_records is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER steward_consent_records_no_update
    BEFORE UPDATE ON steward_consent_records
    FOR EACH ROW EXECUTE FUNCTION steward_consent_records_immutable();

CREATE SEQUENCE steward_consent_outbox_token;

CREATE TABLE steward_consent_outbox (
    user_id    TEXT PRIMARY KEY,
    token      BIGINT NOT NULL,
    due        TIMESTAMPTZ NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);

CREATE INDEX steward_consent_outbox_by_due ON steward_consent_outbox (due, token);
