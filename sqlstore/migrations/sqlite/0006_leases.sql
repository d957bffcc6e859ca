-- 0006 leases: named leases judged by the database's clock, shared by
-- every process on the database (retention sweeps, audit forwarders, the
-- last-administrator guard). expires is Unix time in milliseconds, from
-- unixepoch('subsec'). token grows each time a lease is acquired and is
-- never reset (a release only expires the row), so it fences a holder
-- whose lease changed hands.
CREATE TABLE steward_leases (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    token   INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
