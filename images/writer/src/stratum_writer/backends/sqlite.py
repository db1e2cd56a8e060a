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
from stratum_writer.backends.base import Backend, ErrorKind, Transaction, load_migrations
from stratum_writer.rollup import MinuteStats

T = TypeVar("T")

_INSERT = (
    f"INSERT INTO share_events ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))}) "
    "ON CONFLICT (share_id) DO NOTHING"
)
_UPSERT = (
    "INSERT INTO worker_stats_minute (pool, user_identity, worker, minute, shard_key, accepted,"
    " rejected, stale, accepted_difficulty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (pool, user_identity, worker, minute) DO UPDATE SET"
    " accepted = accepted + excluded.accepted, rejected = rejected + excluded.rejected,"
    " stale = stale + excluded.stale,"
    " accepted_difficulty = accepted_difficulty + excluded.accepted_difficulty"
)
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

    async def upsert_rollups(self, stats: list[MinuteStats]) -> None:
        params = [
            (s.pool, s.user_identity, s.worker, s.minute, s.shard_key, s.accepted, s.rejected,
             s.stale, s.accepted_difficulty)
            for s in stats
        ]  # fmt: skip
        await self.backend.call(lambda conn: conn.executemany(_UPSERT, params))

    async def restart(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.rollback()
            conn.execute("BEGIN IMMEDIATE")

        await self.backend.call(run)


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

    async def migrate(self) -> list[int]:
        if self._conn is None:
            await self.connect(1)

        def run(conn: sqlite3.Connection) -> list[int]:
            conn.execute("BEGIN IMMEDIATE")  # the file lock serializes concurrent migrators
            try:
                conn.execute(_BOOTSTRAP)
                done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                applied = []
                for m in load_migrations(self.dialect):
                    if m.version in done:
                        continue
                    for statement in m.statements():
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (m.version, m.name),
                    )
                    applied.append(m.version)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return applied

        return await self.call(run)

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
