"""What every database backend provides, and the delivery rule they all share.

A backend stores a batch in one transaction: the share rows (idempotently, keyed by
share_id) and the rollups of exactly the rows that were new. The common case, no
replays, is one bulk insert; only when the database reports fewer new rows than sent
does the backend take the slower path that finds out which rows were already there.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib import resources

from sharelog.event import Row
from stratum_writer.rollup import MinuteStats, rollup


class ErrorKind(enum.Enum):
    """How the writer reacts to a failed batch."""

    OUTAGE = "outage"  # database away, auth, schema missing, disk full: retry forever
    TRANSIENT = "transient"  # deadlock, lock timeout: retry a few times, then split
    DATA = "data"  # the database refuses the content: split, dead-letter the culprit


@dataclass(frozen=True, slots=True)
class StoreResult:
    inserted: int
    duplicates: int


class Backend(ABC):
    """One database, reached through a connection pool sized for the flush workers."""

    dialect: str

    @abstractmethod
    async def connect(self, pool_size: int) -> None:
        """Open the pool; raise on a database that cannot be reached."""

    @abstractmethod
    async def close(self) -> None: ...

    async def store(self, rows: Sequence[Row]) -> StoreResult:
        """Insert rows that are not yet stored and roll up exactly those, atomically."""
        async with self.transaction() as tx:
            inserted = await tx.insert_all(rows)
            if inserted == len(rows):
                new: Sequence[Row] = rows
            else:  # some rows were there already (a replay): find out which, exactly
                await tx.restart()
                new = await tx.insert_new(rows)
            await tx.upsert_rollups(rollup(new))
        return StoreResult(len(new), len(rows) - len(new))

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A connection from the pool in a transaction; commits on clean exit."""

    @abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending migrations under a database lock; return the versions applied."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest applied migration, 0 when none."""

    @abstractmethod
    def classify(self, exc: BaseException) -> ErrorKind: ...


class Transaction(ABC):
    """The statements ``Backend.store`` needs, inside one database transaction."""

    @abstractmethod
    async def insert_all(self, rows: Sequence[Row]) -> int:
        """Insert ignoring rows whose share_id exists; return how many were new."""

    @abstractmethod
    async def insert_new(self, rows: Sequence[Row]) -> list[Row]:
        """Insert the rows not yet stored, and return exactly those rows."""

    @abstractmethod
    async def upsert_rollups(self, stats: list[MinuteStats]) -> None: ...

    @abstractmethod
    async def restart(self) -> None:
        """Roll back and begin again on the same connection."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split on statement-ending semicolons; our migrations keep one per line end."""
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        statements = (s.strip().rstrip(";").strip() for s in body.split(";\n"))
        return [s for s in statements if s]


def load_migrations(dialect: str) -> list[Migration]:
    """The versioned migration files shipped in this package for ``dialect``, in order."""
    folder = resources.files("stratum_writer") / "migrations" / dialect
    out = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append(Migration(int(name[:4]), name, entry.read_text()))
    return sorted(out, key=lambda m: m.version)
