-- 0005 retention: legal holds, and the lease that lets one runner at a
-- time sweep.
CREATE TABLE steward_retention_holds (
    user_id   TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE steward_retention_leases (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
