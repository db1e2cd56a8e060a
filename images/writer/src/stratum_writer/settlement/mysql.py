"""MySQL, MariaDB and Vitess (through vtgate): settlement on a connection of its own, one
run at a time by ``GET_LOCK`` (which vtgate keeps on a session of its own).

A day's shares are read by ``share_id`` range (``share_id`` starts with its submitted
time, so the day's span is a key range, and the day partitions are pruned). On Vitess
the day's row carries ``shard_key`` 0, so every statement about it names one shard:
the switch is one statement on one row of one shard, atomic there as anywhere. The
parts are sharded by their user's key; reading and removing them is a scatter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, cast

import aiomysql

from sharelog.event import FIELDS, Row, first_share_id_at
from stratum_writer.backends import Backend
from stratum_writer.backends.mysql import MySQLBackend
from stratum_writer.backends.sql_literals import binary
from stratum_writer.settlement.core import AcceptedShare, Part, PoolDay, Settlement
from stratum_writer.settlement.store import (
    DAY_COLUMNS,
    DAY_KEY,
    LOCK_WAIT_S,
    PART_TABLES,
    SWITCHED,
    WORKER_COLUMNS,
    DayRecord,
    SettlementRefused,
    SettlementStore,
    part_from_values,
    part_values,
    rows_of,
)

_EPOCH = datetime(1970, 1, 1)  # DATETIME(6) comes back naive, in UTC (time_zone +00:00)
_TIMES = {"closed_at", "settled_at"}
# What the settle Job's user needs on MySQL and MariaDB, and nothing more
# (docs/settlement.md; a test settles, corrects and exports with exactly these). DELETE
# on the part tables removes only rows of a generation that never became current.
SETTLEMENT_GRANTS = (
    "GRANT SELECT ON {database}.share_events TO {user}",
    "GRANT SELECT ON {database}.schema_migrations TO {user}",
    "GRANT SELECT, INSERT, UPDATE ON {database}.settlement_days TO {user}",
    "GRANT SELECT, INSERT, DELETE ON {database}.settlements TO {user}",
    "GRANT SELECT, INSERT, DELETE ON {database}.settlement_accounts TO {user}",
)
_DUPLICATE_KEY = 1062


def _to_db(column: str, value: Any) -> Any:
    if column in _TIMES:
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(value, bytes):  # the driver's own bytes escaping fails: sent as hex
        return value.hex()
    return value


def _from_db(column: str, value: Any) -> Any:
    if column in _TIMES:
        return (value - _EPOCH) // timedelta(microseconds=1)
    return value


def _insert(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("UNHEX(%s)" if c == "digest" else "%s" for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


_SWITCH = (
    "UPDATE settlement_days SET "
    + ", ".join(f"{c} = %s" for c in SWITCHED)
    + " WHERE shard_key = %s AND pool = %s AND day = %s AND current_generation = %s"
)
_SPAN = "pool = %s AND share_id >= {start} AND share_id < {end}"


class MySettlementStore(SettlementStore):
    def __init__(self, backend: Backend) -> None:
        mine = cast(MySQLBackend, backend)
        self.kwargs: dict[str, Any] = {**mine._connect_kwargs(), "autocommit": True}
        self._conn: aiomysql.Connection | None = None

    @property
    def conn(self) -> aiomysql.Connection:
        if self._conn is None:
            raise ConnectionError("settlement store used outside 'async with'")
        return self._conn

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, tuple(args))
            return list(await cur.fetchall())

    async def __aenter__(self) -> MySettlementStore:
        self._conn = await aiomysql.connect(**self.kwargs)
        held = await self._fetch("SELECT GET_LOCK('stratum_settle', %s)", (LOCK_WAIT_S,))
        if not held or held[0][0] != 1:
            await self.__aexit__()
            raise SettlementRefused("another settle run holds the lock")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()  # the session's named lock goes with it
            self._conn = None

    @staticmethod
    def _span(pool_day: PoolDay) -> str:
        """The day's shares: its pool (a parameter) and its share_id range (literals)."""
        start, end = first_share_id_at(pool_day.start_us), first_share_id_at(pool_day.end_us)
        return _SPAN.format(start=binary(start), end=binary(end))

    async def accepted_shares(self, pool_day: PoolDay) -> list[AcceptedShare]:
        rows = await self._fetch(
            "SELECT user_identity, worker, shard_key, share_id, difficulty FROM share_events"
            f" WHERE {self._span(pool_day)} AND accepted",
            (pool_day.pool,),
        )
        return [AcceptedShare(r[0], r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

    async def day(self, pool: str, day: date) -> DayRecord | None:
        rows = await self._fetch(
            f"SELECT {', '.join(DAY_COLUMNS)} FROM settlement_days"
            " WHERE shard_key = %s AND pool = %s AND day = %s",
            (DAY_KEY, pool, day),
        )
        if not rows:
            return None
        values = {c: _from_db(c, v) for c, v in zip(DAY_COLUMNS, rows[0], strict=True)}
        return DayRecord.from_values(values)

    async def worker_parts(self, pool: str, day: date, generation: int) -> list[Part]:
        rows = await self._fetch(
            f"SELECT {', '.join(WORKER_COLUMNS)} FROM settlements WHERE pool = %s AND day = %s"
            " AND generation = %s ORDER BY user_identity, worker",
            (pool, day, generation),
        )
        return [part_from_values(dict(zip(WORKER_COLUMNS, r, strict=True))) for r in rows]

    async def write_generation(self, pool_day: PoolDay, generation: int, rows: Settlement) -> None:
        await self.conn.begin()
        try:
            async with self.conn.cursor() as cur:
                for table, parts in rows_of(rows).items():
                    columns = PART_TABLES[table]
                    await cur.execute(
                        f"DELETE FROM {table} WHERE pool = %s AND day = %s AND generation >= %s",
                        (pool_day.pool, pool_day.day, generation),
                    )
                    values = [part_values(pool_day, generation, p) for p in parts]
                    await cur.executemany(
                        _insert(table, columns),
                        [tuple(_to_db(c, v[c]) for c in columns) for v in values],
                    )
            await self.conn.commit()
        except BaseException:
            await self.conn.rollback()
            raise

    async def switch(self, record: DayRecord, previous: int | None) -> bool:
        values = record.values()
        async with self.conn.cursor() as cur:
            if previous is None:
                try:
                    await cur.execute(
                        _insert("settlement_days", DAY_COLUMNS),
                        tuple(_to_db(c, values[c]) for c in DAY_COLUMNS),
                    )
                except aiomysql.IntegrityError as exc:
                    if exc.args[:1] == (_DUPLICATE_KEY,):
                        return False
                    raise
                return True
            day = record.pool_day
            await cur.execute(
                _SWITCH,
                (*[_to_db(c, values[c]) for c in SWITCHED], DAY_KEY, day.pool, day.day, previous),
            )
            return bool(cur.rowcount == 1)

    async def day_shares(self, pool_day: PoolDay, user: str | None, worker: str | None
                         ) -> list[Row]:  # fmt: skip
        rows = await self._fetch(
            f"SELECT {', '.join(FIELDS)} FROM share_events WHERE {self._span(pool_day)}"
            " AND (%s IS NULL OR user_identity = %s) AND (%s IS NULL OR worker = %s)"
            " ORDER BY share_id",
            (pool_day.pool, user, user, worker, worker),
        )
        return [_share_row(r) for r in rows]


def _share_row(r: tuple[Any, ...]) -> Row:
    """A share as MySQL returns it, in the writer's row shape (times in microseconds)."""

    def us(value: datetime | None) -> int | None:
        return None if value is None else (value - _EPOCH) // timedelta(microseconds=1)

    return cast(Row, (
        bytes(r[0]), *r[1:12], float(r[12]), float(r[13]), bool(r[14]), r[15], r[16],
        bool(r[17]), us(r[18]), us(r[19]), r[20],
    ))  # fmt: skip
