-- 0005 retention: legal holds, and the lease that lets one runner at a
-- time sweep. Times are TEXT in UTC, 2006-01-02T15:04:05.000000Z.
CREATE TABLE steward_retention_holds (
    user_id   TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at TEXT NOT NULL
);

CREATE TABLE steward_retention_leases (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires TEXT NOT NULL
);
