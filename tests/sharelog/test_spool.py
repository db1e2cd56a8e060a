"""The spool as the proxy and the writer see it: nothing lost, nothing blocked, crashes survived."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.spool_reader import record_spans, rot, spooled
from sharelog.codec import decode, encode
from sharelog.event import ShareEvent
from sharelog.spool import Position, SpoolProducer, SpoolReader, consumer
from sharelog.spool.format import (
    DEAD_LETTERS,
    MAGIC,
    QUARANTINE,
    frame,
    list_segments,
    segment_name,
)
from sharelog.spool.quarantine import read_quarantine
from sharelog.synthetic import synthetic_events


def drain(reader: SpoolReader, batch: int = 1000) -> list[bytes]:
    ids: list[bytes] = []
    while (b := reader.read(batch)) is not None:
        ids.extend(decode(p)[0] for p in b.payloads)
        reader.commit(b)
    return ids


def test_every_appended_event_is_read_once_in_order(tmp_path: Path) -> None:
    events = list(synthetic_events(5000))
    producer = SpoolProducer(tmp_path, segment_bytes=64 << 10)
    for i, e in enumerate(events):
        assert producer.append(e)
        if i % 100 == 99:  # the proxy flushes every few milliseconds
            producer.flush_sync()
    producer.close_sync()
    assert len(list_segments(tmp_path)) > 5, "small segments should have rotated"
    assert drain(SpoolReader(tmp_path)) == [e.share_id for e in events]


def test_checkpoint_resumes_where_the_last_reader_committed(tmp_path: Path) -> None:
    events = list(synthetic_events(3000))
    producer = SpoolProducer(tmp_path, segment_bytes=32 << 10)
    for i, e in enumerate(events):
        producer.append(e)
        if i % 100 == 99:
            producer.flush_sync()
    producer.close_sync()
    first = SpoolReader(tmp_path)
    committed = first.read(1200)
    uncommitted = first.read(500)
    assert committed is not None and uncommitted is not None
    first.commit(committed)
    # a new reader (the writer after a crash) starts after the committed batch only
    rest = drain(SpoolReader(tmp_path))
    assert rest == [e.share_id for e in events[1200:]]


def test_checkpoint_only_moves_over_the_committed_prefix(tmp_path: Path) -> None:
    producer = SpoolProducer(tmp_path)
    for e in synthetic_events(300):
        producer.append(e)
    producer.close_sync()
    reader = SpoolReader(tmp_path)
    a, b, c = reader.read(100), reader.read(100), reader.read(100)
    assert a and b and c
    assert reader.commit(c) is False, "a later batch alone must not move the checkpoint"
    assert reader.commit(a) is True
    assert reader.queue_depth().events == 200
    reader.commit(b)
    assert reader.queue_depth().events == 0


def test_committed_segments_are_deleted(tmp_path: Path) -> None:
    producer = SpoolProducer(tmp_path, segment_bytes=16 << 10)
    for e in synthetic_events(2000):
        producer.append(e)
        if producer.buffered >= 50:
            producer.flush_sync()
    producer.flush_sync()
    before = len(list_segments(tmp_path))
    drain(SpoolReader(tmp_path))
    after = list_segments(tmp_path)
    assert before > 10
    assert len(after) <= 2, after


def test_queue_depth_counts_events_and_bytes_exactly(tmp_path: Path) -> None:
    producer = SpoolProducer(tmp_path, segment_bytes=20 << 10)
    sizes = 0
    for i, e in enumerate(synthetic_events(777)):
        producer.append(e)
        sizes += len(encode(e)) + 8
        if i % 100 == 99:
            producer.flush_sync()
    producer.flush_sync()
    depth = SpoolReader(tmp_path).queue_depth()
    assert depth.events == 777
    assert depth.bytes == sizes


def test_torn_tail_is_cut_and_every_complete_record_delivered(tmp_path: Path) -> None:
    events = list(synthetic_events(1000))
    producer = SpoolProducer(tmp_path)
    for e in events:
        producer.append(e)
    producer.close_sync()
    seg = tmp_path / segment_name(list_segments(tmp_path)[-1])
    size = seg.stat().st_size
    with seg.open("r+b") as fh:  # a crash mid-write: the last record is cut in half
        fh.truncate(size - 100)
    # the proxy restarts: it cuts the torn record off and goes on in a new segment
    restarted = SpoolProducer(tmp_path)
    more = list(synthetic_events(10, seed=2, start_us=1_800_000_000_000_000))
    for e in more:
        restarted.append(e)
    restarted.close_sync()
    got = drain(SpoolReader(tmp_path))
    assert got == [e.share_id for e in events[:-1]] + [e.share_id for e in more]


def test_reader_skips_a_torn_record_left_before_a_newer_segment(tmp_path: Path) -> None:
    producer = SpoolProducer(tmp_path, segment_bytes=8 << 10)
    events = list(synthetic_events(200))
    for e in events:
        producer.append(e)
        producer.flush_sync()
    producer.close_sync()
    first = tmp_path / segment_name(list_segments(tmp_path)[0])
    with first.open("ab") as fh:  # garbage half-record the producer never cleaned up
        fh.write(b"\x90\x01\x00\x00\x12\x34")
    reader = SpoolReader(tmp_path)
    assert drain(reader) == [e.share_id for e in events]
    assert reader.torn_bytes == 6


def test_full_spool_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    producer = SpoolProducer(tmp_path, max_bytes=64 << 10)
    results = [producer.append(e) for e in synthetic_events(1000)]
    producer.flush_sync()
    kept = results.count(True)
    assert 0 < kept < 1000
    assert producer.dropped == 1000 - kept
    reader = SpoolReader(tmp_path)
    assert len(drain(reader)) == kept
    # once the writer has drained and the producer notices, appends succeed again
    producer._last_rescan = 0
    producer.flush_sync()
    assert producer.append(next(synthetic_events(1, seed=9)))


@pytest.mark.parametrize("aside", [DEAD_LETTERS, QUARANTINE])
def test_what_the_writer_set_aside_counts_against_the_size_limit(
    tmp_path: Path, aside: str
) -> None:
    """Dead letters and quarantined bytes lie on the same volume: a spool and what was set
    aside beside it together stay in bounds."""
    dead = tmp_path / aside
    dead.write_bytes(b"x" * (60 << 10))
    producer = SpoolProducer(tmp_path, max_bytes=64 << 10)
    results = [producer.append(e) for e in synthetic_events(100)]
    producer.flush_sync()
    kept = results.count(True)
    assert 0 < kept < 20, "about 4 KiB of room: a few shares, then drops"
    assert producer.backlog_bytes <= 64 << 10
    # the file dealt with and moved away: once the producer notices, room again
    dead.unlink()
    producer._last_rescan = 0
    producer.flush_sync()
    assert all(producer.append(e) for e in synthetic_events(50, seed=9))
    producer.close_sync()


def test_disk_refusing_writes_drops_counts_and_leaves_no_torn_record(tmp_path: Path) -> None:
    """A full disk, made real with RLIMIT_FSIZE: the kernel refuses the write (EFBIG)."""
    script = textwrap.dedent(f"""
        import resource, signal
        from sharelog.spool import SpoolProducer
        from sharelog.synthetic import synthetic_events
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
        p = SpoolProducer({str(tmp_path)!r})
        ok = 0
        for i, e in enumerate(synthetic_events(2000)):
            ok += p.append(e)
            if i % 50 == 49:
                p.flush_sync()
        p.close_sync()
        print(ok, p.dropped, p.write_errors)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    appended, dropped, errors = map(int, out.stdout.split())
    assert errors > 0 and dropped > 0
    assert "spool write failed" in out.stderr
    delivered = drain(SpoolReader(tmp_path))
    assert len(delivered) == 2000 - dropped
    assert appended == 2000  # append itself never refused: the loss happened at the disk


