-- 0002 audit: the audit trail (audit.Sink, audit.Reader), append-only.
-- details holds the canonical JSON text that was hashed; logged_at is UTC
-- text in audit.TimeFormat (fixed width, so text order is time order).
CREATE TABLE steward_audit_events (
    seq        INTEGER PRIMARY KEY CHECK (seq > 0),
    id         TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    details    TEXT    NOT NULL,
    logged_at  TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);

CREATE TRIGGER steward_audit_events_no_update
    BEFORE UPDATE ON steward_audit_events
BEGIN
    SELECT RAISE(ABORT, 'steward_audit_events is append-only');
END;

CREATE TRIGGER steward_audit_events_no_delete
    BEFORE DELETE ON steward_audit_events
BEGIN
    SELECT RAISE(ABORT, 'steward_audit_events is append-only');
END;
