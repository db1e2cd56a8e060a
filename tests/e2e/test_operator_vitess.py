"""Backend ``vitess`` against the real control plane: the keyspace Job gates the schema
migration and the proxies, and a VitessCluster (planetscale.com/v2, a minimal CRD of our
own) is detected, required or patched, and waited for.

As elsewhere there is no kubelet: the tests finish Job pods, and play the vitess-operator
by writing the VitessCluster's status.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.kubernetes import ControlPlane
from harness.stratum_pools import (
    condition,
    events,
    finish_job_pod,
    jobs,
    migrated,
    pool,
    secret,
    status,
)

MANIFESTS = Path(__file__).parent / "manifests"
VTCTLD = "vtctld.vitess.svc:15999"


def vitess_pool(name: str, ns: str, keyspace: str, **vitess: Any) -> dict[str, Any]:
    return pool(name, ns, persistence={"backend": "vitess", "databaseUrlSecret": {"name": "db"}},
                vitess={"keyspace": keyspace, "vtctldAddress": VTCTLD, **vitess})  # fmt: skip


def db_secret(ns: str) -> dict[str, Any]:
    return secret(ns, "mysql://app:pw@vtgate.vitess.svc:15306/shares?ssl-mode=REQUIRED")


def steps(job: dict[str, Any]) -> list[str]:
    pod = job["spec"]["template"]["spec"]
    return [c["name"] for c in [*pod["initContainers"], *pod["containers"]]]


def test_the_keyspace_job_runs_first_then_migration_then_proxies(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(db_secret(ns))
    cp.apply(vitess_pool("main", ns, "shares", shards=["-40", "40-80", "80-c0", "c0-"]))
    (job,) = cp.wait("the keyspace Job", lambda: jobs(cp, ns, "vitess-keyspace"), 30)
    assert job["metadata"]["name"].startswith("main-vitess-")
    assert steps(job) == ["export", "create-keyspace", "apply-schema", "apply-vschema",
                          "get-vschema", "verify"]  # fmt: skip
    create = job["spec"]["template"]["spec"]["initContainers"][1]
    assert create["command"][-3:] == ["CreateKeyspace", "--force", "shares"]
    assert VTCTLD in create["command"]
    assert condition(cp, "main", ns, "KeyspaceReady")["status"] == "False"
    cp.wait("phase Keyspace", lambda: status(cp, "main", ns).get("phase") == "Keyspace", 20)
    assert not jobs(cp, ns, "migration"), "no migration before the keyspace is ready"

    finish_job_pod(cp, ns, job["metadata"]["name"], 0)
    cp.wait("KeyspaceReady", lambda: condition(cp, "main", ns, "KeyspaceReady").get("status")
            == "True", 40)  # fmt: skip
    migrated(cp, "main", ns)
    cp.wait("the StatefulSet", lambda: cp.get("statefulset", "main-proxy", ns), 30)
    writer = json.loads(cp.get("configmap", "main-config", ns)["data"]["writer.json"])  # type: ignore[index]
    assert writer["vitess_shards"] == ["-40", "40-80", "80-c0", "c0-"]
    assert status(cp, "main", ns)["keyspace"]["ready"] is True
    reasons = {e["reason"] for e in events(cp, ns)}
    assert {"KeyspaceStarted", "KeyspaceSucceeded"} <= reasons


def test_a_failed_keyspace_job_is_reported_and_blocks_the_schema(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(db_secret(ns))
    cp.apply(vitess_pool("bad", ns, "shares"))
    (job,) = cp.wait("the keyspace Job", lambda: jobs(cp, ns, "vitess-keyspace"), 30)
    said = "VSchema of keyspace shares differs from the one this writer ships"
    finish_job_pod(cp, ns, job["metadata"]["name"], 1, said)  # verify: another VSchema
    cp.wait("KeyspaceFailed", lambda: condition(cp, "bad", ns, "KeyspaceReady").get("reason")
            == "KeyspaceFailed", 40)  # fmt: skip
    message = condition(cp, "bad", ns, "KeyspaceReady")["message"]
    assert said in message and "next attempt at" in message, message
    assert cp.get("job", job["metadata"]["name"], ns) is not None, "kept for its logs"
    assert status(cp, "bad", ns)["phase"] == "KeyspaceFailed"
    assert not jobs(cp, ns, "migration") and cp.get("statefulset", "bad-proxy", ns) is None


def vitess_cluster(ns: str) -> dict[str, Any]:
    template = {"tabletPools": [{"cell": "zone1", "type": "replica", "replicas": 2,
                                 "vttablet": {}, "mysqld": {}, "dataVolumeClaimTemplate": {}}]}  # fmt: skip
    return {"apiVersion": "planetscale.com/v2", "kind": "VitessCluster",
            "metadata": {"name": "vc", "namespace": ns},
            "spec": {"keyspaces": [{"name": "existing", "durabilityPolicy": "semi_sync",
                                    "partitionings": [{"equal": {"parts": 2,
                                                                 "shardTemplate": template}}]}]}}  # fmt: skip


def set_keyspace_status(cp: ControlPlane, ns: str, keyspace: str, ready: int) -> None:
    """Play the vitess-operator: report the keyspace's shards."""
    cp.request("PATCH", f"/apis/planetscale.com/v2/namespaces/{ns}/vitessclusters/vc/status",
               {"status": {"keyspaces": {keyspace: {"desiredShards": 2, "readyShards": ready}}}},
               "application/merge-patch+json")  # fmt: skip


