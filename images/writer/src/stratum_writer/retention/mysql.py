"""MySQL, MariaDB and Vitess.

MySQL and MariaDB: ``share_events`` is partitioned by day (``RANGE COLUMNS(share_id)``,
migration 0003): the days ahead are split out of ``p_future`` before they come, and
expired days are dropped whole (``make bench-retention``: 42x faster than deleting
them, and the writer unhurt). Each partition DDL waits at most ``LOCK_WAIT`` a try for
its metadata lock (every insert queues behind a DDL that waits), and tries again.

What no dropped day covers (``p_before_0003``, the shares stored before the migration,
until it expires whole; every Vitess shard) is deleted by primary-key range: share_id
starts with its submitted time, so "every share before the cutoff" is a contiguous
range at the left edge of InnoDB's clustered key, ``BATCH`` rows a statement, each its
own transaction. Through vtgate a ``DELETE ... LIMIT`` can't go to every shard at once,
so it goes to one shard at a time: the session is pointed at ``keyspace:shard``
(vtgate's shard targeting) and the same statements run there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import aiomysql
import pymysql

from sharelog.event import first_share_id_at
from stratum_writer.backends import Backend
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
    midnight_us,
)

FUTURE = "p_future"
_LOCK_WAIT_S = 1  # lock_wait_timeout takes whole seconds
_LOCK_WAIT_TIMEOUT = 1205
_PARTITIONS = (
    "SELECT partition_name, table_rows FROM information_schema.partitions"
    " WHERE table_schema = DATABASE() AND table_name = 'share_events'"
    " AND partition_name IS NOT NULL ORDER BY partition_ordinal_position"
)


@dataclass(frozen=True)
class DayPartition:
    """A partition of share_events, its bound read from its name (information_schema
    prints a binary bound in no way MariaDB and MySQL agree on): ``pYYYYMMDD`` holds a
    day, ``p_before_YYYYMMDD`` everything before that day (migration 0003), ``p_future``
    the rest."""

    name: str
    rows: int  # the server's estimate

    @property
    def end(self) -> datetime | None:
        """Where it ends (None: p_future, or a name not ours, never dropped)."""
        for prefix, days in (("p_before_", 0), ("p", 1)):
            digits = self.name.removeprefix(prefix)
            if digits != self.name and len(digits) == 8 and digits.isdigit():
                day = datetime.strptime(digits, "%Y%m%d").replace(tzinfo=UTC)
                return day + timedelta(days=days)
        return None


def _is_lock_wait(exc: Exception) -> bool:
    return isinstance(exc, pymysql.err.OperationalError) and exc.args[:1] == (_LOCK_WAIT_TIMEOUT,)


def _name(day: date) -> str:
    return f"p{day:%Y%m%d}"


def _below(day: date) -> str:
    """VALUES LESS THAN for ``day``: the first share_id of the next day."""
    return "0x" + first_share_id_at(midnight_us(day + timedelta(days=1))).hex()


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
        await self._execute(f"SET SESSION lock_wait_timeout = {_LOCK_WAIT_S}")
        if not self.shards:  # partition DDL: one run at a time (Vitess shards only delete)
            async with self.conn.cursor() as cur:
                await cur.execute("SELECT GET_LOCK('stratum_retain', 0)")
                held = (await cur.fetchone())[0]
            if not held:
                await self.close()
                raise Locked("another retain run holds the lock: nothing done")
        return self

    async def _partitions(self) -> list[DayPartition]:
        """Empty on Vitess and on a table not partitioned by day."""
        if self.shards:
            return []
        assert self.conn is not None
        async with self.conn.cursor() as cur:
            await cur.execute(_PARTITIONS)
            rows = await cur.fetchall()
        return [DayPartition(r[0], int(r[1] or 0)) for r in rows]

    async def _ddl(self, sql: str) -> bool:
        """A partition DDL, its metadata-lock wait bounded by lock_wait_timeout."""
        return await ddl_with_retries(lambda: self._execute(sql), _is_lock_wait)

    async def prepare(self, today: date) -> list[str]:
        """The days from the newest day made to AHEAD_DAYS after today, split out of
        p_future in one DDL."""
        parts = await self._partitions()
        days = days_to_make([p.end.date() for p in parts if p.end is not None], today)
        if not parts or not days:
            return []
        split = ", ".join(f"PARTITION {_name(d)} VALUES LESS THAN ({_below(d)})" for d in days)
        done = await self._ddl(
            f"ALTER TABLE share_events REORGANIZE PARTITION {FUTURE} INTO "
            f"({split}, PARTITION {FUTURE} VALUES LESS THAN (MAXVALUE))"
        )
        return [_name(d) for d in days] if done else []

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
        """A batched delete, in batches until one comes back short, on every shard."""
        total = 0
        for shard in self.shards or [""]:
            if shard:
                await self._execute(f"USE `{self.keyspace}:{shard}`")
            total += await delete_in_batches(lambda: self._execute(sql))
        if self.shards:
            await self._execute(f"USE `{self.keyspace}`")
        return total

    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        cutoff = datetime.fromtimestamp(cutoff_us / 1e6, UTC)
        expired = [p for p in await self._partitions() if p.end is not None and p.end <= cutoff]
        dropped = 0
        if expired and await self._ddl(
            f"ALTER TABLE share_events DROP PARTITION {', '.join(p.name for p in expired)}"
        ):
            report.partitions_dropped += [p.name for p in expired]
            dropped = sum(p.rows for p in expired)  # the server's estimate: a drop scans nothing
        # what no dropped day covers: p_before_0003 until it expires whole, a Vitess shard
        report.removed["share_events"] = dropped + await self._on_each_shard(
            f"DELETE FROM share_events WHERE share_id < {binary(first_share_id_at(cutoff_us))} "
            f"ORDER BY share_id LIMIT {BATCH}"
        )

    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        return await self._on_each_shard(
            f"DELETE FROM {table} WHERE {column} < {timestamp(cutoff_us)} LIMIT {BATCH}"
        )

    async def oldest_share_id(self) -> bytes | None:
        assert self.conn is not None
        async with self.conn.cursor() as cur:
            await cur.execute("SELECT share_id FROM share_events ORDER BY share_id LIMIT 1")
            row = await cur.fetchone()
        return bytes(row[0]) if row else None
