"""Embedded SQLite, for local runs and the demo.

One connection, driven from a single worker thread so the event loop never waits on the
file; flushes are serialized (SQLite has one writer anyway). ``synchronous=FULL``
because the writer advances the spool checkpoint right after commit: a commit that a
power cut could undo would lose shares.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from sharelog.event import FIELDS, Row
from stratum_writer.aggregates import AGGREGATES, Aggregate, AggregateRow
from stratum_writer.backends.base import (
    Backend,
    ErrorKind,
    Migration,
    MigrationSession,
    Transaction,
)

T = TypeVar("T")

_INSERT = (
    f"INSERT INTO share_events ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))}) "
    "ON CONFLICT (share_id) DO NOTHING"
)


def _upsert_sql(aggregate: Aggregate) -> str:
    """Times stay integer microseconds, as in ``share_events``."""
    merge = ", ".join(
        f"{c} = {how.sql(c, f'excluded.{c}', least='min', greatest='max')}"
        for c, how in aggregate.merge
    )
    return (
        f"INSERT INTO {aggregate.table} ({', '.join(aggregate.names)})"
        f" VALUES ({', '.join('?' * len(aggregate.names))})"
        f" ON CONFLICT ({', '.join(aggregate.key)}) DO UPDATE SET {merge}"
    )


_UPSERT = {aggregate.table: _upsert_sql(aggregate) for aggregate in AGGREGATES}
_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')))"
)
_IDS_PER_QUERY = 900


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite://:memory:``."""
    parts = urlsplit(url)
    path = unquote(parts.netloc + parts.path)
    if path.startswith("/") and not url.startswith("sqlite:////"):
        path = path[1:]
    if not path:
        raise ValueError("sqlite URL names no file")
    return path


class _SqliteTransaction(Transaction):
    def __init__(self, backend: SqliteBackend) -> None:
        self.backend = backend

    async def insert_all(self, rows: Sequence[Row]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.executemany(_INSERT, rows).rowcount

        return await self.backend.call(run)

    async def insert_new(self, rows: Sequence[Row]) -> list[Row]:
        def run(conn: sqlite3.Connection) -> list[Row]:
            existing: set[bytes] = set()
            for i in range(0, len(rows), _IDS_PER_QUERY):
                ids = [row[0] for row in rows[i : i + _IDS_PER_QUERY]]
                marks = ",".join("?" * len(ids))
                cur = conn.execute(
                    f"SELECT share_id FROM share_events WHERE share_id IN ({marks})", ids
                )
                existing.update(r[0] for r in cur)
            new = [row for row in rows if row[0] not in existing]
            conn.executemany(_INSERT, new)
            return new

        return await self.backend.call(run)

    async def upsert(self, aggregate: Aggregate, rows: list[AggregateRow]) -> None:
        sql = _UPSERT[aggregate.table]
        await self.backend.call(lambda conn: conn.executemany(sql, rows))

    async def restart(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.rollback()
            conn.execute("BEGIN IMMEDIATE")

        await self.backend.call(run)


class _SqliteMigrations(MigrationSession):
    def __init__(self, backend: SqliteBackend) -> None:
        self.backend = backend

    async def applied(self) -> set[int]:
        def run(conn: sqlite3.Connection) -> set[int]:
            conn.execute(_BOOTSTRAP)
            return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}

        return await self.backend.call(run)

    async def execute(self, statement: str) -> None:
        await self.backend.call(lambda conn: conn.execute(statement))

    async def record(self, migration: Migration) -> None:
        await self.backend.call(lambda conn: conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name)))  # fmt: skip

    async def unrecord(self, migration: Migration) -> None:
        await self.backend.call(lambda conn: conn.execute(
            "DELETE FROM schema_migrations WHERE version = ?", (migration.version,)))  # fmt: skip


class SqliteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.path = path_from_url(url)
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._lock = asyncio.Lock()

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise ConnectionError("backend is not connected")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, conn)

    async def connect(self, pool_size: int) -> None:
        def run() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA busy_timeout = 10000")
            return conn

        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._thread, run)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            await self.call(lambda conn: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteTransaction(self)
            except BaseException:
                await self.call(lambda conn: conn.rollback())
                raise
            await self.call(lambda conn: conn.commit())

    @asynccontextmanager
    async def migration_session(self) -> AsyncIterator[MigrationSession]:
        """The whole run one transaction: BEGIN IMMEDIATE takes the file's write lock,
        which serializes concurrent migrators."""
        if self._conn is None:
            await self.connect(1)
        async with self._lock:
            await self.call(lambda conn: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteMigrations(self)
            except BaseException:
                await self.call(lambda conn: conn.rollback())
                raise
            await self.call(lambda conn: conn.commit())

    async def schema_version(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            try:
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            except sqlite3.OperationalError:
                return 0
            return int(row[0] or 0)

        return await self.call(run)

    def classify(self, exc: BaseException) -> ErrorKind:
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError):
            return ErrorKind.DATA
        if isinstance(exc, sqlite3.InterfaceError | TypeError | ValueError | OverflowError):
            return ErrorKind.DATA  # a value sqlite3 cannot bind
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in str(exc) or "busy" in str(exc):
                return ErrorKind.TRANSIENT
            return ErrorKind.OUTAGE  # disk full, no such table, unreadable file
        if isinstance(exc, OSError | ConnectionError):
            return ErrorKind.OUTAGE
        return ErrorKind.TRANSIENT
