-- Daily settlement (stratum_writer/settlement/, docs/settlement.md). Amounts and work
-- are integers in numeric(39,0): work in units of 2^-32 difficulty (sharelog/work.py),
-- rewards in the coin's smallest unit. shard_key as elsewhere: a day's row carries the
-- constant 0 (one row, one shard on Vitess), a part its user's key.
--
-- settlement_days: one row per pool day, written when its first generation is settled.
-- current_generation says which rows of settlements and settlement_accounts are the
-- day's; a correction writes a new generation, then switches this one row in one
-- statement, with the figures of that generation (reward, fee, totals).
CREATE TABLE settlement_days (
    pool                 varchar(63)   NOT NULL,
    day                  date          NOT NULL,
    shard_key            bigint        NOT NULL,
    day_offset_minutes   integer       NOT NULL,
    state                varchar(16)   NOT NULL,
    closed_at            timestamptz   NOT NULL,
    closed_how           varchar(16)   NOT NULL,
    close_reason         varchar(255)  NOT NULL,
    settled_at           timestamptz   NOT NULL,
    current_generation   integer       NOT NULL,
    reward               numeric(39,0) NOT NULL,
    external_hashrate    numeric(39,0) NOT NULL,
    fee_basis_points     integer       NOT NULL,
    fee                  numeric(39,0) NOT NULL,
    accepted_shares      bigint        NOT NULL,
    accepted_work        numeric(39,0) NOT NULL,
    dead_lettered_shares bigint        NOT NULL,
    PRIMARY KEY (pool, day)
);
-- settlements: a worker's part of a day, per generation; digest = SHA-256 of the sorted
-- ids of the shares behind the row (stratum-writer export-shares prints them).
CREATE TABLE settlements (
    pool            varchar(63)   NOT NULL,
    day             date          NOT NULL,
    generation      integer       NOT NULL,
    user_identity   varchar(128)  NOT NULL,
    worker          varchar(128)  NOT NULL,
    shard_key       bigint        NOT NULL,
    accepted_shares bigint        NOT NULL,
    accepted_work   numeric(39,0) NOT NULL,
    reward_part     numeric(39,0) NOT NULL,
    digest          bytea         NOT NULL CHECK (octet_length(digest) = 32),
    PRIMARY KEY (pool, day, generation, user_identity, worker)
);
-- settlement_accounts: the same per account (user): its workers' sums.
CREATE TABLE settlement_accounts (
    pool            varchar(63)   NOT NULL,
    day             date          NOT NULL,
    generation      integer       NOT NULL,
    user_identity   varchar(128)  NOT NULL,
    shard_key       bigint        NOT NULL,
    accepted_shares bigint        NOT NULL,
    accepted_work   numeric(39,0) NOT NULL,
    reward_part     numeric(39,0) NOT NULL,
    digest          bytea         NOT NULL CHECK (octet_length(digest) = 32),
    PRIMARY KEY (pool, day, generation, user_identity)
);
