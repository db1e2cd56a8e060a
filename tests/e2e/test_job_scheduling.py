"""A drain Job placed by the real kube-scheduler: its claim's local volume is on a tainted
node, so only a Job that takes the pool's tolerations can run there and empty it.

A control plane of its own with a scheduler and two fake Nodes (no kubelet: a Node is
an object the scheduler reads), so nothing else in the session is placed on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness.kubernetes import ControlPlane
from stratum_operator.builders import naming
from stratum_operator.builders.drain import build_drain_job
from stratum_operator.spec import parse_spec

NS = "farm"
TAINT = {"key": "dedicated", "value": "mining", "effect": "NoSchedule"}
MINERS = {"pool": "miners"}


@pytest.fixture
def scheduled_plane() -> Iterator[ControlPlane]:
    cp = ControlPlane()
    try:
        cp.start_scheduler()
        cp.add_node("mining-node", MINERS, taints=[TAINT])
        cp.add_node("spare-node", MINERS)  # room, and the pool's label, but not the volume
        cp.kubectl("create", "namespace", NS)
        yield cp
    finally:
        cp.stop()


def local_claim(cp: ControlPlane, claim: str, node: str) -> str:
    """A claim bound to a local volume on ``node``; its uid."""
    cp.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": claim},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                       "storageClassName": "local", "local": {"path": "/var/spool/miners"},
                       "claimRef": {"namespace": NS, "name": claim},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/hostname", "operator": "In",
                            "values": [node]}]}]}}}})  # fmt: skip
    cp.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
              "metadata": {"name": claim, "namespace": NS,
                           "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
              "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                       "volumeName": claim, "resources": {"requests": {"storage": "1Gi"}}}})  # fmt: skip
    found = cp.get("pvc", claim, NS)
    assert found is not None
    return str(found["metadata"]["uid"])


def drain_pod(cp: ControlPlane, job: str) -> dict[str, Any]:
    out = cp.kubectl("get", "pods", "-n", NS, "-l", f"batch.kubernetes.io/job-name={job}",
                     "-o", "json")  # fmt: skip
    pods = json.loads(out)["items"]
    return dict(pods[0]) if pods else {}


def scheduled(pod: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in pod.get("status", {}).get("conditions", [])
                 if c["type"] == "PodScheduled"), {})  # fmt: skip


def test_a_drain_job_runs_on_the_tainted_node_its_volume_is_on(
    scheduled_plane: ControlPlane,
) -> None:
    cp = scheduled_plane
    base: dict[str, Any] = {"upstreams": ["stratum+tcp://p:1"],
                            "persistence": {"backend": "postgres",
                                            "databaseUrlSecret": {"name": "db"}}}  # fmt: skip
    pools = {
        "tolerant": parse_spec({**base, "podTemplate": {"nodeSelector": MINERS,
                                                        "tolerations": [TAINT]}}),
        "plain": parse_spec(base),  # as every drain Job was before: nothing of the pool's
    }  # fmt: skip
    jobs = {}
    for name, spec in pools.items():
        claim = naming.claim_name(name, 1)
        uid = local_claim(cp, claim, "mining-node")
        job = build_drain_job(name, NS, spec, ordinal=1, claim=claim, claim_uid=uid)
        cp.apply(job)
        jobs[name] = job["metadata"]["name"]
    placed = cp.wait("the tolerant drain pod placed", lambda: drain_pod(
        cp, jobs["tolerant"]).get("spec", {}).get("nodeName"), 60)  # fmt: skip
    assert placed == "mining-node", "where its volume is, past the taint"
    refused = cp.wait("the plain drain pod refused", lambda: scheduled(
        drain_pod(cp, jobs["plain"])).get("reason") == "Unschedulable" and drain_pod(
        cp, jobs["plain"]), 60)  # fmt: skip
    assert not refused["spec"].get("nodeName")
    assert "untolerated taint" in scheduled(refused)["message"], scheduled(refused)
