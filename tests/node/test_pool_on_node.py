"""The product on a real node: what a pool operator does first, done by real pods.

`helm install` runs the operator as a pod of our image with the chart's ServiceAccount and
RBAC; a StratumPool on PostgreSQL (a server on the host, at the node's gateway) runs its
migration Job's pod and its StatefulSet's pods on claims the local-path provisioner
binds, in a namespace that enforces the ``restricted`` Pod Security profile; miners
mine through the pool's NodePort (kube-proxy); the database holds every share they were
told of, once; and what a person reads (``kubectl stratum status``, ``kubectl get sp``,
``kubectl logs``, ``kubectl describe``) says so. ``helm test`` passes on the node, and a
``backend: sqlite`` pool runs as one pod writing its database on its claim. One node for
the module: it takes seconds to start, our images seconds to import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.databases import Database, PodAccess, PostgresServer, db_verdicts, sqlite_query
from harness.images import build_images
from harness.kubernetes import ROOT
from harness.node import RealNode
from harness.node.plane import NodeControlPlane
from harness.node.runtime import archive_images
from harness.sim import SimLoop, answers
from harness.stratum_pools import jobs, pool, proxy_pods, secret, status
from stratum_operator.builders import naming

CHART = ROOT / "charts" / "stratum-operator"
RELEASE = "stratum-operator"
RELEASE_NAMESPACE = "stratum-system"
NAMESPACE = "miners"
SQLITE_NAMESPACE = "lite"


def restricted_namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}  # fmt: skip


def helm(plane: NodeControlPlane, *args: str) -> str:
    out = subprocess.run([str(plane.bin / "helm"), *args, "--kubeconfig", str(plane.kubeconfig)],
                         capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert out.returncode == 0, f"helm {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def kubectl_stratum(plane: NodeControlPlane, *args: str) -> str:
    """As a person types it: kubectl finds kubectl-stratum on PATH and runs it."""
    path = os.pathsep.join([str(Path(sys.executable).parent), str(plane.bin), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "KUBECONFIG": str(plane.kubeconfig)}
    out = subprocess.run(["kubectl", "stratum", *args], env=env, capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def product_archives() -> list[Path]:
    """Our proxy, writer and operator images (``make images``), as archives a node imports;
    built before the node starts, which may take minutes the first time."""
    built = build_images()
    archived = archive_images(*built.values())
    return [archived[image.split("/")[-1].split(":")[0]][1] for image in built.values()]


@pytest.fixture(scope="module")
def node(product_archives: list[Path]) -> Iterator[RealNode]:
    real = RealNode()
    try:
        real.import_images(product_archives)
        yield real
    finally:
        real.stop()


@pytest.fixture(scope="module")
def plane(node: RealNode) -> NodeControlPlane:
    """The chart installed, the operator's pod running: what ``helm install --wait`` waits for."""
    assert node.plane is not None
    node.plane.apply(restricted_namespace(RELEASE_NAMESPACE))
    helm(node.plane, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--wait",
         "--timeout", "300s")  # fmt: skip
    return node.plane


@pytest.fixture(scope="module")
def postgres(node: RealNode) -> Iterator[PostgresServer]:
    server = PostgresServer(pods=PodAccess(node.network.gateway, str(node.network.pod_cidr)))
    yield server
    server.kill()  # the pool's writers, still running, hold sessions a SIGTERM would wait for
    server.destroy()


def test_the_first_five_minutes_of_a_pool_operator(
    plane: NodeControlPlane, node: RealNode, postgres: PostgresServer, sim: SimLoop
) -> None:
    gateway = node.network.gateway
    plane.apply(restricted_namespace(NAMESPACE))
    postgres.create_database("shares")
    plane.apply(secret(NAMESPACE, postgres.url_for_pods("shares")))
    _, upstream = sim.pool(host=gateway)
    plane.apply(pool("first", NAMESPACE, upstreams=[upstream],
                     proxy={"replicas": 2, "serviceType": "NodePort"},
                     retention={"enabled": False}))  # fmt: skip
    plane.wait("the pool Ready", lambda: status(plane, "first", NAMESPACE).get("phase") == "Ready",
               timeout=300)  # fmt: skip

    # the migration Job's pod ran in the kubelet, and the pods' claims were provisioned
    migration = jobs(plane, NAMESPACE, "migration")
    assert [j["status"].get("succeeded") for j in migration] == [1]
    claims = json.loads(plane.kubectl("get", "pvc", "-n", NAMESPACE, "-o", "json"))["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == [
        f"spool-{naming.proxy_name('first')}-{i}" for i in range(2)]  # fmt: skip
    assert {(c["status"]["phase"], c["spec"]["storageClassName"]) for c in claims} == {
        ("Bound", "local-path")}  # fmt: skip

    # miners at the node's address, through the Service's NodePort
    service = plane.get("service", naming.service_name("first"), NAMESPACE)
    assert service is not None
    node_port = service["spec"]["ports"][0]["nodePort"]
    stats = sim.fleet(node_port, miners=8, shares_per_s=40, duration=6, host=gateway).result(90)
    heard = answers(stats)
    submitted = sum(s.submitted for s in stats)
    assert submitted > 100 and sum(heard.values()) == submitted, "every submit got an answer"

    db = Database("postgres", postgres.url("shares"), lambda q: postgres.psql(q, "shares"))
    plane.wait("every share stored", lambda: db.scalar("SELECT count(*) FROM share_events")
               >= submitted, timeout=120)  # fmt: skip
    assert db.scalar("SELECT count(*) FROM share_events") == submitted
    assert db.scalar("SELECT count(DISTINCT share_id) FROM share_events") == submitted
    assert db_verdicts(db) == heard, "the database says what the miners were told"

    _tools_tell_the_truth(plane, upstream)


