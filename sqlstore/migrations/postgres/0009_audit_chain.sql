-- 0009 audit chain: the IDs that callers chose for their events
-- (idempotency keys, audit.EventID), so that Append stores such an event
-- at most once. Only chosen IDs are kept here; random ones are not looked
-- up. Written by Append in the transaction that stores the event.
CREATE TABLE steward_audit_keys (
    id  TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
