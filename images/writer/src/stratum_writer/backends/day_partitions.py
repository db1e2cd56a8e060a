"""``share_events`` partitioned by day on MySQL, MariaDB and each Vitess shard: the
partitions' names, bounds and layout, in one place for the migration and retention.

The table is ``RANGE COLUMNS(share_id)``: share_id starts with its submitted time, so a
day is a key range and the primary key needs no change. ``pYYYYMMDD`` holds a day,
``p_before_YYYYMMDD`` every share before that day (what the table held when it was
partitioned), ``p_future`` (to MAXVALUE) the rest. Partitions are named by their days
and their bounds are read back from their names (information_schema prints a binary
bound in no way MariaDB and MySQL agree on).

MySQL and MariaDB are partitioned by migration 0003 (its bound computed by the server,
hence ``PREPARE``). vtgate runs no ``PREPARE``, so on Vitess the writer's ``migrate``
partitions each shard itself, shard-targeted (``USE keyspace:shard``), with the bound
computed here: ``shards_follow_schema`` makes every shard it is given partitioned by day
exactly when the schema is at ``BY_DAY`` or later (and unpartitioned below it, after a
``migrate --down``). A test pins this layout to migration 0003's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

import aiomysql

from sharelog.event import first_share_id_at

log = logging.getLogger("stratum_writer.migrations")
T = TypeVar("T")

BY_DAY = 3  # the schema version from which share_events is partitioned by day
FUTURE = "p_future"
# The partitions of share_events in the session's database. DATABASE() in a subquery:
# through vtgate, a top-level DATABASE() is answered by vtgate itself (the keyspace's
# name, or "keyspace:shard" when the session targets a shard), while the subquery goes
# to the shard's MySQL with the statement and names the tablet's own database there.
PARTITIONS = (
    "SELECT partition_name, table_rows FROM information_schema.partitions"
    " WHERE table_schema = (SELECT DATABASE()) AND table_name = 'share_events'"
    " AND partition_name IS NOT NULL ORDER BY partition_ordinal_position"
)


@dataclass(frozen=True)
class DayPartition:
    """A partition of share_events and the server's estimate of its rows."""

    name: str
    rows: int

    @property
    def end(self) -> datetime | None:
        """Where it ends (None: p_future, or a name not ours, never dropped)."""
        for prefix, days in (("p_before_", 0), ("p", 1)):
            digits = self.name.removeprefix(prefix)
            if digits != self.name and len(digits) == 8 and digits.isdigit():
                day = datetime.strptime(digits, "%Y%m%d").replace(tzinfo=UTC)
                return day + timedelta(days=days)
        return None


def midnight_us(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp()) * 1_000_000


def day_name(day: date) -> str:
    return f"p{day:%Y%m%d}"


def below(day: date) -> str:
    """VALUES LESS THAN for ``day``: the first share_id of the next day."""
    return "0x" + first_share_id_at(midnight_us(day + timedelta(days=1))).hex()


def by_day_ddl(today: date) -> str:
    """What migration 0003 runs on a MySQL server, with its bound computed here: the
    shares stored so far (every share_id below tomorrow's first) in one partition, the
    rest in p_future, from which retention splits the days ahead."""
    tomorrow = today + timedelta(days=1)
    return (
        "ALTER TABLE share_events PARTITION BY RANGE COLUMNS(share_id) ("
        f"PARTITION p_before_{tomorrow:%Y%m%d} VALUES LESS THAN ({below(today)}), "
        f"PARTITION {FUTURE} VALUES LESS THAN (MAXVALUE))"
    )


async def partitions(cur: aiomysql.Cursor) -> list[DayPartition]:
    """Empty when share_events is not partitioned."""
    await cur.execute(PARTITIONS)
    return [DayPartition(r[0], int(r[1] or 0)) for r in await cur.fetchall()]


async def each_shard(
    cur: aiomysql.Cursor, keyspace: str, shards: list[str], work: Callable[[str], Awaitable[T]]
) -> list[T]:
    """``work`` on each shard in turn, the session pointed at it (vtgate's shard
    targeting, ``USE keyspace:shard``), then back at the keyspace whatever happened."""
    done = []
    try:
        for shard in shards:
            await cur.execute(f"USE `{keyspace}:{shard}`")
            done.append(await work(shard))
    finally:
        await cur.execute(f"USE `{keyspace}`")
    return done


async def shards_follow_schema(
    cur: aiomysql.Cursor, keyspace: str, shards: list[str], version: int, today: date
) -> None:
    """Each shard's share_events partitioned by day when ``version`` is BY_DAY or later,
    not partitioned when it is below. A shard holding shares is rebuilt once (as
    migration 0003 rebuilds a MySQL table): the runbook partitions new shards while they
    are still empty, before Reshard copies into them."""

    async def follow(shard: str) -> None:
        partitioned = bool(await partitions(cur))
        if version >= BY_DAY and not partitioned:
            await cur.execute(by_day_ddl(today))
        elif version < BY_DAY and partitioned:
            await cur.execute("ALTER TABLE share_events REMOVE PARTITIONING")
        else:
            return
        now = "partitioned by day" if version >= BY_DAY else "no longer partitioned"
        log.info("shard %s: share_events %s", shard, now)

    await each_shard(cur, keyspace, shards, follow)
