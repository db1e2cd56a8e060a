-- Settlements are derived from share_events while the day's shares are kept; dropping
-- them loses no share (but a settled day's parts, once its shares expired: keep a copy).
DROP TABLE IF EXISTS settlement_accounts;
DROP TABLE IF EXISTS settlements;
DROP TABLE IF EXISTS settlement_days;
