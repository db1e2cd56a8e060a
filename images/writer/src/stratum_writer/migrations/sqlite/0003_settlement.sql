-- Daily settlement (stratum_writer/settlement/, docs/settlement.md): the tables of
-- PostgreSQL's and MySQL's migration 4 (SQLite has no migration 3: its shares are not
-- partitioned). Amounts and work are integers of up to 39 digits, which SQLite's 64-bit
-- INTEGER cannot hold: they are kept as decimal text, checked to be digits only, and
-- summed in Python. Days are ISO dates ('2026-12-01'), times integer microseconds.
CREATE TABLE settlement_days (
    pool                 TEXT    NOT NULL CHECK (length(pool) <= 63),
    day                  TEXT    NOT NULL CHECK (date(day) = day),
    shard_key            INTEGER NOT NULL,
    day_offset_minutes   INTEGER NOT NULL,
    state                TEXT    NOT NULL CHECK (length(state) <= 16),
    closed_at            INTEGER NOT NULL,
    closed_how           TEXT    NOT NULL CHECK (length(closed_how) <= 16),
    close_reason         TEXT    NOT NULL CHECK (length(close_reason) <= 255),
    settled_at           INTEGER NOT NULL,
    current_generation   INTEGER NOT NULL,
    reward               TEXT    NOT NULL CHECK (reward NOT GLOB '*[^0-9]*' AND length(reward) BETWEEN 1 AND 39),
    external_hashrate    TEXT    NOT NULL CHECK (external_hashrate NOT GLOB '*[^0-9]*' AND length(external_hashrate) BETWEEN 1 AND 39),
    fee_basis_points     INTEGER NOT NULL,
    fee                  TEXT    NOT NULL CHECK (fee NOT GLOB '*[^0-9]*' AND length(fee) BETWEEN 1 AND 39),
    accepted_shares      INTEGER NOT NULL,
    accepted_work        TEXT    NOT NULL CHECK (accepted_work NOT GLOB '*[^0-9]*' AND length(accepted_work) BETWEEN 1 AND 39),
    dead_lettered_shares INTEGER NOT NULL,
    PRIMARY KEY (pool, day)
) WITHOUT ROWID;
CREATE TABLE settlements (
    pool            TEXT    NOT NULL,
    day             TEXT    NOT NULL,
    generation      INTEGER NOT NULL,
    user_identity   TEXT    NOT NULL,
    worker          TEXT    NOT NULL,
    shard_key       INTEGER NOT NULL,
    accepted_shares INTEGER NOT NULL,
    accepted_work   TEXT    NOT NULL CHECK (accepted_work NOT GLOB '*[^0-9]*' AND length(accepted_work) BETWEEN 1 AND 39),
    reward_part     TEXT    NOT NULL CHECK (reward_part NOT GLOB '*[^0-9]*' AND length(reward_part) BETWEEN 1 AND 39),
    digest          BLOB    NOT NULL CHECK (length(digest) = 32),
    PRIMARY KEY (pool, day, generation, user_identity, worker)
) WITHOUT ROWID;
CREATE TABLE settlement_accounts (
    pool            TEXT    NOT NULL,
    day             TEXT    NOT NULL,
    generation      INTEGER NOT NULL,
    user_identity   TEXT    NOT NULL,
    shard_key       INTEGER NOT NULL,
    accepted_shares INTEGER NOT NULL,
    accepted_work   TEXT    NOT NULL CHECK (accepted_work NOT GLOB '*[^0-9]*' AND length(accepted_work) BETWEEN 1 AND 39),
    reward_part     TEXT    NOT NULL CHECK (reward_part NOT GLOB '*[^0-9]*' AND length(reward_part) BETWEEN 1 AND 39),
    digest          BLOB    NOT NULL CHECK (length(digest) = 32),
    PRIMARY KEY (pool, day, generation, user_identity)
) WITHOUT ROWID;
