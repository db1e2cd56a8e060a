"""SQLite: settlement through the writer's own backend (its one connection and thread).
Amounts are decimal text (the migration says why); days ISO dates; times integer
microseconds. One settle run at a time by an exclusive lock on a file beside the
database (``<database>.settle.lock``): reading a day's shares takes no write lock, so
the writer keeps storing meanwhile."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from datetime import date
from typing import Any, cast

from sharelog.event import FIELDS, Row, first_share_id_at
from stratum_writer.backends import Backend
from stratum_writer.backends.sqlite import SqliteBackend
from stratum_writer.settlement.core import AcceptedShare, Part, PoolDay, Settlement
from stratum_writer.settlement.store import (
    DAY_COLUMNS,
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

_TEXT_NUMBERS = {"reward", "external_hashrate", "fee", "accepted_work", "reward_part"}


def _to_db(column: str, value: Any) -> Any:
    if column in _TEXT_NUMBERS:
        return str(value)
    return value.isoformat() if isinstance(value, date) else value


def _from_db(column: str, value: Any) -> Any:
    return date.fromisoformat(value) if column == "day" else value


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_SWITCH = (
    "UPDATE settlement_days SET "
    + ", ".join(f"{c} = ?" for c in SWITCHED)
    + " WHERE pool = ? AND day = ? AND current_generation = ?"
)
_SPAN = "pool = ? AND share_id >= ? AND share_id < ?"


class SqliteSettlementStore(SettlementStore):
    def __init__(self, backend: Backend) -> None:
        self.backend = cast(SqliteBackend, backend)
        self._lock_fd: int | None = None

    async def __aenter__(self) -> SqliteSettlementStore:
        fd = os.open(f"{self.backend.path}.settle.lock", os.O_RDWR | os.O_CREAT, 0o640)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise SettlementRefused("another settle run holds the lock") from None
                await asyncio.sleep(0.1)
        self._lock_fd = fd
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the lock goes with it
            self._lock_fd = None

    def _span(self, pool_day: PoolDay) -> tuple[str, bytes, bytes]:
        start, end = first_share_id_at(pool_day.start_us), first_share_id_at(pool_day.end_us)
        return pool_day.pool, start, end

    async def accepted_shares(self, pool_day: PoolDay) -> list[AcceptedShare]:
        sql = (
            "SELECT user_identity, worker, shard_key, share_id, difficulty FROM share_events"
            f" WHERE {_SPAN} AND accepted"
        )
        span = self._span(pool_day)
        rows = await self.backend.call(lambda conn: conn.execute(sql, span).fetchall())
        return [AcceptedShare(r[0], r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

    async def day(self, pool: str, day: date) -> DayRecord | None:
        sql = f"SELECT {', '.join(DAY_COLUMNS)} FROM settlement_days WHERE pool = ? AND day = ?"
        args = (pool, day.isoformat())
        row = await self.backend.call(lambda conn: conn.execute(sql, args).fetchone())
        if row is None:
            return None
        return DayRecord.from_values(
            {c: _from_db(c, v) for c, v in zip(DAY_COLUMNS, row, strict=True)}
        )

    async def worker_parts(self, pool: str, day: date, generation: int) -> list[Part]:
        sql = (
            f"SELECT {', '.join(WORKER_COLUMNS)} FROM settlements WHERE pool = ? AND day = ?"
            " AND generation = ? ORDER BY user_identity, worker"
        )
        args = (pool, day.isoformat(), generation)
        rows = await self.backend.call(lambda conn: conn.execute(sql, args).fetchall())
        return [part_from_values(dict(zip(WORKER_COLUMNS, r, strict=True))) for r in rows]

    async def write_generation(self, pool_day: PoolDay, generation: int, rows: Settlement) -> None:
        def run(conn: sqlite3.Connection) -> None:
            for table, parts in rows_of(rows).items():
                columns = PART_TABLES[table]
                conn.execute(
                    f"DELETE FROM {table} WHERE pool = ? AND day = ? AND generation >= ?",
                    (pool_day.pool, pool_day.day.isoformat(), generation),
                )
                values = [part_values(pool_day, generation, p) for p in parts]
                conn.executemany(
                    _insert(table, columns),
                    [tuple(_to_db(c, v[c]) for c in columns) for v in values],
                )

        async with self.backend.transaction():  # the writer's lock and BEGIN IMMEDIATE
            await self.backend.call(run)

    async def switch(self, record: DayRecord, previous: int | None) -> bool:
        values = record.values()
        day = record.pool_day

        def run(conn: sqlite3.Connection) -> bool:
            if previous is None:
                try:
                    row = tuple(_to_db(c, values[c]) for c in DAY_COLUMNS)
                    conn.execute(_insert("settlement_days", DAY_COLUMNS), row)
                except sqlite3.IntegrityError:
                    return False
                return True
            args = (*[_to_db(c, values[c]) for c in SWITCHED], day.pool, day.day.isoformat(),
                    previous)  # fmt: skip
            return conn.execute(_SWITCH, args).rowcount == 1

        async with self.backend.transaction():
            return await self.backend.call(run)

    async def day_shares(self, pool_day: PoolDay, user: str | None, worker: str | None
                         ) -> list[Row]:  # fmt: skip
        sql = (
            f"SELECT {', '.join(FIELDS)} FROM share_events WHERE {_SPAN}"
            " AND (? IS NULL OR user_identity = ?) AND (? IS NULL OR worker = ?) ORDER BY share_id"
        )
        args = (*self._span(pool_day), user, user, worker, worker)
        rows = await self.backend.call(lambda conn: conn.execute(sql, args).fetchall())
        return [
            cast(Row, (bytes(r[0]), *r[1:14], bool(r[14]), r[15], r[16], bool(r[17]), *r[18:]))
            for r in rows
        ]
