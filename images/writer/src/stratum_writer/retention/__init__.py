"""``stratum-writer retain``: what leaves the database, and only that.

Shares older than ``share_days`` whole UTC days, rollups older than ``rollup_days``, and
registry entries of workers unseen for as long, are removed in bounded steps:

- PostgreSQL (``postgres.py``): ``share_events`` is partitioned by day; expired days are
  dropped whole, never deleted row by row, and the days ahead are made before they are
  needed. A DDL waits for its lock at most ``LOCK_WAIT`` a try (a DDL waiting for its
  lock queues every insert behind it), and tries again, ``DDL_TRIES`` times, before it
  is left to the next run; an advisory lock lets one run at a time (a second run at
  once finds it held and does nothing).
- MySQL, MariaDB and each Vitess shard (``mysql.py``): partitioned by day too, the
  same way with MySQL's partition DDL, shard by shard on Vitess; what no dropped day
  covers is deleted in batches, as on SQLite.
- SQLite (``sqlite.py``): batched deletes by primary-key range (``share_id`` starts
  with its time, so a range of time is a contiguous range at the left edge of the
  clustered key), ``BATCH`` rows a transaction. Two runs at once delete the same rows
  once.

Cutoffs fall on UTC midnights, so every backend removes the same shares for the same
``now``. Everything at or after a cutoff is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sharelog.event import submitted_at_of
from stratum_writer.backends import Backend
from stratum_writer.backends.day_partitions import midnight_us

log = logging.getLogger("stratum_writer.retention")

RETAIN_EVERY_S = 3600.0  # the writer's own schedule (SQLite)
BATCH = 5000  # rows per delete statement and transaction: locks held for milliseconds
AHEAD_DAYS = 2  # PostgreSQL: days made ahead of today, so a day boundary needs no DDL
LOCK_WAIT = "200ms"  # PostgreSQL: the longest a DDL may hold up the writers' inserts
DDL_TRIES = 30  # then it is left for the next run


@dataclass(frozen=True)
class RetentionPolicy:
    share_days: int
    rollup_days: int

    def __post_init__(self) -> None:
        if self.share_days < 1 or self.rollup_days < 1:
            raise ValueError("retention must keep at least one day of shares and rollups")


@dataclass
class RetentionReport:
    """What a run did: the ``retain`` command prints it as one JSON line."""

    share_cutoff: str  # the oldest retained day, ISO date: everything from it stays
    rollup_cutoff: str
    removed: dict[str, int] = field(default_factory=dict)  # rows, by table
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_created: list[str] = field(default_factory=list)
    oldest_share: str | None = None  # ISO time of the oldest share kept, None when none
    skipped: str = ""  # why nothing was done (another run holds the lock)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class Retainer(ABC):
    """One dialect's way of removing what expired, on a connection of its own."""

    async def prepare(self, today: date) -> list[str]:
        """Make what inserts will need (PostgreSQL: the days ahead); return their names."""
        return []

    @abstractmethod
    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        """Remove every share submitted before ``cutoff_us`` (a UTC midnight)."""

    @abstractmethod
    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        """Delete rows of ``table`` whose ``column`` (a time) is before the cutoff."""

    @abstractmethod
    async def oldest_share_id(self) -> bytes | None: ...

    async def __aenter__(self) -> Retainer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        return None


class Locked(Exception):
    """Another retain run holds the database's retention lock."""


def days_to_make(ends: list[date], today: date) -> list[date]:
    """The day partitions a run makes: from the end of the newest one made (the days
    since, if no run made them, too; today when none is) to AHEAD_DAYS after today."""
    day = max(ends) if ends else today
    days = []
    while day <= today + timedelta(days=AHEAD_DAYS):
        days.append(day)
        day += timedelta(days=1)
    return days


async def ddl_with_retries(
    attempt: Callable[[], Awaitable[object]], lock_wait: Callable[[Exception], bool]
) -> bool:
    """A partition DDL whose lock wait the server bounds (a DDL waiting for its lock
    queues every insert behind it): when the wait runs out (``lock_wait`` says which
    error that is), the writers go first and it is tried again, DDL_TRIES times.
    False when it never got its lock: the next run tries again."""
    for _ in range(DDL_TRIES):
        try:
            await attempt()
            return True
        except Exception as exc:
            if not lock_wait(exc):
                raise
            await asyncio.sleep(random.uniform(0.1, 0.3))  # the writers' turn
    return False


async def delete_in_batches(delete_batch: Callable[[], Awaitable[int]]) -> int:
    """One batch after another (each at most BATCH rows, its own transaction) until one
    comes back short; the rows deleted."""
    total = 0
    while True:
        deleted = await delete_batch()
        total += deleted
        if deleted < BATCH:
            return total


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def retainer_for(backend: Backend) -> Retainer:
    if backend.dialect == "postgres":
        from stratum_writer.retention.postgres import PgRetainer

        return PgRetainer(backend)
    if backend.dialect == "mysql":
        from stratum_writer.retention.mysql import MyRetainer

        return MyRetainer(backend)
    from stratum_writer.retention.sqlite import SqliteRetainer

    return SqliteRetainer(backend)


async def retain_every(
    backend: Backend, policy: RetentionPolicy, stop: asyncio.Event,
    on_report: Callable[[RetentionReport], None], every_s: float = RETAIN_EVERY_S,
) -> None:  # fmt: skip
    """The writer's own schedule, for SQLite: its database is the pod's file, which no
    CronJob can open. A run that fails is logged and tried again at the next."""
    while not stop.is_set():
        try:
            on_report(await retain(backend, policy, datetime.now(UTC)))
        except Exception as exc:
            log.warning("retention failed, trying again in %.0fs: %s", every_s, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def prepare(backend: Backend, now: datetime) -> list[str]:
    """What inserts need before any retention runs: ``migrate`` calls it."""
    try:
        async with retainer_for(backend) as retainer:
            return await retainer.prepare(now.astimezone(UTC).date())
    except Locked:
        return []  # a retain run is doing it


async def retain(backend: Backend, policy: RetentionPolicy, now: datetime) -> RetentionReport:
    today = now.astimezone(UTC).date()
    share_day = today - timedelta(days=policy.share_days)
    rollup_day = today - timedelta(days=policy.rollup_days)
    report = RetentionReport(share_day.isoformat(), rollup_day.isoformat())
    try:
        async with retainer_for(backend) as retainer:
            report.partitions_created = await retainer.prepare(today)
            await retainer.remove_shares(midnight_us(share_day), report)
            rollups = midnight_us(rollup_day)
            report.removed["worker_stats_minute"] = await retainer.remove_rows(
                "worker_stats_minute", "minute", rollups
            )
            report.removed["workers"] = await retainer.remove_rows("workers", "last_seen", rollups)
            oldest = await retainer.oldest_share_id()
            report.oldest_share = _iso(submitted_at_of(oldest)) if oldest is not None else None
    except Locked as exc:
        report.skipped = str(exc)
    return report
