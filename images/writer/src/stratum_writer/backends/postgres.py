"""PostgreSQL through asyncpg.

Two idempotent bulk paths, chosen by ``strategy`` and measured against each other by
``make bench-writer``: ``unnest`` binds each column as one array and inserts
``SELECT ... FROM unnest(...)``; ``copy`` streams the batch by binary COPY into a
per-connection temporary table, then inserts from it. Both end in
``ON CONFLICT (share_id) DO NOTHING``, so a replayed batch changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg

from sharelog.event import FIELDS, Row
from stratum_writer.backends.base import (
    Backend,
    ErrorKind,
    Transaction,
    load_migrations,
)
from stratum_writer.rollup import MinuteStats

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
    "ON CONFLICT (share_id) DO NOTHING"
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
_UPSERT = f"""
INSERT INTO worker_stats_minute AS w
    (pool, user_identity, worker, minute, shard_key, accepted, rejected, stale,
     accepted_difficulty)
SELECT p, u, wk, {_TS.format("m")}, sk, a, r, s, d
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
            $7::bigint[], $8::bigint[], $9::float8[]) AS t(p, u, wk, m, sk, a, r, s, d)
ON CONFLICT (pool, user_identity, worker, minute) DO UPDATE SET
    accepted = w.accepted + EXCLUDED.accepted,
    rejected = w.rejected + EXCLUDED.rejected,
    stale = w.stale + EXCLUDED.stale,
    accepted_difficulty = w.accepted_difficulty + EXCLUDED.accepted_difficulty
"""
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
        insert, args = await self._source(rows)
        count: int = await self.conn.fetchval(_COUNT_NEW.format(insert=insert), *args)
        return count

    async def insert_new(self, rows: Sequence[Row]) -> list[Row]:
        insert, args = await self._source(rows)
        records = await self.conn.fetch(_IDS_NEW.format(insert=insert), *args)
        new_ids = {bytes(r[0]) for r in records}
        return [row for row in rows if row[0] in new_ids]

    async def upsert_rollups(self, stats: list[MinuteStats]) -> None:
        if not stats:
            return
        await self.conn.execute(
            _UPSERT,
            [s.pool for s in stats],
            [s.user_identity for s in stats],
            [s.worker for s in stats],
            [s.minute for s in stats],
            [s.shard_key for s in stats],
            [s.accepted for s in stats],
            [s.rejected for s in stats],
            [s.stale for s in stats],
            [s.accepted_difficulty for s in stats],
        )

    async def restart(self) -> None:
        await self.conn.execute("ROLLBACK")
        await self.conn.execute("BEGIN")


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

    async def migrate(self) -> list[int]:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            # Two migration Jobs may start together; the advisory lock makes them take turns.
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            await conn.execute(_BOOTSTRAP)
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for m in load_migrations(self.dialect):
                if m.version in done:
                    continue
                async with conn.transaction():  # PostgreSQL DDL is transactional
                    for statement in m.statements():
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        m.version,
                        m.name,
                    )
                applied.append(m.version)
            return applied
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
