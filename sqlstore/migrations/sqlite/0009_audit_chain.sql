-- 0009 audit chain: the IDs that callers chose for their events
-- (idempotency keys, audit.EventID), so that Append stores such an event
-- at most once. Only chosen IDs are kept here; random ones are not looked
-- up. Written by Append in the transaction that stores the event.
CREATE TABLE steward_audit_keys (
    id  TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

-- Where each audit.Forwarder destination stands, and which forwarder
-- holds it: owner is '' when nobody does; expires is the database's time
-- (Unix milliseconds) at which the holder's claim lapses.
CREATE TABLE steward_audit_cursors (
    name    TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL,
    owner   TEXT NOT NULL,
    expires INTEGER NOT NULL
);