def test_helm_test_passes_on_the_node(plane: NodeControlPlane) -> None:
    """The chart's test pod, as the operator's ServiceAccount, reaches the operator by its
    Service's name (cluster DNS, then kube-proxy)."""
    out = helm(plane, "test", RELEASE, "--namespace", RELEASE_NAMESPACE, "--timeout", "180s")
    assert re.search(r"Phase:\s+Succeeded", out), out


def test_a_sqlite_pool_is_one_real_pod_storing_on_its_claim(
    plane: NodeControlPlane, node: RealNode, sim: SimLoop
) -> None:
    """``backend: sqlite``: one pod, its writer migrating and writing the database file
    beside the spool, on the pod's claim (a directory on this host)."""
    gateway = node.network.gateway
    plane.apply(restricted_namespace(SQLITE_NAMESPACE))
    _, upstream = sim.pool(host=gateway)
    plane.apply(pool("lite", SQLITE_NAMESPACE, upstreams=[upstream],
                     persistence={"backend": "sqlite"}, proxy={"serviceType": "NodePort"},
                     retention={"enabled": False}))  # fmt: skip
    plane.wait("the pool Ready", lambda: status(plane, "lite", SQLITE_NAMESPACE).get("phase")
               == "Ready", timeout=300)  # fmt: skip
    assert len(proxy_pods(plane, "lite", SQLITE_NAMESPACE)) == 1
    service = plane.get("service", naming.service_name("lite"), SQLITE_NAMESPACE)
    assert service is not None
    node_port = service["spec"]["ports"][0]["nodePort"]
    stats = sim.fleet(node_port, miners=4, shares_per_s=20, duration=4, host=gateway).result(90)
    heard = answers(stats)
    submitted = sum(s.submitted for s in stats)
    assert submitted > 40 and sum(heard.values()) == submitted

    claim = plane.get("pvc", f"spool-{naming.proxy_name('lite')}-0", SQLITE_NAMESPACE)
    assert claim is not None
    volume = plane.get("pv", claim["spec"]["volumeName"], "")
    assert volume is not None
    path = Path(volume["spec"]["hostPath"]["path"]) / "shares.db"
    db = Database("sqlite", f"sqlite:///{path}", sqlite_query(path))
    plane.wait("every share stored", lambda: path.exists() and db.scalar(
        "SELECT count(*) FROM share_events") >= submitted, timeout=120)  # fmt: skip
    assert db.scalar("SELECT count(*) FROM share_events") == submitted
    assert db.scalar("SELECT count(DISTINCT share_id) FROM share_events") == submitted
    assert db_verdicts(db) == heard


def _tools_tell_the_truth(plane: NodeControlPlane, upstream: str) -> None:
    shown = kubectl_stratum(plane, "status", "first", "-n", NAMESPACE)
    assert "Phase:           Ready" in shown, shown
    listed = plane.kubectl("get", "sp", "-n", NAMESPACE).splitlines()
    assert listed[0].split()[:3] == ["NAME", "PHASE", "READY"]
    assert listed[1].split()[:3] == ["first", "Ready", "2/2"], listed
    pod = f"{naming.proxy_name('first')}-0"
    logs = plane.kubectl("logs", "-n", NAMESPACE, pod, "-c", "proxy")
    assert "serving miners on :3333" in logs and upstream in logs, logs
    described = plane.kubectl("describe", "sp", "first", "-n", NAMESPACE)
    assert "MigrationSucceeded" in described, described
