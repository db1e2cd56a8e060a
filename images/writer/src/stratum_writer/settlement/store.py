"""What settlement asks of a database, and the tables' columns in one place.

A store is one connection of its own holding the database's settlement lock (one settle
run at a time per database: a second waits up to ``LOCK_WAIT_S``, then fails). The
dialects (``postgres.py``, ``mysql.py``, ``sqlite.py``) render these statements; none
spells the columns again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any

from sharelog.event import Row
from stratum_writer.settlement.core import (
    AcceptedShare,
    ClosedHow,
    DayState,
    Part,
    PoolDay,
    Settlement,
    Terms,
)

LOCK_WAIT_S = 60
DAY_KEY = 0  # settlement_days' shard_key: a day's row lives on one shard (Vitess)

DAY_COLUMNS = (
    "pool", "day", "shard_key", "day_offset_minutes", "state", "closed_at", "closed_how",
    "close_reason", "settled_at", "current_generation", "reward", "external_hashrate",
    "fee_basis_points", "fee", "accepted_shares", "accepted_work", "dead_lettered_shares",
)  # fmt: skip
# what switching to a new generation sets, in one statement on the day's one row
SWITCHED = DAY_COLUMNS[8:]
WORKER_COLUMNS = (
    "pool", "day", "generation", "user_identity", "worker", "shard_key", "accepted_shares",
    "accepted_work", "reward_part", "digest",
)  # fmt: skip
ACCOUNT_COLUMNS = tuple(c for c in WORKER_COLUMNS if c != "worker")
PART_TABLES = {"settlements": WORKER_COLUMNS, "settlement_accounts": ACCOUNT_COLUMNS}


class SettlementRefused(Exception):
    """A settle run that must not go on (said in one line)."""


@dataclass(frozen=True)
class DayRecord:
    """A settled day's row. Times are microseconds since the epoch, UTC."""

    pool_day: PoolDay
    state: DayState
    closed_at: int
    closed_how: ClosedHow
    close_reason: str
    settled_at: int
    generation: int
    terms: Terms
    accepted_shares: int
    accepted_work: int
    dead_lettered_shares: int

    def values(self) -> dict[str, Any]:
        """The row by column name, numbers as Python integers."""
        return {
            "pool": self.pool_day.pool,
            "day": self.pool_day.day,
            "shard_key": DAY_KEY,
            "day_offset_minutes": self.pool_day.offset_minutes,
            "state": self.state.value,
            "closed_at": self.closed_at,
            "closed_how": self.closed_how.value,
            "close_reason": self.close_reason,
            "settled_at": self.settled_at,
            "current_generation": self.generation,
            "reward": self.terms.reward,
            "external_hashrate": self.terms.external_hashrate,
            "fee_basis_points": self.terms.fee_basis_points,
            "fee": self.terms.fee,
            "accepted_shares": self.accepted_shares,
            "accepted_work": self.accepted_work,
            "dead_lettered_shares": self.dead_lettered_shares,
        }

    @classmethod
    def from_values(cls, row: dict[str, Any]) -> DayRecord:
        """From the row as ``values`` gives it (each dialect converts its types first)."""
        return cls(
            PoolDay(row["pool"], row["day"], int(row["day_offset_minutes"])),
            DayState(row["state"]),
            int(row["closed_at"]),
            ClosedHow(row["closed_how"]),
            row["close_reason"],
            int(row["settled_at"]),
            int(row["current_generation"]),
            Terms(int(row["reward"]), int(row["external_hashrate"]), int(row["fee_basis_points"])),
            int(row["accepted_shares"]),
            int(row["accepted_work"]),
            int(row["dead_lettered_shares"]),
        )


def part_values(pool_day: PoolDay, generation: int, part: Part) -> dict[str, Any]:
    """A settlement row by column name (an account's has no ``worker``)."""
    values: dict[str, Any] = {
        "pool": pool_day.pool,
        "day": pool_day.day,
        "generation": generation,
        "user_identity": part.user_identity,
        "worker": part.worker,
        "shard_key": part.shard_key,
        "accepted_shares": part.accepted_shares,
        "accepted_work": part.accepted_work,
        "reward_part": part.reward_part,
        "digest": part.digest,
    }
    if part.worker is None:
        del values["worker"]
    return values


def part_from_values(row: dict[str, Any]) -> Part:
    return Part(
        row["user_identity"],
        row.get("worker"),
        int(row["shard_key"]),
        int(row["accepted_shares"]),
        int(row["accepted_work"]),
        int(row["reward_part"]),
        bytes(row["digest"]),
    )


def rows_of(settlement: Settlement) -> dict[str, list[Part]]:
    return {"settlements": settlement.workers, "settlement_accounts": settlement.accounts}


class SettlementStore(ABC):
    """One dialect's settlement statements, on a connection of its own."""

    @abstractmethod
    async def __aenter__(self) -> SettlementStore:
        """Connect and take the settlement lock (SettlementRefused when it stays held)."""

    @abstractmethod
    async def __aexit__(self, *exc: object) -> None: ...

    @abstractmethod
    async def accepted_shares(self, pool_day: PoolDay) -> list[AcceptedShare]:
        """Every accepted share of the pool submitted within the day's span."""

    @abstractmethod
    async def day(self, pool: str, day: date) -> DayRecord | None: ...

    @abstractmethod
    async def worker_parts(self, pool: str, day: date, generation: int) -> list[Part]:
        """The ``settlements`` rows of a generation, sorted by user and worker."""

    @abstractmethod
    async def write_generation(self, pool_day: PoolDay, generation: int, rows: Settlement) -> None:
        """In one transaction: remove the rows of every generation from ``generation``
        on (left by a run that died before its switch: never current), then insert."""

    @abstractmethod
    async def switch(self, record: DayRecord, previous: int | None) -> bool:
        """Make ``record`` the day's, in one statement on its one row: an INSERT for the
        first generation (``previous`` None), else an UPDATE from ``previous``. False
        when the row was not as expected (another run got there first)."""

    @abstractmethod
    async def day_shares(self, pool_day: PoolDay, user: str | None, worker: str | None
                         ) -> list[Row]:  # fmt: skip
        """Every share of the pool in the day's span (any verdict), by share_id."""
