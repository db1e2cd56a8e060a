"""Least privilege on the real servers: a writer whose user holds exactly the grants
docs/writer.md lists (``RUNTIME_GRANTS``) stores exactly once through a replay, a
poison share and a server killed mid-stream; one grant fewer and it refuses to start,
naming what is missing. The schema is migrated by another user (the migration Job's)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from harness.databases import Database
from harness.db_users import user_with
from harness.retention_days import day, days_of_shares, retain
from harness.writer import QUEUE, WriterProcess, assert_exactly, migrate
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events
from stratum_writer.backends import mysql, postgres
from stratum_writer.exits import ExitCode
from stratum_writer.retention.mysql import RETENTION_GRANTS

ROOT = Path(__file__).resolve().parents[2]


def writer_user(db: Database, grants: tuple[str, ...]) -> str:
    """A user holding ``grants`` on ``db``; the URL the writer gets."""
    return user_with(db, "w", grants).url


def grants_of(db: Database) -> tuple[str, ...]:
    return postgres.RUNTIME_GRANTS if db.kind == "postgres" else mysql.RUNTIME_GRANTS


def test_the_documented_grants_are_the_writers_own() -> None:
    docs = (ROOT / "docs" / "writer.md").read_text()
    for grant in (*postgres.RUNTIME_GRANTS, *mysql.RUNTIME_GRANTS, *RETENTION_GRANTS):
        assert grant in docs, f"docs/writer.md must list: {grant}"


def test_exactly_the_documented_grants_store_exactly_once_through_everything(
    server_database: Database, tmp_path: Path
) -> None:
    db = server_database
    migrate(WriterProcess(tmp_path / "migration", db.url))  # the migration Job's user
    url = writer_user(db, grants_of(db))
    spool = tmp_path / "spool"
    events = list(synthetic_events(20_000, seed=3))
    events[777] = dataclasses.replace(events[777], worker="w" * 200)  # poison: too long
    producer = SpoolProducer(spool)
    writer = WriterProcess(spool, url, "--batch-size", "500").start()
    server = db.server
    assert server is not None
    for i, e in enumerate(events):
        producer.append(e)
        if i == 8_000:
            producer.flush_sync()
            writer.wait_for("stratum_writer_inserted_total", lambda v: v > 0)
            server.kill()
        if i == 12_000:
            producer.flush_sync()
            time.sleep(1)
            server.start()
    producer.close_sync()
    writer.wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.metrics()["stratum_writer_dead_letters_total"] == 1
    writer.kill()  # and a replay of what was not checkpointed, with the same user
    again = WriterProcess(spool, url).start()
    again.wait_for(QUEUE, lambda v: v == 0, 120)
    assert again.terminate() == 0
    assert_exactly(db, 19_999)


def test_one_grant_fewer_and_the_writer_names_what_is_missing(
    server_database: Database, tmp_path: Path
) -> None:
    db = server_database
    migrate(WriterProcess(tmp_path / "migration", db.url))
    fewer = tuple(g.replace("SELECT, INSERT, UPDATE ON", "SELECT, INSERT ON")
                  if "workers" in g else g for g in grants_of(db))  # fmt: skip
    out = WriterProcess(tmp_path / "spool", writer_user(db, fewer)).run_command("run")
    assert out.returncode == ExitCode.CANNOT_START, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "lacks what the writer needs" in line, line
    assert re.search(r"UPDATE", line) and "workers" in line, line


def test_retention_runs_with_exactly_its_documented_grants(
    mysql_family_database: Database, tmp_path: Path
) -> None:
    """Everything a daily run does: the days ahead split out of p_future, expired days
    dropped whole, the rest of the expired shares, rollups and workers deleted."""
    db = mysql_family_database
    writer = WriterProcess(tmp_path / "spool", db.url)
    migrate(writer)
    producer = SpoolProducer(tmp_path / "spool")
    # 2026-01-01 (long expired, below the migration's bound) and a day a month ahead
    for e in [*synthetic_events(3000, seed=4), *days_of_shares(0, 0, 1000)]:
        producer.append(e)
    producer.close_sync()
    writer.start().wait_for(QUEUE, lambda v: v == 0, 60)
    assert writer.terminate() == 0
    retention = WriterProcess(tmp_path / "spool", writer_user(db, RETENTION_GRANTS))
    report = retain(retention, day(3), shares=1, rollups=1)
    assert report["partitions_created"] and report["partitions_dropped"], report
    assert f"p{day(0):%Y%m%d}" in report["partitions_dropped"], report
    assert db.scalar("SELECT count(*) FROM share_events") == 0
