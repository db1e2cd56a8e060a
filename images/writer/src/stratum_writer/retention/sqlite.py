"""SQLite: batched deletes, each batch a transaction taken in turn with the writer's
(the file has one writer at a time), by primary-key range for the shares."""

from __future__ import annotations

import sqlite3
from typing import cast

from sharelog.event import first_share_id_at
from stratum_writer.aggregates import AGGREGATES
from stratum_writer.backends import Backend
from stratum_writer.backends.sqlite import SqliteBackend
from stratum_writer.retention import BATCH, Retainer, RetentionReport, delete_in_batches

# which rows a batch takes, by table: the share_events rowid by share_id's range; the
# aggregates' (WITHOUT ROWID) tables by their primary key
_KEYS = {"share_events": "rowid"} | {a.table: ", ".join(a.key) for a in AGGREGATES}


class SqliteRetainer(Retainer):
    def __init__(self, backend: Backend) -> None:
        self.backend = cast(SqliteBackend, backend)

    async def _delete_batched(self, table: str, where: str, value: object) -> int:
        key = _KEYS[table]
        sql = (
            f"DELETE FROM {table} WHERE ({key}) IN "
            f"(SELECT {key} FROM {table} WHERE {where} LIMIT {BATCH})"
        )

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(sql, (value,)).rowcount

        async def batch() -> int:
            async with self.backend.transaction():  # the writer's lock and BEGIN IMMEDIATE
                return await self.backend.call(run)

        return await delete_in_batches(batch)

    async def remove_shares(self, cutoff_us: int, report: RetentionReport) -> None:
        report.removed["share_events"] = await self._delete_batched(
            "share_events", "share_id < ?", first_share_id_at(cutoff_us)
        )

    async def remove_rows(self, table: str, column: str, cutoff_us: int) -> int:
        return await self._delete_batched(table, f"{column} < ?", cutoff_us)

    async def oldest_share_id(self) -> bytes | None:
        def run(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT min(share_id) FROM share_events").fetchone()
            return bytes(row[0]) if row and row[0] is not None else None

        return await self.backend.call(run)
