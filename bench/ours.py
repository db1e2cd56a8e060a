"""The real ``stratum-writer`` process, measured draining a pre-filled spool: what every
writer benchmark calls ``ours``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from harness.procfs import rss_kb
from harness.writer import WriterProcess
from sharelog.event import Row, ShareEvent
from sharelog.spool import SpoolProducer

WORKERS = os.environ.get("BENCH_WRITER_WORKERS", "2")
BATCH = os.environ.get("BENCH_BATCH_SIZE", "")  # empty: the writer's own default


def measure_append(spool: Path, rows: list[Row]) -> float:
    """Fill ``spool`` with ``rows``; the producer's cost per event, amortized, the flush to
    disk included."""
    events = [ShareEvent.from_row(r) for r in rows]
    producer = SpoolProducer(spool, segment_bytes=64 << 20, max_bytes=1 << 40)
    started = time.perf_counter_ns()
    for i, e in enumerate(events):
        producer.append(e)
        if i & 4095 == 4095:
            producer.flush_sync()
    producer.close_sync()
    return (time.perf_counter_ns() - started) / len(events)


def writer_for(spool: Path, url: str, work: Path, vitess_shards: tuple[str, ...] = (),
               *extra: str) -> WriterProcess:  # fmt: skip
    """A writer on ``url``, configured as the operator's ConfigMap would for a Vitess pool."""
    settings = None
    if vitess_shards:
        settings = work / f"writer-{time.monotonic_ns()}.json"
        settings.write_text(json.dumps({"vitess_shards": list(vitess_shards)}))
    return WriterProcess(spool, url, *extra, config=settings)


def run_ours(
    spool_template: Path, url: str, work: Path, strategy: str | None, *, events: int,
    vitess_shards: tuple[str, ...] = (),
) -> tuple[float, float]:  # fmt: skip
    """(sustained shares/s, peak RSS MiB) of the real writer draining a copy of a
    pre-filled spool of ``events`` shares, from its first committed batch to its last."""
    spool = work / f"spool-{time.monotonic_ns()}"
    subprocess.run(["cp", "-r", str(spool_template), str(spool)], check=True)
    extra = ["--workers", WORKERS, "--max-workers", WORKERS]
    if BATCH:
        extra += ["--batch-size", BATCH]
    if strategy:
        extra += ["--pg-strategy", strategy]
    writer = writer_for(spool, url, work, vitess_shards, *extra)
    out = writer.run_command("migrate")
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    writer.start()
    started = time.perf_counter()
    rss = 0.0
    assert writer.proc is not None
    first: tuple[float, float] | None = None  # (time, shares) when the first batch landed
    while True:
        m = writer.metrics()
        now = time.perf_counter()
        done = m.get("stratum_writer_inserted_total", 0) + m.get(
            "stratum_writer_duplicates_ignored_total", 0
        )
        if first is None and done > 0:
            first = (now, done)
        rss = max(rss, _rss_mb(writer.proc.pid))
        if done >= events and m.get("stratum_writer_queue_events", 1) == 0:
            break
        time.sleep(0.1)  # each scrape costs the writer a spool walk: don't measure the probe
    assert first is not None
    writer.terminate()
    subprocess.run(["rm", "-rf", str(spool)], check=True)
    if now <= first[0]:  # all of it in the first look (a spool too small to measure)
        return events / (now - started), rss
    return (events - first[1]) / (now - first[0]), rss


def _rss_mb(pid: int) -> float:
    try:
        return rss_kb(pid) / 1024
    except (OSError, RuntimeError):  # the writer already gone: nothing to report
        return 0.0
