"""What every database backend provides, and the delivery rule they all share.

A backend stores a batch in one transaction: the share rows (idempotently, keyed by
share_id) and the aggregates (``aggregates.py``: the minute rollups, the worker
registry) of exactly the rows that were new. The common case, no
replays, is one bulk insert; only when the database reports fewer new rows than sent
does the backend take the slower path that finds out which rows were already there.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from importlib import resources

from sharelog.event import Row
from stratum_writer.aggregates import AGGREGATES, Aggregate, AggregateRow

# The tables Grafana's SQL dashboard reads (charts/stratum-operator/files/dashboards/sql):
# the rollups and the registry, never share_events. Its data source's user holds SELECT
# on these and nothing else (each backend's DASHBOARD_GRANTS; docs/writer.md).
DASHBOARD_TABLES = ("worker_stats_minute", "workers")


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
        """Insert rows that are not yet stored and aggregate exactly those, atomically."""
        async with self.transaction() as tx:
            inserted = await tx.insert_all(rows)
            if inserted == len(rows):
                new: Sequence[Row] = rows
            else:  # some rows were there already (a replay): find out which, exactly
                await tx.restart()
                new = await tx.insert_new(rows)
            for aggregate in AGGREGATES:
                await tx.upsert(aggregate, aggregate.compute(new))
        return StoreResult(len(new), len(rows) - len(new))

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A connection from the pool in a transaction; commits on clean exit."""

    async def migrate(self, *, down: int = 0, drop_shares: bool = False) -> list[int]:
        """Apply pending migrations (or revert the ``down`` newest) under the database's
        migration lock; return the versions applied or reverted."""
        async with self.migration_session() as session:
            return await run_migrations(session, self.dialect, down=down, drop_shares=drop_shares)

    @abstractmethod
    def migration_session(self) -> AbstractAsyncContextManager[MigrationSession]:
        """A connection of its own holding the migration lock."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest applied migration, 0 when none."""

    @abstractmethod
    def classify(self, exc: BaseException) -> ErrorKind: ...

    async def missing_privileges(self) -> list[str]:
        """What the writer's user may not do of what storing needs (``RUNTIME_GRANTS``
        of the dialect), each as ``PRIVILEGE on table``; empty when all is granted."""
        return []


class Transaction(ABC):
    """The statements ``Backend.store`` needs, inside one database transaction."""

    @abstractmethod
    async def insert_all(self, rows: Sequence[Row]) -> int:
        """Insert ignoring rows whose share_id exists; return how many it stored: all of
        them, or fewer when some were there (``store`` then finds which, ``insert_new``)."""

    @abstractmethod
    async def insert_new(self, rows: Sequence[Row]) -> list[Row]:
        """Insert the rows not yet stored, and return exactly those rows."""

    @abstractmethod
    async def upsert(self, aggregate: Aggregate, rows: list[AggregateRow]) -> None:
        """Merge the batch's aggregate rows (sorted by key) into the aggregate's table."""

    @abstractmethod
    async def restart(self) -> None:
        """Roll back and begin again on the same connection."""


class MigrationRefused(Exception):
    """A migration that would lose shares, or a schema this writer does not know."""


@dataclass(frozen=True, slots=True)
class Migration:
    """``NNNN_name.sql`` and, beside it, ``NNNN_name.down.sql`` that undoes it. A down
    file whose first line is ``-- drops: shares`` loses shares: it runs only when told."""

    version: int
    name: str
    sql: str
    down_sql: str = ""

    @property
    def drops_shares(self) -> bool:
        return self.down_sql.lstrip().startswith("-- drops: shares")

    @property
    def on_vitess(self) -> bool:
        """False for a MySQL migration vtgate can't run (its first line says
        ``-- vitess: not applied``): on Vitess it is recorded, not run."""
        return not self.sql.lstrip().startswith("-- vitess: not applied")

    def statements(self) -> list[str]:
        return split_statements(self.sql)

    def down_statements(self) -> list[str]:
        return split_statements(self.down_sql)


def split_statements(sql: str) -> list[str]:
    """Split on statement-ending semicolons; our migrations keep one per line end. A
    ``$$``-quoted body (a PostgreSQL ``DO`` block) stays whole, whatever it holds."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    statements: list[str] = []
    pending = ""
    for part in body.split(";\n"):
        pending = f"{pending};\n{part}" if pending else part
        if pending.count("$$") % 2 == 0:
            statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    return [s for s in [*statements, pending.strip()] if s]


def load_migrations(dialect: str) -> list[Migration]:
    """The versioned migration files shipped in this package for ``dialect``, in order."""
    folder = resources.files("stratum_writer") / "migrations" / dialect
    files = {entry.name: entry for entry in folder.iterdir()}
    out = []
    for name, entry in files.items():
        if name.endswith(".sql") and not name.endswith(".down.sql") and name[:4].isdigit():
            down = files.get(name[: -len(".sql")] + ".down.sql")
            text = down.read_text() if down is not None else ""
            out.append(Migration(int(name[:4]), name, entry.read_text(), text))
    return sorted(out, key=lambda m: m.version)


def latest_migration(dialect: str) -> int:
    """The newest schema version this writer knows for ``dialect``."""
    return max((m.version for m in load_migrations(dialect)), default=0)


class MigrationSession(ABC):
    """One connection holding the database's migration lock (concurrent Jobs take
    turns): what ``run_migrations`` needs from a dialect."""

    @abstractmethod
    async def applied(self) -> set[int]:
        """The versions recorded in ``schema_migrations`` (made if missing)."""

    @abstractmethod
    async def execute(self, statement: str) -> None: ...

    @abstractmethod
    async def record(self, migration: Migration) -> None: ...

    @abstractmethod
    async def unrecord(self, migration: Migration) -> None: ...

    def atomic(self) -> AbstractAsyncContextManager[object]:
        """A migration's statements and its record as one transaction, where the
        dialect's DDL is transactional (PostgreSQL); MySQL commits each DDL itself."""
        return nullcontext()

    def runs(self, migration: Migration) -> bool:
        """Whether its statements run here (all but Vitess run every migration)."""
        return True


async def run_migrations(
    session: MigrationSession, dialect: str, *, down: int = 0, drop_shares: bool = False
) -> list[int]:
    """Up: every known migration not yet applied, in order. Down: the ``down`` newest
    applied, newest first; refused whole, before anything runs, when one of them would
    drop shares and ``drop_shares`` was not given, or lacks a down file."""
    known = load_migrations(dialect)
    done = await session.applied()
    newer = sorted(done - {m.version for m in known})
    if newer:
        raise MigrationRefused(
            f"the schema has migration {newer[-1]}, newer than this writer knows "
            f"({known[-1].version if known else 0}): use the writer that applied it"
        )
    if not down:
        todo = [m for m in known if m.version not in done]
        for migration in todo:
            async with session.atomic():
                for statement in migration.statements() if session.runs(migration) else []:
                    await session.execute(statement)
                await session.record(migration)
        return [m.version for m in todo]
    undo = [m for m in reversed(known) if m.version in done][:down]
    for migration in undo:
        if not migration.down_sql:
            raise MigrationRefused(f"migration {migration.name} has no down migration")
        if migration.drops_shares and not drop_shares:
            raise MigrationRefused(
                f"reverting {migration.name} drops the shares stored: refused without --drop-shares"
            )
    for migration in undo:
        async with session.atomic():
            for statement in migration.down_statements() if session.runs(migration) else []:
                await session.execute(statement)
            await session.unrecord(migration)
    return [m.version for m in undo]
