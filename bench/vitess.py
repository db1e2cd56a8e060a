"""What sharding costs the writer: grouping a batch by Vitess shard (µs per batch), and
storing it as one transaction per shard against one transaction per batch.

There is no vtgate here, so one MariaDB stands in for every shard: the second number is
the price of the extra commits alone, which a real keyspace pays once per shard it
touches. Both ways are measured side by side in one run; compare the ratio, not the
absolute rates, on a noisy machine.
"""

from __future__ import annotations

import asyncio
import time

from bench.report import Reporter
from harness.databases import MariaDBServer
from sharelog.event import Row
from sharelog.synthetic import synthetic_events
from stratum_operator.builders.vitess import equal_shards
from stratum_writer.backends import open_backend
from stratum_writer.backends.vitess_shards import ShardMap

BATCH = 5000


def grouping_us(rows: list[Row], shards: int, *, warm: bool) -> float:
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    shard_map = ShardMap(equal_shards(shards))
    if warm:
        for batch in batches:
            shard_map.split(batch)
    start = time.perf_counter()
    for batch in batches:
        shard_map.split(batch)
    return (time.perf_counter() - start) / len(batches) * 1e6


async def store_rate(url: str, rows: list[Row], shards: list[str] | None) -> float:
    backend = open_backend(url, vitess_shards=shards)
    await backend.migrate()
    await backend.connect(1)
    try:
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            await backend.store(rows[i : i + BATCH])
        return len(rows) / (time.perf_counter() - start)
    finally:
        await backend.close()


def main() -> int:
    report = Reporter("vitess")
    for users in (200, 20_000):
        rows = [e.as_row() for e in synthetic_events(100_000, users=users, seed=users)]
        for shards in (2, 4, 16):
            for warm in (False, True):
                report.emit(
                    backend="vitess", system="ours", metric="group_us_per_batch",
                    value=grouping_us(rows, shards, warm=warm), unit="us", shards=shards,
                    users=users, batch=BATCH, cache="warm" if warm else "cold",
                )  # fmt: skip
    maria = MariaDBServer()
    try:
        rows = [e.as_row() for e in synthetic_events(100_000, users=2000)]
        rates = {}
        ways: list[tuple[str, list[str] | None]] = [
            ("one-transaction", None),
            ("per-shard-4", equal_shards(4)),
        ]
        for label, shard_list in ways:
            url = maria.create_database(f"bench_{label.replace('-', '_')}")
            rates[label] = asyncio.run(store_rate(url, rows, shard_list))
            report.emit(backend="mariadb", system=label, metric="shares_per_s",
                        value=rates[label], unit="shares/s", batch=BATCH)  # fmt: skip
        report.emit(backend="mariadb", system="per-shard-4", metric="ratio_vs_one_transaction",
                    value=rates["per-shard-4"] / rates["one-transaction"], unit="x")  # fmt: skip
    finally:
        maria.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
