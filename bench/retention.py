"""``make bench-retention``: removing expired shares, and the writer storing beside it.

Same rows, same run, side by side:

- **MariaDB, one day of shares removed two ways** by ``stratum-writer retain``: ours,
  the table partitioned by day (``RANGE COLUMNS(share_id)``, migration 0003) and the
  expired day dropped whole; and ``batched-delete``, the same table with its
  partitioning removed, where retain deletes by primary-key range in batches (what it
  does on a table not partitioned yet). Each is timed alone, and beside a writer storing new shares:
  the writer's shares/s with it running, against the writer alone on the same rows.
- **PostgreSQL**: ours (the expired day's partition dropped whole), the same way.
- **Vitess**, per shard through vtgate, the same two ways: ours (each shard partitioned
  by ``migrate``, its expired day dropped by shard-targeted DDL) and batched deletes
  (``bench/retention_vitess.py``).

Sizes: BENCH_RETENTION_DAY (shares per old day, default 250,000; four old days) and
BENCH_RETENTION_NEW (shares the writer stores, default 600,000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import beside as beside_bench
from bench import retention_vitess
from bench.beside import Remove, compare_removals, make_old_days, removal
from bench.mysql_family import Target, load_data
from bench.ours import measure_append
from bench.report import Reporter
from bench.writer import pg_copy
from harness.databases import MariaDBServer, PostgresServer
from harness.writer import WriterProcess
from sharelog.event import Row

PER_DAY = int(os.environ.get("BENCH_RETENTION_DAY", "250000"))
NEW = int(os.environ.get("BENCH_RETENTION_NEW", "600000"))


def old_rows() -> list[Row]:
    return beside_bench.old_rows(PER_DAY)


def main() -> int:
    report = Reporter("retention")
    rows = old_rows()
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    spool = work / "spool"
    # the writer's shares are of day 2: kept by every removal measured here
    measure_append(spool, beside_bench.new_rows(NEW))
    maria, pg = MariaDBServer(), PostgresServer(fsync=True)
    names = iter(range(100))
    client = ["mariadb", "--no-defaults", "--local-infile=1", "-uroot", f"--socket={maria.socket}"]

    def fresh_maria(partitioned: bool) -> tuple[str, Remove]:
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
        return url, removal(writer)

    def fresh_pg() -> tuple[str, Remove]:
        name = f"p{next(names)}"
        url = pg.create_database(name)
        writer = WriterProcess(spool, url)
        assert writer.run_command("migrate").returncode == 0
        make_old_days(writer)
        pg_copy(pg, name, rows, work)
        return url, removal(writer)

    try:
        systems: list[tuple[str, str, Callable[[], tuple[str, Remove]]]] = [
                   ("mariadb", "ours", lambda: fresh_maria(True)),
                   ("mariadb", "batched-delete", lambda: fresh_maria(False)),
                   ("postgres", "ours", fresh_pg)]  # fmt: skip
        for backend, system, fresh in systems:
            compare_removals(report, backend, system, fresh, spool, work, NEW, rows=PER_DAY)
        retention_vitess.main(report, work)
    finally:
        maria.destroy()
        pg.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
