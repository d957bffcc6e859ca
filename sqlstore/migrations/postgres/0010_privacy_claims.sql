-- 0010 privacy claims: which worker runs a request, and until when by the
-- database's clock (privacy.RequestClaimer). claim_owner is '' when
-- nobody holds the request; claim_expires is then in the past.
ALTER TABLE steward_privacy_requests
    ADD COLUMN claim_owner   TEXT        NOT NULL DEFAULT '',
    ADD COLUMN claim_expires TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01 00:00:00+00';
