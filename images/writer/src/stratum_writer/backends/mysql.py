"""MySQL, MariaDB and Vitess (through vtgate) via aiomysql.

Shares go in as multi-row ``INSERT ... ON DUPLICATE KEY UPDATE share_id = share_id``
rather than ``INSERT IGNORE``: both skip a share_id that exists, but IGNORE also turns
real errors (a value too long, a bad number) into warnings and stores a clipped row,
which would hide a poison event inside the payouts instead of dead-lettering it.

On Vitess every statement carries ``shard_key`` (inserts in their rows, the replay
lookup in its WHERE), so vtgate routes it to one shard, and given the keyspace's shards
the backend stores a batch as one transaction per shard (``vitess_shards``).
"""

from __future__ import annotations

import contextlib
import ssl
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomysql
import pymysql

from sharelog.event import FIELDS, SHARD_KEY, Row
from stratum_writer.aggregates import AGGREGATES, Aggregate, AggregateRow
from stratum_writer.backends.base import (
    DASHBOARD_TABLES,
    Backend,
    ErrorKind,
    Migration,
    MigrationSession,
    StoreResult,
    Transaction,
    run_migrations,
)
from stratum_writer.backends.day_partitions import shards_follow_schema
from stratum_writer.backends.sql_literals import aggregate_literal, row_literal
from stratum_writer.backends.vitess_shards import ShardMap

# The server's notes ("Table ... already exists" from CREATE TABLE IF NOT EXISTS, the
# 9.x deprecation of VALUES()) reach Python as warnings printed on stderr. Strict mode
# makes every real problem with a value an error, so notes are not news: keep stderr
# for the one line that names a failure.
warnings.filterwarnings("ignore", category=pymysql.Warning)

_CHUNK = 1000  # rows per statement: well under max_allowed_packet, big enough to amortize
_INSERT = (
    f"INSERT INTO share_events ({', '.join(FIELDS)}) VALUES {{values}} "
    "ON DUPLICATE KEY UPDATE share_id = share_id"
)


def _upsert_sql(aggregate: Aggregate) -> str:
    """``VALUES(c)``, not the row alias of MySQL 8.0.19+: MariaDB has no alias. The
    merged columns never include ``shard_key``: vtgate refuses to update a vindex column."""
    merge = ", ".join(f"{c} = {how.sql(c, f'VALUES({c})')}" for c, how in aggregate.merge)
    return (
        f"INSERT INTO {aggregate.table} ({', '.join(aggregate.names)}) VALUES {{values}}"
        f" ON DUPLICATE KEY UPDATE {merge}"
    )


_UPSERT = {aggregate.table: _upsert_sql(aggregate) for aggregate in AGGREGATES}
_LITERAL = {aggregate.table: aggregate_literal(aggregate) for aggregate in AGGREGATES}
# The migration history carries a constant shard_key (0): on Vitess it is sharded by it
# like the share tables (vitess/vschema.json), so every statement about it names one
# keyspace id and goes to the one shard that owns it. vtgate can't insert into a table
# without a primary vindex (a "pinned" one included), and reading it unkeyed would be a
# scatter. On MySQL and MariaDB the column is one more constant.
HISTORY_KEY = 0
_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,"
    " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
    f" shard_key BIGINT UNSIGNED NOT NULL DEFAULT {HISTORY_KEY}"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
)
# a history made before the column: given it (once; MySQL has no ADD COLUMN IF NOT EXISTS)
_HAS_HISTORY_KEY = (
    "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE()"
    " AND table_name = 'schema_migrations' AND column_name = 'shard_key'"
)
_ADD_HISTORY_KEY = (
    "ALTER TABLE schema_migrations"
    f" ADD COLUMN shard_key BIGINT UNSIGNED NOT NULL DEFAULT {HISTORY_KEY}"
)
_MIGRATION_LOCK = "stratum_schema_migrations"
# What a writer's user needs, and nothing more (docs/writer.md prints them; a test runs
# them and the writer's tests pass with them). UPDATE on share_events: MySQL asks it of
# ON DUPLICATE KEY UPDATE (the no-op that skips a stored share) and of SELECT ... FOR
# UPDATE (the replay path); no row of it is ever changed. No DELETE, no DDL.
RUNTIME_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON {database}.share_events TO {user}",
    "GRANT SELECT, INSERT, UPDATE ON {database}.worker_stats_minute TO {user}",
    "GRANT SELECT, INSERT, UPDATE ON {database}.workers TO {user}",
    "GRANT SELECT ON {database}.schema_migrations TO {user}",
)
# a dashboard's data source: reading its tables, nothing more
DASHBOARD_GRANTS = tuple(f"GRANT SELECT ON {{database}}.{table} TO {{user}}"
                         for table in DASHBOARD_TABLES)  # fmt: skip
