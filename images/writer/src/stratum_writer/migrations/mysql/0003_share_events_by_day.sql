-- vitess: not applied
-- share_events partitioned by day (MySQL, MariaDB): RANGE COLUMNS(share_id), since
-- share_id starts with its submitted time, a day is a key range and the primary key
-- needs no change. The shares stored so far go into p_before_YYYYMMDD (every share_id
-- below that day's first: tomorrow's); p_future (to MAXVALUE) takes the rest, and `stratum-writer retain`
-- splits the days ahead out of it before they come (cheap: it holds only shares dated
-- past the newest day made) and drops expired days whole (bench-retention: 10x faster
-- than deleting them, the writer unhurt). Converting a table that holds shares rebuilds
-- it once. Partitions are named by their days: retain reads their bounds from their
-- names. The bound is computed (a DDL takes only literals), hence PREPARE.
-- Not run through vtgate (it runs no PREPARE): on Vitess, migrate records it and then
-- partitions each shard itself, shard-targeted, the same way with the bound computed by
-- the writer (backends/day_partitions.py, pinned to this file by a test).
SET @by_day = CONCAT('ALTER TABLE share_events PARTITION BY RANGE COLUMNS(share_id) (',
    'PARTITION p_before_', DATE_FORMAT(UTC_DATE() + INTERVAL 1 DAY, '%Y%m%d'),
    ' VALUES LESS THAN (0x',
    LPAD(HEX(UNIX_TIMESTAMP(UTC_DATE() + INTERVAL 1 DAY) * 1000000), 14, '0'),
    REPEAT('00', 9), '), PARTITION p_future VALUES LESS THAN (MAXVALUE))');
PREPARE by_day FROM @by_day;
EXECUTE by_day;
DEALLOCATE PREPARE by_day;
