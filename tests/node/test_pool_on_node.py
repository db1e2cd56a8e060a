"""The product on a real node: what a pool operator does first, done by real pods.

`helm install` runs the operator as a pod of our image with the chart's ServiceAccount and
RBAC; a StratumPool on PostgreSQL (a server on the host, at the node's gateway) runs its
migration Job's pod and its StatefulSet's pods on claims the local-path provisioner
binds, in a namespace that enforces the ``restricted`` Pod Security profile; miners
mine through the pool's NodePort (kube-proxy); the database holds every share they were
told of, once; and what a person reads (``kubectl stratum status``, ``kubectl get sp``,
``kubectl logs``, ``kubectl describe``) says so. A pod deleted while the database is down
(the kubelet's SIGTERM and grace, a replacement on the same claim) loses and doubles no
share a miner was told of, nor do containers the runtime kills behind the kubelet's
back, nor a rolling update of the proxy's image under load, nor ``kubectl drain`` of
the node (eviction through the PodDisruptionBudget), nor a scale-in during an outage
(the drain Job a real pod on the orphaned claim). ``helm test`` passes on the
node, and a ``backend: sqlite`` pool runs as one pod writing its database on its claim.
One node for the module: it takes seconds to start, our images seconds to import.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.databases import Database, PodAccess, PostgresServer, db_verdicts, sqlite_query
from harness.kubernetes import ROOT
from harness.node import RealNode
from harness.node.host import HostState, leftovers
from harness.node.plane import NodeControlPlane
from harness.node.product import (
    assert_told_stored_once,
    helm,
    kubectl_stratum,
    product_image_archives,
    restricted_namespace,
)
from harness.node.runtime import ctr
from harness.sim import SimLoop, answers
from harness.stratum_pools import job_pods, jobs, pool, proxy_pods, said, secret, status
from stratum_operator.builders import naming
from stratum_operator.images import release_image
from stratum_sim.miners import Behaviour

CHART = ROOT / "charts" / "stratum-operator"
RELEASE = "stratum-operator"
RELEASE_NAMESPACE = "stratum-system"
NAMESPACE = "miners"
SQLITE_NAMESPACE = "lite"


@pytest.fixture(scope="module")
def node() -> Iterator[RealNode]:
    """The module's node with our images; when it stops, nothing of it (nor of our pods,
    their claims, the helper pods') is left on the machine."""
    archives = product_image_archives()  # before the node: minutes the first time
    before = HostState.take()
    real = RealNode()
    try:
        real.import_images(archives)
        yield real
    finally:
        real.stop()
    assert leftovers(before, HostState.take((real.dir,))) == []


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


@pytest.fixture(scope="module")
def sim_loop() -> Iterator[SimLoop]:
    """A reference pool and miners that outlive a test, as the module's pool does."""
    loop = SimLoop()
    yield loop
    loop.close()


@dataclass(frozen=True)
class RunningPool:
    upstream: str
    node_port: int  # the pool's Service, at the node's address
    db: Database


@pytest.fixture(scope="module")
def first_pool(
    plane: NodeControlPlane, node: RealNode, postgres: PostgresServer, sim_loop: SimLoop
) -> RunningPool:
    """What a pool operator applies first: a restricted namespace, the database's Secret,
    a StratumPool of two proxies behind a NodePort; Ready once its pods are."""
    plane.apply(restricted_namespace(NAMESPACE))
    postgres.create_database("shares")
    plane.apply(secret(NAMESPACE, postgres.url_for_pods("shares")))
    _, upstream = sim_loop.pool(host=node.network.gateway)
    # a grace of 25 s, not 60: a pod deleted while the database is down spends all of it
    # (the writer drains until grace minus 5 s, in vain), and the test waits it out
    plane.apply(pool("first", NAMESPACE, upstreams=[upstream],
                     proxy={"replicas": 2, "serviceType": "NodePort"},
                     podTemplate={"terminationGracePeriodSeconds": 25},
                     retention={"enabled": False}))  # fmt: skip
    plane.wait("the pool Ready", lambda: status(plane, "first", NAMESPACE).get("phase") == "Ready",
               timeout=300)  # fmt: skip
    service = plane.get("service", naming.service_name("first"), NAMESPACE)
    assert service is not None
    db = Database("postgres", postgres.url("shares"), lambda q: postgres.psql(q, "shares"))
    return RunningPool(upstream, service["spec"]["ports"][0]["nodePort"], db)


