-- share_events partitioned by the UTC day of submitted_at: retention drops a day whole,
-- never deletes row by row (`stratum-writer retain`, which also makes the days ahead).
-- Keyed by (share_id, submitted_at): PostgreSQL wants the partition key in every unique
-- key. submitted_at is the first 7 bytes of share_id, so the pair is exactly as unique
-- as share_id alone, and a replayed share still meets ON CONFLICT and is skipped.
-- The shares stored before stay where they are, as the partition
-- share_events_before_0003 (every time up to the end of today, or of the day of the
-- newest of them); share_events_default takes a share no day covers, so an insert
-- never fails for want of a partition.
ALTER TABLE share_events RENAME TO share_events_before_0003;
-- its key becomes the partitioned table's (share_id, submitted_at), built on attach
ALTER TABLE share_events_before_0003 DROP CONSTRAINT share_events_pkey;
ALTER INDEX share_events_user_time RENAME TO share_events_before_0003_user_time;
ALTER INDEX share_events_time RENAME TO share_events_before_0003_time;
ALTER INDEX share_events_block_candidates RENAME TO share_events_before_0003_block_candidates;
CREATE TABLE share_events (
    LIKE share_events_before_0003 INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (share_id, submitted_at)
) PARTITION BY RANGE (submitted_at);
CREATE INDEX share_events_user_time ON share_events (pool, user_identity, submitted_at)
    INCLUDE (accepted, difficulty);
CREATE INDEX share_events_time ON share_events USING brin (submitted_at);
CREATE INDEX share_events_block_candidates ON share_events (submitted_at) WHERE block_candidate;
DO $$
DECLARE upto timestamptz;
BEGIN
    SELECT (date_trunc('day', greatest(now(), max(submitted_at)) AT TIME ZONE 'UTC')
            + interval '1 day') AT TIME ZONE 'UTC'
      INTO upto FROM share_events_before_0003;
    EXECUTE format('ALTER TABLE share_events ATTACH PARTITION share_events_before_0003 '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', upto);
END
$$;
CREATE TABLE share_events_default PARTITION OF share_events DEFAULT;
