-- vitess: not applied
-- Back to one table: the rows stay (the table is rebuilt without partitions).
ALTER TABLE share_events REMOVE PARTITIONING;
