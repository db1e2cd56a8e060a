"""SQLite: batched deletes, each batch a transaction taken in turn with the writer's
(the file has one writer at a time), by primary-key range for the shares."""

from __future__ import annotations

import sqlite3
from typing import cast

from stratum_writer.backends import Backend
from stratum_writer.backends.sqlite import SqliteBackend
from stratum_writer.retention import BATCH, Retainer, RetentionReport, cutoff_id

# which rows a batch takes, by table: the share_events rowid by share_id's range; the
# WITHOUT ROWID tables by their primary key
_KEYS = {
    "share_events": "rowid",
    "worker_stats_minute": "pool, user_identity, worker, minute",
    "workers": "pool, user_identity, worker",
}


class SqliteRetainer(Retainer):
    def __init__(self, backend: Backend) -> None:
        self.backend = cast(SqliteBackend, backend)

    async def _delete_batched(self, table: str, where: str, value: object) -> int:
        key = _KEYS[table]
        sql = (
            f"DELETE FROM {table} WHERE ({key}) IN "
            f"(SELECT {key} FROM {table} WHERE {where} LIMIT {BATCH})"
        )
        total = 0
        while True:

            def run(conn: sqlite3.Connection) -> int:
                return conn.execute(sql, (value,)).rowcount

            async with self.backend.transaction():  # the writer's lock and BEGIN IMMEDIATE
                deleted = await self.backend.call(run)
            total += deleted
            if deleted < BATCH:
                return total

    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        report.removed["share_events"] = await self._delete_batched(
            "share_events", "share_id < ?", cutoff_id(cutoff_us)
        )

    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        return await self._delete_batched(table, f"{column} < ?", cutoff_us)

    async def oldest_share_us(self) -> int | None:
        def run(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT min(share_id) FROM share_events").fetchone()
            return row[0] if row else None

        first = await self.backend.call(run)
        return int.from_bytes(first[:7], "big") if first else None
