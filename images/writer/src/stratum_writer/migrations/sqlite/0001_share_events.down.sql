-- drops: shares
DROP TABLE IF EXISTS worker_stats_minute;
DROP TABLE IF EXISTS share_events;
