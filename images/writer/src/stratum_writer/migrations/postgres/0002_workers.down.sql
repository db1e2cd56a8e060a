-- The registry is derived from share_events: dropping it loses no share.
DROP TABLE IF EXISTS workers;