def test_the_first_five_minutes_of_a_pool_operator(
    plane: NodeControlPlane, node: RealNode, first_pool: RunningPool, sim_loop: SimLoop
) -> None:
    # the migration Job's pod ran in the kubelet, and the pods' claims were provisioned
    migration = jobs(plane, NAMESPACE, "migration")
    assert [j["status"].get("succeeded") for j in migration] == [1]
    claims = json.loads(plane.kubectl("get", "pvc", "-n", NAMESPACE, "-o", "json"))["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == [
        f"spool-{naming.proxy_name('first')}-{i}" for i in range(2)]  # fmt: skip
    assert {(c["status"]["phase"], c["spec"]["storageClassName"]) for c in claims} == {
        ("Bound", "local-path")}  # fmt: skip

    # miners at the node's address, through the Service's NodePort
    db = first_pool.db
    before, verdicts_before = db.scalar("SELECT count(*) FROM share_events"), db_verdicts(db)
    stats = sim_loop.fleet(first_pool.node_port, miners=8, shares_per_s=40, duration=6,
                           host=node.network.gateway).result(90)  # fmt: skip
    heard = answers(stats)
    submitted = sum(s.submitted for s in stats)
    assert submitted > 100 and sum(heard.values()) == submitted, "every submit got an answer"

    plane.wait("every share stored", lambda: db.scalar("SELECT count(*) FROM share_events")
               >= before + submitted, timeout=120)  # fmt: skip
    assert db.scalar("SELECT count(*) FROM share_events") == before + submitted
    assert db.scalar("SELECT count(DISTINCT share_id) FROM share_events") == before + submitted
    assert db_verdicts(db) - verdicts_before == heard, "the database says what miners were told"

    _tools_tell_the_truth(plane, first_pool.upstream)


def test_a_pod_deleted_during_a_database_outage_loses_and_doubles_nothing(
    plane: NodeControlPlane, node: RealNode, postgres: PostgresServer, first_pool: RunningPool,
    sim_loop: SimLoop,
) -> None:  # fmt: skip
    """The kubelet's SIGTERM and grace while the database is down, the replacement pod on
    the same claim, then the database back: every share a miner was told of is stored
    once, with what it was told."""
    name = f"{naming.proxy_name('first')}-0"
    old = plane.get("pod", name, NAMESPACE)
    assert old is not None
    fleet = sim_loop.fleet(first_pool.node_port, miners=8, shares_per_s=40, duration=30,
                           behaviour=Behaviour(keep_heard=True), host=node.network.gateway)  # fmt: skip
    time.sleep(3)
    postgres.kill()  # the outage: each pod's spool is the queue now
    time.sleep(2)
    plane.kubectl("delete", "pod", name, "-n", NAMESPACE, "--timeout=120s")
    new = plane.wait("the replacement pod running", lambda: _replaced(plane, name, old), 120)
    claims = [v["persistentVolumeClaim"]["claimName"] for v in new["spec"]["volumes"]
              if "persistentVolumeClaim" in v]  # fmt: skip
    assert claims == [f"spool-{name}"], "the replacement mounts the same claim"
    postgres.start()
    stats = fleet.result(120)

    assert sum(s.disconnects for s in stats) > 0, "the deleted pod's miners were moved"
    assert_told_stored_once(plane, first_pool.db, stats, at_least=400)
    plane.kubectl("wait", "-n", NAMESPACE, f"pod/{name}", "--for=condition=Ready",
                  "--timeout=120s")  # fmt: skip


