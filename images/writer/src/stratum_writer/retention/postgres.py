"""PostgreSQL: ``share_events`` by day. Expired days are dropped whole; the days ahead
are made before a share needs them; a share no day covers lands in
``share_events_default`` and moves into its day's partition when that day is made.

Day partitions are named ``share_events_pYYYYMMDD`` and span a UTC day. The partition
migration 0003 left (``share_events_before_0003``) spans everything up to a day and is
dropped when that day expires, like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

import asyncpg

from stratum_writer.backends import Backend
from stratum_writer.backends.postgres import PostgresBackend
from stratum_writer.retention import (
    BATCH,
    LOCK_WAIT,
    Locked,
    Retainer,
    RetentionReport,
    days_to_make,
    ddl_with_retries,
    delete_in_batches,
)

DEFAULT = "share_events_default"
_RETAIN_LOCK = 0x5354524154554E  # one retain run at a time (migrations use ...4D)
_PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'share_events'::regclass
"""
_UPPER = re.compile(r"TO \('([^']+)'\)")
_TS = "'epoch'::timestamptz + $1::bigint * interval '1 microsecond'"  # µs as a time


@dataclass(frozen=True, order=True)
class Partition:
    name: str
    bound: str  # as pg_get_expr prints it
    end: datetime | None  # its upper bound; None for the default partition
    tuples: int  # the planner's estimate of its rows

    @property
    def from_the_start(self) -> bool:
        return "FROM (MINVALUE)" in self.bound


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _name(day: date) -> str:
    return f"share_events_p{day:%Y%m%d}"


def upper_bound(bound: str) -> datetime | None:
    """A range partition's upper bound from its ``pg_get_expr`` text (UTC session)."""
    found = _UPPER.search(bound)
    if found is None:
        return None  # the default partition, or TO (MAXVALUE)
    return datetime.fromisoformat(found.group(1)).astimezone(UTC)


class PgRetainer(Retainer):
    def __init__(self, backend: Backend) -> None:
        self.dsn = cast(PostgresBackend, backend).dsn
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> PgRetainer:
        self.conn = await asyncpg.connect(self.dsn, timeout=10)
        await self.conn.execute("SET TIME ZONE 'UTC'")
        if not await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", _RETAIN_LOCK):
            await self.close()
            raise Locked("another retain run holds the lock: nothing done")
        return self

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    @property
    def _conn(self) -> asyncpg.Connection:
        assert self.conn is not None, "used outside 'async with'"
        return self.conn

    async def _partitions(self) -> list[Partition]:
        rows = await self._conn.fetch(_PARTITIONS)
        return sorted(Partition(r[0], r[1], upper_bound(r[1]), max(r[2], 0)) for r in rows)

    async def prepare(self, today: date) -> list[str]:
        """Every day from the end of the newest partition to AHEAD_DAYS after today, each
        with the shares the default partition holds for it."""
        ends = [p.end.date() for p in await self._partitions() if p.end is not None]
        made = []
        for day in days_to_make(ends, today):
            if not await self._make_day(day):
                break  # the days after it wait for the next run: they follow on from it
            made.append(_name(day))
        return made

    async def _ddl(self, *statements: tuple[str, tuple[object, ...]]) -> bool:
        """Statements in one transaction, each waiting at most LOCK_WAIT for its lock."""

        async def attempt() -> None:
            async with self._conn.transaction():
                await self._conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                for sql, args in statements:
                    await self._conn.execute(sql, *args)

        return await ddl_with_retries(
            attempt, lambda exc: isinstance(exc, asyncpg.LockNotAvailableError)
        )

    async def _make_day(self, day: date) -> bool:
        """One transaction: the day's table, the default partition's shares of that day
        moved into it, then attached (which checks the default holds none left)."""
        name, low, high = _name(day), _utc(day), _utc(day + timedelta(days=1))
        return await self._ddl(
            (f"CREATE TABLE {name} (LIKE share_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
             ()),
            (f"WITH moved AS (DELETE FROM {DEFAULT} WHERE submitted_at >= $1 "
             f"AND submitted_at < $2 RETURNING *) INSERT INTO {name} SELECT * FROM moved",
             (low, high)),
            (f"ALTER TABLE share_events ATTACH PARTITION {name} "
             f"FOR VALUES FROM ('{low.isoformat()}') TO ('{high.isoformat()}')", ()),
        )  # fmt: skip

    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        """Every expired day in one transaction: the writers wait for one lock, not one
        per day (a run after a pause, or a shorter shareDays, expires many at once)."""
        cutoff = datetime.fromtimestamp(cutoff_us / 1_000_000, UTC)
        parts = await self._partitions()
        expired = [p for p in parts if p.name != DEFAULT and p.end is not None and p.end <= cutoff]
        removed = 0
        if expired and await self._ddl(*((f"DROP TABLE {p.name}", ()) for p in expired)):
            report.partitions_dropped += [p.name for p in expired]
            removed += sum(p.tuples for p in expired)  # the planner's count: a drop scans nothing
        for part in parts:
            if part.name == DEFAULT or (part.from_the_start and part not in expired):
                # not a day: the default partition, or 0003's (from the beginning of time
                # to a day), which the cutoff may cut through: its older rows in batches
                removed += await self._delete_batched(part.name, "submitted_at", cutoff_us)
        report.removed["share_events"] = removed

    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        return await self._delete_batched(table, column, cutoff_us)

    async def _delete_batched(self, table: str, column: str, cutoff_us: int) -> int:
        async def batch() -> int:
            status = await self._conn.execute(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "
                f"WHERE {column} < {_TS} LIMIT {BATCH}))",
                cutoff_us,
            )
            return int(status.split()[-1])

        return await delete_in_batches(batch)

    async def oldest_share_id(self) -> bytes | None:
        first = await self._conn.fetchval(
            "SELECT share_id FROM share_events ORDER BY share_id LIMIT 1"
        )
        return bytes(first) if first is not None else None
