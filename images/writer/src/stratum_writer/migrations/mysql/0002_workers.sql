-- workers: the worker registry (stratum_writer/aggregates.py, WORKERS): each worker's
-- first and last share, upserted in every batch's transaction. Vitess shards it by
-- shard_key like the rollups (vitess/vschema.json), so a user's workers live with its
-- shares. "Workers active in the last hour" reads workers_last_seen.
-- Filled here from the shares stored so far; the upsert makes a re-run after a Job
-- that died half-way harmless (MySQL DDL is not transactional). vitess/schema.sql holds
-- the CREATE only: on Vitess the writer's migrate fills it through vtgate.
CREATE TABLE IF NOT EXISTS workers (
    pool          VARCHAR(63)  NOT NULL,
    user_identity VARCHAR(128) NOT NULL,
    worker        VARCHAR(128) NOT NULL,
    shard_key     BIGINT       NOT NULL,
    first_seen    DATETIME(6)  NOT NULL,
    last_seen     DATETIME(6)  NOT NULL,
    PRIMARY KEY (pool, user_identity, worker),
    KEY workers_last_seen (pool, last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO workers (pool, user_identity, worker, shard_key, first_seen, last_seen)
SELECT pool, user_identity, worker, min(shard_key), min(submitted_at), max(submitted_at)
FROM share_events GROUP BY pool, user_identity, worker
ON DUPLICATE KEY UPDATE first_seen = LEAST(first_seen, VALUES(first_seen)),
    last_seen = GREATEST(last_seen, VALUES(last_seen));
