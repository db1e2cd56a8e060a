"""The Vitess keyspace Job, run step by step for real against vtctld (etcd topology).

What a pool operator relies on: the Job creates the keyspace (or leaves it to the
VitessCluster that manages it), applies our VSchema, proves Vitess holds it, and can be
run again without harm. Vitess's own code also checks our schema and VSchema.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.databases import MariaDBServer
from harness.job_pod import Step, run_job_pod
from harness.kubernetes import ROOT
from harness.vitess import Vtctld, vitess_check
from harness.vitess_cluster import VitessCluster, run_keyspace_job
from stratum_operator.builders import desired_objects
from stratum_operator.images import release_image
from stratum_operator.spec import VTCTLDCLIENT_IMAGE, parse_spec
from stratum_writer.aggregates import AGGREGATES
from stratum_writer.vitess_keyspace import vschema_differences

NO_TABLETS = "does not contain any primary tablets"  # ApplySchema on vtctld alone


def vitess_spec(vtctld: str, keyspace: str, **vitess: Any) -> Any:
    return parse_spec({
        "upstreams": ["stratum+tcp://pool.example:3333"],
        "persistence": {"backend": "vitess", "databaseUrlSecret": {"name": "db"}},
        "vitess": {"keyspace": keyspace, "vtctldAddress": vtctld, **vitess},
    })  # fmt: skip


def run(job: dict[str, Any], vtctld: Vtctld, volumes: Path) -> dict[str, Step]:
    writer = shutil.which("stratum-writer", path=str(Path(sys.executable).parent))
    assert writer, "stratum-writer is not installed in the venv"
    steps = run_job_pod(
        job,
        {release_image("writer"): [writer]},
        volumes,
        path=[vtctld.bin],
        may_fail=frozenset({"apply-schema"}),
    )
    return {s.name: s for s in steps}


def keyspace_job(vtctld: Vtctld, keyspace: str, *, managed: bool = False) -> dict[str, Any]:
    children = desired_objects("main", "pools", vitess_spec(vtctld.address, keyspace),
                               vitess_managed=managed)  # fmt: skip
    assert children.keyspace is not None
    return children.keyspace


def test_the_keyspace_job_creates_the_keyspace_and_applies_our_vschema(
    vtctld: Vtctld, tmp_path: Path
) -> None:
    job = keyspace_job(vtctld, "shares")
    steps = run(job, vtctld, tmp_path / "first")
    assert list(steps) == ["export", "create-keyspace", "apply-schema", "apply-vschema",
                           "get-vschema", "verify"]  # fmt: skip
    for name in ("export", "create-keyspace", "apply-vschema", "get-vschema", "verify"):
        assert steps[name].returncode == 0, (name, steps[name].stderr[-1500:])
    assert "VSchema verified" in steps["verify"].stdout
    # the schema step's exact command; it reaches vtctld, which has no tablet to apply to
    assert steps["apply-schema"].argv == [
        "vtctldclient", "--server", vtctld.address, "--action-timeout=2m",
        "ApplySchema", "--sql-file", "/var/run/stratum-vitess/schema.sql", "shares",
    ]  # fmt: skip
    assert NO_TABLETS in steps["apply-schema"].stderr
    # what Vitess holds is what the repository ships
    got = json.loads(vtctld.client("GetVSchema", "shares").stdout)
    assert got["sharded"] is True
    # every table by shard_key: the migration history too (vtgate can't insert into a
    # pinned table), with its constant key
    assert {t: v["column_vindexes"][0]["column"] for t, v in got["tables"].items()} == {
        "share_events": "shard_key", "worker_stats_minute": "shard_key",
        "workers": "shard_key", "schema_migrations": "shard_key"}  # fmt: skip
    assert got["vindexes"]["hash"]["type"] == "hash"

    again = run(job, vtctld, tmp_path / "second")  # a re-run (a retried pod) is a no-op
    assert [s.returncode for n, s in again.items() if n != "apply-schema"] == [0] * 5


def test_the_job_name_follows_what_it_applies(vtctld: Vtctld) -> None:
    first = keyspace_job(vtctld, "shares")
    assert first["metadata"]["name"] == keyspace_job(vtctld, "shares")["metadata"]["name"]
    assert first["metadata"]["name"] != keyspace_job(vtctld, "other")["metadata"]["name"]
    spec = first["spec"]
    assert spec["backoffLimit"] > 0 and spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    images = {c["image"] for c in spec["template"]["spec"]["initContainers"]}
    assert images == {release_image("writer"), VTCTLDCLIENT_IMAGE}


def test_under_a_vitess_cluster_the_job_never_creates_the_keyspace(vtctld: Vtctld) -> None:
    job = keyspace_job(vtctld, "managed", managed=True)
    names = [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]]
    assert names == ["export", "apply-schema", "apply-vschema", "get-vschema"]
    assert job["metadata"]["name"] != keyspace_job(vtctld, "managed")["metadata"]["name"]


def test_a_keyspace_holding_another_vschema_fails_the_job(vtctld: Vtctld, tmp_path: Path) -> None:
    job = keyspace_job(vtctld, "drifted")
    assert run(job, vtctld, tmp_path / "ok")["verify"].returncode == 0
    other = tmp_path / "other.json"
    vschema = json.loads((ROOT / "vitess" / "vschema.json").read_text())
    vschema["tables"]["share_events"]["column_vindexes"][0]["column"] = "share_id"
    other.write_text(json.dumps(vschema))
    assert vtctld.client("ApplyVSchema", "--vschema-file", str(other), "drifted").returncode == 0
    pod = job["spec"]["template"]["spec"]
    only_check = {**job, "spec": {**job["spec"], "template": {"spec": {
        **pod, "initContainers": [c for c in pod["initContainers"]
                                  if c["name"] in ("export", "get-vschema")]}}}}  # fmt: skip
    verify = run(only_check, vtctld, tmp_path / "drifted")["verify"]
    assert verify.returncode == 1
    assert "tables.share_events.column_vindexes" in verify.stderr


def test_the_exported_schema_is_what_mariadb_runs_and_reruns(
    mariadb: MariaDBServer, vtctld: Vtctld, tmp_path: Path
) -> None:
    """The schema's SQL on MariaDB too, twice, as a retried Job would apply it (on real
    tablets it runs in test_the_keyspace_job_sets_up_real_tablets_and_can_run_again)."""
    run(keyspace_job(vtctld, "sqlcheck"), vtctld, tmp_path)
    sql = (tmp_path / "work" / "schema.sql").read_text()
    mariadb.create_database("vitess_sql")
    for _ in range(2):
        mariadb.sql(sql, "vitess_sql")
    tables = mariadb.sql("SHOW TABLES", "vitess_sql").split()
    ours = ["schema_migrations", "share_events", *(a.table for a in AGGREGATES)]
    assert sorted(tables) == sorted(ours)


def test_vitess_accepts_our_schema_and_vschema(tmp_path: Path) -> None:
    found = vitess_check("schema", str(ROOT / "vitess" / "schema.sql"),
                         str(ROOT / "vitess" / "vschema.json"))  # fmt: skip
    assert found["problems"] is None or found["problems"] == []
    assert found["tables"]["share_events"]["shard_key"] == {"type": "bigint", "not_null": True}
    broken = json.loads((ROOT / "vitess" / "vschema.json").read_text())
    broken["tables"]["worker_stats_minute"]["column_vindexes"][0]["column"] = "user_id"
    broken["vindexes"]["hash"]["type"] = "no_such_vindex"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    problems = vitess_check("schema", str(ROOT / "vitess" / "schema.sql"),
                            str(tmp_path / "broken.json"))["problems"]  # fmt: skip
    assert any("user_id is not a column" in p for p in problems)
    assert any("no_such_vindex" in p for p in problems)


@pytest.mark.parametrize("shards", [["-80", "80-"], ["-40", "40-80", "80-c0", "c0-"]])
def test_the_writer_gets_the_keyspaces_shards(shards: list[str]) -> None:
    s = vitess_spec("vtctld:15999", "shares", shards=shards)
    config = desired_objects("main", "pools", s).config
    assert json.loads(config["data"]["writer.json"])["vitess_shards"] == shards


def test_the_keyspace_job_sets_up_real_tablets_and_can_run_again(
    vitess_rig: VitessCluster, tmp_path: Path
) -> None:
    """On a real cluster (two shards, each a PRIMARY tablet on MySQL 9.7): every step,
    ApplySchema too, succeeds; the tables are on each shard's MySQL; Vitess holds the
    VSchema the writer ships; and a second run changes nothing and fails nothing."""
    first = vitess_rig.keyspace_steps
    assert [(n, s.returncode) for n, s in first.items()] == [
        ("export", 0), ("create-keyspace", 0), ("apply-schema", 0), ("apply-vschema", 0),
        ("get-vschema", 0), ("verify", 0)]  # fmt: skip
    for shard in vitess_rig.shards:
        tables = set(vitess_rig.shard_sql(shard, "SHOW TABLES").split())
        assert {"share_events", "worker_stats_minute", "schema_migrations"} <= tables, shard
    shipped = json.loads((ROOT / "vitess" / "vschema.json").read_text())
    held = json.loads(vitess_rig.ctl("GetVSchema", vitess_rig.keyspace).stdout)
    assert vschema_differences(shipped, held) == []
    again = run_keyspace_job(vitess_rig, tmp_path / "again")
    assert all(s.returncode == 0 for s in again.values()), {
        n: s.stderr[-500:] for n, s in again.items() if s.returncode}  # fmt: skip