def test_a_new_spool_directory_starts_with_a_valid_segment(tmp_path: Path) -> None:
    SpoolProducer(tmp_path).close_sync()
    (seg,) = list_segments(tmp_path)
    assert (tmp_path / segment_name(seg)).read_bytes() == MAGIC
    assert SpoolReader(tmp_path).read(10) is None


def _on_disk(directory: Path) -> set[bytes]:
    return {e.share_id for e in spooled(directory)}


def test_written_resolves_only_once_the_events_are_in_the_file(tmp_path: Path) -> None:
    async def run() -> None:
        producer = SpoolProducer(tmp_path)
        producer.start()
        for batch in range(50):
            events = list(synthetic_events(1 + batch % 7, seed=batch))
            for event in events:
                producer.append(event)
            await producer.written()
            assert {e.share_id for e in events} <= _on_disk(tmp_path)
        assert producer.writes <= producer.appended, "one write(2) serves a loop turn's events"
        await producer.close()

    asyncio.run(run())


def test_with_an_fsync_interval_each_barrier_waits_for_a_grouped_fsync(tmp_path: Path) -> None:
    async def run() -> None:
        producer = SpoolProducer(tmp_path, fsync_interval=0.05)
        producer.start()
        started = time.monotonic()
        barriers = []
        for event in synthetic_events(200, seed=3):
            producer.append(event)
            barriers.append(producer.written())
            await asyncio.sleep(0.002)  # 500 events a second, one at a time
        await asyncio.gather(*barriers)
        elapsed = time.monotonic() - started
        assert producer.fsyncs <= elapsed / 0.05 + 3, "grouped: one fsync per interval at most"
        assert producer.fsyncs >= 3
        await producer.close()

    asyncio.run(run())