# the statements storing runs, as EXPLAIN checks their privileges without running them
_PROBES = (
    "EXPLAIN INSERT INTO share_events (share_id) VALUES (X'00') "
    "ON DUPLICATE KEY UPDATE share_id = share_id",
    "EXPLAIN SELECT share_id FROM share_events WHERE share_id = X'00' FOR UPDATE",
    "EXPLAIN INSERT INTO worker_stats_minute (pool) VALUES ('') "
    "ON DUPLICATE KEY UPDATE accepted = accepted + 1",
    "EXPLAIN INSERT INTO workers (pool) VALUES ('') ON DUPLICATE KEY UPDATE last_seen = last_seen",
    "EXPLAIN SELECT max(version) FROM schema_migrations",
)
_DENIED = {1142, 1143}  # "<command> command denied to user ... for table ..."

# MySQL error numbers by what the writer does about them.
_OUTAGE = {1021, 1040, 1044, 1045, 1046, 1049, 1053, 1114, 1146, 1290, 1927, 2002, 2003,
           2005, 2006, 2013, 2026, 2055}  # fmt: skip
_TRANSIENT = {1205, 1213}
_DATA = {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1416, 1690, 3819, 4025}


def parse_url(url: str) -> dict[str, Any]:
    """aiomysql keyword arguments from ``mysql://user:pass@host:port/db?ssl-mode=...``.

    ssl-mode follows the MySQL client: DISABLED, PREFERRED (the default: TLS is not
    forced), REQUIRED (encrypted, not verified), VERIFY_CA, VERIFY_IDENTITY; ``ssl-ca``
    names a CA bundle file.
    """
    parts = urlsplit(url)
    query = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "db": unquote(parts.path.lstrip("/")) or None,
    }
    mode = query.get("ssl-mode", query.get("sslmode", "PREFERRED")).upper()
    if mode in {"REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"}:
        ctx = ssl.create_default_context(cafile=query.get("ssl-ca"))
        ctx.check_hostname = mode == "VERIFY_IDENTITY"
        if mode == "REQUIRED":
            ctx.verify_mode = ssl.CERT_NONE
        kwargs["ssl"] = ctx
    elif mode not in {"DISABLED", "PREFERRED"}:
        raise ValueError(f"unknown ssl-mode {mode!r}")
    return kwargs


