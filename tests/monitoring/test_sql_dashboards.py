"""The dashboards read from the share database, on the real servers: each panel's SQL,
expanded as Grafana's PostgreSQL and MySQL data sources expand it, runs on PostgreSQL,
MariaDB and MySQL against what a real writer stored, as a data-source user holding only
SELECT on the dashboard's tables, and says what the tables hold. The pool variable is
an SQL string however hostile its value: on PostgreSQL it stays in its literal; on MySQL
and MariaDB, where a backslash escapes the closing quote, the worst it can do is fail."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.databases import Database
from harness.db_users import user_with
from harness.grafana_sql import expand, sqlstring
from harness.writer import QUEUE, WriterProcess, fill
from stratum_writer.backends import mysql, postgres
from stratum_writer.backends.base import DASHBOARD_TABLES

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


def variable_queries() -> list[str]:
    found = []
    for path in BOARDS:
        board = json.loads(path.read_text())
        found += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return found


def test_the_dashboards_read_only_the_tables_their_user_is_granted() -> None:
    """One definition of the tables a dashboard reads (``DASHBOARD_TABLES``), which the
    data source's grants are made of; and docs/writer.md lists those grants."""
    read = set()
    for sql in [t["rawSql"] for t in panels().values()] + variable_queries():
        read |= set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql, re.IGNORECASE))
    assert read == set(DASHBOARD_TABLES)
    docs = (ROOT / "docs" / "writer.md").read_text()
    for grant in (*postgres.DASHBOARD_GRANTS, *mysql.DASHBOARD_GRANTS):
        assert grant in docs, f"docs/writer.md must list: {grant}"


def test_a_variable_is_expanded_only_as_an_sql_string() -> None:
    when = datetime(2026, 11, 26, tzinfo=UTC)

    def expanded(sql: str, pool: str | list[str] = "main") -> str:
        return expand(sql, "postgres", when, when, interval_s=60, variables={"pool": pool})

    assert expanded("pool = ${pool:sqlstring}", "it's") == "pool = 'it''s'"
    assert expanded("pool IN (${pool:sqlstring})", ["a", "b'c"]) == "pool IN ('a','b''c')"
    assert expanded("pool = ${pool:sqlstring}", "$__timeFrom()") == "pool = '$__timeFrom()'"
    for unsafe in ("pool = '$pool'", "pool = ${pool}", "pool = ${pool:raw}", "pool = $pool"):
        with pytest.raises(AssertionError, match="not expanded"):
            expanded(unsafe)


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
    reader = dashboard_user(db)
    assert rows(reader, variable_queries()[0]) == [["main"]]

    def panel(title: str) -> list[list[str]]:
        sql = expand(panels()[title]["rawSql"], dialect, start, end, interval_s=60,
                     variables={"pool": "main"})  # fmt: skip
        return rows(reader, sql)

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


def dashboard_user(db: Database) -> Database:
    """The data source's user: SELECT on the dashboard's tables, as docs/writer.md says."""
    grants = postgres.DASHBOARD_GRANTS if db.kind == "postgres" else mysql.DASHBOARD_GRANTS
    return user_with(db, "d", grants)


HOSTILE_POOL = "o'brien \\ pool"
# on MySQL and MariaDB, \' ends the literal sqlstring made: the rest is SQL
ATTACK = "x\\'; DELETE FROM workers; -- "


def test_a_pool_holding_a_quote_and_a_backslash_never_writes(
    server_database: Database, tmp_path: Path
) -> None:
    db = server_database
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(hours=1)
    begin_us = int((end - timedelta(minutes=30)).timestamp() * 1e6)
    spool = tmp_path / "spool"
    fill(spool, 300, seed=6, start_us=begin_us, rate_per_s=1.0, users=5, pool="main")
    fill(spool, 300, seed=7, start_us=begin_us, rate_per_s=1.0, users=5, pool=HOSTILE_POOL)
    writer = WriterProcess(spool, db.url, "--migrate").start()
    writer.wait_for(QUEUE, lambda v: v == 0, 60)
    writer.terminate()
    dialect = "postgres" if db.kind == "postgres" else "mysql"
    reader = dashboard_user(db)
    registered = db.scalar(f"SELECT count(*) FROM workers WHERE pool = {sqlstring(HOSTILE_POOL)}")
    stored = db.scalar("SELECT count(*) FROM workers")

    def every_panel(user: Database, pool: str) -> list[str]:
        """Each panel's SQL for ``pool`` as ``user`` runs it; what failed, and why."""
        failed = []
        for title, target in panels().items():
            sql = expand(target["rawSql"], dialect, start, end, interval_s=60,
                         variables={"pool": pool})  # fmt: skip
            try:
                rows(user, sql)
            except RuntimeError as exc:
                failed.append(f"{title}: {exc}")
        return failed

    assert every_panel(reader, HOSTILE_POOL) == []
    if db.kind == "postgres":  # standard strings: the value stays the literal it was
        seen = expand(panels()["Workers seen in the time range"]["rawSql"], dialect, start, end,
                      interval_s=60, variables={"pool": HOSTILE_POOL})  # fmt: skip
        assert rows(reader, seen) == [[str(registered)]] and registered > 0
        assert every_panel(db, ATTACK) == []  # even as the owner: only a string
        assert db.scalar("SELECT count(*) FROM workers") == stored
        return
    # MySQL and MariaDB read \' as a quote inside the literal: the attack is SQL now.
    # Every panel fails: cut short mid-query, or at the DELETE the user may not run
    failed = every_panel(reader, ATTACK)
    assert len(failed) == len(panels()), failed
    assert any("DELETE command denied" in f for f in failed), failed
    assert db.scalar("SELECT count(*) FROM workers") == stored
    every_panel(db, ATTACK)  # the same SQL as a user who may write: the reason for the grant
    assert db.scalar("SELECT count(*) FROM workers") == 0
