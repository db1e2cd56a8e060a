-- Back to one table: every partition's shares are copied into it first (nothing is
-- dropped that was not copied in the same transaction). Running writers wait first: a
-- share one committed during the copy would be missing from it and dropped with the
-- partitions, so nobody writes from here to the commit (readers go on until the drop).
LOCK TABLE share_events IN SHARE MODE;
CREATE TABLE share_events_whole (LIKE share_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO share_events_whole SELECT * FROM share_events;
DROP TABLE share_events;
ALTER TABLE share_events_whole RENAME TO share_events;
ALTER TABLE share_events ADD PRIMARY KEY (share_id);
CREATE INDEX share_events_user_time ON share_events (pool, user_identity, submitted_at)
    INCLUDE (accepted, difficulty);
CREATE INDEX share_events_time ON share_events USING brin (submitted_at);
CREATE INDEX share_events_block_candidates ON share_events (submitted_at) WHERE block_candidate;
