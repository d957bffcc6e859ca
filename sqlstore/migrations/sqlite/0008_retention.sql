-- 0008 retention: the retention lease moved to steward_leases (0006),
-- judged by the database's clock; inactivity notices are recorded, and
-- claimed per user by the database's clock, before they are sent, so two
-- runners never notify one user twice. state is pending (claimed, being
-- sent), sent or failed (to be claimed again); token grows with every
-- claim of the row and fences the claim's holder. active_at and sent_at
-- are TEXT in UTC, 2006-01-02T15:04:05.000000Z; claim_expires is Unix
-- time in milliseconds, from unixepoch('subsec').
DROP TABLE IF EXISTS steward_retention_leases;

CREATE TABLE steward_retention_notices (
    user_id       TEXT PRIMARY KEY,
    active_at     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts      INTEGER NOT NULL,
    token         INTEGER NOT NULL,
    owner         TEXT NOT NULL,
    claim_expires INTEGER NOT NULL,
    sent_at       TEXT
);