def test_a_vitess_cluster_is_required_patched_and_waited_for(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.kubectl("apply", "-f", str(MANIFESTS / "vitessclusters.planetscale.com.yaml"))
    cp.wait("the VitessCluster CRD", lambda: "vitessclusters" in cp.kubectl(
        "api-resources", "--api-group=planetscale.com", check=False), 30)  # fmt: skip
    cp.apply(db_secret(ns))
    cp.apply(vitess_pool("nocluster", ns, "shares", vitessCluster="missing"))
    cp.wait("VitessClusterMissing", lambda: condition(cp, "nocluster", ns, "Degraded").get(
        "reason") == "VitessClusterMissing", 30)  # fmt: skip
    assert status(cp, "nocluster", ns)["phase"] == "Blocked"

    cp.apply(vitess_cluster(ns))
    cp.apply(vitess_pool("main", ns, "shares", vitessCluster="vc"))
    cp.wait("KeyspaceNotDeclared", lambda: condition(cp, "main", ns, "Degraded").get("reason")
            == "KeyspaceNotDeclared", 30)  # fmt: skip
    message = condition(cp, "main", ns, "Degraded")["message"]
    assert "prunes keyspaces" in message and "patchVitessCluster" in message
    assert not jobs(cp, ns, "vitess-keyspace"), "no keyspace created behind its operator's back"

    cp.apply(vitess_pool("main", ns, "shares", vitessCluster="vc", patchVitessCluster=True))
    declared = cp.wait("the keyspace declared in the VitessCluster", lambda: [
        k for k in cp.get("vitesscluster", "vc", ns)["spec"]["keyspaces"]  # type: ignore[index]
        if k["name"] == "shares"], 30)  # fmt: skip
    equal = declared[0]["partitionings"][0]["equal"]
    assert equal["parts"] == 2 and equal["shardTemplate"]["tabletPools"][0]["replicas"] == 2
    assert declared[0]["durabilityPolicy"] == "semi_sync"
    cp.wait("waiting for the cluster", lambda: condition(cp, "main", ns, "KeyspaceReady").get(
        "reason") == "WaitingForVitessCluster", 30)  # fmt: skip
    assert any(e["reason"] == "VitessClusterPatched" for e in events(cp, ns))

    set_keyspace_status(cp, ns, "shares", ready=1)
    assert "1/2 shards ready" in cp.wait("the shard count", lambda: (
        m := condition(cp, "main", ns, "KeyspaceReady").get("message", "")) and "1/2" in m and m, 30)  # fmt: skip
    assert not jobs(cp, ns, "vitess-keyspace")
    set_keyspace_status(cp, ns, "shares", ready=2)
    (job,) = cp.wait("the keyspace Job", lambda: jobs(cp, ns, "vitess-keyspace"), 30)
    assert steps(job) == ["export", "apply-schema", "apply-vschema", "get-vschema", "verify"]
    assert status(cp, "main", ns)["vitessCluster"] == "vc"


def test_a_vitess_cluster_declaring_the_keyspace_is_found_without_being_named(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.kubectl("apply", "-f", str(MANIFESTS / "vitessclusters.planetscale.com.yaml"))
    cp.apply(db_secret(ns))
    cp.apply(vitess_cluster(ns))
    set_keyspace_status(cp, ns, "existing", ready=2)
    cp.apply(vitess_pool("found", ns, "existing"))
    (job,) = cp.wait("the keyspace Job", lambda: jobs(cp, ns, "vitess-keyspace"), 30)
    assert "create-keyspace" not in steps(job)
    # the status is written once the pass that made the Job ends
    cp.wait(
        "the cluster in status", lambda: status(cp, "found", ns).get("vitessCluster") == "vc", 20
    )
