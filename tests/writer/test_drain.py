"""``stratum-writer drain``: empty a spool whose pod is gone, and say whether the volume
may go. The operator's drain Job runs exactly this; its exit code is the proof."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import time
from pathlib import Path

from harness.databases import Database
from harness.spool_reader import record_spans, rot
from harness.writer import WriterProcess, assert_exactly, fill, migrate
from sharelog.spool import SpoolProducer
from sharelog.spool.format import QUARANTINE, list_segments, segment_name
from sharelog.spool.quarantine import read_quarantine
from sharelog.synthetic import synthetic_events


def _drain(writer: WriterProcess, *args: str) -> subprocess.Popen[str]:
    argv = writer.command("drain", "--listen", "127.0.0.1:0", *args)
    return subprocess.Popen(argv, env=writer.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _spool_of(db: Database, tmp_path: Path, shares: int) -> WriterProcess:
    """A migrated database and a spool holding ``shares`` that no proxy writes to."""
    spool = tmp_path / "spool"
    fill(spool, shares)
    writer = WriterProcess(spool, db.url)
    migrate(writer)
    return writer


def _summary(out: str) -> dict[str, int]:
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_drain_empties_the_spool_and_exits_0(postgres_db: Database, tmp_path: Path) -> None:
    writer = _spool_of(postgres_db, tmp_path, 12_000)
    summary_file = tmp_path / "termination-log"
    proc = _drain(writer, "--summary-file", str(summary_file))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _summary(out) == {"stored": 12_000, "already_stored": 0, "left": 0, "dead_letters": 0,
                             "quarantined_bytes": 0}  # fmt: skip
    assert json.loads(summary_file.read_text())["stored"] == 12_000
    assert_exactly(postgres_db, 12_000)
    again = _drain(writer)  # an empty spool drains at once, and still says so
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0 and _summary(out)["left"] == 0


def test_drain_waits_out_a_database_that_is_down_when_it_starts(
    postgres_db: Database, tmp_path: Path
) -> None:
    writer = _spool_of(postgres_db, tmp_path, 5000)
    server = postgres_db.server
    assert server is not None
    server.kill()
    proc = _drain(writer)
    time.sleep(4)
    assert proc.poll() is None, "an outage is waited out, not a failure of the Job"
    server.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _summary(out)["stored"] == 5000
    assert_exactly(postgres_db, 5000)


def test_sigterm_in_an_outage_exits_75_and_leaves_the_shares(
    postgres_db: Database, tmp_path: Path
) -> None:
    writer = _spool_of(postgres_db, tmp_path, 8000)
    server = postgres_db.server
    assert server is not None
    server.kill()
    proc = _drain(writer, "--drain-timeout", "2")
    time.sleep(2)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # the Job deleted, the node drained: the pod must go
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, err
    assert time.monotonic() - started < 5
    server.start()
    finish = _drain(writer)  # the Job's next pod
    out, _ = finish.communicate(timeout=120)
    assert finish.returncode == 0 and _summary(out)["stored"] == 8000
    assert_exactly(postgres_db, 8000)


def test_dead_letters_beside_the_spool_keep_the_volume(
    postgres_db: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    events = list(synthetic_events(500))
    events[7] = dataclasses.replace(events[7], worker="w" * 200)  # refused by the database
    producer = SpoolProducer(spool)
    for e in events:
        producer.append(e)
    producer.close_sync()
    writer = WriterProcess(spool, postgres_db.url)
    migrate(writer)
    proc = _drain(writer)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, "empty, but evidence remains: the volume must stay"
    assert _summary(out) == {"stored": 499, "already_stored": 0, "left": 0, "dead_letters": 1,
                             "quarantined_bytes": 0}  # fmt: skip


def test_damage_in_the_spool_is_quarantined_the_rest_stored_and_the_volume_kept(
    postgres_db: Database, tmp_path: Path
) -> None:
    """Bytes flipped in the middle of a finished segment and of the last one, the one
    the proxy wrote to when its pod went: every record before and after each is stored
    once, the two damaged ones wait in quarantine, and the drain says so by its exit."""
    spool = tmp_path / "spool"
    ids = fill(spool, 2800)  # 256 KiB segments: two finished ones, and the last
    segments = [spool / segment_name(s) for s in list_segments(spool)]
    assert len(segments) >= 3
    damaged: dict[tuple[str, int], bytes] = {}
    lost = set()
    for segment in (segments[1], segments[-1]):
        spans = record_spans(segment)
        middle = len(spans) // 2
        offset, length = spans[middle]
        rot(segment, offset + 100)  # inside the payload: its checksum fails
        damaged[segment.name, offset] = segment.read_bytes()[offset : offset + length]
        lost.add(ids[int(segment.name.removesuffix(".seg")) + middle])
    writer = WriterProcess(spool, postgres_db.url)
    migrate(writer)
    proc = _drain(writer)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 6, err  # ExitCode.SPOOL_DAMAGED
    quarantined = sum(len(b) for b in damaged.values())
    assert _summary(out) == {"stored": 2798, "already_stored": 0, "left": 0, "dead_letters": 0,
                             "quarantined_bytes": quarantined}  # fmt: skip
    assert_exactly(postgres_db, 2798)
    stored = postgres_db.query("SELECT encode(share_id, 'hex') FROM share_events").split()
    assert sorted(stored) == sorted(i.hex() for i in ids if i not in lost)
    kept = {(s.segment, s.offset): s.data for s in read_quarantine(spool / QUARANTINE)}
    assert kept == damaged, "the quarantine holds exactly the damaged records' bytes"
    again = _drain(writer)  # nothing left to store; the evidence still keeps the volume
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 6 and _summary(out)["quarantined_bytes"] == quarantined
