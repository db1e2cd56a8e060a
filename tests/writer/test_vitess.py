"""The writer on Vitess: every statement it issues, planned by Vitess's own planner, with
one shard per transaction; shard placement equal to Vitess's hash vindex; TLS URLs.

The statements are captured from a real MariaDB's general log while the writer stores,
replays and rolls up, then handed to Vitess's planner with our VSchema
(tools/vitess-check), four shards; test_vtgate.py runs the writer through a real vtgate
into real tablets, two shards, and reads vtgate's own routing counters.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pymysql
import pytest

from harness.databases import MariaDBServer
from harness.kubernetes import ROOT
from harness.vitess import vitess_check
from sharelog.event import make_shard_key
from sharelog.synthetic import synthetic_events
from stratum_writer.backends import open_backend, vitess_shards
from stratum_writer.backends.base import latest_migration
from stratum_writer.backends.vitess_shards import ShardMap, keyspace_id

SHARDS = ["-40", "40-80", "80-c0", "c0-"]
VSCHEMA = str(ROOT / "vitess" / "vschema.json")


def test_our_keyspace_ids_are_vitess_hash_vindex() -> None:
    keys = [make_shard_key(f"acct{i}") for i in range(300)] + [0, 1, 2**63 - 1]
    theirs = vitess_check("ksid", *map(str, keys))
    assert {str(k): keyspace_id(k).hex() for k in keys} == theirs


def test_shard_lists_that_do_not_cover_the_keyspace_are_refused(tmp_path: Path) -> None:
    assert ShardMap(["80-", "-80"]).names == ["-80", "80-"]
    assert ShardMap(["0"]).names == ["0"]
    for shards, says in ((["-80"], "do not reach the end"), (["-80", "90-"], "gap or overlap"),
                         (["-80", "40-"], "gap or overlap"), (["-zz", "zz-"], "must be hex"),
                         (["80"], "not a key range")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            ShardMap(shards)
    config = tmp_path / "writer.json"
    config.write_text(json.dumps({"vitess_shards": ["-80", "90-"]}))
    out = subprocess.run([sys.executable, "-m", "stratum_writer.cli", "--config", str(config),
                          "migrate"], capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 2 and "gap or overlap" in out.stderr


def _general_log(maria: MariaDBServer) -> pymysql.Connection[Any]:
    conn = pymysql.connect(host="127.0.0.1", port=maria.port, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SET GLOBAL log_output = 'TABLE'")
        cur.execute("TRUNCATE mysql.general_log")
        cur.execute("SET GLOBAL general_log = 'ON'")
    return conn


def _transactions(conn: pymysql.Connection[Any], database: str) -> list[list[str]]:
    """The writer's statements, per connection, split at BEGIN/COMMIT/ROLLBACK."""
    with conn.cursor() as cur:
        cur.execute("SET GLOBAL general_log = 'OFF'")
        cur.execute("SELECT thread_id, CONVERT(argument USING utf8mb4) FROM mysql.general_log "
                    "WHERE command_type IN ('Query', 'Init DB') ORDER BY event_time")  # fmt: skip
        rows = cur.fetchall()
    ours = {t for t, arg in rows if arg == database or f"/{database}" in arg} | {
        t for t, arg in rows if "share_events" in arg or "schema_migrations" in arg
    }
    current: dict[int, list[str]] = {}
    done: list[list[str]] = []
    for thread, statement in rows:
        if thread not in ours or statement == database:
            continue
        word = statement.strip().split()[0].upper()
        if word in ("BEGIN", "COMMIT", "ROLLBACK"):
            if current.get(thread):
                done.append(current.pop(thread))
            continue
        current.setdefault(thread, []).append(statement)
    return done + [t for t in current.values() if t]