class _MyTransaction(Transaction):
    def __init__(self, conn: aiomysql.Connection) -> None:
        self.conn = conn

    async def _execute(self, sql: str) -> int:
        async with self.conn.cursor() as cur:
            await cur.execute(sql)
            return int(cur.rowcount)

    async def insert_all(self, rows: Sequence[Row]) -> int:
        inserted = 0
        for i in range(0, len(rows), _CHUNK):
            values = ",".join(map(row_literal, rows[i : i + _CHUNK]))
            inserted += await self._execute(_INSERT.format(values=values))
        return inserted

    async def insert_new(self, rows: Sequence[Row]) -> list[Row]:
        existing: set[bytes] = set()
        for i in range(0, len(rows), _CHUNK):
            chunk = rows[i : i + _CHUNK]
            ids = ",".join(f"X'{row[0].hex()}'" for row in chunk)
            keys = ",".join(sorted({str(int(row[SHARD_KEY])) for row in chunk}))
            async with self.conn.cursor() as cur:
                # FOR UPDATE locks the ids (and the gaps where absent ones would go), so no
                # concurrent writer can slip the same share in between this and the insert.
                # shard_key lets vtgate send the lookup to the batch's shard, not scatter it.
                await cur.execute(
                    f"SELECT share_id FROM share_events WHERE shard_key IN ({keys}) "
                    f"AND share_id IN ({ids}) FOR UPDATE"
                )
                existing.update(bytes(r[0]) for r in await cur.fetchall())
        new = [row for row in rows if row[0] not in existing]
        if new:
            await self.insert_all(new)
        return new

    async def upsert(self, aggregate: Aggregate, rows: list[AggregateRow]) -> None:
        literal = _LITERAL[aggregate.table]
        for i in range(0, len(rows), _CHUNK):
            values = ",".join(map(literal, rows[i : i + _CHUNK]))
            await self._execute(_UPSERT[aggregate.table].format(values=values))

    async def restart(self) -> None:
        await self.conn.rollback()
        await self.conn.begin()


class _MyMigrations(MigrationSession):
    def __init__(self, cur: aiomysql.Cursor, *, vitess: bool) -> None:
        self.cur = cur
        self.vitess = vitess

    def runs(self, migration: Migration) -> bool:
        return migration.on_vitess or not self.vitess

    async def applied(self) -> set[int]:
        await self.cur.execute(_BOOTSTRAP)
        await self.cur.execute(_HAS_HISTORY_KEY)
        if not (await self.cur.fetchone())[0]:
            await self.cur.execute(_ADD_HISTORY_KEY)
        await self.cur.execute(
            "SELECT version FROM schema_migrations WHERE shard_key = %s", (HISTORY_KEY,)
        )
        return {int(r[0]) for r in await self.cur.fetchall()}

    async def execute(self, statement: str) -> None:
        await self.cur.execute(statement)

    async def record(self, migration: Migration) -> None:
        await self.cur.execute(
            "INSERT INTO schema_migrations (version, name, shard_key) VALUES (%s, %s, %s)",
            (migration.version, migration.name, HISTORY_KEY),
        )

    async def unrecord(self, migration: Migration) -> None:
        await self.cur.execute(
            "DELETE FROM schema_migrations WHERE shard_key = %s AND version = %s",
            (HISTORY_KEY, migration.version),
        )


