-- share_events: one row per share, keyed by the time-prefixed share_id so the primary
-- key grows at its end. Lean index set, chosen for the queries pool operators run:
--   by user and time, and valid shares by user for payout windows -> share_events_user_time
--     (accepted and difficulty are INCLUDEd so payout sums are index-only scans);
--   by time -> a BRIN index: rows arrive in time order, so it is tiny and nearly free;
--   block candidates -> a partial index holding only the rare candidate rows.
CREATE TABLE share_events (
    share_id         bytea        NOT NULL PRIMARY KEY,
    pool             varchar(63)  NOT NULL,
    upstream         varchar(255) NOT NULL,
    user_identity    varchar(128) NOT NULL,
    worker           varchar(128) NOT NULL,
    shard_key        bigint       NOT NULL,
    job_id           varchar(64)  NOT NULL,
    extranonce1      varchar(16)  NOT NULL,
    extranonce2      varchar(32)  NOT NULL,
    ntime            varchar(8)   NOT NULL,
    nonce            varchar(8)   NOT NULL,
    version_bits     varchar(8),
    difficulty       double precision NOT NULL,
    share_difficulty double precision NOT NULL,
    accepted         boolean      NOT NULL,
    error_code       integer,
    error_message    varchar(255),
    block_candidate  boolean      NOT NULL,
    submitted_at     timestamptz  NOT NULL,
    responded_at     timestamptz,
    proxy_instance   varchar(253) NOT NULL,
    CONSTRAINT share_id_is_16_bytes CHECK (octet_length(share_id) = 16)
);
CREATE INDEX share_events_user_time ON share_events (pool, user_identity, submitted_at)
    INCLUDE (accepted, difficulty);
CREATE INDEX share_events_time ON share_events USING brin (submitted_at);
CREATE INDEX share_events_block_candidates ON share_events (submitted_at) WHERE block_candidate;

-- Per-minute rollups per worker, upserted in the same transaction as the shares they
-- count. Hashrate = sum(accepted_difficulty) * 2^32 / 60 s.
CREATE TABLE worker_stats_minute (
    pool                varchar(63)  NOT NULL,
    user_identity       varchar(128) NOT NULL,
    worker              varchar(128) NOT NULL,
    minute              timestamptz  NOT NULL,
    shard_key           bigint       NOT NULL,
    accepted            bigint       NOT NULL DEFAULT 0,
    rejected            bigint       NOT NULL DEFAULT 0,
    stale               bigint       NOT NULL DEFAULT 0,
    accepted_difficulty double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, user_identity, worker, minute)
);
CREATE INDEX worker_stats_minute_time ON worker_stats_minute (minute);