def test_records_written_just_before_a_roll_are_read_not_taken_for_a_torn_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The producer writes its last batch to a segment and rolls to the next in one call.
    Here that call lands between the reader's read of the segment's end (nothing there
    yet) and its look at the directory (a successor): the batch must still be read."""
    events = list(synthetic_events(30))
    producer = SpoolProducer(tmp_path, segment_bytes=4 << 10)
    for e in events[:5]:
        producer.append(e)
    producer.flush_sync()
    reader = SpoolReader(tmp_path)
    first = drain(reader)
    assert first == [e.share_id for e in events[:5]] and len(list_segments(tmp_path)) == 1
    rolled: list[bool] = []

    def write_and_roll_then_list(directory: Path) -> list[int]:
        if not rolled:  # the producer's turn comes right here
            rolled.append(True)
            for e in events[5:]:
                producer.append(e)
            producer.flush_sync()  # past 4 KiB: the batch written, then the roll
            assert len(list_segments(directory)) == 2, "the producer rolled"
        return list_segments(directory)

    monkeypatch.setattr(consumer, "list_segments", write_and_roll_then_list)
    assert first + drain(reader) == [e.share_id for e in events]
    assert rolled and reader.torn_bytes == reader.corrupt_bytes == 0
    assert not reader.quarantine.path.exists()


_PRODUCER = textwrap.dedent("""
    import random, sys
    from sharelog.codec import encode
    from sharelog.spool import SpoolProducer
    from sharelog.synthetic import synthetic_events
    directory, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    payloads = [encode(e) for e in synthetic_events(count, seed=seed)]
    producer = SpoolProducer(directory, segment_bytes=4096)
    rng, done = random.Random(seed), 0
    while done < count:  # batches of 1 to 20 records, as loop turns of the proxy write them
        for payload in payloads[done : done + rng.randint(1, 20)]:
            producer.append_payload(payload)
            done += 1
        producer.flush_sync()
    producer.close_sync()