class MySQLBackend(Backend):
    dialect = "mysql"

    def __init__(self, url: str, vitess_shards: Sequence[str] | None = None) -> None:
        self.options = parse_url(url)
        self.shard_map = ShardMap(vitess_shards) if vitess_shards else None
        self._pool: aiomysql.Pool | None = None

    async def store(self, rows: Sequence[Row]) -> StoreResult:
        """On Vitess, one transaction per shard (see ``vitess_shards``). A failure part
        way leaves the earlier shards committed; the retry finds their rows stored and
        counts them as duplicates, so nothing is written twice."""
        if self.shard_map is None:
            return await super().store(rows)
        inserted = duplicates = 0
        for group in self.shard_map.split(rows):
            result = await super().store(group)
            inserted += result.inserted
            duplicates += result.duplicates
        return StoreResult(inserted, duplicates)

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            **self.options,
            "charset": "utf8mb4",
            "autocommit": False,
            "connect_timeout": 10,
            # Strict mode: a bad value is an error we dead-letter, never a silent clip.
            "init_command": "SET time_zone = '+00:00', "
            "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'",
        }

    async def connect(self, pool_size: int) -> None:
        self._pool = await aiomysql.create_pool(
            minsize=1, maxsize=max(pool_size, 1), pool_recycle=3600, **self._connect_kwargs()
        )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._pool is None:
            raise ConnectionError("backend is not connected")
        async with self._pool.acquire() as conn:
            await conn.begin()
            try:
                yield _MyTransaction(conn)
                await conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):  # a dead connection: the pool drops it
                    await conn.rollback()
                raise

    async def migrate(self, *, down: int = 0, drop_shares: bool = False) -> list[int]:
        """On Vitess, then (under the same lock) each shard's share_events partitioned
        by day as the schema version says: migration 0003 can't run through vtgate
        (``backends/day_partitions.py``). Every shard in ``vitess_shards`` is seen to,
        whether or not a migration was pending: so new shards are partitioned too."""
        if self.shard_map is None:
            return await super().migrate(down=down, drop_shares=drop_shares)
        async with self._migrations() as session:
            done = await run_migrations(session, self.dialect, down=down, drop_shares=drop_shares)
            version = max(await session.applied(), default=0)
            today = datetime.now(UTC).date()
            keyspace = str(self.options.get("db") or "")
            await shards_follow_schema(session.cur, keyspace, self.shard_map.names, version, today)
            return done

    def migration_session(self) -> AbstractAsyncContextManager[MigrationSession]:
        return self._migrations()

    @asynccontextmanager
    async def _migrations(self) -> AsyncIterator[_MyMigrations]:
        conn = await aiomysql.connect(**{**self._connect_kwargs(), "autocommit": True})
        try:
            async with conn.cursor() as cur:
                # MySQL DDL is not transactional: a named lock makes concurrent Jobs take
                # turns, and each migration is recorded right after its statements.
                await cur.execute("SELECT GET_LOCK(%s, 300)", (_MIGRATION_LOCK,))
                yield _MyMigrations(cur, vitess=self.shard_map is not None)
                await cur.execute("SELECT RELEASE_LOCK(%s)", (_MIGRATION_LOCK,))
        finally:
            conn.close()

    async def schema_version(self) -> int:
        if self._pool is None:
            raise ConnectionError("backend is not connected")
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            try:
                await cur.execute(
                    "SELECT max(version) FROM schema_migrations WHERE shard_key = %s",
                    (HISTORY_KEY,),
                )
            except pymysql.err.ProgrammingError:
                return 0
            row = await cur.fetchone()
            await conn.commit()
            return int(row[0] or 0)

    async def missing_privileges(self) -> list[str]:
        """The server's own words for each storing statement it would refuse. Through
        vtgate the users are vtgate's (its table ACLs), so nothing is probed there."""
        if self._pool is None:
            raise ConnectionError("backend is not connected")
        if self.shard_map is not None:
            return []
        missing = []
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            for probe in _PROBES:
                try:
                    await cur.execute(probe)
                except pymysql.err.MySQLError as exc:
                    if exc.args and exc.args[0] in _DENIED:
                        missing.append(str(exc.args[1]))
                    else:
                        raise
            await conn.rollback()
        return missing

    def classify(self, exc: BaseException) -> ErrorKind:
        if isinstance(exc, TypeError | ValueError | OverflowError):
            return ErrorKind.DATA  # our literal builder refused the value
        if isinstance(exc, pymysql.err.MySQLError) and exc.args:
            code = exc.args[0]
            if code in _TRANSIENT:
                return ErrorKind.TRANSIENT
            if code in _DATA:
                return ErrorKind.DATA
            if code in _OUTAGE or isinstance(exc, pymysql.err.InterfaceError):
                return ErrorKind.OUTAGE
            if isinstance(exc, pymysql.err.DataError | pymysql.err.IntegrityError):
                return ErrorKind.DATA
            if isinstance(exc, pymysql.err.OperationalError):
                return ErrorKind.OUTAGE
            return ErrorKind.TRANSIENT
        if isinstance(exc, OSError | ConnectionError | TimeoutError | pymysql.err.InterfaceError):
            return ErrorKind.OUTAGE
        return ErrorKind.TRANSIENT
