-- SQLite, for local runs and the demo. Times are integer microseconds since the epoch
-- (UTC). SQLite does not enforce declared widths, so CHECK constraints do: a value the
-- other backends would refuse is refused here too, and dead-lettered the same way.
-- share_events is a rowid table: its rows are too wide for WITHOUT ROWID (measured 16%
-- slower at bulk insert).
CREATE TABLE share_events (
    share_id         BLOB    NOT NULL PRIMARY KEY CHECK (length(share_id) = 16),
    pool             TEXT    NOT NULL CHECK (length(pool) <= 63),
    upstream         TEXT    NOT NULL CHECK (length(upstream) <= 255),
    user_identity    TEXT    NOT NULL CHECK (length(user_identity) <= 128),
    worker           TEXT    NOT NULL CHECK (length(worker) <= 128),
    shard_key        INTEGER NOT NULL,
    job_id           TEXT    NOT NULL CHECK (length(job_id) <= 64),
    extranonce1      TEXT    NOT NULL CHECK (length(extranonce1) <= 16),
    extranonce2      TEXT    NOT NULL CHECK (length(extranonce2) <= 32),
    ntime            TEXT    NOT NULL CHECK (length(ntime) <= 8),
    nonce            TEXT    NOT NULL CHECK (length(nonce) <= 8),
    version_bits     TEXT    CHECK (length(version_bits) <= 8),
    difficulty       REAL    NOT NULL,
    share_difficulty REAL    NOT NULL,
    accepted         INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    error_code       INTEGER,
    error_message    TEXT    CHECK (length(error_message) <= 255),
    block_candidate  INTEGER NOT NULL CHECK (block_candidate IN (0, 1)),
    submitted_at     INTEGER NOT NULL,
    responded_at     INTEGER,
    proxy_instance   TEXT    NOT NULL CHECK (length(proxy_instance) <= 253)
);
CREATE INDEX share_events_user_time ON share_events (pool, user_identity, submitted_at);
CREATE INDEX share_events_time ON share_events (submitted_at);
CREATE INDEX share_events_block_candidates ON share_events (submitted_at) WHERE block_candidate;

CREATE TABLE worker_stats_minute (
    pool                TEXT    NOT NULL,
    user_identity       TEXT    NOT NULL,
    worker              TEXT    NOT NULL,
    minute              INTEGER NOT NULL,
    shard_key           INTEGER NOT NULL,
    accepted            INTEGER NOT NULL DEFAULT 0,
    rejected            INTEGER NOT NULL DEFAULT 0,
    stale               INTEGER NOT NULL DEFAULT 0,
    accepted_difficulty REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, user_identity, worker, minute)
) WITHOUT ROWID;
