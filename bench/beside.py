"""The writer storing while ``stratum-writer retain`` removes an expired day beside it.

Old shares lie on four days ahead of the real clock (so PostgreSQL's and MySQL's
retention makes their day partitions, as it would have had they been stored on their
days); the writer's new shares are of the third. ``retain`` runs with ``--now`` at noon
of that day keeping one whole day, so day 0 expires and nothing the writer stores does.
``with_and_without_retention`` is what ``make bench-writer`` runs on every backend: two
databases loaded alike, the writer draining the same spool on each, alone and with the
removal started a second after it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.ours import measure_append, run_ours, writer_for
from bench.report import Reporter
from harness.writer import WriterProcess
from sharelog.event import Row
from sharelog.synthetic import synthetic_events
from stratum_writer.backends.day_partitions import midnight_us

OLD_DAYS = 4
DAY0 = datetime.now(UTC).date() + timedelta(days=30)
# bench-writer's sizes for the comparison (bench-retention sets its own)
PER_DAY = int(os.environ.get("BENCH_BESIDE_DAY", "50000"))
NEW = int(os.environ.get("BENCH_BESIDE_NEW", "300000"))

Removal = tuple[list[str], dict[str, str]]  # a command and its environment


def old_rows(per_day: int) -> list[Row]:
    start = midnight_us(DAY0)
    return [e.as_row() for e in synthetic_events(per_day * OLD_DAYS, seed=9, start_us=start,
                                                 rate_per_s=per_day / 86_400)]  # fmt: skip


def new_rows(count: int) -> list[Row]:
    start = midnight_us(DAY0 + timedelta(days=2))
    return [e.as_row() for e in synthetic_events(count, seed=10, start_us=start)]


def retain_argv(writer: WriterProcess) -> Removal:
    """Day 0 expires: --now at day 2, noon, keeping one whole day."""
    now = datetime.combine(DAY0 + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=12)
    return writer.command("retain", "--share-days", "1", "--rollup-days", "1000",
                          "--now", now.isoformat()), writer.env()  # fmt: skip


def timed(removal: Removal) -> float:
    argv, env = removal
    started = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{argv}: {out.stderr}")
    return time.perf_counter() - started


def make_old_days(writer: WriterProcess) -> None:
    """The old days' partitions, made as the CronJob would have made them on those days
    (on each Vitess shard too; nothing to make on SQLite)."""
    for n in (0, 3):
        at = datetime.combine(DAY0 + timedelta(days=n), datetime.min.time(), UTC)
        timed((writer.command("retain", "--share-days", "1000", "--rollup-days", "1000",
                              "--now", at.isoformat()), writer.env()))  # fmt: skip


Remove = Callable[[], float]  # removes the expired day; returns the seconds it took


def removal(writer: WriterProcess) -> Remove:
    """``stratum-writer retain`` expiring day 0, as a Remove."""
    argv = retain_argv(writer)
    return lambda: timed(argv)


def beside(spool: Path, url: str, work: Path, events: int, remove: Remove | None,
           vitess_shards: tuple[str, ...] = ()) -> tuple[float, float]:  # fmt: skip
    """(the writer's shares/s, seconds the removal took), the removal started with it."""
    took: list[float] = []
    runner = threading.Thread(target=lambda: took.append(remove())) if remove else None
    if runner is not None:
        threading.Timer(1.0, runner.start).start()  # once the writer is storing
    rate, _ = run_ours(spool, url, work, None, events=events, vitess_shards=vitess_shards)
    if runner is not None:
        time.sleep(1.2)
        runner.join()
    return rate, took[0] if took else 0.0


def alone_and_beside(
    fresh: Callable[[], tuple[str, Remove]], spool: Path, work: Path, events: int,
    vitess_shards: tuple[str, ...] = (),
) -> tuple[float, float, float]:  # fmt: skip
    """The writer draining ``spool`` alone, then with the removal beside it, each on a
    database ``fresh`` made (its url, and how to remove from it): (shares/s alone,
    shares/s beside, seconds the removal took)."""
    url, _ = fresh()
    alone, _ = beside(spool, url, work, events, None, vitess_shards)
    url, remove = fresh()
    rate, took = beside(spool, url, work, events, remove, vitess_shards)
    return alone, rate, took


def compare_removals(
    report: Reporter, backend: str, system: str, fresh: Callable[[], tuple[str, Remove]],
    spool: Path, work: Path, events: int, vitess_shards: tuple[str, ...] = (), **extra: object,
) -> None:  # fmt: skip
    """One way of removing a day: timed alone, then ``alone_and_beside``."""
    _, remove = fresh()
    report.emit(backend=backend, system=system, metric="seconds_to_remove_a_day",
                value=remove(), unit="s", **extra)  # fmt: skip
    alone, rate, took = alone_and_beside(fresh, spool, work, events, vitess_shards)
    report.emit(backend=backend, system=system, metric="writer_shares_per_s_alone",
                value=alone, unit="shares/s")  # fmt: skip
    report.emit(backend=backend, system=system, metric="writer_shares_per_s_beside",
                value=rate, unit="shares/s", removal_s=round(took, 3))  # fmt: skip
    report.emit(backend=backend, system=system, metric="beside_vs_alone",
                value=rate / alone, unit="x")  # fmt: skip


def with_and_without_retention(
    report: Reporter, backend: str, fresh_url: Callable[[], str], work: Path,
    vitess_shards: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """``alone_and_beside`` on databases ``fresh_url`` made, each migrated and loaded with
    the old days by the writer itself, the removal being ``stratum-writer retain``."""
    old, new = work / "beside-old", work / "beside-new"
    if not old.exists():
        measure_append(old, old_rows(PER_DAY))
        measure_append(new, new_rows(NEW))

    def fresh() -> tuple[str, Remove]:
        url = fresh_url()
        writer = writer_for(new, url, work, vitess_shards)
        assert writer.run_command("migrate").returncode == 0
        make_old_days(writer)
        run_ours(old, url, work, None, events=PER_DAY * OLD_DAYS, vitess_shards=vitess_shards)
        return url, removal(writer)

    alone, rate, took = alone_and_beside(fresh, new, work, NEW, vitess_shards)
    report.emit(backend=backend, system="ours-retention-beside", metric="shares_per_s",
                value=rate, unit="shares/s", events=NEW, removed_rows=PER_DAY,
                removal_s=round(took, 3))  # fmt: skip
    report.emit(backend=backend, system="ours-alone-same-rows", metric="shares_per_s",
                value=alone, unit="shares/s", events=NEW)  # fmt: skip
    report.emit(backend=backend, system="ours", metric="retention_beside_vs_alone",
                value=rate / alone, unit="x")  # fmt: skip
