"""PostgreSQL: settlement on a connection of its own, one run at a time by an advisory
lock. Amounts travel as ``numeric`` (Decimal, exact), times as integer microseconds (the
writer's own timestamptz codec)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, cast

import asyncpg

from sharelog.event import FIELDS, Row
from stratum_writer.backends import Backend
from stratum_writer.backends.postgres import PostgresBackend, _decode_time, _encode_time
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

_SETTLE_LOCK = 0x53545241545553  # "STRATUS": one settle run at a time (retain: ...4E)
_NUMERIC = {"reward", "external_hashrate", "fee", "accepted_work", "reward_part"}
# What the settle Job's user needs, and nothing more (docs/settlement.md; a test runs a
# settlement, a correction and an export with exactly these). DELETE on the part tables
# removes only rows of a generation that never became current (a run that died).
SETTLEMENT_GRANTS = (
    "GRANT SELECT ON share_events, schema_migrations TO {user}",
    "GRANT SELECT, INSERT, UPDATE ON settlement_days TO {user}",
    "GRANT SELECT, INSERT, DELETE ON settlements, settlement_accounts TO {user}",
)


def _param(column: str, value: Any) -> Any:
    return Decimal(value) if column in _NUMERIC else value


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


_SWITCH = (
    "UPDATE settlement_days SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(SWITCHED, 1))
    + f" WHERE pool = ${len(SWITCHED) + 1} AND day = ${len(SWITCHED) + 2}"
    f" AND current_generation = ${len(SWITCHED) + 3}"
)
_SPAN = (
    "pool = $1 AND submitted_at >= 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'"
    " AND submitted_at < 'epoch'::timestamptz + $3::bigint * interval '1 microsecond'"
)


class PgSettlementStore(SettlementStore):
    def __init__(self, backend: Backend) -> None:
        self.dsn = cast(PostgresBackend, backend).dsn
        self._conn: asyncpg.Connection | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise ConnectionError("settlement store used outside 'async with'")
        return self._conn

    async def __aenter__(self) -> PgSettlementStore:
        self._conn = conn = await asyncpg.connect(self.dsn, timeout=10)
        await conn.set_type_codec("timestamptz", schema="pg_catalog", encoder=_encode_time,
                                  decoder=_decode_time, format="binary")  # fmt: skip
        await conn.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _SETTLE_LOCK)
        except asyncpg.LockNotAvailableError:
            await self.__aexit__()
            raise SettlementRefused("another settle run holds the lock") from None
        await conn.execute("SET lock_timeout = 0")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()  # the session's advisory lock goes with it
            self._conn = None

    async def accepted_shares(self, pool_day: PoolDay) -> list[AcceptedShare]:
        records = await self.conn.fetch(
            "SELECT user_identity, worker, shard_key, share_id, difficulty FROM share_events"
            f" WHERE {_SPAN} AND accepted",
            pool_day.pool, pool_day.start_us, pool_day.end_us,
        )  # fmt: skip
        return [AcceptedShare(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in records]

    async def day(self, pool: str, day: date) -> DayRecord | None:
        row = await self.conn.fetchrow(
            f"SELECT {', '.join(DAY_COLUMNS)} FROM settlement_days WHERE pool = $1 AND day = $2",
            pool, day,
        )  # fmt: skip
        return None if row is None else DayRecord.from_values(dict(row))

    async def worker_parts(self, pool: str, day: date, generation: int) -> list[Part]:
        records = await self.conn.fetch(
            f"SELECT {', '.join(WORKER_COLUMNS)} FROM settlements WHERE pool = $1 AND day = $2"
            " AND generation = $3 ORDER BY user_identity, worker",
            pool, day, generation,
        )  # fmt: skip
        return [part_from_values(dict(r)) for r in records]

    async def write_generation(self, pool_day: PoolDay, generation: int, rows: Settlement) -> None:
        async with self.conn.transaction():
            for table, parts in rows_of(rows).items():
                columns = PART_TABLES[table]
                await self.conn.execute(
                    f"DELETE FROM {table} WHERE pool = $1 AND day = $2 AND generation >= $3",
                    pool_day.pool, pool_day.day, generation,
                )  # fmt: skip
                values = [part_values(pool_day, generation, p) for p in parts]
                await self.conn.executemany(
                    _insert(table, columns),
                    [[_param(c, v[c]) for c in columns] for v in values],
                )

    async def switch(self, record: DayRecord, previous: int | None) -> bool:
        values = record.values()
        if previous is None:
            try:
                await self.conn.execute(
                    _insert("settlement_days", DAY_COLUMNS),
                    *[_param(c, values[c]) for c in DAY_COLUMNS],
                )
            except asyncpg.UniqueViolationError:
                return False
            return True
        status = await self.conn.execute(
            _SWITCH,
            *[_param(c, values[c]) for c in SWITCHED],
            record.pool_day.pool, record.pool_day.day, previous,
        )  # fmt: skip
        return bool(status == "UPDATE 1")

    async def day_shares(self, pool_day: PoolDay, user: str | None, worker: str | None
                         ) -> list[Row]:  # fmt: skip
        records = await self.conn.fetch(
            f"SELECT {', '.join(FIELDS)} FROM share_events WHERE {_SPAN}"
            " AND ($4::text IS NULL OR user_identity = $4)"
            " AND ($5::text IS NULL OR worker = $5) ORDER BY share_id",
            pool_day.pool, pool_day.start_us, pool_day.end_us, user, worker,
        )  # fmt: skip
        return [cast(Row, (bytes(r[0]), *tuple(r)[1:])) for r in records]
