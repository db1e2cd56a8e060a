"""Every share reaches the database once, whatever fails in between.

Real servers, the real writer process, and real SIGKILLs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from harness.databases import Database
from harness.spool_reader import record_spans, rot
from harness.writer import INSERTED, QUEUE, WriterProcess, assert_exactly, fill, migrate
from sharelog.event import ACCEPTED
from sharelog.spool import SpoolProducer
from sharelog.spool.format import QUARANTINE, list_segments, segment_name
from sharelog.spool.quarantine import read_quarantine
from sharelog.synthetic import synthetic_events
from stratum_writer.backends import StoreResult, open_backend


def test_n_events_in_n_distinct_rows_out(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    fill(spool, 20_000)
    writer = WriterProcess(spool, database.url, "--batch-size", "2000")
    migrate(writer)
    writer.start()
    writer.wait_for(INSERTED, lambda v: v >= 20_000)
    writer.wait_for(QUEUE, lambda v: v == 0)
    assert writer.terminate() == 0
    assert_exactly(database, 20_000)
    accepted = database.scalar("SELECT count(*) FROM share_events WHERE accepted")
    assert accepted == database.scalar("SELECT sum(accepted) FROM worker_stats_minute")


def test_database_killed_mid_stream_then_restarted(
    server_database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, server_database.url, "--batch-size", "500", "--workers", "3")
    migrate(writer)
    producer = SpoolProducer(spool)
    events = list(synthetic_events(30_000))
    writer.start()
    server = server_database.server
    assert server is not None
    for i, e in enumerate(events):
        producer.append(e)
        if i % 1000 == 999:
            producer.flush_sync()
            time.sleep(0.01)
        if i == 10_000:
            writer.wait_for(INSERTED, lambda v: v > 0)
            server.kill()  # SIGKILL: in-flight transactions die with the server
        if i == 20_000:
            writer.wait_for("stratum_writer_backend_up", lambda v: v == 0)
            assert writer.status("/readyz") == 503
            server.start()
    producer.close_sync()
    # A batch whose COMMIT reached the server just before the kill is stored although the
    # writer never heard so: its retry finds every share there already (counted as
    # duplicates, not inserted). So: wait for the queue, then count the rows.
    writer.wait_for(QUEUE, lambda v: v == 0, timeout=120)
    assert writer.alive(), "the writer must ride out the outage, not crash"
    assert writer.status("/readyz") == 200, writer.metrics()
    metrics = writer.metrics()
    assert metrics['stratum_writer_retries_total{kind="outage"}'] > 0
    stored = metrics[INSERTED] + metrics["stratum_writer_duplicates_ignored_total"]
    assert stored >= 30_000
    assert writer.terminate() == 0
    assert_exactly(server_database, 30_000)


def test_writer_sigkilled_mid_batch_then_restarted(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    fill(spool, 40_000)
    writer = WriterProcess(spool, database.url, "--batch-size", "1000", "--workers", "2")
    migrate(writer)
    writer.start()
    writer.wait_for(INSERTED, lambda v: v >= 5000)
    writer.kill()  # no chance to checkpoint what it committed last
    mid = database.scalar("SELECT count(*) FROM share_events")
    assert 0 < mid < 40_000
    again = WriterProcess(spool, database.url, "--batch-size", "1000").start()
    again.wait_for(QUEUE, lambda v: v == 0, timeout=120)
    assert again.terminate() == 0
    assert_exactly(database, 40_000)


def test_sigterm_drains_the_spool_before_exiting(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, database.url, "--batch-size", "200", "--drain-timeout", "60")
    migrate(writer)
    writer.start()
    fill(spool, 15_000)
    assert writer.terminate() == 0  # straight away: the spool is still full
    assert_exactly(database, 15_000)


def test_workers_follow_the_file_the_operator_writes(postgres_db: Database, tmp_path: Path) -> None:
    db = postgres_db
    workers_file = tmp_path / "writer-workers"
    workers_file.write_text("2")
    writer = WriterProcess(tmp_path / "spool", db.url, workers_file=workers_file)
    migrate(writer)
    writer.start()
    writer.wait_for("stratum_writer_workers", lambda v: v == 2)
    workers_file.write_text("6")
    writer.wait_for("stratum_writer_workers", lambda v: v == 6)
    workers_file.write_text("not a number")  # a bad value keeps the current count
    time.sleep(1.5)
    assert writer.metrics()["stratum_writer_workers"] == 6
    workers_file.write_text("1")
    writer.wait_for("stratum_writer_workers", lambda v: v == 1)
    assert writer.terminate() == 0


@pytest.mark.parametrize(("shares", "batch"), [(5000, "5000"), (20_000, "1000")])
def test_sigterm_during_an_outage_exits_on_the_deadline_and_keeps_the_shares(
    server_database: Database, tmp_path: Path, shares: int, batch: str
) -> None:
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, server_database.url, "--drain-timeout", "3",
                           "--batch-size", batch, "--workers", "2")  # fmt: skip
    migrate(writer)
    writer.start()
    server = server_database.server
    assert server is not None
    server.kill()
    fill(spool, shares)  # with batches of 1,000: the flushers hold two, the queue two more
    writer.wait_for("stratum_writer_backend_up", lambda v: v == 0)
    writer.wait_for(QUEUE, lambda v: v == shares)
    started = time.monotonic()
    assert writer.terminate(timeout=30) == 0
    took = time.monotonic() - started
    assert took < 6, f"took {took:.1f}s past SIGTERM with a 3 s drain deadline"
    log = writer.log.read_text()
    assert f"stopping: {shares} shares in the spool" in log
    assert f"stopped; {shares} shares left in the spool" in log
    server.start()
    again = WriterProcess(spool, server_database.url).start()
    again.wait_for(QUEUE, lambda v: v == 0)
    assert again.terminate() == 0
    assert_exactly(server_database, shares)


def test_a_batch_half_stored_before_stores_only_its_new_half(
    database: Database, tmp_path: Path
) -> None:
    """The replay after a crash, at the backend: the fast path (PostgreSQL's COPY straight
    into the table) meets shares stored before, undoes itself and goes the careful way;
    the rollups and the registry count each share once."""
    rows = [e.as_row() for e in synthetic_events(3000, users=40)]
    migrate(WriterProcess(tmp_path / "spool", database.url))

    async def write() -> list[StoreResult]:
        backend = open_backend(database.url)
        await backend.connect(2)
        try:
            return [await backend.store(rows[:2000]), await backend.store(rows[1000:]),
                    await backend.store(rows)]  # fmt: skip
        finally:
            await backend.close()

    first, replay, again = asyncio.run(write())
    assert (first.inserted, first.duplicates) == (2000, 0)
    assert (replay.inserted, replay.duplicates) == (1000, 1000)
    assert (again.inserted, again.duplicates) == (0, 3000)
    assert_exactly(database, 3000)
    accepted = sum(1 for r in rows if r[ACCEPTED])
    assert database.scalar("SELECT sum(accepted) FROM worker_stats_minute") == accepted


def test_damage_in_the_live_segment_costs_only_the_damaged_share(
    postgres_db: Database, tmp_path: Path
) -> None:
    """Bytes flipped in the middle of the segment the proxy writes to, under a running
    writer, then a proxy restart on that spool: every share before and after the damaged
    one is stored once, and the damaged one waits in quarantine, counted."""
    spool = tmp_path / "spool"
    events = list(synthetic_events(1000))
    producer = SpoolProducer(spool)  # one segment: the live one
    for e in events:
        producer.append(e)
    producer.close_sync()
    (live,) = [spool / segment_name(s) for s in list_segments(spool)]
    offset, length = record_spans(live)[500]
    rot(live, offset + 60)  # inside the 501st share's payload
    writer = WriterProcess(spool, postgres_db.url, "--batch-size", "100")
    migrate(writer)
    writer.start()
    # a record after the bad bytes proves them damage, not a write in flight: read past
    writer.wait_for(INSERTED, lambda v: v == 999)
    more = list(synthetic_events(500, seed=2, start_us=1_800_000_000_000_000))
    restarted = SpoolProducer(spool)  # the proxy restarts: recovery cuts nothing valid
    for e in more:
        restarted.append(e)
    restarted.close_sync()
    writer.wait_for(QUEUE, lambda v: v == 0)
    metrics = writer.metrics()
    assert metrics[INSERTED] == 1499
    assert metrics["stratum_writer_spool_damaged_bytes_total"] == length
    assert metrics["stratum_writer_spool_quarantine_bytes"] == length
    assert writer.terminate() == 0
    assert_exactly(postgres_db, 1499)
    stored = set(postgres_db.query("SELECT encode(share_id, 'hex') FROM share_events").split())
    assert stored == {e.share_id.hex() for i, e in enumerate(events + more) if i != 500}
    (span,) = read_quarantine(spool / QUARANTINE)
    assert (span.segment, span.offset, len(span.data)) == (live.name, offset, length)
