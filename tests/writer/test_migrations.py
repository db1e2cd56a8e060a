"""Schema versions: up, down, and a writer meeting a schema newer than it knows.

Each on the real servers (the ``database`` fixture: PostgreSQL, MariaDB, MySQL 9.7,
SQLite), through the ``stratum-writer migrate`` command a migration Job runs.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from harness.databases import Database
from harness.writer import INSERTED, QUEUE, WriterProcess, assert_exactly, fill, migrate
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events
from stratum_writer.backends.base import latest_migration
from stratum_writer.exits import ExitCode

TABLES = ("share_events", "worker_stats_minute", "workers", "schema_migrations")


def dialect(db: Database) -> str:
    return "mysql" if db.kind in ("mariadb", "mysql") else db.kind


def catalog(db: Database) -> str:
    """Our tables' columns and indexes as the database's own catalog describes them."""
    names = ", ".join(f"'{t}'" for t in TABLES)
    if db.kind == "sqlite":
        return db.query(f"SELECT type, name, tbl_name, sql FROM sqlite_master "
                        f"WHERE tbl_name IN ({names}) ORDER BY type, name")  # fmt: skip
    if db.kind == "postgres":
        return db.query(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            f"FROM information_schema.columns WHERE table_schema = current_schema() "
            f"AND table_name IN ({names}) ORDER BY table_name, ordinal_position"
        ) + db.query(f"SELECT tablename, indexname, indexdef FROM pg_indexes WHERE "
                     f"tablename IN ({names}) ORDER BY indexname")  # fmt: skip
    return db.query(
        "SELECT table_name, column_name, column_type, is_nullable, column_default, "
        "collation_name FROM information_schema.columns WHERE table_schema = DATABASE() "
        f"AND table_name IN ({names}) ORDER BY table_name, ordinal_position"
    ) + db.query("SELECT table_name, index_name, seq_in_index, column_name, non_unique FROM "
                 "information_schema.statistics WHERE table_schema = DATABASE() "
                 f"AND table_name IN ({names}) ORDER BY table_name, index_name, seq_in_index")  # fmt: skip


def test_down_then_up_leaves_the_same_schema_and_refills_the_registry(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    fill(spool, 3000)
    writer = WriterProcess(spool, database.url, "--migrate").start()
    writer.wait_for(QUEUE, lambda v: v == 0, 60)
    assert writer.terminate() == 0
    before = catalog(database)
    latest = latest_migration(dialect(database))
    back = latest - 1  # every migration after the first: partitions, the registry
    down = writer.run_command("migrate", "--down", str(back))
    assert down.returncode == 0, down.stderr
    reverted = ", ".join(str(v) for v in range(latest, 1, -1))
    assert f"schema version 1 (reverted: {reverted})" in down.stdout, down.stdout
    assert "workers" not in catalog(database).split()
    assert database.scalar("SELECT count(*) FROM share_events") == 3000  # kept throughout
    up = writer.run_command("migrate")
    applied = ", ".join(str(v) for v in range(2, latest + 1))
    assert up.returncode == 0 and f"(applied: {applied})" in up.stdout, up.stderr
    assert catalog(database) == before
    assert_exactly(database, 3000)  # the registry filled again from the shares, exactly


def test_a_down_migration_that_drops_shares_needs_to_be_told(
    database: Database, tmp_path: Path
) -> None:
    writer = WriterProcess(tmp_path / "spool", database.url)
    migrate(writer)
    latest = latest_migration(dialect(database))
    refused = writer.run_command("migrate", "--down", str(latest))
    assert refused.returncode == ExitCode.SCHEMA_REFUSED, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr  # one line naming the cause and the way out
    line = lines[0]
    assert "drops the shares stored" in line and "--drop-shares" in line, line
    assert database.scalar("SELECT max(version) FROM schema_migrations") == latest  # untouched
    done = writer.run_command("migrate", "--down", str(latest), "--drop-shares")
    assert done.returncode == 0 and "schema version 0" in done.stdout, done.stderr
    assert "share_events" not in catalog(database).split()


def test_a_writer_refuses_a_schema_newer_than_it_knows(database: Database, tmp_path: Path) -> None:
    writer = WriterProcess(tmp_path / "spool", database.url)
    migrate(writer)
    latest = latest_migration(dialect(database))
    newer = latest + 1
    columns = "version, name, shard_key" if dialect(database) == "mysql" else "version, name"
    values = f"{newer}, 'from-the-future.sql'" + (", 0" if dialect(database) == "mysql" else "")
    database.query(f"INSERT INTO schema_migrations ({columns}) VALUES ({values})")
    for command in (("run",), ("migrate",)):
        out = writer.run_command(*command)
        assert out.returncode == ExitCode.SCHEMA_REFUSED, (command, out.stderr)
        (line,) = out.stderr.strip().splitlines()
        assert f"{newer}" in line and f"({latest})" in line and "newer" in line, line


# shares stored before: enough that copying them back into one table takes seconds, while
# the writer commits a batch every batch timeout (200 ms)
_FILLER = """INSERT INTO share_events SELECT decode(lpad(to_hex(g), 32, '0'), 'hex'), 'filler',
 'u', 'filler', 'filler.w', 1, 'j', 'e1', 'e2', '00000000', '00000000', NULL, 1, 1, true,
 NULL, NULL, false, timestamptz '2025-06-01' + g * interval '1 ms', NULL, 'p'
 FROM generate_series(1, {rows}) g"""


class _Feed:
    """A proxy's worth of shares spooled without pause, on a thread of its own."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.ids: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Feed:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        producer = SpoolProducer(self.spool, segment_bytes=256 << 10)
        events = synthetic_events(10**7, seed=3, start_us=time.time_ns() // 1000, pool="live")
        while not self._stop.is_set():
            for event in itertools.islice(events, 100):
                producer.append(event)
                self.ids.append(event.share_id)
            producer.flush_sync()
            time.sleep(0.01)
        producer.close_sync()


def test_migrating_down_from_day_partitions_under_a_storing_writer_keeps_every_share(
    postgres_db: Database, tmp_path: Path
) -> None:
    """PostgreSQL's 0003 down copies the partitions into one table, then drops them: the
    shares a running writer commits meanwhile must wait for the copy, not go with them."""
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, postgres_db.url, "--migrate").start()
    writer.wait_for("stratum_writer_schema_version", lambda v: v == 3, 60)
    postgres_db.query(_FILLER.format(rows=400_000))
    with _Feed(spool) as feed:
        writer.wait_for(INSERTED, lambda v: v > 1000, 60)  # the writer is storing
        down = writer.run_command("migrate", "--down", "1")
        assert down.returncode == 0, down.stderr
        stored_during = writer.metrics()[INSERTED]
        writer.wait_for(INSERTED, lambda v: v > stored_during + 1000, 60)  # and stores on
    writer.wait_for(QUEUE, lambda v: v == 0, 60)
    assert postgres_db.scalar("SELECT count(*) FROM pg_inherits") == 0, "one table again"
    stored = postgres_db.query(
        "SELECT encode(share_id, 'hex') FROM share_events WHERE pool = 'live'"
    ).split()
    assert len(stored) == len(set(stored)), "no share stored twice"
    missing = {i.hex() for i in feed.ids} - set(stored)
    assert not missing, f"{len(missing)} of {len(feed.ids)} shares lost by the down migration"
    assert len(stored) == len(feed.ids)
    assert postgres_db.scalar("SELECT count(*) FROM share_events WHERE pool = 'filler'") == 400_000