def test_containers_killed_by_the_runtime_are_restarted_and_lose_nothing(
    plane: NodeControlPlane, node: RealNode, first_pool: RunningPool, sim_loop: SimLoop
) -> None:
    """A pod's proxy and writer killed under load by the runtime itself (SIGKILL through
    containerd, behind Kubernetes' back): the kubelet restarts both in the same pod, and
    every share a miner was told of is stored once, with what it was told."""
    name = f"{naming.proxy_name('first')}-1"
    before = _container_statuses(plane, name)
    fleet = sim_loop.fleet(first_pool.node_port, miners=8, shares_per_s=40, duration=12,
                           behaviour=Behaviour(keep_heard=True), host=node.network.gateway)  # fmt: skip
    time.sleep(3)
    for status_ in before.values():
        ctr(node.runtime_root, "tasks", "kill", "--signal", "SIGKILL",
            status_["containerID"].split("://", 1)[1])  # fmt: skip
    plane.wait("both containers restarted and ready", lambda: all(
        now["restartCount"] > before[c]["restartCount"] and now["ready"]
        for c, now in _container_statuses(plane, name).items()), 120)  # fmt: skip
    stats = fleet.result(120)

    assert_told_stored_once(plane, first_pool.db, stats, at_least=200)


def test_a_rolling_update_of_the_image_under_load_loses_nothing(
    plane: NodeControlPlane, node: RealNode, first_pool: RunningPool, sim_loop: SimLoop
) -> None:
    """A new proxy image (our image under a second tag) rolled out while miners mine: the
    pods are replaced one at a time, their miners told to reconnect, and every share a
    miner was told of is stored once, with what it was told."""
    rolled = f"{release_image('proxy')}-rolled"
    ctr(node.runtime_root, "images", "tag", "--force", release_image("proxy"), rolled)
    fleet = sim_loop.fleet(first_pool.node_port, miners=8, shares_per_s=40, duration=40,
                           behaviour=Behaviour(keep_heard=True), host=node.network.gateway)  # fmt: skip
    time.sleep(3)
    plane.kubectl("patch", "stratumpool", "first", "-n", NAMESPACE, "--type=merge", "-p",
                  json.dumps({"spec": {"proxy": {"image": rolled}}}))  # fmt: skip
    plane.wait("the new image rolled out", lambda: _all_ready_on(plane, rolled), 180)
    stats = fleet.result(120)

    assert sum(s.disconnects for s in stats) > 0, "the replaced pods' miners were moved"
    assert_told_stored_once(plane, first_pool.db, stats, at_least=600)
    plane.wait("the pool Ready", lambda: status(plane, "first", NAMESPACE).get("phase") == "Ready",
               timeout=60)  # fmt: skip


def test_draining_the_node_evicts_through_the_disruption_budget(
    plane: NodeControlPlane, node: RealNode, first_pool: RunningPool, sim_loop: SimLoop
) -> None:
    """``kubectl drain`` of the node under load (issue 24, scenario 6's drain): eviction
    asks the pool's PodDisruptionBudget, which lets one proxy go and refuses the other
    (its successor has nowhere to run: the node is cordoned); uncordoned, the pool is
    whole again, and every share a miner was told of is stored exactly once."""
    fleet = sim_loop.fleet(first_pool.node_port, miners=8, shares_per_s=40, duration=20,
                           behaviour=Behaviour(keep_heard=True), host=node.network.gateway)  # fmt: skip
    time.sleep(3)
    drained = plane.kubectl("drain", node.name, "--ignore-daemonsets", "--delete-emptydir-data",
                            "--timeout=20s", check=False)  # fmt: skip
    assert "would violate the pod's disruption budget" in drained, drained
    running = [p for p in proxy_pods(plane, "first", NAMESPACE)
               if p.get("status", {}).get("phase") == "Running"]  # fmt: skip
    assert len(running) == 1, "one proxy evicted, the other kept by the budget"
    plane.kubectl("uncordon", node.name)
    stats = fleet.result(120)
    plane.wait("the pool Ready", lambda: status(plane, "first", NAMESPACE).get("phase") == "Ready",
               timeout=180)  # fmt: skip
    assert_told_stored_once(plane, first_pool.db, stats, at_least=300)


