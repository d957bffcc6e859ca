-- 0007 consent claims: an outbox entry is synced by one runner at a time,
-- in any number of processes. A runner claims the row (claim_owner,
-- claim_token, claim_expires); expiry is judged by the database's clock
-- (clock_timestamp()). claim_token comes from the same sequence as
-- version, so it grows with every claim and fences a holder whose claim
-- was taken over. An unclaimed row has claim_owner '' and no
-- claim_expires. rewrite marks a row queued again after a holder lost its
-- claim while writing: the next write goes out even if unchanged.
ALTER TABLE steward_consent_outbox RENAME COLUMN token TO version;

ALTER TABLE steward_consent_outbox
    ADD COLUMN rewrite       BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN claim_owner   TEXT NOT NULL DEFAULT '',
    ADD COLUMN claim_token   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN claim_expires TIMESTAMPTZ;
