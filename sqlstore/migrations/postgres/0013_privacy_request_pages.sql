-- 0013 privacy request pages: keyset pagination of the request queue
-- (privacy.RequestFilter.After) in List's order, received_at then id,
-- for every request and for the open ones an operator works through.
CREATE INDEX steward_privacy_requests_received
    ON steward_privacy_requests (received_at, id);

CREATE INDEX steward_privacy_requests_open_received
    ON steward_privacy_requests (received_at, id)
    WHERE status IN ('pending', 'partial', 'held');