""")


def _race_a_producer(spool: Path, count: int, seed: int) -> tuple[list[bytes], SpoolReader]:
    """A producer process writing ``count`` records in 4 KiB segments, and this process
    reading them as the writer does, looking again at once whenever it finds nothing."""
    producer = subprocess.Popen([sys.executable, "-c", _PRODUCER, str(spool), str(count),
                                 str(seed)])  # fmt: skip
    reader = SpoolReader(spool)
    got: list[bytes] = []
    while True:
        finished = producer.poll() is not None
        batch = reader.read(1000)
        if batch is None:
            if finished:
                break
            continue
        got += [decode(p)[0] for p in batch.payloads]
        reader.commit(batch)
    assert producer.returncode == 0
    return got, reader


def _race(tmp_path: Path, runs: int, count: int, budget_s: float) -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # a busy machine
    started = time.monotonic()
    try:
        for seed in range(runs):
            got, reader = _race_a_producer(tmp_path / f"spool-{seed}", count, seed)
            expected = [e.share_id for e in synthetic_events(count, seed=seed)]
            assert len(got) == len(expected), f"run {seed}: {len(expected) - len(got)} lost"
            assert got == expected, f"run {seed}: every record once, in order"
            assert reader.torn_bytes == reader.corrupt_bytes == 0
            if time.monotonic() - started > budget_s:
                break
    finally:
        spinner.kill()
        spinner.wait()


def test_a_reader_in_another_process_reads_every_record_across_segment_rolls(
    tmp_path: Path,
) -> None:
    _race(tmp_path, runs=8, count=5_000, budget_s=40)


@pytest.mark.slow
def test_a_reader_in_another_process_reads_every_record_across_many_segment_rolls(
    tmp_path: Path,
) -> None:
    _race(tmp_path, runs=40, count=20_000, budget_s=300)


def _spool(directory: Path, events: list[ShareEvent], **options: int) -> SpoolProducer:
    producer = SpoolProducer(directory, **options)
    for i, e in enumerate(events):
        producer.append(e)
        if i % 10 == 9:
            producer.flush_sync()
    producer.flush_sync()
    return producer


def test_damage_in_a_finished_segment_loses_only_the_damaged_record(tmp_path: Path) -> None:
    events = list(synthetic_events(200))
    _spool(tmp_path, events, segment_bytes=8 << 10).close_sync()
    first = tmp_path / segment_name(list_segments(tmp_path)[0])
    offset, length = record_spans(first)[2]
    before = first.read_bytes()[offset : offset + length]
    rot(first, offset + 40)  # inside the third record's payload: its checksum fails
    reader = SpoolReader(tmp_path)
    assert drain(reader) == [e.share_id for i, e in enumerate(events) if i != 2]
    (span,) = read_quarantine(reader.quarantine.path)
    assert (span.segment, span.offset, span.reason) == (first.name, offset, "checksum mismatch")
    assert span.data == before[:40] + bytes(b ^ 0xFF for b in before[40:43]) + before[43:]
    assert reader.corrupt_bytes == length and reader.torn_bytes == 0


def test_recovery_keeps_the_records_after_damage_in_the_live_segment(tmp_path: Path) -> None:
    events = list(synthetic_events(100))
    _spool(tmp_path, events).close_sync()  # one segment: the live one
    (live,) = [tmp_path / segment_name(s) for s in list_segments(tmp_path)]
    offset, length = record_spans(live)[50]
    rot(live, offset + 2)  # the 51st record's length: impossible now
    more = list(synthetic_events(10, seed=2, start_us=1_800_000_000_000_000))
    restarted = _spool(tmp_path, more)  # the proxy restarts on the damaged spool
    restarted.close_sync()
    assert list_segments(tmp_path) == [0, 99], "the next segment is named by readable records"
    reader = SpoolReader(tmp_path)
    assert reader.queue_depth().events == 109
    got = drain(reader)
    assert got == [e.share_id for i, e in enumerate(events) if i != 50] + [e.share_id for e in more]
    assert reader.corrupt_bytes == length
    assert [s.offset for s in read_quarantine(reader.quarantine.path)] == [offset]
    assert reader.queue_depth().events == 0


def test_a_chance_match_of_header_and_checksum_is_no_record_after_damage(
    tmp_path: Path,
) -> None:
    """After damage only a payload that decodes as a share event counts as the next record:
    a header and checksum that agree over garbage are quarantined with the rest."""
    a, b = (encode(e) for e in synthetic_events(2))
    lookalike = frame(b'[1,"not a share event"]')  # its header and checksum agree
    junk = b"\xff\xff\xff\xff\x00\x01"  # an impossible length
    (tmp_path / segment_name(0)).write_bytes(MAGIC + frame(a) + junk + lookalike + frame(b))
    reader = SpoolReader(tmp_path, sealed=True)
    batches = []
    while (batch := reader.read(100)) is not None:
        batches += batch.payloads
        reader.commit(batch)
    assert batches == [a, b]
    (span,) = read_quarantine(reader.quarantine.path)
    assert span.data == junk + lookalike
    assert reader.committed == Position(
        0, len(MAGIC) + len(frame(a) + junk + lookalike + frame(b)), 2
    )


def test_a_sealed_spool_quarantines_what_its_last_segment_ends_with(tmp_path: Path) -> None:
    events = list(synthetic_events(20))
    _spool(tmp_path, events).close_sync()
    (live,) = [tmp_path / segment_name(s) for s in list_segments(tmp_path)]
    offset, length = record_spans(live)[-1]
    rot(live, offset + 30)  # the last record's payload: nothing readable after it
    reader = SpoolReader(tmp_path, sealed=True)
    assert drain(reader) == [e.share_id for e in events[:-1]]
    assert reader.quarantine.held_bytes() == reader.corrupt_bytes == length
    assert SpoolReader(tmp_path, sealed=True).read(10) is None, "past it: checkpointed"
    assert reader.quarantine.held_bytes() == length, "kept once"
