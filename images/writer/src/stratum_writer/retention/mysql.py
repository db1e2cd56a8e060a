"""MySQL, MariaDB and Vitess.

``share_events`` is partitioned by day (``backends/day_partitions.py``: by migration
0003 on MySQL and MariaDB, by ``migrate`` shard by shard on Vitess): the days ahead are
split out of ``p_future`` before they come, and expired days are dropped whole
(``make bench-retention``, whole runs: 10x faster than deleting them on MariaDB, 6x on
Vitess, the writer unhurt). Each partition DDL waits at most ``LOCK_WAIT`` a try for its metadata
lock (every insert queues behind a DDL that waits), and tries again.

What no dropped day covers (``p_before_*``, the shares stored before the table was
partitioned, until it expires whole; a shard not partitioned yet) is deleted by
primary-key range: share_id starts with its submitted time, so "every share before the
cutoff" is a contiguous range at the left edge of InnoDB's clustered key, ``BATCH``
rows a statement, each its own transaction.

On Vitess all of it runs shard by shard: the session is pointed at ``keyspace:shard``
(vtgate's shard targeting), where partition DDL and ``DELETE ... LIMIT`` go to that
shard alone. The run's lock (``GET_LOCK``, which vtgate holds on a session of its own)
is taken before, untargeted, and lasts through the targeting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

import aiomysql
import pymysql

from sharelog.event import first_share_id_at
from stratum_writer.backends import Backend
from stratum_writer.backends.day_partitions import (
    FUTURE,
    DayPartition,
    below,
    day_name,
    each_shard,
    partitions,
)
from stratum_writer.backends.mysql import MySQLBackend
from stratum_writer.backends.sql_literals import binary, timestamp
from stratum_writer.retention import (
    BATCH,
    Locked,
    Retainer,
    RetentionReport,
    days_to_make,
    ddl_with_retries,
    delete_in_batches,
)

T = TypeVar("T")
_LOCK_WAIT_S = 1  # lock_wait_timeout takes whole seconds
_LOCK_WAIT_TIMEOUT = 1205


def _is_lock_wait(exc: Exception) -> bool:
    return isinstance(exc, pymysql.err.OperationalError) and exc.args[:1] == (_LOCK_WAIT_TIMEOUT,)


def _on(shard: str, partition: str) -> str:
    """A partition as the report names it: ``-80/p20261127`` on a Vitess shard."""
    return f"{shard}/{partition}" if shard else partition


# What the retention CronJob's user needs on MySQL and MariaDB (docs/writer.md; a test
# runs a whole day's retain with exactly these): ALTER to split the days ahead out of
# p_future, DROP to drop an expired day's partition, on share_events alone.
RETENTION_GRANTS = (
    "GRANT SELECT, DELETE, ALTER, DROP ON {database}.share_events TO {user}",
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
        await self._execute(f"SET SESSION lock_wait_timeout = {_LOCK_WAIT_S}")
        async with self.conn.cursor() as cur:  # partition DDL: one run at a time
            await cur.execute("SELECT GET_LOCK('stratum_retain', 0)")
            held = (await cur.fetchone())[0]
        if not held:
            await self.close()
            raise Locked("another retain run holds the lock: nothing done")
        return self

    async def _each_shard(self, work: Callable[[str], Awaitable[T]]) -> list[T]:
        """``work`` on each Vitess shard, the session pointed at it; on MySQL and
        MariaDB once, on the database (shard "")."""
        assert self.conn is not None, "used outside 'async with'"
        if not self.shards:
            return [await work("")]
        async with self.conn.cursor() as cur:
            return await each_shard(cur, self.keyspace, self.shards, work)

    async def _partitions(self) -> list[DayPartition]:
        """Empty on a table (a shard's) not partitioned by day."""
        assert self.conn is not None
        async with self.conn.cursor() as cur:
            return await partitions(cur)

    async def _ddl(self, sql: str) -> bool:
        """A partition DDL, its metadata-lock wait bounded by lock_wait_timeout."""
        return await ddl_with_retries(lambda: self._execute(sql), _is_lock_wait)

    async def prepare(self, today: date) -> list[str]:
        """On each shard: the days from the newest day made to AHEAD_DAYS after today,
        split out of p_future in one DDL."""

        async def make_days(shard: str) -> list[str]:
            parts = await self._partitions()
            days = days_to_make([p.end.date() for p in parts if p.end is not None], today)
            if not parts or not days:
                return []
            split = ", ".join(
                f"PARTITION {day_name(d)} VALUES LESS THAN ({below(d)})" for d in days
            )
            done = await self._ddl(
                f"ALTER TABLE share_events REORGANIZE PARTITION {FUTURE} INTO "
                f"({split}, PARTITION {FUTURE} VALUES LESS THAN (MAXVALUE))"
            )
            return [_on(shard, day_name(d)) for d in days] if done else []

        return [name for made in await self._each_shard(make_days) for name in made]

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def _execute(self, sql: str) -> int:
        assert self.conn is not None, "used outside 'async with'"
        async with self.conn.cursor() as cur:
            await cur.execute(sql)
            return int(cur.rowcount)

    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        cutoff = datetime.fromtimestamp(cutoff_us / 1e6, UTC)
        delete = (
            f"DELETE FROM share_events WHERE share_id < {binary(first_share_id_at(cutoff_us))} "
            f"ORDER BY share_id LIMIT {BATCH}"
        )

        async def remove(shard: str) -> int:
            parts = await self._partitions()
            expired = [p for p in parts if p.end is not None and p.end <= cutoff]
            dropped = 0
            if expired and await self._ddl(
                f"ALTER TABLE share_events DROP PARTITION {', '.join(p.name for p in expired)}"
            ):
                report.partitions_dropped += [_on(shard, p.name) for p in expired]
                dropped = sum(p.rows for p in expired)  # the server's estimate: no scan
            # what no dropped day covers: p_before_* until it expires whole; a shard
            # not partitioned yet
            return dropped + await delete_in_batches(lambda: self._execute(delete))

        report.removed["share_events"] = sum(await self._each_shard(remove))

    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        delete = f"DELETE FROM {table} WHERE {column} < {timestamp(cutoff_us)} LIMIT {BATCH}"

        async def remove(shard: str) -> int:
            return await delete_in_batches(lambda: self._execute(delete))

        return sum(await self._each_shard(remove))

    async def oldest_share_id(self) -> bytes | None:
        assert self.conn is not None
        async with self.conn.cursor() as cur:
            await cur.execute("SELECT share_id FROM share_events ORDER BY share_id LIMIT 1")
            row = await cur.fetchone()
        return bytes(row[0]) if row else None
