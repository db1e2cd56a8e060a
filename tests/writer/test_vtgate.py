"""The writer through a real vtgate into a two-shard keyspace on MySQL 9.7 tablets.

The keyspace was set up by the operator's keyspace Job's own commands (the fixture);
the writer stores as in production: a mysql:// URL to vtgate and the keyspace's shard
list in its settings. What a pool is paid from is checked where it lives: on each
shard's own MySQL, past Vitess.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.retention_days import day, days_of_shares, retain_twice_at_once, us
from harness.vitess_cluster import VitessCluster, set_up_keyspace
from harness.writer import QUEUE, REGISTRY_CHECK, WriterProcess, fill, registry
from sharelog.event import ShareEvent
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events
from stratum_writer.backends import open_backend
from stratum_writer.backends.vitess_shards import ShardMap

SHARDS = ("-80", "80-")


def writer_for(
    cluster: VitessCluster, spool: Path, *args: str, shards: tuple[str, ...] = SHARDS
) -> WriterProcess:
    settings = spool.parent / "writer.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"vitess_shards": list(shards)}))
    return WriterProcess(spool, cluster.url(), *args, config=settings)


def on_each_shard(
    cluster: VitessCluster, shards: tuple[str, ...] = SHARDS
) -> dict[str, dict[str, int]]:
    """Per shard, straight from its MySQL: rows, distinct ids, rollup total, misplaced."""
    shard_map = ShardMap(list(shards))
    found = {}
    for shard in shards:
        keys = cluster.shard_sql(shard, "SELECT shard_key FROM share_events").split()
        rolled = cluster.shard_sql(shard, "SELECT coalesce(sum(accepted + rejected + stale), 0) "
                                          "FROM worker_stats_minute")  # fmt: skip
        distinct = cluster.shard_sql(shard, "SELECT count(DISTINCT share_id) FROM share_events")
        workers, exact, seen = registry(cluster.shard_sql(shard, REGISTRY_CHECK))
        assert workers == exact == seen, (shard, workers, exact, seen)  # a user's, on its shard
        found[shard] = {
            "rows": len(keys),
            "distinct": int(distinct),
            "rolled": int(rolled),
            "misplaced": sum(1 for k in keys if shard_map.shard_of(int(k)) != shard),
        }
    return found


def expected_per_shard(count: int, seed: int = 1) -> Counter[str]:
    shard_map = ShardMap(list(SHARDS))
    return Counter(
        shard_map.shard_of(int(e.as_row()[5])) for e in synthetic_events(count, seed=seed)
    )


def assert_exactly_on_shards(cluster: VitessCluster, count: int, seed: int = 1) -> None:
    found = on_each_shard(cluster)
    wanted = expected_per_shard(count, seed)
    for shard in SHARDS:
        assert found[shard] == {"rows": wanted[shard], "distinct": wanted[shard],
                                "rolled": wanted[shard], "misplaced": 0}, (shard, found)  # fmt: skip
    assert int(cluster.gate_sql("SELECT count(*) FROM share_events")) == count


def test_n_shares_in_n_rows_out_each_on_the_shard_its_hash_says(
    vitess_cluster: VitessCluster, tmp_path: Path
) -> None:
    cluster = vitess_cluster
    fill(tmp_path / "first" / "spool", 20_000)
    # the second spool repeats the first 20,000 (a replay after a lost checkpoint: the
    # writer's slow path, which looks up what is already stored) and adds 5,000 new
    fill(tmp_path / "second" / "spool", 25_000)
    before = cluster.vars()
    for spool in (tmp_path / "first" / "spool", tmp_path / "second" / "spool"):
        writer = writer_for(cluster, spool, "--batch-size", "2000", "--workers", "2").start()
        writer.wait_for(QUEUE, lambda v: v == 0, 120)
        assert writer.terminate() == 0
    after = cluster.vars()
    # vtgate's own account of what the writer ran: every statement on one shard
    assert multi_shard(before, after) == {}
    assert_exactly_on_shards(cluster, 25_000)
    assert all(n > 5000 for n in expected_per_shard(25_000).values()), "both shards took shares"


def multi_shard(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """vtgate's statements (by type and plan) that went to more than one shard each:
    their shard routes outnumber their executions. A connection's session settings
    (``SET time_zone, sql_mode``, once per connection) vtgate applies on every shard;
    they touch no rows and are not counted."""
    out = {}
    for key, executed in after["QueryExecutions"].items():
        if key.startswith("SET."):
            continue
        runs = executed - before["QueryExecutions"].get(key, 0)
        routes = after["QueryRoutes"].get(key, 0) - before["QueryRoutes"].get(key, 0)
        if routes > runs:
            out[key] = (runs, routes)
    return out


def test_tablets_mysql_and_vtgate_killed_mid_stream_lose_nothing(
    vitess_cluster: VitessCluster, tmp_path: Path
) -> None:
    cluster = vitess_cluster
    spool = tmp_path / "spool"
    fill(spool, 40_000, seed=7)
    writer = writer_for(cluster, spool, "--batch-size", "500", "--workers", "2").start()
    writer.wait_for("stratum_writer_inserted_total", lambda v: v > 2000, 60)
    for part, down_s in (("mysql80-", 3.0), ("vttablet80-", 3.0), ("vtgate", 2.0)):
        cluster.kill(part)  # SIGKILL
        time.sleep(down_s)
        assert writer.proc is not None and writer.proc.poll() is None, f"writer died with {part}"
        cluster.start(part)
        if part.startswith("vttablet"):
            cluster.make_primary("80-")
    writer.wait_for(QUEUE, lambda v: v == 0, 240)
    assert writer.proc is not None and writer.proc.poll() is None, "the writer never crashed"
    assert writer.terminate() == 0
    assert_exactly_on_shards(cluster, 40_000, seed=7)


def test_a_half_committed_multi_shard_batch_is_retried_as_duplicates(
    vitess_cluster: VitessCluster,
) -> None:
    """MULTI commits shard by shard: one shard's MySQL gone, the other's part commits;
    the retry of the whole batch meets those rows as duplicates and stores the rest."""
    cluster = vitess_cluster
    rows = [e.as_row() for e in synthetic_events(3000, seed=11)]
    wanted = expected_per_shard(3000, seed=11)

    async def store_twice() -> tuple[str, tuple[int, int]]:
        backend = open_backend(cluster.url(), vitess_shards=list(SHARDS))
        await backend.connect(1)
        try:
            cluster.kill("mysql80-")
            try:
                await backend.store(rows)
                failed = "stored?"
            except Exception as exc:  # the second shard's transaction fails
                failed = f"{type(exc).__name__}: {exc}"
            cluster.start("mysql80-")
            for _ in range(60):  # the tablet reconnects to its MySQL
                try:
                    result = await backend.store(rows)
                    return failed, (result.inserted, result.duplicates)
                except Exception:
                    await asyncio.sleep(1)
            raise AssertionError("the shard never came back")
        finally:
            await backend.close()

    failed, (inserted, duplicates) = asyncio.run(store_twice())
    assert failed != "stored?", "the batch can't commit with a shard down"
    assert (inserted, duplicates) == (wanted["80-"], wanted["-80"]), failed
    assert_exactly_on_shards(cluster, 3000, seed=11)


@pytest.mark.parametrize("mode", ["SINGLE", "MULTI"])
def test_exactly_once_in_either_transaction_mode(
    vitess_cluster: VitessCluster, tmp_path: Path, mode: str
) -> None:
    """One transaction per shard: SINGLE (multi-shard transactions refused) accepts every
    one of them, as MULTI does."""
    cluster = vitess_cluster
    cluster.set_transaction_mode(mode)
    spool = tmp_path / "spool"
    fill(spool, 10_000, seed=3)
    writer = writer_for(cluster, spool, "--batch-size", "1000").start()
    writer.wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.metrics().get("stratum_writer_dead_letters_total", 0) == 0
    assert writer.terminate() == 0
    assert_exactly_on_shards(cluster, 10_000, seed=3)


def test_a_poison_share_is_dead_lettered_with_vtgates_reason_and_replayed(
    vitess_cluster: VitessCluster, tmp_path: Path
) -> None:
    import dataclasses

    from sharelog.spool import SpoolProducer

    cluster = vitess_cluster
    spool = tmp_path / "spool"
    events = list(synthetic_events(2000, seed=5))
    events[777] = dataclasses.replace(events[777], worker="w" * 200)  # longer than its column
    producer = SpoolProducer(spool)
    for e in events:
        producer.append(e)
    producer.close_sync()
    writer = writer_for(cluster, spool, "--batch-size", "500").start()
    writer.wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.metrics()["stratum_writer_dead_letters_total"] == 1
    assert writer.terminate() == 0
    dead = spool / "dead-letters.jsonl"
    (entry,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert re.search(r"Data too long|1406", entry["reason"]), entry["reason"]
    assert "vttablet" in entry["reason"] or "target:" in entry["reason"], "vtgate's own words"
    entry["event"]["worker"] = "w" * 20  # the fix
    dead.write_text(json.dumps(entry) + "\n")
    replayed = writer.run_command("replay", str(dead))
    assert replayed.returncode == 0 and "1 inserted" in replayed.stdout, replayed.stdout
    assert int(cluster.gate_sql("SELECT count(*) FROM share_events")) == 2000


def runbook_commands() -> list[list[str]]:
    """vitess/README.md's resharding block, each command line's words: ``vtctldclient``
    lines' arguments, and the ``stratum-writer`` lines whole."""
    text = (Path(__file__).parents[2] / "vitess" / "README.md").read_text()
    block = text.split("## Resharding", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    prefix = ["vtctldclient", "--server", "$VTCTLD"]
    lines = [shlex.split(line) for line in block.splitlines()
             if line.strip() and not line.strip().startswith("#")]  # fmt: skip
    assert lines and all(argv[:3] == prefix or argv[0] == "stratum-writer" for argv in lines)
    return [argv if argv[0] == "stratum-writer" else argv[3:] for argv in lines]


def _copied(out: str) -> bool:
    streams = [line for line in out.splitlines() if line.startswith("id=")]
    return bool(streams) and all("Status: Running. VStream Lag: 0s" in s for s in streams)


def _compared(out: str) -> bool:
    report: dict[str, Any] = json.loads(out or "{}")
    assert not report.get("HasMismatch"), report
    return bool(report.get("State") == "completed")


# the runbook's "until" lines: polled until what they print says the step is done
_UNTIL = {"status": _copied, "show": _compared}


def test_the_resharding_runbook_splits_a_shard_under_a_running_writer(
    tmp_path: Path,
) -> None:
    """vitess/README.md's Reshard block, run as written on a cluster of its own while a
    writer stores shares through vtgate: a spool fed throughout, the writer grouping by
    the old shards through the switch, then restarted with the new list (step 3)."""
    cluster = VitessCluster()
    try:
        set_up_keyspace(cluster, tmp_path / "keyspace")
        events = list(synthetic_events(24_000, seed=11))
        producer = SpoolProducer(tmp_path / "w" / "spool")
        fed = threading.Event()

        def feed(batch: list[ShareEvent]) -> None:
            for i, e in enumerate(batch):
                producer.append(e)
                if i % 200 == 199:
                    producer.flush_sync()
                    time.sleep(0.4)  # ~500 shares/s, for as long as the runbook takes
            producer.flush_sync()
            fed.set()

        feeder = threading.Thread(target=feed, args=(events[:20_000],), daemon=True)
        writer = writer_for(cluster, tmp_path / "w" / "spool", "--batch-size", "500").start()
        feeder.start()
        cluster.add_shards("-40", "40-80")  # step 1: the new shards' primaries
        schema = Path(__file__).parents[2] / "vitess" / "schema.sql"
        for step in runbook_commands():
            argv = [str(schema) if a == "schema.sql" else a for a in step]
            if "SwitchTraffic" in argv or argv[0] == "stratum-writer":
                # the runbook's prose: vtgate serves the new primaries first
                assert not fed.is_set(), "the writer must be storing through the switch"
                deadline = time.monotonic() + 60
                while not cluster.gate_serves():
                    assert time.monotonic() < deadline, "vtgate never saw the new primaries"
                    time.sleep(1)
            if argv[0] == "stratum-writer":  # with the migration's credentials: ours
                out = writer.run_command(*argv[1:])
                assert out.returncode == 0, out.stderr
                continue
            done = _UNTIL.get(argv[5] if argv[0] in ("Reshard", "VDiff") else "")
            deadline = time.monotonic() + 120
            while True:
                out = cluster.ctl(*argv, check=done is None and argv[0] != "GetWorkflows")
                if (done is None and out.returncode == 0) or (done and done(out.stdout)):
                    break
                assert time.monotonic() < deadline, (argv, out.stdout, out.stderr[-2000:])
                time.sleep(1)
        feeder.join(120)
        assert fed.is_set()
        writer.wait_for(QUEUE, lambda v: v == 0, 120)
        assert writer.terminate() == 0
        # step 3: the writers' new configuration; the last shares go by the new shards
        new = ("-40", "40-80", "80-")
        for e in events[20_000:]:
            producer.append(e)
        producer.close_sync()
        before = cluster.vars()
        writer = writer_for(cluster, tmp_path / "w" / "spool", shards=new).start()
        writer.wait_for(QUEUE, lambda v: v == 0, 120)
        assert multi_shard(before, cluster.vars()) == {}
        assert writer.metrics().get("stratum_writer_dead_letters_total", 0) == 0
        assert writer.terminate() == 0
        found = on_each_shard(cluster, new)
        for shard in new:  # the copy landed in partitions made while the shard was empty
            assert any(p.startswith("p_before_") for p in cluster.partitions(shard)), shard
        shard_map = ShardMap(list(new))
        wanted = Counter(shard_map.shard_of(int(e.as_row()[5])) for e in events)
        for shard in new:
            assert found[shard] == {"rows": wanted[shard], "distinct": wanted[shard],
                                    "rolled": wanted[shard], "misplaced": 0}, (shard, found)  # fmt: skip
        assert int(cluster.gate_sql("SELECT count(*) FROM share_events")) == len(events)
        assert not (tmp_path / "w" / "spool" / "dead-letters.jsonl").exists()
    finally:
        cluster.stop()


def test_retention_through_vtgate_drops_whole_days_shard_by_shard(
    vitess_cluster: VitessCluster, tmp_path: Path
) -> None:
    """retain through vtgate: each shard's expired days dropped whole on that shard
    (vtgate's shard targeting), its days ahead made, expired rollups and idle workers
    deleted there, the rest untouched, with a writer storing a newer day meanwhile; a
    second run at once waits its turn or finds nothing left."""
    cluster = vitess_cluster
    old, new = days_of_shares(0, 3, 1500), days_of_shares(4, 4, 3000)
    for spool, events in (("old", old), ("new", new)):
        producer = SpoolProducer(tmp_path / spool / "spool")
        for e in events:
            producer.append(e)
        producer.close_sync()
    first = writer_for(cluster, tmp_path / "old" / "spool").start()
    first.wait_for(QUEUE, lambda v: v == 0, 120)
    assert first.terminate() == 0
    writer = writer_for(cluster, tmp_path / "new" / "spool", "--batch-size", "200").start()
    reports = retain_twice_at_once(writer, day(4), shares=2, rollups=3)
    writer.wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.terminate() == 0
    dropped = {p for r in reports for p in r["partitions_dropped"]}
    made = {p for r in reports for p in r["partitions_created"]}
    for shard in SHARDS:  # days 0 and 1 dropped whole on each shard, the days ahead made
        assert {f"{shard}/p{day(n):%Y%m%d}" for n in (0, 1)} <= dropped, dropped
        assert f"{shard}/p{day(6):%Y%m%d}" in made, made
        left = cluster.partitions(shard)
        assert f"p{day(2):%Y%m%d}" in left and f"p{day(1):%Y%m%d}" not in left, left
    kept = [e for e in [*old, *new] if e.submitted_at >= us(day(2, 0))]
    shard_map = ShardMap(list(SHARDS))
    wanted = Counter(shard_map.shard_of(int(e.as_row()[5])) for e in kept)
    for shard in SHARDS:
        count = int(cluster.shard_sql(shard, "SELECT count(*) FROM share_events"))
        assert count == wanted[shard], (shard, count)
    assert int(cluster.gate_sql("SELECT count(*) FROM share_events")) == len(kept) == 6000
    rolled = int(
        cluster.gate_sql("SELECT sum(accepted + rejected + stale) FROM worker_stats_minute")
    )
    assert rolled == 7500  # days 1 to 4: rollups keep three days


def test_migrate_partitions_every_shard_and_down_undoes_it(
    vitess_cluster: VitessCluster, tmp_path: Path
) -> None:
    """Migration 0003 can't run through vtgate: ``migrate`` partitions each shard itself,
    ``migrate --down 1`` takes the partitions away again (the rows stay), and ``migrate``
    puts them back; the writer stores exactly once throughout."""
    cluster = vitess_cluster
    writer = writer_for(cluster, tmp_path / "spool")
    assert all(cluster.partitions(shard) for shard in SHARDS)
    fill(tmp_path / "spool", 2000)
    writer.start().wait_for(QUEUE, lambda v: v == 0, 120)
    assert writer.terminate() == 0
    down = writer.run_command("migrate", "--down", "1")
    assert down.returncode == 0, down.stderr
    assert all(cluster.partitions(shard) == [] for shard in SHARDS)
    up = writer.run_command("migrate")
    assert up.returncode == 0, up.stderr
    for shard in SHARDS:
        assert any(p.startswith("p_before_") for p in cluster.partitions(shard))
    assert_exactly_on_shards(cluster, 2000)
