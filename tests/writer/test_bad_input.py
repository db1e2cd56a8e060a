"""Bad input gets a clear error and loses nothing: poison shares, bad URLs, dead databases."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

from harness.databases import Database, free_port
from harness.writer import INSERTED, QUEUE, WriterProcess, assert_exactly, migrate
from sharelog.spool import SpoolProducer, SpoolReader
from sharelog.spool.format import read_checkpoint
from sharelog.synthetic import synthetic_events


def test_poison_share_is_dead_lettered_and_replayed_after_the_fix(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    events = list(synthetic_events(3000))
    poison_at = 1234
    # a worker name longer than its column: every backend refuses it
    events[poison_at] = dataclasses.replace(events[poison_at], worker="w" * 200)
    producer = SpoolProducer(spool)
    for e in events:
        producer.append(e)
    producer.close_sync()
    writer = WriterProcess(spool, database.url, "--batch-size", "1000")
    migrate(writer)
    writer.start()
    writer.wait_for(QUEUE, lambda v: v == 0)
    assert writer.metrics()["stratum_writer_dead_letters_total"] == 1
    assert writer.terminate() == 0
    assert database.scalar("SELECT count(*) FROM share_events") == 2999, "the rest committed"

    dead = spool / "dead-letters.jsonl"
    (entry,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert entry["event"]["share_id"] == events[poison_at].share_id.hex()
    assert entry["reason"], "the database's reason is kept"

    # Before the fix, replay reports the share as still failing and exits non-zero.
    first = writer.run_command("replay", str(dead))
    assert first.returncode == 1, first.stdout + first.stderr
    assert "1 still failing" in first.stdout

    # The fix: the operator widens the column (here, trims the value) and replays.
    entry["event"]["worker"] = "w" * 20
    dead.write_text(json.dumps(entry) + "\n")
    second = writer.run_command("replay", str(dead))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 inserted" in second.stdout
    assert_exactly(database, 3000)
    # replaying again is harmless: the share is already stored
    third = writer.run_command("replay", str(dead))
    assert third.returncode == 0 and "1 already stored" in third.stdout


def _start_fails(spool: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return WriterProcess(spool, url).run_command("run", "--listen", "127.0.0.1:0", *args)


def test_bad_url_is_one_line_and_nothing_is_lost(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    producer = SpoolProducer(spool)
    for e in synthetic_events(100):
        producer.append(e)
    producer.close_sync()
    out = _start_fails(spool, "oracle://scott:tiger@db/orcl")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert "scheme must be one of" in out.stderr
    assert "tiger" not in out.stderr, "the password never reaches a log"
    assert SpoolReader(spool).queue_depth().events == 100


def test_unreachable_database_at_start_is_one_line_and_nothing_is_lost(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    producer = SpoolProducer(spool)
    for e in synthetic_events(100):
        producer.append(e)
    producer.close_sync()
    port = free_port()  # nothing listens here
    for url in (
        f"postgresql://u:secret@127.0.0.1:{port}/db",
        f"mysql://u:secret@127.0.0.1:{port}/db",
    ):
        out = _start_fails(spool, url)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1, out.stderr
        assert "cannot connect to" in out.stderr and f"127.0.0.1:{port}" in out.stderr
        assert "secret" not in out.stderr
    assert SpoolReader(spool).queue_depth().events == 100


def test_missing_url_and_bad_settings_are_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "stratum_writer.cli", "--spool", str(tmp_path), "run"]
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 2 and "no database URL" in out.stderr
    out = subprocess.run([*argv, "--batch-size", "0"], capture_output=True, text=True,
                         env={**env, "STRATUM_DATABASE_URL": "sqlite:///x.db"}, check=False)  # fmt: skip
    assert out.returncode == 2 and "batch_size" in out.stderr


def test_unmigrated_schema_is_refused_with_the_fix_named(
    postgres_db: Database, tmp_path: Path
) -> None:
    out = _start_fails(tmp_path / "spool", postgres_db.url)
    assert out.returncode == 3
    assert "stratum-writer migrate" in out.stderr


def test_spool_full_producer_drops_while_the_writer_keeps_draining(
    postgres_db: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, postgres_db.url, "--batch-size", "500")
    migrate(writer)
    producer = SpoolProducer(spool, max_bytes=200 << 10, segment_bytes=64 << 10)
    events = list(synthetic_events(20_000))
    accepted = 0
    for e in events[:5000]:  # no writer yet: the spool fills, the producer drops
        accepted += producer.append(e)
    producer.flush_sync()
    assert producer.dropped > 0 and accepted < 5000
    writer.start()
    writer.wait_for(INSERTED, lambda v: v >= accepted)
    writer.wait_for(QUEUE, lambda v: v == 0)
    producer._last_rescan = 0
    producer.flush_sync()
    for e in events[5000:5100]:  # room again once the writer drained it
        assert producer.append(e)
    producer.close_sync()
    writer.wait_for(INSERTED, lambda v: v >= accepted + 100)
    assert writer.terminate() == 0
    assert postgres_db.scalar("SELECT count(*) FROM share_events") == accepted + 100


def test_at_the_dead_letter_cap_refused_shares_wait_in_the_spool_and_nothing_is_dropped(
    postgres_db: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    events = list(synthetic_events(3000))
    poison = (1234, 2345)
    for at in poison:  # a worker name longer than its column: refused for its content
        events[at] = dataclasses.replace(events[at], worker="w" * 200)
    producer = SpoolProducer(spool)
    for e in events:
        producer.append(e)
    producer.close_sync()
    dead = spool / "dead-letters.jsonl"
    earlier = json.dumps({"reason": "an earlier refusal", "raw": "x" * 300}) + "\n"
    dead.write_text(earlier * 10)  # about 3.5 KiB of the 4 KiB cap: no room for another
    cap = ("--batch-size", "500", "--dead-letter-max-bytes", "4096")
    writer = WriterProcess(spool, postgres_db.url, *cap)
    migrate(writer)
    writer.start()
    writer.wait_for("stratum_writer_dead_letters_full", lambda v: v == 1)
    writer.wait_for(INSERTED, lambda v: v >= 1000)  # the batches before the poison's
    time.sleep(1.0)  # held, not slow: nothing moves past it
    metrics = writer.metrics()
    assert metrics["stratum_writer_dead_letter_limit_bytes"] == 4096
    assert metrics["stratum_writer_dead_letter_bytes"] == len(earlier) * 10
    checkpoint = read_checkpoint(spool)
    assert checkpoint is not None and checkpoint.seq <= poison[0], "the checkpoint waits"
    assert postgres_db.scalar("SELECT count(*) FROM share_events") < 2000, "read no further"
    assert dead.read_text() == earlier * 10, "the file stays at its cap"
    assert writer.terminate() == 0  # SIGTERM while held: the rest stays in the spool
    assert SpoolReader(spool).queue_depth().events >= 3000 - poison[0]

    dead.rename(spool / "dead-letters.replayed")  # a person replayed them and moved them away
    writer = WriterProcess(spool, postgres_db.url, *cap).start()
    writer.wait_for(QUEUE, lambda v: v == 0)
    assert writer.metrics()["stratum_writer_dead_letters_full"] == 0
    assert writer.terminate() == 0
    assert_exactly(postgres_db, 2998)
    kept = [json.loads(line)["event"]["share_id"] for line in dead.read_text().splitlines()]
    assert kept == [events[at].share_id.hex() for at in poison], "each one set aside once"