def test_scale_in_during_an_outage_drains_the_claim_in_a_real_pod(
    plane: NodeControlPlane, node: RealNode, postgres: PostgresServer, first_pool: RunningPool,
    sim_loop: SimLoop,
) -> None:  # fmt: skip
    """Scale-in while the database is down (issue 24, scenario 4): the pod goes, its claim
    stays, with what the pod could not store; the drain Job's pod waits the outage out
    on that claim, stores it when the database is back, and only then is the claim (and
    its volume) deleted. Run after the other tests of the pool: it leaves one proxy."""
    fleet = sim_loop.fleet(first_pool.node_port, miners=8, shares_per_s=40, duration=8,
                           behaviour=Behaviour(keep_heard=True), host=node.network.gateway)  # fmt: skip
    time.sleep(2)
    postgres.kill()  # the outage: the last shares wait in the spools
    stats = fleet.result(120)
    leaving = f"spool-{naming.proxy_name('first')}-1"
    volume = (plane.get("pvc", leaving, NAMESPACE) or {})["spec"]["volumeName"]
    plane.kubectl("patch", "stratumpool", "first", "-n", NAMESPACE, "--type=merge", "-p",
                  json.dumps({"spec": {"proxy": {"replicas": 1}}}))  # fmt: skip
    drain = plane.wait("the drain Job's pod running", lambda: [
        p for p in job_pods(plane, NAMESPACE, _drain_job(plane)) if p["status"].get("phase")
        == "Running"], 120)[0]  # fmt: skip
    (mounted,) = [v["persistentVolumeClaim"]["claimName"] for v in drain["spec"]["volumes"]
                  if "persistentVolumeClaim" in v]  # fmt: skip
    assert mounted == leaving
    time.sleep(5)  # the database still down: the claim stays, its drain waiting
    assert plane.get("pvc", leaving, NAMESPACE) is not None
    postgres.start()
    plane.wait("the drained claim deleted", lambda: plane.get("pvc", leaving, NAMESPACE) is None,
               180)  # fmt: skip
    (succeeded,) = said(plane, NAMESPACE, "DrainSucceeded")
    assert f"{leaving} drained" in succeeded["message"], succeeded
    plane.wait("its volume deleted", lambda: plane.get("pv", volume, "") is None, 60)

    assert_told_stored_once(plane, first_pool.db, stats, at_least=100)


def _drain_job(plane: NodeControlPlane) -> str:
    found = jobs(plane, NAMESPACE, "drain")
    return str(found[0]["metadata"]["name"]) if found else "none-yet"


def _all_ready_on(plane: NodeControlPlane, image: str) -> bool:
    """Both proxy pods made from the template with ``image`` (what the runtime reports
    is the image's first tag, the same image under the old name), every container ready."""
    pods = proxy_pods(plane, "first", NAMESPACE)
    images = {c["image"] for p in pods for c in p["spec"]["containers"] if c["name"] == "proxy"}
    statuses = [c for p in pods for c in p.get("status", {}).get("containerStatuses", [])]
    return len(pods) == 2 and images == {image} and len(statuses) == 4 and all(
        c["ready"] for c in statuses)  # fmt: skip


def _container_statuses(plane: NodeControlPlane, pod: str) -> dict[str, dict[str, Any]]:
    found = plane.get("pod", pod, NAMESPACE)
    assert found is not None
    return {c["name"]: c for c in found["status"]["containerStatuses"]}


def _replaced(plane: NodeControlPlane, name: str, old: dict[str, Any]) -> dict[str, Any] | None:
    pod = plane.get("pod", name, NAMESPACE)
    if pod is None or pod["metadata"]["uid"] == old["metadata"]["uid"]:
        return None
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return pod if statuses and all("running" in c["state"] for c in statuses) else None


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
