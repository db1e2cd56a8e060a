-- workers: the worker registry (stratum_writer/aggregates.py, WORKERS): each worker's
-- first and last share (integer microseconds), upserted in every batch's transaction.
-- Filled here from the shares stored so far.
CREATE TABLE workers (
    pool          TEXT    NOT NULL,
    user_identity TEXT    NOT NULL,
    worker        TEXT    NOT NULL,
    shard_key     INTEGER NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (pool, user_identity, worker)
) WITHOUT ROWID;
CREATE INDEX workers_last_seen ON workers (pool, last_seen);
INSERT INTO workers (pool, user_identity, worker, shard_key, first_seen, last_seen)
SELECT pool, user_identity, worker, min(shard_key), min(submitted_at), max(submitted_at)
FROM share_events GROUP BY pool, user_identity, worker;
