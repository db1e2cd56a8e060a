"""``make bench-retention`` on Vitess: one expired day removed shard by shard, two ways,
through vtgate (two shards, MySQL 9.7 tablets, vtgate as vitess/README.md sets it up).

- ``batched-delete``, what ships: ``stratum-writer retain`` deleting by primary-key
  range in batches on each shard (vtgate's shard targeting, ``USE keyspace:shard``).
- ``partitions``: each shard's ``share_events`` partitioned by day by shard-targeted
  DDL through vtgate, the bounds computed here as a keyspace Job could compute them
  (vtgate runs no ``PREPARE``, which is why migration 3 does not run on Vitess), and the
  expired day dropped with ``ALTER TABLE ... DROP PARTITION`` on each shard.

Each removal is timed alone, and beside a writer storing new shares against the writer
alone on the same rows, as ``bench/retention.py`` does for MariaDB and PostgreSQL.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.beside import DAY0, OLD_DAYS, Remove, compare_removals, new_rows, old_rows, removal
from bench.ours import measure_append, run_ours, writer_for
from bench.report import Reporter
from harness.vitess_cluster import VitessCluster, set_up_keyspace
from sharelog.event import first_share_id_at
from stratum_writer.retention import midnight_us

GATEWAY_FLAGS = ("--normalize-queries=false",)
# smaller than bench-retention's MariaDB and PostgreSQL days: every fresh start loads the
# old days through vtgate (about 20,000 shares/s here)
PER_DAY = int(os.environ.get("BENCH_RETENTION_VITESS_DAY", "50000"))
NEW = int(os.environ.get("BENCH_RETENTION_VITESS_NEW", "300000"))


def _bound(day_offset: int) -> str:
    """The first share_id of DAY0 + ``day_offset``: a partition's VALUES LESS THAN."""
    return "0x" + first_share_id_at(midnight_us(DAY0 + timedelta(days=day_offset))).hex()


def _day(day_offset: int) -> str:
    return f"p{DAY0 + timedelta(days=day_offset):%Y%m%d}"


def partition_by_day(vitess: VitessCluster) -> None:
    """Each shard's share_events in day partitions, by DDL sent through vtgate."""
    parts = [f"PARTITION p_before VALUES LESS THAN ({_bound(0)})"]
    parts += [f"PARTITION {_day(n)} VALUES LESS THAN ({_bound(n + 1)})" for n in range(OLD_DAYS)]
    parts.append("PARTITION p_future VALUES LESS THAN (MAXVALUE)")
    ddl = f"ALTER TABLE share_events PARTITION BY RANGE COLUMNS(share_id) ({', '.join(parts)})"
    for shard in vitess.shards:
        vitess.gate_sql(f"USE `{vitess.keyspace}:{shard}`; {ddl}")


def drop_day_zero(vitess: VitessCluster) -> Callable[[], None]:
    def drop() -> None:
        for shard in vitess.shards:
            vitess.gate_sql(f"USE `{vitess.keyspace}:{shard}`; "
                            f"ALTER TABLE share_events DROP PARTITION {_day(0)}")  # fmt: skip

    return drop


def _timed(remove: Callable[[], None]) -> Callable[[], float]:
    def timed_removal() -> float:
        started = time.perf_counter()
        remove()
        return time.perf_counter() - started

    return timed_removal


def main(report: Reporter, work: Path) -> None:
    old, new = work / "vitess-old", work / "vitess-new"
    measure_append(old, old_rows(PER_DAY))
    measure_append(new, new_rows(NEW))
    vitess = VitessCluster(vtgate_flags=GATEWAY_FLAGS)
    try:
        set_up_keyspace(vitess, work / "vitess-keyspace")
        url, shards = vitess.url(), vitess.shards

        def fresh(partitioned: bool) -> tuple[str, Remove]:
            """The old days in the emptied keyspace; how to remove day 0 from it."""
            vitess.clear()
            if partitioned:  # (again each time: the last round dropped day 0)
                partition_by_day(vitess)
            run_ours(old, url, work, None, events=PER_DAY * OLD_DAYS, vitess_shards=shards)
            if partitioned:
                return url, _timed(drop_day_zero(vitess))
            return url, removal(writer_for(new, url, work, shards))

        for system, partitioned in (("batched-delete", False), ("partitions", True)):
            compare_removals(report, "vitess", system, functools.partial(fresh, partitioned),
                             new, work, NEW, shards, rows=PER_DAY, shards=len(shards))  # fmt: skip
    finally:
        vitess.stop()