def test_every_statement_the_writer_issues_is_single_shard_on_vitess(
    mariadb: MariaDBServer,
) -> None:
    url = mariadb.create_database("vitess_writer")
    rows = [e.as_row() for e in synthetic_events(3000, users=40)]
    # the schema as a MariaDB's (no shards to target here), before the log: only storing is checked
    asyncio.run(open_backend(url).migrate())
    log = _general_log(mariadb)

    async def write() -> list[Any]:
        backend = open_backend(url, vitess_shards=SHARDS)
        await backend.connect(2)
        try:
            first = await backend.store(rows[:2000])
            replay = await backend.store(rows[1000:])  # half stored already: the slow path
            return [first, replay, await backend.schema_version()]
        finally:
            await backend.close()

    first, replay, version = asyncio.run(write())
    expected = (2000, 1000, 1000, latest_migration("mysql"))
    assert (first.inserted, replay.inserted, replay.duplicates, version) == expected
    transactions = _transactions(log, "vitess_writer")
    statements = [s for t in transactions for s in t]
    assert any(s.startswith("SELECT share_id FROM share_events") for s in statements)
    assert any(s.startswith("INSERT INTO worker_stats_minute") for s in statements)
    assert any(s.startswith("INSERT INTO workers") for s in statements)
    plans = {p["statement"]: p for p in vitess_check("plan", VSCHEMA, stdin=statements)}
    refused = {s[:120]: p["error"] for s, p in plans.items() if "error" in p}
    assert not refused, refused
    scattered = [s[:120] for s, p in plans.items() if p["plan"].get("Variant") == "Scatter"]
    assert not scattered, scattered
    shard_map = ShardMap(SHARDS)
    touched = 0
    for transaction in transactions:
        ids = {k for s in transaction for k in plans[s].get("keyspace_ids", [])}
        shards = {next(n for n in SHARDS if _owns(n, k)) for k in ids}
        assert len(shards) <= 1, (shards, [s[:80] for s in transaction])
        touched += len(shards)
    assert touched >= 2 * len(SHARDS)  # each batch went out shard by shard
    assert {shard_map.shard_of(int(r[5])) for r in rows} == set(SHARDS)
    count = mariadb.sql("SELECT count(*) FROM share_events", "vitess_writer")
    assert int(count) == 3000


def _owns(shard: str, keyspace_id_hex: str) -> bool:
    low, _, high = shard.partition("-")
    return low <= keyspace_id_hex and (not high or keyspace_id_hex < high)


@pytest.mark.parametrize("mode", ["REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"])
def test_vtgate_style_urls_with_tls(mariadb: MariaDBServer, mode: str) -> None:
    """mysql://user:pass@vtgate:15306/keyspace?ssl-mode=REQUIRED, as vtgate is reached."""
    url = mariadb.create_database(f"tls_{mode.lower()}") + f"?ssl-mode={mode}"
    if mode != "REQUIRED":
        url += f"&ssl-ca={mariadb.tls_cert}"

    async def cipher() -> str:
        backend = open_backend(url, vitess_shards=["-80", "80-"])
        await backend.connect(1)
        try:
            async with backend.transaction() as tx:
                conn = tx.conn  # type: ignore[attr-defined]
                async with conn.cursor() as cur:
                    await cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                    return str((await cur.fetchone())[1])
        finally:
            await backend.close()

    assert asyncio.run(cipher())  # a cipher: the connection is encrypted


def test_grouping_stays_right_when_the_user_cache_overflows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vitess_shards, "_CACHE_LIMIT", 50)
    shard_map = ShardMap(SHARDS)
    rows = [e.as_row() for e in synthetic_events(2000, users=300)]
    for i in range(0, len(rows), 100):
        groups = shard_map.split(rows[i : i + 100])
        assert sorted(r[0] for g in groups for r in g) == sorted(r[0] for r in rows[i : i + 100])
        for group in groups:
            shard = shard_map.shard_of(int(group[0][5]))
            assert all(shard_map.shard_of(int(r[5])) == shard for r in group)
            assert _owns(shard, keyspace_id(int(group[0][5])).hex())
