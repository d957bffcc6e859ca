-- 0010 privacy claims: which worker runs a request, and until when by the
-- database's clock (privacy.RequestClaimer), in Unix milliseconds.
-- claim_owner is '' when nobody holds the request; claim_expires is then
-- in the past.
ALTER TABLE steward_privacy_requests ADD COLUMN claim_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE steward_privacy_requests ADD COLUMN claim_expires INTEGER NOT NULL DEFAULT 0;
