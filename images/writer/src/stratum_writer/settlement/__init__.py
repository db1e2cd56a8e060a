"""``stratum-writer settle`` and ``export-shares``: a pool day's exact split, and the
shares behind it (docs/settlement.md).

A run reads the day's accepted shares, computes its rows (``core.py``, pure), and
compares them with the day's current generation: the same inputs and the same rows
change nothing. Otherwise it writes the next generation's rows (removing any a run that
died before its switch left), then switches the day's row to it in one statement:
readers see the old generation whole or the new one whole, on Vitess too.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import date

from sharelog.event import Row
from stratum_writer.backends import Backend
from stratum_writer.settlement.core import (
    ClosedHow,
    DayState,
    PoolDay,
    Settlement,
    Terms,
    settle,
)
from stratum_writer.settlement.store import DayRecord, SettlementRefused, SettlementStore

__all__ = ["Outcome", "SettleReport", "SettleRequest", "SettlementRefused", "export_shares",
           "settle_day", "store_for"]  # fmt: skip


class Outcome(enum.Enum):
    SETTLED = "settled"  # the day's first generation
    CORRECTED = "corrected"  # a new generation replaced the current one
    UNCHANGED = "unchanged"  # the current generation already is what this run computed


@dataclass(frozen=True)
class SettleRequest:
    pool_day: PoolDay
    terms: Terms
    closed_how: ClosedHow
    reason: str
    dead_lettered_shares: int
    now_us: int


@dataclass(frozen=True)
class SettleReport:
    """What a run did: the ``settle`` command prints it as one JSON line."""

    pool: str
    day: str
    outcome: str
    generation: int
    accepted_shares: int
    accepted_work: str  # decimal text: JSON numbers lose integers past 2^53
    reward: str
    fee: str
    workers: int
    accounts: int

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def store_for(backend: Backend) -> SettlementStore:
    if backend.dialect == "postgres":
        from stratum_writer.settlement.postgres import PgSettlementStore

        return PgSettlementStore(backend)
    if backend.dialect == "mysql":
        from stratum_writer.settlement.mysql import MySettlementStore

        return MySettlementStore(backend)
    from stratum_writer.settlement.sqlite import SqliteSettlementStore

    return SqliteSettlementStore(backend)


async def settle_day(store: SettlementStore, request: SettleRequest) -> SettleReport:
    """Settle (or correct) one day; the store must be entered (its lock held)."""
    day = request.pool_day
    current = await store.day(day.pool, day.day)
    if current is not None and current.pool_day.offset_minutes != day.offset_minutes:
        raise SettlementRefused(
            f"day {day.day} of pool {day.pool} was settled with a day offset of "
            f"{current.pool_day.offset_minutes} min, not {day.offset_minutes}: "
            "a settled day's span never changes"
        )
    rows = settle(await store.accepted_shares(day), request.terms)
    record = _record(request, rows, current)
    if current is not None and await _same(store, current, record, rows):
        return _report(current, rows, Outcome.UNCHANGED)
    await store.write_generation(day, record.generation, rows)
    if not await store.switch(record, current.generation if current else None):
        raise SettlementRefused(
            f"day {day.day} of pool {day.pool} changed while this run settled it: run again"
        )
    return _report(record, rows, Outcome.CORRECTED if current else Outcome.SETTLED)


def _record(request: SettleRequest, rows: Settlement, current: DayRecord | None) -> DayRecord:
    """The day's row for this run: a correction keeps when and how the day was closed."""
    return DayRecord(
        pool_day=request.pool_day,
        state=DayState.SETTLED,
        closed_at=current.closed_at if current else request.now_us,
        closed_how=current.closed_how if current else request.closed_how,
        close_reason=current.close_reason if current else request.reason,
        settled_at=request.now_us,
        generation=current.generation + 1 if current else 1,
        terms=request.terms,
        accepted_shares=rows.accepted_shares,
        accepted_work=rows.accepted_work,
        dead_lettered_shares=request.dead_lettered_shares,
    )


async def _same(
    store: SettlementStore, current: DayRecord, record: DayRecord, rows: Settlement
) -> bool:
    """Whether the current generation already holds exactly what this run computed."""
    settled_figures = dataclasses.replace(current, settled_at=0, generation=0)
    if settled_figures != dataclasses.replace(record, settled_at=0, generation=0):
        return False
    pool_day = current.pool_day
    return await store.worker_parts(pool_day.pool, pool_day.day, current.generation) == rows.workers


def _report(record: DayRecord, rows: Settlement, outcome: Outcome) -> SettleReport:
    return SettleReport(
        pool=record.pool_day.pool,
        day=record.pool_day.day.isoformat(),
        outcome=outcome.value,
        generation=record.generation,
        accepted_shares=rows.accepted_shares,
        accepted_work=str(rows.accepted_work),
        reward=str(record.terms.reward),
        fee=str(record.terms.fee),
        workers=len(rows.workers),
        accounts=len(rows.accounts),
    )


class SharesExpired(SettlementRefused):
    """The settled day's raw shares are gone (retention): nothing left to export."""


async def export_shares(
    store: SettlementStore, pool: str, day: date, user: str | None, worker: str | None
) -> list[Row]:
    """The shares behind a settled day (all verdicts), by share_id; the day's offset is
    the one it was settled with."""
    record = await store.day(pool, day)
    if record is None:
        raise SettlementRefused(f"day {day} of pool {pool} is not settled: nothing to export")
    rows = await store.day_shares(record.pool_day, user, worker)
    filtered = user is not None or worker is not None
    if not rows and (not filtered or not await store.day_shares(record.pool_day, None, None)):
        raise SharesExpired(
            f"the shares of day {day} of pool {pool} are no longer stored (retention "
            f"removed them): the settlement's {record.accepted_shares} shares cannot be exported"
        )
    return rows
