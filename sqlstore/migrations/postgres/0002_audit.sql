-- 0002 audit: the audit trail (audit.Sink, audit.Reader), append-only.
-- details holds the canonical JSON text that was hashed (TEXT, not JSONB:
-- JSONB reorders and renormalises, and the chain would no longer verify).
CREATE TABLE steward_audit_events (
    seq        BIGINT      PRIMARY KEY CHECK (seq > 0),
    id         TEXT        NOT NULL,
    event_type TEXT        NOT NULL,
    subject    TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    details    TEXT        NOT NULL,
    logged_at  TIMESTAMPTZ NOT NULL,
    key_id     TEXT        NOT NULL,
    prev_hash  TEXT        NOT NULL,
    hash       TEXT        NOT NULL
);

CREATE FUNCTION steward_audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'steward_audit_events is append-only';
END
$$;

CREATE TRIGGER steward_audit_events_no_change
    BEFORE UPDATE OR DELETE ON steward_audit_events
    FOR EACH ROW EXECUTE FUNCTION steward_audit_events_append_only();

CREATE TRIGGER steward_audit_events_no_truncate
    BEFORE TRUNCATE ON steward_audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION steward_audit_events_append_only();
