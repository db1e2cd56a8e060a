-- share_events: InnoDB clusters rows on the primary key; the time-prefixed share_id
-- makes every insert land at the right edge of the tree. Vitess shards it by shard_key
-- (vitess/vschema.json). The primary key is enforced per shard, which is enough: a
-- share's shard_key comes from its user, so every copy of a share lands on one shard.
-- share_events_user_time covers the payout sum (accepted difficulty of a user in a
-- window). IF NOT EXISTS: Vitess's ApplySchema of vitess/schema.sql may be re-run.
CREATE TABLE IF NOT EXISTS share_events (
    share_id         BINARY(16)   NOT NULL,
    pool             VARCHAR(63)  NOT NULL,
    upstream         VARCHAR(255) NOT NULL,
    user_identity    VARCHAR(128) NOT NULL,
    worker           VARCHAR(128) NOT NULL,
    shard_key        BIGINT       NOT NULL,
    job_id           VARCHAR(64)  NOT NULL,
    extranonce1      VARCHAR(16)  NOT NULL,
    extranonce2      VARCHAR(32)  NOT NULL,
    ntime            VARCHAR(8)   NOT NULL,
    nonce            VARCHAR(8)   NOT NULL,
    version_bits     VARCHAR(8)   NULL,
    difficulty       DOUBLE       NOT NULL,
    share_difficulty DOUBLE       NOT NULL,
    accepted         BOOLEAN      NOT NULL,
    error_code       INT          NULL,
    error_message    VARCHAR(255) NULL,
    block_candidate  BOOLEAN      NOT NULL,
    submitted_at     DATETIME(6)  NOT NULL,
    responded_at     DATETIME(6)  NULL,
    proxy_instance   VARCHAR(253) NOT NULL,
    PRIMARY KEY (share_id),
    KEY share_events_user_time (pool, user_identity, submitted_at, accepted, difficulty),
    KEY share_events_time (submitted_at),
    KEY share_events_block_candidates (block_candidate, submitted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS worker_stats_minute (
    pool                VARCHAR(63)  NOT NULL,
    user_identity       VARCHAR(128) NOT NULL,
    worker              VARCHAR(128) NOT NULL,
    minute              DATETIME     NOT NULL,
    shard_key           BIGINT       NOT NULL,
    accepted            BIGINT       NOT NULL DEFAULT 0,
    rejected            BIGINT       NOT NULL DEFAULT 0,
    stale               BIGINT       NOT NULL DEFAULT 0,
    accepted_difficulty DOUBLE       NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, user_identity, worker, minute),
    KEY worker_stats_minute_time (minute)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
