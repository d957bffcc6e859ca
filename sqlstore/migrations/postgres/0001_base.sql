-- 0001 base: a key/value table for facts about the Steward schema itself.
-- Domain tables arrive in later migrations.
CREATE TABLE steward_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
