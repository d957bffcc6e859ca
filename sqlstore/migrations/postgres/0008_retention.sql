-- 0008 retention: the retention lease moved to steward_leases (0006),
-- judged by the database's clock; inactivity notices are recorded, and
-- claimed per user by the database's clock, before they are sent, so two
-- runners never notify one user twice. state is pending (claimed, being
-- sent), sent or failed (to be claimed again); token grows with every
-- claim of the row and fences the claim's holder.
DROP TABLE IF EXISTS steward_retention_leases;

CREATE TABLE steward_retention_notices (
    user_id       TEXT PRIMARY KEY,
    active_at     TIMESTAMPTZ NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts      INTEGER NOT NULL,
    token         BIGINT NOT NULL,
    owner         TEXT NOT NULL,
    claim_expires TIMESTAMPTZ NOT NULL,
    sent_at       TIMESTAMPTZ
);
