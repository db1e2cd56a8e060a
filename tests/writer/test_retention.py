"""Retention on the real servers, while the writer writes: the clock is moved (``retain
--now``), never slept (harness/retention_days.py). PostgreSQL, MySQL and MariaDB drop
whole days; SQLite deletes by primary-key range (Vitess: tests/writer/test_vtgate.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.databases import Database
from harness.retention_days import day, days_of_shares, retain, retain_twice_at_once, us
from harness.writer import QUEUE, WriterProcess, migrate
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events
from stratum_writer.backends.day_partitions import by_day_ddl


def since(
    db: Database, at: datetime, table: str = "share_events", column: str = "submitted_at"
) -> int:
    if db.kind == "sqlite":
        return db.scalar(f"SELECT count(*) FROM {table} WHERE {column} >= {us(at)}")
    literal = at.strftime("%Y-%m-%d %H:%M:%S")
    cast = f"TIMESTAMPTZ '{literal}+00'" if db.kind == "postgres" else f"'{literal}'"
    return db.scalar(f"SELECT count(*) FROM {table} WHERE {column} >= {cast}")


def test_retention_removes_exactly_what_expired_while_the_writer_writes(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, database.url, "--batch-size", "2000")
    migrate(writer)
    producer = SpoolProducer(spool)
    writer.start()
    written = []
    reports = []
    for n in range(5):  # five days go by: each day's shares, and a retain run that day
        shares = days_of_shares(n, n, 3000)
        for e in shares:
            producer.append(e)
        producer.flush_sync()
        written += shares
        reports.append(retain(writer, day(n)))  # while the writer still stores that day
        assert not reports[-1]["skipped"], reports[-1]
    writer.wait_for(QUEUE, lambda v: v == 0, 120)
    # day 4, noon: shares before day 2 go, rollups and idle workers before day 1
    report = retain(writer, day(4))
    assert report["share_cutoff"] == day(2).date().isoformat()
    assert report["rollup_cutoff"] == day(1).date().isoformat()
    kept = [e for e in written if e.submitted_at >= us(day(2, 0))]
    assert database.scalar("SELECT count(*) FROM share_events") == len(kept) == 9000
    assert since(database, day(2, 0)) == len(kept)
    assert database.scalar("SELECT count(DISTINCT share_id) FROM share_events") == len(kept)
    rolled = since(database, day(1, 0), "worker_stats_minute", "minute")
    assert rolled > 0
    assert (
        database.scalar("SELECT sum(accepted + rejected + stale) FROM worker_stats_minute") == 12000
    )
    assert report["oldest_share"].startswith(day(2).date().isoformat()), report
    metrics = writer.metrics()
    assert metrics.get("stratum_writer_dead_letters_total", 0) == 0
    assert metrics.get('stratum_writer_retries_total{kind="data"}', 0) == 0
    assert writer.terminate() == 0
    again = retain(writer, day(4))  # a second run finds nothing more to do
    assert sum(again["removed"].values()) == 0 and not again["partitions_dropped"], again
    dropped = {p for r in (*reports, report, again) for p in r["partitions_dropped"]}
    if database.kind == "postgres":  # expired days dropped whole, the default left empty
        assert {f"share_events_p{day(n):%Y%m%d}" for n in (0, 1)} <= dropped, dropped
        assert "share_events_before_0003" in dropped
        assert database.scalar("SELECT count(*) FROM share_events_default") == 0
    elif database.kind in ("mariadb", "mysql"):
        assert {f"p{day(n):%Y%m%d}" for n in (0, 1)} <= dropped, dropped
        assert any(p.startswith("p_before_") for p in dropped), dropped
    else:  # SQLite deletes
        assert not dropped


def test_two_retain_runs_at_once_both_succeed_and_remove_once(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, database.url)
    migrate(writer)
    producer = SpoolProducer(spool)
    for e in days_of_shares(0, 3, 4000):
        producer.append(e)
    producer.close_sync()
    writer.start().wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.terminate() == 0
    retain_twice_at_once(writer, day(3), shares=1, rollups=1)
    # one whole day kept, and today: days 2 and 3
    assert database.scalar("SELECT count(*) FROM share_events") == 8000
    assert since(database, day(2, 0)) == 8000


def test_postgres_never_fails_an_insert_for_want_of_a_day(
    postgres_db: Database, tmp_path: Path
) -> None:
    """Shares of days no partition covers yet (a clock ahead; days with no retain run)
    land in the default partition, and move into their day when retain makes it."""
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, postgres_db.url)
    migrate(writer)
    producer = SpoolProducer(spool)
    for e in days_of_shares(10, 12, 2000):  # far past the days migrate made
        producer.append(e)
    producer.close_sync()
    writer.start().wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.metrics().get("stratum_writer_dead_letters_total", 0) == 0
    assert postgres_db.scalar("SELECT count(*) FROM share_events_default") == 6000
    report = retain(writer, day(11), shares=30, rollups=30)  # the clock moved on to day 11
    made = {f"share_events_p{day(n):%Y%m%d}" for n in (10, 11, 12, 13)}
    assert made <= set(report["partitions_created"]), report
    assert postgres_db.scalar("SELECT count(*) FROM share_events_default") == 0
    assert postgres_db.scalar(f"SELECT count(*) FROM share_events_p{day(11):%Y%m%d}") == 2000
    assert postgres_db.scalar("SELECT count(*) FROM share_events") == 6000
    # the writer keeps storing into the days just made: one of them gets a replay too
    assert writer.terminate() == 0
    again = SpoolProducer(tmp_path / "again")
    for e in days_of_shares(11, 11, 2500):  # 2,000 already stored, 500 new
        again.append(e)
    again.close_sync()
    replayer = WriterProcess(tmp_path / "again", postgres_db.url).start()
    replayer.wait_for(QUEUE, lambda v: v == 0, 120)
    assert replayer.terminate() == 0
    assert postgres_db.scalar("SELECT count(*) FROM share_events") == 6500
    assert postgres_db.scalar("SELECT count(DISTINCT share_id) FROM share_events") == 6500


def test_mysqls_first_partitions_meet_where_retention_reads_them(
    mysql_family_database: Database, tmp_path: Path
) -> None:
    """Migration 0003 computes its first bound in SQL (tomorrow's first share_id) and
    names the partition by that day; retention reads bounds from names. A share of now
    lands below it, a share of tomorrow in the day partition migrate made."""
    db = mysql_family_database
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, db.url)
    migrate(writer)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    midnight = datetime.combine(tomorrow, datetime.min.time(), UTC)
    producer = SpoolProducer(spool)
    for at, seed in ((midnight - timedelta(seconds=2), 1), (midnight + timedelta(hours=1), 2)):
        for e in synthetic_events(1, seed=seed, start_us=us(at)):
            producer.append(e)
    producer.close_sync()
    writer.start().wait_for(QUEUE, lambda v: v == 0, 60)
    assert writer.terminate() == 0
    for partition in (f"p_before_{tomorrow:%Y%m%d}", f"p{tomorrow:%Y%m%d}"):
        assert db.scalar(f"SELECT count(*) FROM share_events PARTITION ({partition})") == 1


def test_mysqls_first_partitions_are_the_ones_vitess_shards_get(
    mysql_family_database: Database, tmp_path: Path
) -> None:
    """Migration 0003 computes its bound in SQL; on Vitess the writer partitions each
    shard with ``by_day_ddl``, computed in Python: both give the same partition, bound
    and all, as the server itself describes it."""
    db = mysql_family_database
    writer = WriterProcess(tmp_path / "spool", db.url)
    migrate(writer)
    first = (
        "SELECT partition_name, partition_description FROM information_schema.partitions "
        "WHERE table_schema = DATABASE() AND table_name = 'share_events' "
        "AND partition_name LIKE 'p_before%'"
    )
    by_migration = db.query(first)
    out = writer.run_command("migrate", "--down", "1")
    assert out.returncode == 0, out.stderr
    assert db.query(first) == ""
    db.query(by_day_ddl(datetime.now(UTC).date()))
    assert db.query(first) == by_migration != ""
