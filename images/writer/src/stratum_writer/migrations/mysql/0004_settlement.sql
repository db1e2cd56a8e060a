-- Daily settlement (stratum_writer/settlement/, docs/settlement.md). Amounts and work
-- are integers in DECIMAL(39,0): work in units of 2^-32 difficulty (sharelog/work.py),
-- rewards in the coin's smallest unit. shard_key as elsewhere: a day's row carries the
-- constant 0 (one row, one shard on Vitess), a part its user's key.
--
-- settlement_days: one row per pool day, written when its first generation is settled.
-- current_generation says which rows of settlements and settlement_accounts are the
-- day's; a correction writes a new generation, then switches this one row in one
-- statement, with the figures of that generation (reward, fee, totals).
-- IF NOT EXISTS: MySQL commits each DDL itself, so a Job that died half-way re-runs it.
CREATE TABLE IF NOT EXISTS settlement_days (
    pool                 VARCHAR(63)   NOT NULL,
    day                  DATE          NOT NULL,
    shard_key            BIGINT        NOT NULL,
    day_offset_minutes   INT           NOT NULL,
    state                VARCHAR(16)   NOT NULL,
    closed_at            DATETIME(6)   NOT NULL,
    closed_how           VARCHAR(16)   NOT NULL,
    close_reason         VARCHAR(255)  NOT NULL,
    settled_at           DATETIME(6)   NOT NULL,
    current_generation   INT           NOT NULL,
    reward               DECIMAL(39,0) NOT NULL,
    external_hashrate    DECIMAL(39,0) NOT NULL,
    fee_basis_points     INT           NOT NULL,
    fee                  DECIMAL(39,0) NOT NULL,
    accepted_shares      BIGINT        NOT NULL,
    accepted_work        DECIMAL(39,0) NOT NULL,
    dead_lettered_shares BIGINT        NOT NULL,
    PRIMARY KEY (pool, day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- settlements: a worker's part of a day, per generation; digest = SHA-256 of the sorted
-- ids of the shares behind the row (stratum-writer export-shares prints them).
CREATE TABLE IF NOT EXISTS settlements (
    pool            VARCHAR(63)   NOT NULL,
    day             DATE          NOT NULL,
    generation      INT           NOT NULL,
    user_identity   VARCHAR(128)  NOT NULL,
    worker          VARCHAR(128)  NOT NULL,
    shard_key       BIGINT        NOT NULL,
    accepted_shares BIGINT        NOT NULL,
    accepted_work   DECIMAL(39,0) NOT NULL,
    reward_part     DECIMAL(39,0) NOT NULL,
    digest          BINARY(32)    NOT NULL,
    PRIMARY KEY (pool, day, generation, user_identity, worker)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- settlement_accounts: the same per account (user): its workers' sums.
CREATE TABLE IF NOT EXISTS settlement_accounts (
    pool            VARCHAR(63)   NOT NULL,
    day             DATE          NOT NULL,
    generation      INT           NOT NULL,
    user_identity   VARCHAR(128)  NOT NULL,
    shard_key       BIGINT        NOT NULL,
    accepted_shares BIGINT        NOT NULL,
    accepted_work   DECIMAL(39,0) NOT NULL,
    reward_part     DECIMAL(39,0) NOT NULL,
    digest          BINARY(32)    NOT NULL,
    PRIMARY KEY (pool, day, generation, user_identity)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
