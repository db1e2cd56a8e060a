"""MySQL, MariaDB and Vitess: batched deletes by primary-key range.

``share_id`` starts with its submitted time, so "every share before the cutoff" is a
contiguous range at the left edge of InnoDB's clustered key: ``share_id < cutoff``,
``BATCH`` rows a statement, each its own transaction (autocommit). Measured against
RANGE partitions in ``make bench-retention`` (docs/writer.md has the numbers).

Through vtgate a ``DELETE ... LIMIT`` can't go to every shard at once, so it goes to one
shard at a time: the session is pointed at ``keyspace:shard`` (vtgate's shard
targeting) and the same statements run there.
"""

from __future__ import annotations

from typing import Any, cast

import aiomysql

from stratum_writer.backends import Backend
from stratum_writer.backends.mysql import MySQLBackend
from stratum_writer.backends.sql_literals import binary, timestamp
from stratum_writer.retention import BATCH, Retainer, RetentionReport, cutoff_id

# What the retention CronJob's user needs on MySQL and MariaDB (docs/writer.md; a test
# runs retain with exactly these)
RETENTION_GRANTS = (
    "GRANT SELECT, DELETE ON {database}.share_events TO {user}",
    "GRANT SELECT, DELETE ON {database}.worker_stats_minute TO {user}",
    "GRANT SELECT, DELETE ON {database}.workers TO {user}",
    "GRANT SELECT ON {database}.schema_migrations TO {user}",
)


class MyRetainer(Retainer):
    def __init__(self, backend: Backend) -> None:
        mine = cast(MySQLBackend, backend)
        self.kwargs: dict[str, Any] = {**mine._connect_kwargs(), "autocommit": True}
        self.keyspace = str(mine.options.get("db") or "")
        self.shards = mine.shard_map.names if mine.shard_map is not None else []
        self.conn: aiomysql.Connection | None = None

    async def __aenter__(self) -> MyRetainer:
        self.conn = await aiomysql.connect(**self.kwargs)
        return self

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def _execute(self, sql: str) -> int:
        assert self.conn is not None, "used outside 'async with'"
        async with self.conn.cursor() as cur:
            await cur.execute(sql)
            return int(cur.rowcount)

    async def _on_each_shard(self, sql: str) -> int:
        """Run a batched delete until it deletes less than a batch, on every shard."""
        total = 0
        for shard in self.shards or [""]:
            if shard:
                await self._execute(f"USE `{self.keyspace}:{shard}`")
            while (deleted := await self._execute(sql)) == BATCH:
                total += deleted
            total += deleted
        if self.shards:
            await self._execute(f"USE `{self.keyspace}`")
        return total

    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        report.removed["share_events"] = await self._on_each_shard(
            f"DELETE FROM share_events WHERE share_id < {binary(cutoff_id(cutoff_us))} "
            f"ORDER BY share_id LIMIT {BATCH}"
        )

    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        return await self._on_each_shard(
            f"DELETE FROM {table} WHERE {column} < {timestamp(cutoff_us)} LIMIT {BATCH}"
        )

    async def oldest_share_us(self) -> int | None:
        assert self.conn is not None
        async with self.conn.cursor() as cur:
            await cur.execute("SELECT share_id FROM share_events ORDER BY share_id LIMIT 1")
            row = await cur.fetchone()
        return int.from_bytes(bytes(row[0])[:7], "big") if row else None
