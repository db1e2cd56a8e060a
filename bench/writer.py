"""``make bench-writer``: sustained shares/s from a pre-filled spool, beside the baselines.

Every system loads the same generated rows into the same migrated schema on the same
throw-away servers, in one run, so the ratios mean something on a noisy machine:

- ``ours``: the real ``stratum-writer`` process draining a pre-filled spool (PostgreSQL:
  both bulk strategies, ``ours`` is the default one, ``ours-unnest``/``ours-copy`` both);
- ``copy`` / ``load-data``: the database's own bulk loader (psql ``\\copy``, MariaDB's
  and MySQL 9.7's ``LOAD DATA LOCAL INFILE``), the ceiling;
- ``one-insert``: one INSERT per share over a pool of 8 connections;
- ``batch-100``: ``executemany`` in transactions of 100 rows.

Backends: PostgreSQL, MariaDB, MySQL 9.7 (direct), Vitess (through vtgate into two shards,
each a tablet on its own MySQL 9.7; no bulk loader goes through vtgate) and SQLite. For
Vitess all three systems go through a vtgate set up as vitess/README.md recommends for
the writers (``GATEWAY_FLAGS``), and ``ours-normalizing`` is ours through one with
vtgate's defaults.

Ours also upserts the per-minute rollups and the worker registry in each batch; the
baselines do not. On every backend ours also runs with ``stratum-writer retain``
removing an expired day beside it, against itself alone on the same rows
(``bench/beside.py``: ``ours-retention-beside``, ``ours-alone-same-rows``).
Sizes: BENCH_EVENTS (default 1,000,000), BENCH_BASELINE_EVENTS (default 50,000),
BENCH_BESIDE_DAY and BENCH_BESIDE_NEW (50,000 shares a day on four old days, 300,000 new).
The writer runs as shipped (its default batch size) unless BENCH_BATCH_SIZE says.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench.beside import with_and_without_retention
from bench.mysql_family import Target, baseline, load_data
from bench.ours import measure_append, run_ours
from bench.report import Reporter
from bench.rows import csv_rows
from harness.databases import MariaDBServer, PostgresServer
from harness.mysql import MySQLServer
from harness.vitess_cluster import VitessCluster, set_up_keyspace
from harness.writer import WriterProcess
from sharelog.event import FIELDS, Row
from sharelog.synthetic import synthetic_events

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
BASELINE = int(os.environ.get("BENCH_BASELINE_EVENTS", "50000"))


def pg_copy(pg: PostgresServer, db: str, rows: list[Row], work: Path) -> float:
    path = work / "rows.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(csv_rows(rows, null="", bytes_fmt=lambda b: "\\x" + b.hex()))
    started = time.perf_counter()
    pg.psql(f"\\copy share_events ({', '.join(FIELDS)}) FROM '{path}' WITH (FORMAT csv)", db)
    return len(rows) / (time.perf_counter() - started)


_PG_ONE = (
    f"INSERT INTO share_events ({', '.join(FIELDS)}) VALUES ("
    + ", ".join(
        f"'epoch'::timestamptz + ${i} * interval '1 microsecond'"
        if f in ("submitted_at", "responded_at")
        else f"${i}"
        for i, f in enumerate(FIELDS, 1)
    )
    + ") ON CONFLICT (share_id, submitted_at) DO NOTHING"
)
_LITE_ONE = f"INSERT OR IGNORE INTO share_events ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"


async def _pg_baseline(url: str, rows: list[Row], batch: int) -> float:
    pool = await asyncpg.create_pool(url, min_size=8, max_size=8)
    chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    queue = iter(chunks)

    async def worker() -> None:
        for chunk in queue:
            async with pool.acquire() as conn:
                if batch == 1:
                    await conn.execute(_PG_ONE, *chunk[0])
                else:
                    async with conn.transaction():
                        await conn.executemany(_PG_ONE, chunk)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return len(rows) / elapsed


def _lite_baseline(path: Path, rows: list[Row], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany(_LITE_ONE, rows[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


# the writers' vtgate as vitess/README.md recommends: normalizing a 2,500-row INSERT into
# bind variables costs vtgate more than the insert costs the tablets
GATEWAY_FLAGS = ("--normalize-queries=false",)


def _vitess(
    report: Reporter, spool: Path, work: Path, prefix: list[Row], flags: tuple[str, ...]
) -> None:
    """ours, one-insert and batch-100 through the same vtgate; on a vtgate with its
    defaults only ours, as ``ours-normalizing``."""
    vitess = VitessCluster(vtgate_flags=flags)
    try:
        set_up_keyspace(vitess, work / f"keyspace-{len(flags)}")
        rate, rss = run_ours(spool, vitess.url(), work, None, events=EVENTS,
                             vitess_shards=vitess.shards)  # fmt: skip
        ours = "ours" if flags else "ours-normalizing"
        report.emit(backend="vitess", system=ours, metric="shares_per_s", value=rate,
                    unit="shares/s", events=EVENTS, shards=len(vitess.shards),
                    vtgate_flags=" ".join(flags))  # fmt: skip
        report.emit(backend="vitess", system=ours, metric="rss_mb", value=rss, unit="MiB")
        if not flags:
            return

        def emptied() -> str:
            vitess.clear()
            return vitess.url()

        with_and_without_retention(report, "vitess", emptied, work, vitess.shards)
        gate = Target(vitess.vtgate_port, vitess.keyspace, user="stratum")
        for system, batch in (("one-insert", 1), ("batch-100", 100)):
            vitess.clear()
            rate = baseline(gate, prefix, batch)
            report.emit(backend="vitess", system=system, metric="shares_per_s", value=rate,
                        unit="shares/s", events=len(prefix), shards=len(vitess.shards),
                        vtgate_flags=" ".join(flags))  # fmt: skip
    finally:
        vitess.stop()


def main() -> int:
    report = Reporter("writer")
    rows = [e.as_row() for e in synthetic_events(EVENTS)]
    prefix = rows[:BASELINE]
    work = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    spool = work / "spool"
    ns = measure_append(spool, rows)
    report.emit(backend="spool", system="ours", metric="append_ns_per_event", value=ns, unit="ns",
                events=EVENTS)  # fmt: skip
    pg = PostgresServer(fsync=True)
    maria = MariaDBServer()
    mysql = MySQLServer(buffer_pool="512M")
    names = iter(range(1000))

    def fresh_pg() -> tuple[str, str]:
        name = f"b{next(names)}"
        url = pg.create_database(name)
        WriterProcess(spool, url).run_command("migrate")
        return name, url

    def fresh_url(server: MariaDBServer | MySQLServer) -> str:
        return fresh_my(server)[1]

    def fresh_my(server: MariaDBServer | MySQLServer) -> tuple[str, str]:
        name = f"b{next(names)}"
        url = server.create_database(name)
        WriterProcess(spool, url).run_command("migrate")
        return name, url

    try:
        # PostgreSQL
        for strategy in ("unnest", "copy"):
            _, url = fresh_pg()
            rate, rss = run_ours(spool, url, work, strategy, events=EVENTS)
            report.emit(backend="postgres", system=f"ours-{strategy}", metric="shares_per_s",
                        value=rate, unit="shares/s", events=EVENTS, rss_mb=rss)  # fmt: skip
            if strategy == "copy":  # the writer's default, measured the faster
                report.emit(backend="postgres", system="ours", metric="shares_per_s", value=rate,
                            unit="shares/s", events=EVENTS)  # fmt: skip
                report.emit(
                    backend="postgres", system="ours", metric="rss_mb", value=rss, unit="MiB"
                )
        with_and_without_retention(report, "postgres", lambda: fresh_pg()[1], work)
        name, _ = fresh_pg()
        report.emit(backend="postgres", system="copy", metric="shares_per_s",
                    value=pg_copy(pg, name, rows, work), unit="shares/s", events=EVENTS)  # fmt: skip
        for system, batch in (("one-insert", 1), ("batch-100", 100)):
            _, url = fresh_pg()
            rate = asyncio.run(_pg_baseline(url, prefix, batch))
            report.emit(backend="postgres", system=system, metric="shares_per_s", value=rate,
                        unit="shares/s", events=len(prefix))  # fmt: skip
        # MariaDB and MySQL 9.7, the same way
        servers: list[tuple[str, Any, Callable[[str], Target]]] = [
            ("mariadb", maria, lambda db: Target(maria.port, db, client=(
                "mariadb", "--no-defaults", "--local-infile=1", "-uroot",
                f"--socket={maria.socket}"))),
            ("mysql", mysql, lambda db: Target(mysql.port, db, client=(
                "chroot", str(mysql.root), "mysql", "--no-defaults", "--local-infile=1",
                "-uroot", "-h127.0.0.1", f"-P{mysql.port}"), files=mysql.dir,
                files_seen_as=mysql.inner)),
        ]  # fmt: skip
        for backend, server, target in servers:
            _, url = fresh_my(server)
            rate, rss = run_ours(spool, url, work, None, events=EVENTS)
            report.emit(backend=backend, system="ours", metric="shares_per_s", value=rate,
                        unit="shares/s", events=EVENTS)  # fmt: skip
            report.emit(backend=backend, system="ours", metric="rss_mb", value=rss, unit="MiB")
            with_and_without_retention(report, backend, functools.partial(fresh_url, server), work)
            name, _ = fresh_my(server)
            report.emit(backend=backend, system="load-data", metric="shares_per_s",
                        value=load_data(target(name), rows, work), unit="shares/s",
                        events=EVENTS)  # fmt: skip
            for system, batch in (("one-insert", 1), ("batch-100", 100)):
                name, _ = fresh_my(server)
                rate = baseline(target(name), prefix, batch)
                report.emit(backend=backend, system=system, metric="shares_per_s", value=rate,
                            unit="shares/s", events=len(prefix))  # fmt: skip
        # Vitess: through vtgate into two shards, each a tablet on its own MySQL 9.7
        for flags in ((), GATEWAY_FLAGS):  # vtgate's defaults, then as vitess/README.md says
            _vitess(report, spool, work, prefix, flags)
        # SQLite
        url = f"sqlite:///{work / 'ours.db'}"
        rate, rss = run_ours(spool, url, work, None, events=EVENTS)
        report.emit(backend="sqlite", system="ours", metric="shares_per_s", value=rate,
                    unit="shares/s", events=EVENTS)  # fmt: skip
        report.emit(backend="sqlite", system="ours", metric="rss_mb", value=rss, unit="MiB")
        sqlite_files = iter(range(100))
        with_and_without_retention(
            report, "sqlite", lambda: f"sqlite:///{work / f'beside-{next(sqlite_files)}.db'}", work
        )
        for system, batch in (("one-insert", 1), ("batch-100", 100)):
            path = work / f"{system}.db"
            WriterProcess(spool, f"sqlite:///{path}").run_command("migrate")
            rate = _lite_baseline(path, prefix, batch)
            report.emit(backend="sqlite", system=system, metric="shares_per_s", value=rate,
                        unit="shares/s", events=len(prefix))  # fmt: skip
    finally:
        pg.destroy()
        maria.destroy()
        mysql.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    report.ratios()
    return 0


if __name__ == "__main__":
    sys.exit(main())
