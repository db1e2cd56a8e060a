"""The MySQL family's baselines: MariaDB, MySQL 9.7, and Vitess through vtgate, each
reached the same way (``Target``): one INSERT per share, 100-row batches, and the
server's own bulk loader (``LOAD DATA LOCAL INFILE``) where there is one."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiomysql

from bench.rows import csv_rows, my_params
from sharelog.event import FIELDS, Row

_MY_ONE = (
    f"INSERT IGNORE INTO share_events ({', '.join(FIELDS)}) VALUES "
    f"(UNHEX(%s), {', '.join(['%s'] * (len(FIELDS) - 1))})"
)


@dataclass(frozen=True)
class Target:
    port: int
    database: str
    user: str = "root"
    client: tuple[str, ...] = ()  # the mysql CLI, ready for "-e": for LOAD DATA
    files: Path | None = None  # where the CLI can read a file from...
    files_seen_as: str = ""  # ...and what it calls that place (a chroot sees it elsewhere)


def load_data(target: Target, rows: list[Row], work: Path) -> float:
    folder = target.files or work
    path = folder / "rows.tsv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerows(csv_rows(rows, null="\\N", bytes_fmt=bytes.hex))
    seen = f"{target.files_seen_as}/rows.tsv" if target.files_seen_as else str(path)
    cols = ", ".join("@sid" if f == "share_id" else f for f in FIELDS)
    load = (f"LOAD DATA LOCAL INFILE '{seen}' INTO TABLE share_events ({cols}) "
            "SET share_id = UNHEX(@sid)")  # fmt: skip
    started = time.perf_counter()
    subprocess.run([*target.client, target.database, "-e", load], check=True)
    return len(rows) / (time.perf_counter() - started)


async def _baseline(target: Target, rows: list[Row], batch: int) -> float:
    pool = await aiomysql.create_pool(host="127.0.0.1", port=target.port, user=target.user,
                                      db=target.database, minsize=8, maxsize=8,
                                      autocommit=batch == 1)  # fmt: skip
    chunks = [[my_params(r) for r in rows[i : i + batch]] for i in range(0, len(rows), batch)]
    queue = iter(chunks)

    async def worker() -> None:
        for chunk in queue:
            async with pool.acquire() as conn, conn.cursor() as cur:
                if batch == 1:
                    await cur.execute(_MY_ONE, chunk[0])
                else:
                    await cur.executemany(_MY_ONE, chunk)
                    await conn.commit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    elapsed = time.perf_counter() - started
    pool.close()
    await pool.wait_closed()
    return len(rows) / elapsed


def baseline(target: Target, rows: list[Row], batch: int) -> float:
    """shares/s over 8 connections: one INSERT each (batch 1), or batches in transactions."""
    return asyncio.run(_baseline(target, rows, batch))
