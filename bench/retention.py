"""``make bench-retention``: removing expired shares, and the writer storing beside it.

Same rows, same run, side by side:

- **MariaDB, one day of shares removed two ways** by ``stratum-writer retain``: ours,
  the table partitioned by day (``RANGE COLUMNS(share_id)``, migration 0003) and the
  expired day dropped whole; and ``batched-delete``, the same table with its
  partitioning removed, where retain deletes by primary-key range in batches (what it
  does on a Vitess shard). Each is timed alone, and beside a writer storing new shares:
  the writer's shares/s with it running, against the writer alone on the same rows.
- **PostgreSQL**: ours (the expired day's partition dropped whole), the same way.

Sizes: BENCH_RETENTION_DAY (shares per old day, default 250,000; four old days) and
BENCH_RETENTION_NEW (shares the writer stores, default 600,000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import writer as writer_bench
from bench.mysql_family import Target, load_data
from bench.report import Reporter
from bench.writer import measure_append, pg_copy, run_ours
from harness.databases import MariaDBServer, PostgresServer
from harness.writer import WriterProcess
from sharelog.event import Row
from sharelog.synthetic import synthetic_events
from stratum_writer.retention import midnight_us

PER_DAY = int(os.environ.get("BENCH_RETENTION_DAY", "250000"))
NEW = int(os.environ.get("BENCH_RETENTION_NEW", "600000"))
OLD_DAYS = 4
# the old days lie ahead of the real clock, so PostgreSQL's retention makes their day
# partitions (as it would have, had they been stored on their days)
DAY0 = datetime.now(UTC).date() + timedelta(days=30)


def old_rows() -> list[Row]:
    rate = PER_DAY / 86_400
    start = midnight_us(DAY0)
    return [e.as_row() for e in synthetic_events(PER_DAY * OLD_DAYS, seed=9, start_us=start,
                                                 rate_per_s=rate)]  # fmt: skip


Removal = tuple[list[str], dict[str, str]]  # a command and its environment


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


def beside(spool: Path, url: str, work: Path, remove: Removal | None) -> tuple[float, float]:
    """(the writer's shares/s, seconds the removal took), the removal started with it."""
    took: list[float] = []
    runner = threading.Thread(target=lambda: took.append(timed(remove))) if remove else None
    if runner is not None:
        threading.Timer(1.0, runner.start).start()  # once the writer is storing
    rate, _ = run_ours(spool, url, work, None)
    if runner is not None:
        time.sleep(1.2)
        runner.join()
    return rate, took[0] if took else 0.0


def make_old_days(writer: WriterProcess) -> None:
    """The old days' partitions, made as the CronJob would have made them on those days."""
    for n in (0, 3):
        at = datetime.combine(DAY0 + timedelta(days=n), datetime.min.time(), UTC)
        timed((writer.command("retain", "--share-days", "1000", "--rollup-days", "1000",
                              "--now", at.isoformat()), writer.env()))  # fmt: skip


def main() -> int:
    report = Reporter("retention")
    rows = old_rows()
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    spool = work / "spool"
    writer_bench.EVENTS = NEW  # what run_ours waits for
    # the writer's shares are of day 2: kept by every removal measured here
    new = synthetic_events(NEW, seed=10, start_us=midnight_us(DAY0 + timedelta(days=2)))
    measure_append(spool, [e.as_row() for e in new])
    maria, pg = MariaDBServer(), PostgresServer(fsync=True)
    names = iter(range(100))
    client = ["mariadb", "--no-defaults", "--local-infile=1", "-uroot", f"--socket={maria.socket}"]

    def fresh_maria(partitioned: bool) -> tuple[str, Removal]:
        """A database holding the old days; how to remove day 0 from it."""
        name = f"m{next(names)}"
        url = maria.create_database(name)
        writer = WriterProcess(spool, url)
        assert writer.run_command("migrate").returncode == 0
        if partitioned:
            make_old_days(writer)
        else:
            maria.sql("ALTER TABLE share_events REMOVE PARTITIONING", name)
        load_data(Target(maria.port, name, client=tuple(client)), rows, work)
        return url, retain_argv(writer)

    def fresh_pg() -> tuple[str, Removal]:
        name = f"p{next(names)}"
        url = pg.create_database(name)
        writer = WriterProcess(spool, url)
        assert writer.run_command("migrate").returncode == 0
        make_old_days(writer)
        pg_copy(pg, name, rows, work)
        return url, retain_argv(writer)

    try:
        systems: list[tuple[str, str, Callable[[], tuple[str, Removal]]]] = [
                   ("mariadb", "ours", lambda: fresh_maria(True)),
                   ("mariadb", "batched-delete", lambda: fresh_maria(False)),
                   ("postgres", "ours", fresh_pg)]  # fmt: skip
        for backend, system, fresh in systems:
            _, removal = fresh()
            report.emit(backend=backend, system=system, metric="seconds_to_remove_a_day",
                        value=timed(removal), unit="s", rows=PER_DAY)  # fmt: skip
            url, _ = fresh()
            alone, _ = beside(spool, url, work, None)
            url, removal = fresh()
            rate, took = beside(spool, url, work, removal)
            report.emit(backend=backend, system=system, metric="writer_shares_per_s_alone",
                        value=alone, unit="shares/s")  # fmt: skip
            report.emit(backend=backend, system=system, metric="writer_shares_per_s_beside",
                        value=rate, unit="shares/s", removal_s=round(took, 3))  # fmt: skip
            report.emit(backend=backend, system=system, metric="beside_vs_alone",
                        value=rate / alone, unit="x")  # fmt: skip
    finally:
        maria.destroy()
        pg.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
