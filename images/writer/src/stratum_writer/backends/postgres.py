"""PostgreSQL through asyncpg.

Two idempotent bulk paths, chosen by ``strategy`` and measured against each other by
``make bench-writer``. ``copy`` (the default) streams the batch by binary COPY straight
into ``share_events``, inside a savepoint: COPY has no ON CONFLICT, so a batch holding
a share stored before (a replay after a crash, and nothing else) fails as a whole,
undoes itself, and goes again the careful way (``insert_new``): COPY into a
per-connection temporary table, then ``INSERT ... SELECT ... ON CONFLICT (share_id,
submitted_at) DO NOTHING RETURNING share_id``.
``unnest`` binds each column as one array and inserts ``SELECT ... FROM unnest(...)``
with the same ON CONFLICT. Either way a replayed batch changes nothing.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import asyncpg

from sharelog.event import FIELDS, Row
from stratum_writer.aggregates import AGGREGATES, Aggregate, AggregateRow, Kind
from stratum_writer.backends.base import (
    DASHBOARD_TABLES,
    Backend,
    ErrorKind,
    Migration,
    MigrationSession,
    Transaction,
)

Strategy = Literal["unnest", "copy"]

_TS = "'epoch'::timestamptz + {} * interval '1 microsecond'"
_TYPES = {
    "share_id": "bytea",
    "shard_key": "bigint",
    "difficulty": "float8",
    "share_difficulty": "float8",
    "accepted": "bool",
    "error_code": "int4",
    "block_candidate": "bool",
    "submitted_at": "bigint",
    "responded_at": "bigint",
}
_COLS = ", ".join(FIELDS)
_SELECT = ", ".join(_TS.format(f) if f in ("submitted_at", "responded_at") else f for f in FIELDS)
_UNNEST = ", ".join(f"${i}::{_TYPES.get(f, 'text')}[]" for i, f in enumerate(FIELDS, 1))
_INSERT = (
    f"INSERT INTO share_events ({_COLS}) SELECT {_SELECT} FROM {{source}} "
    "ON CONFLICT (share_id, submitted_at) DO NOTHING"
)
_FROM_UNNEST = f"unnest({_UNNEST}) AS t({_COLS})"
_STAGE = "stratum_share_stage"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
    + ", ".join(f"{f} {_TYPES.get(f, 'text')}" for f in FIELDS)
    + ") ON COMMIT DELETE ROWS"
)
_COUNT_NEW = "WITH ins AS ({insert} RETURNING 1) SELECT count(*) FROM ins"
_IDS_NEW = "{insert} RETURNING share_id"
_ARRAY = {Kind.TEXT: "text", Kind.TIMESTAMP: "bigint", Kind.INTEGER: "bigint", Kind.REAL: "float8"}


def _upsert_sql(aggregate: Aggregate) -> str:
    """One statement per batch: each column bound as an array and unnested; times come
    as microseconds and become timestamptz here."""
    names = aggregate.names
    arrays = ", ".join(f"${i}::{_ARRAY[kind]}[]" for i, kind in enumerate(aggregate.kinds, 1))
    select = ", ".join(
        _TS.format(c) if kind is Kind.TIMESTAMP else c for c, kind in aggregate.columns
    )
    merge = ", ".join(f"{c} = {how.sql(f't.{c}', f'EXCLUDED.{c}')}" for c, how in aggregate.merge)
    return (
        f"INSERT INTO {aggregate.table} AS t ({', '.join(names)})"
        f" SELECT {select} FROM unnest({arrays}) AS u({', '.join(names)})"
        f" ON CONFLICT ({', '.join(aggregate.key)}) DO UPDATE SET {merge}"
    )


_UPSERT = {aggregate.table: _upsert_sql(aggregate) for aggregate in AGGREGATES}
# What a writer's user needs, and nothing more (docs/writer.md prints them; a test runs
# them and the writer's tests pass with them). TEMPORARY: the copy strategy's staging
# table. No UPDATE or DELETE on share_events: a stored share is never changed.
RUNTIME_GRANTS = (
    "GRANT SELECT, INSERT ON share_events TO {user}",
    "GRANT SELECT, INSERT, UPDATE ON worker_stats_minute, workers TO {user}",
    "GRANT SELECT ON schema_migrations TO {user}",
    "GRANT TEMPORARY ON DATABASE {database} TO {user}",
)
# a dashboard's data source: reading its tables, nothing more
DASHBOARD_GRANTS = (f"GRANT SELECT ON {', '.join(DASHBOARD_TABLES)} TO {{user}}",)
# RUNTIME_GRANTS as has_*_privilege checks them
_NEEDED = [("share_events", p) for p in ("SELECT", "INSERT")] + [
    (t, p) for t in ("worker_stats_minute", "workers") for p in ("SELECT", "INSERT", "UPDATE")
] + [("schema_migrations", "SELECT")]  # fmt: skip
_MIGRATION_LOCK = 0x5354524154554D  # "STRATUM": one advisory lock for every migrating Job
_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)

# SQLSTATE classes (the first two characters) and codes, by what the writer does about them.
_OUTAGE_CLASSES = {"08", "28", "3D", "42", "53", "57", "58", "XX"}
_TRANSIENT_CODES = {"40001", "40P01", "55P03", "57014"}
_DATA_CLASSES = {"22", "23"}


# On the writer's connections a timestamptz travels as the rows carry it: integer
# microseconds since the Unix epoch (PostgreSQL's binary form counts from 2000-01-01).
_PG_EPOCH_US = 946_684_800_000_000
_INT64 = struct.Struct("!q")


def _encode_time(microseconds: int) -> bytes:
    return _INT64.pack(microseconds - _PG_EPOCH_US)


def _decode_time(data: bytes) -> int:
    return int(_INT64.unpack(data)[0]) + _PG_EPOCH_US


class _PgTransaction(Transaction):
    def __init__(self, conn: asyncpg.Connection, strategy: Strategy) -> None:
        self.conn = conn
        self.strategy = strategy

    async def _source(self, rows: Sequence[Row]) -> tuple[str, list[Any]]:
        if self.strategy == "copy":
            await self.conn.copy_records_to_table(_STAGE, records=rows, columns=FIELDS)
            return _INSERT.format(source=_STAGE), []
        return _INSERT.format(source=_FROM_UNNEST), [list(c) for c in zip(*rows, strict=True)]

    async def insert_all(self, rows: Sequence[Row]) -> int:
        if self.strategy == "copy":
            try:
                async with self.conn.transaction():  # a savepoint: a failed COPY undoes itself
                    await self.conn.copy_records_to_table(
                        "share_events", records=rows, columns=FIELDS
                    )
                return len(rows)
            except asyncpg.UniqueViolationError:
                # some were stored before (a replay after a crash); the savepoint undid the
                # COPY, so nothing is stored: store() finds which are new (insert_new)
                return 0
        insert, args = await self._source(rows)
        count: int = await self.conn.fetchval(_COUNT_NEW.format(insert=insert), *args)
        return count

    async def insert_new(self, rows: Sequence[Row]) -> list[Row]:
        insert, args = await self._source(rows)
        records = await self.conn.fetch(_IDS_NEW.format(insert=insert), *args)
        new_ids = {bytes(r[0]) for r in records}
        return [row for row in rows if row[0] in new_ids]

    async def upsert(self, aggregate: Aggregate, rows: list[AggregateRow]) -> None:
        if rows:
            await self.conn.execute(_UPSERT[aggregate.table], *map(list, zip(*rows, strict=True)))

    async def restart(self) -> None:
        await self.conn.execute("ROLLBACK")
        await self.conn.execute("BEGIN")


class _PgMigrations(MigrationSession):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def applied(self) -> set[int]:
        await self.conn.execute(_BOOTSTRAP)
        return {r[0] for r in await self.conn.fetch("SELECT version FROM schema_migrations")}

    async def execute(self, statement: str) -> None:
        await self.conn.execute(statement)

    async def record(self, migration: Migration) -> None:
        await self.conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            migration.version,
            migration.name,
        )

    async def unrecord(self, migration: Migration) -> None:
        await self.conn.execute(
            "DELETE FROM schema_migrations WHERE version = $1", migration.version
        )

    def atomic(self) -> AbstractAsyncContextManager[object]:
        transaction: AbstractAsyncContextManager[object] = self.conn.transaction()
        return transaction  # PostgreSQL DDL is transactional


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, dsn: str, *, strategy: Strategy = "copy") -> None:
        self.dsn = dsn
        self.strategy: Strategy = strategy
        self._pool: asyncpg.Pool | None = None

    async def connect(self, pool_size: int) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=max(pool_size, 1),
            timeout=10,
            # A batch commits in well under a second; one that takes half a minute is
            # on a dead connection, and is retried on a fresh one instead of stalling.
            command_timeout=30,
            init=self._init_connection,
        )

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        await conn.execute("SET synchronous_commit = on")
        await conn.set_type_codec("timestamptz", schema="pg_catalog", encoder=_encode_time,
                                  decoder=_decode_time, format="binary")  # fmt: skip
        if self.strategy == "copy":
            await conn.execute(_CREATE_STAGE)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._pool is None:
            raise ConnectionError("backend is not connected")
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    yield _PgTransaction(conn, self.strategy)
            except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError):
                # The connection's state is unknown (a server killed mid-transaction leaves
                # it "in another operation"): never hand it to the next batch.
                conn.terminate()
                raise

    @asynccontextmanager
    async def migration_session(self) -> AsyncIterator[MigrationSession]:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            # Two migration Jobs may start together; the advisory lock makes them take turns.
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            yield _PgMigrations(conn)
        finally:
            conn.terminate()

    async def schema_version(self) -> int:
        if self._pool is None:
            raise ConnectionError("backend is not connected")
        try:
            version = await self._pool.fetchval("SELECT max(version) FROM schema_migrations")
        except asyncpg.UndefinedTableError:
            return 0
        return int(version or 0)

    async def missing_privileges(self) -> list[str]:
        if self._pool is None:
            raise ConnectionError("backend is not connected")
        missing = []
        for table, privilege in _NEEDED:
            if not await self._pool.fetchval(
                "SELECT has_table_privilege($1, $2)", table, privilege
            ):
                missing.append(f"{privilege} on {table}")
        if self.strategy == "copy" and not await self._pool.fetchval(
            "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
        ):
            missing.append("TEMPORARY on the database (the copy strategy's staging table)")
        return missing

    def classify(self, exc: BaseException) -> ErrorKind:
        if isinstance(exc, asyncpg.DataError | TypeError | ValueError | OverflowError):
            return ErrorKind.DATA  # the client could not even encode the value
        if isinstance(exc, asyncpg.PostgresError):
            state = exc.sqlstate or ""
            if state in _TRANSIENT_CODES:
                return ErrorKind.TRANSIENT
            if state[:2] in _DATA_CLASSES:
                return ErrorKind.DATA
            if state[:2] in _OUTAGE_CLASSES:
                return ErrorKind.OUTAGE
            return ErrorKind.TRANSIENT
        if isinstance(
            exc,
            OSError
            | ConnectionError
            | asyncio.TimeoutError
            | asyncpg.InterfaceError
            | asyncpg.InternalClientError,  # a broken connection, not bad data: never split
        ):
            return ErrorKind.OUTAGE
        return ErrorKind.TRANSIENT
