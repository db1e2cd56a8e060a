"""``make bench-retention`` on Vitess: one expired day removed shard by shard, two ways,
through vtgate (two shards, MySQL 9.7 tablets, vtgate as vitess/README.md sets it up).

- ``ours``: ``stratum-writer retain`` on shards ``migrate`` partitioned by day, each
  shard's expired day dropped whole by shard-targeted DDL (``USE keyspace:shard``).
- ``batched-delete``: the same ``retain`` on shards whose partitioning was removed,
  where it deletes by primary-key range in batches, shard by shard (what shipped before).

Each removal is timed alone, and beside a writer storing new shares against the writer
alone on the same rows, as ``bench/retention.py`` does for MariaDB and PostgreSQL.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from bench.beside import (
    OLD_DAYS,
    Remove,
    compare_removals,
    make_old_days,
    new_rows,
    old_rows,
    removal,
)
from bench.ours import measure_append, run_ours, writer_for
from bench.report import Reporter
from harness.vitess_cluster import VitessCluster, set_up_keyspace

GATEWAY_FLAGS = ("--normalize-queries=false",)
# smaller than bench-retention's MariaDB and PostgreSQL days: every fresh start loads the
# old days through vtgate (about 20,000 shares/s here)
PER_DAY = int(os.environ.get("BENCH_RETENTION_VITESS_DAY", "50000"))
NEW = int(os.environ.get("BENCH_RETENTION_VITESS_NEW", "300000"))


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
            vitess.clear()  # each shard as migrate partitions it
            writer = writer_for(new, url, work, shards)
            if partitioned:
                make_old_days(writer)
            else:
                for shard in shards:
                    vitess.shard_sql(shard, "ALTER TABLE share_events REMOVE PARTITIONING")
            run_ours(old, url, work, None, events=PER_DAY * OLD_DAYS, vitess_shards=shards)
            return url, removal(writer)

        for system, partitioned in (("ours", True), ("batched-delete", False)):
            compare_removals(report, "vitess", system, functools.partial(fresh, partitioned),
                             new, work, NEW, shards, rows=PER_DAY, shards=len(shards))  # fmt: skip
    finally:
        vitess.stop()
