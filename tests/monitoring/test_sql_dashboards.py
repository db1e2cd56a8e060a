"""The dashboards read from the share database, on the real servers: each panel's SQL,
expanded as Grafana's PostgreSQL and MySQL data sources expand it, runs on PostgreSQL,
MariaDB and MySQL against what a real writer stored, and says what the tables hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.databases import Database
from harness.grafana_sql import expand
from harness.writer import QUEUE, WriterProcess, fill

ROOT = Path(__file__).resolve().parents[2]
BOARDS = sorted(
    (ROOT / "charts" / "stratum-operator" / "files" / "dashboards" / "sql").glob("*.json")
)


def panels() -> dict[str, dict[str, str]]:
    """title -> its one target, of every SQL dashboard."""
    found = {}
    for path in BOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            (target,) = panel["targets"]
            found[panel["title"]] = target
    return found


def test_every_sql_panel_is_complete() -> None:
    assert BOARDS
    for path in BOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] and len(board["uid"].replace("__DIALECT__", "PostgreSQL")) <= 40
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "__SQL_DATASOURCE__", "uid": "${database}"}
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            (target,) = panel["targets"]
            assert target["rawSql"].strip() and target["format"] in ("time_series", "table")
            if target["format"] == "time_series":  # Grafana wants them sorted by time
                assert target["rawSql"].rstrip().endswith("ORDER BY 1"), panel["title"]


def rows(db: Database, sql: str) -> list[list[str]]:
    if db.kind == "postgres":
        return [line.split("|") for line in db.query(sql).splitlines()]
    # Grafana's MySQL data source keeps its sessions in UTC (the writer's DATETIMEs are UTC)
    return [line.split("\t") for line in db.query(f"SET time_zone = '+00:00'; {sql}").splitlines()]


def test_every_sql_panel_answers_from_a_real_writers_tables(
    server_database: Database, tmp_path: Path
) -> None:
    db = server_database
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(hours=1)
    spool = tmp_path / "spool"
    # 1,800 shares over the last half hour, from a few hundred workers
    begin_us = int((end - timedelta(minutes=30)).timestamp() * 1e6)
    fill(spool, 1800, seed=5, start_us=begin_us, rate_per_s=1.0, users=40, pool="main")
    writer = WriterProcess(spool, db.url, "--migrate").start()
    writer.wait_for(QUEUE, lambda v: v == 0, 60)
    writer.terminate()
    dialect = "postgres" if db.kind == "postgres" else "mysql"

    def panel(title: str) -> list[list[str]]:
        sql = expand(panels()[title]["rawSql"], dialect, start, end, interval_s=60,
                     variables={"pool": "main"})  # fmt: skip
        return rows(db, sql)

    registered = db.scalar("SELECT count(*) FROM workers WHERE pool = 'main'")
    assert registered > 50
    top = panel("Top 10 workers by accepted hashrate")
    assert len({metric for _, metric, _ in top}) == 10
    per_worker: dict[str, float] = {}
    for _, metric, rate in top:  # a minute of rejects only is a 0 in that worker's line
        per_worker[metric] = per_worker.get(metric, 0.0) + float(rate)
    assert all(total > 0 for total in per_worker.values())
    assert [float(t) for t, _, _ in top] == sorted(float(t) for t, _, _ in top)
    table = panel("Workers by accepted work in the time range")
    assert len(table) == min(50, registered)
    rates = [float(r[5]) for r in table]
    assert rates == sorted(rates, reverse=True) and rates[0] > 0
    accepted = db.scalar("SELECT count(*) FROM share_events WHERE error_code IS NULL")
    assert sum(int(r[2]) for r in table) <= accepted
    assert panel("Workers seen in the time range") == [[str(registered)]]
    assert sum(int(n) for _, n in panel("New workers (first share)")) == registered
    for _, rejected, stale in panel("Rejected and stale share of all shares"):
        assert 0 <= float(rejected or 0) <= 1 and 0 <= float(stale or 0) <= 1
