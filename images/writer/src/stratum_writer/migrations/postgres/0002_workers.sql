-- workers: the worker registry (stratum_writer/aggregates.py, WORKERS): each worker's
-- first and last share, upserted in every batch's transaction from the shares that
-- batch stored. "Workers active in the last hour" reads workers_last_seen:
--   SELECT ... FROM workers WHERE pool = $1 AND last_seen > now() - interval '1 hour'
-- Filled here from the shares stored so far (one scan of share_events, once).
CREATE TABLE workers (
    pool          varchar(63)  NOT NULL,
    user_identity varchar(128) NOT NULL,
    worker        varchar(128) NOT NULL,
    shard_key     bigint       NOT NULL,
    first_seen    timestamptz  NOT NULL,
    last_seen     timestamptz  NOT NULL,
    PRIMARY KEY (pool, user_identity, worker)
);
CREATE INDEX workers_last_seen ON workers (pool, last_seen);
INSERT INTO workers (pool, user_identity, worker, shard_key, first_seen, last_seen)
SELECT pool, user_identity, worker, min(shard_key), min(submitted_at), max(submitted_at)
FROM share_events GROUP BY pool, user_identity, worker;
