-- 0011 webhook replay protection and role-cache invalidations, shared by
-- every process on the database.
--
-- steward_webhook_messages holds the Svix message IDs (svix-id, not
-- personal data) that a webhook handler accepted, each until expires,
-- the database's time past which a replay is refused by the timestamp
-- check anyway. Expired rows are deleted in small batches as new IDs
-- arrive.
CREATE TABLE steward_webhook_messages (
    id      TEXT PRIMARY KEY,
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX steward_webhook_messages_expires ON steward_webhook_messages (expires);

-- steward_role_invalidations is the log through which a role change or
-- ban made in one process reaches the live-role caches of the others:
-- each row names a user whose account changed, kept until expires (the
-- longest any cache may still serve an account read before the change),
-- then deleted in small batches as new rows arrive. seq is assigned
-- under a transaction-scoped advisory lock held until commit, so rows
-- become visible in seq order and a reader's cursor never passes over
-- one committed later.
CREATE TABLE steward_role_invalidations (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX steward_role_invalidations_expires ON steward_role_invalidations (expires);
