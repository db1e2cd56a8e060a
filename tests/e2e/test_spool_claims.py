"""No share dies with its pod: spool claims on the real control plane.

The tests play the kubelet: each proxy pod's claim is a directory, each pod's writer a
real ``stratum-writer`` process on it, and a drain Job's container is run on its
claim's directory the way the Job's pod would run it (``harness.job_pod``), its exit and
termination message reported back as a kubelet reports them. The database is a real
PostgreSQL that the tests stop and start.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from harness.databases import Database, PostgresServer
from harness.job_pod import project_volumes, run_job_pod
from harness.kubernetes import ControlPlane
from harness.operator import OperatorProcess
from harness.spool_reader import record_spans, rot
from harness.stratum_pools import (
    condition,
    events,
    job_pods,
    jobs,
    migrated,
    pool,
    said,
    secret,
    status,
)
from harness.writer import QUEUE, WriterProcess, assert_exactly, fill
from sharelog.spool.format import list_segments, segment_name
from stratum_operator.images import release_image


class Pods:
    """The kubelet's part for a pool's proxy pods: a writer per pod, on its claim's dir."""

    def __init__(self, cp: ControlPlane, ns: str, pool_name: str, url: str, root: Path) -> None:
        self.cp, self.ns, self.pool, self.url, self.root = cp, ns, pool_name, url, root
        self.writers: dict[str, WriterProcess] = {}

    def claim_dir(self, ordinal: int) -> Path:
        """The directory that backs claim spool-<pool>-proxy-<ordinal>: its volume root."""
        return self.root / f"spool-{self.pool}-proxy-{ordinal}"

    def pods(self) -> list[dict[str, Any]]:
        out = self.cp.kubectl("get", "pods", "-n", self.ns, "-l",
                              f"stratum.io/pool={self.pool},app.kubernetes.io/component=proxy",
                              "-o", "json")  # fmt: skip
        return [
            p
            for p in json.loads(out)["items"]
            if not p["metadata"].get("deletionTimestamp")
            and (p["metadata"].get("ownerReferences") or [{}])[0].get("kind") == "StatefulSet"
        ]

    def start(self, count: int, *, writers: bool = True) -> None:
        """Wait for ``count`` pods, start each one's writer on its claim, mark it ready."""
        found = self.cp.wait(
            f"{count} proxy pods", lambda: len(self.pods()) == count and self.pods(), 40
        )
        for pod in found:
            name = pod["metadata"]["name"]
            if name in self.writers and self.writers[name].alive():
                continue
            ordinal = int(name.rsplit("-", 1)[1])
            claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
                      if "persistentVolumeClaim" in v]  # fmt: skip
            assert claims == [f"spool-{self.pool}-proxy-{ordinal}"], "its own claim, by ordinal"
            ip = f"127.0.0.{40 + ordinal}"
            spool = self.claim_dir(ordinal) / "spool"
            if not writers:  # a pod whose writer this test doesn't need
                self.cp.set_pod_ready(self.ns, name, ip)
                continue
            self.writers[name] = WriterProcess(spool, self.url, "--batch-size", "1000",
                                               "--drain-timeout", "3", host=ip,
                                               port=9102).start()  # fmt: skip
            self.cp.set_pod_ready(self.ns, name, ip)

    def backlog(self, ordinal: int, count: int, seed: int) -> None:
        """Shares the proxy of pod ``ordinal`` spooled that its writer can't store yet."""
        fill(self.claim_dir(ordinal) / "spool", count, seed=seed)
        self.writers[f"{self.pool}-proxy-{ordinal}"].wait_for(QUEUE, lambda v: v == count)

    def stop(self, ordinal: int) -> None:
        """The pod goes: its writer gets SIGTERM and drains what it can; then the pod is gone."""
        name = f"{self.pool}-proxy-{ordinal}"
        writer = self.writers.pop(name)
        assert writer.terminate(60) == 0
        self.cp.kubectl("delete", "pod", name, "-n", self.ns, "--grace-period=0", "--force",
                        "--ignore-not-found", check=False)  # fmt: skip

    def stop_all(self) -> None:
        for name in list(self.writers):
            self.stop(int(name.rsplit("-", 1)[1]))


def run_drain_job(
    cp: ControlPlane, ns: str, job: dict[str, Any], pods: Pods, *, exit_code: int = 0
) -> dict[str, Any]:
    """Run the drain Job's container on its claim's directory; report it as a kubelet does."""
    claim = job["metadata"]["annotations"]["stratum.io/claim"]
    ordinal = int(claim.rsplit("-", 1)[1])
    root = pods.claim_dir(ordinal)
    pod_spec = job["spec"]["template"]["spec"]
    config = cp.get("configmap", f"{pods.pool}-config", ns)
    assert config is not None
    project_volumes(pod_spec, root, {"config": config["data"], "database": {"url": pods.url}})
    writer = shutil.which("stratum-writer", path=str(Path(sys.executable).parent))
    assert writer
    (step,) = run_job_pod(job, {release_image("writer"): [writer]}, root, path=[])
    name = job["metadata"]["name"]
    pod = cp.wait(f"the pod of {name}", lambda: job_pods(cp, ns, name), 30)[0]
    now = "2026-01-01T00:00:00Z"
    terminated = {"exitCode": step.returncode, "reason": "Completed" if step.returncode == 0
                  else "Error", "message": step.termination_message, "startedAt": now,
                  "finishedAt": now}  # fmt: skip
    cp.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/status", {"status": {
        "phase": "Succeeded" if step.returncode == 0 else "Failed",
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "drain", "ready": False, "restartCount": 0, "image": "x",
                               "imageID": "", "state": {"terminated": terminated}}],
    }}, "application/merge-patch+json")  # fmt: skip
    assert step.returncode == exit_code, step.stderr[-2000:]
    return dict(json.loads(step.termination_message))


def claims(cp: ControlPlane, ns: str, pool_name: str) -> list[str]:
    out = cp.kubectl("get", "pvc", "-n", ns, "-l", f"stratum.io/pool={pool_name}", "-o", "json")
    return sorted(c["metadata"]["name"] for c in json.loads(out)["items"]
                  if not c["metadata"].get("deletionTimestamp"))  # fmt: skip


def drain_jobs(cp: ControlPlane, ns: str) -> list[dict[str, Any]]:
    return jobs(cp, ns, "drain")


def setup(cp: ControlPlane, ns: str, outage_db: PostgresServer, name: str, replicas: int,
          root: Path) -> tuple[Pods, str]:  # fmt: skip
    url = outage_db.create_database("shares")
    cp.apply(secret(ns, url))
    cp.apply(pool(name, ns, proxy={"replicas": replicas}))
    migrated(cp, name, ns)
    pods = Pods(cp, ns, name, url, root)
    assert WriterProcess(root / "m" / "spool", url).run_command("migrate").returncode == 0
    pods.start(replicas)
    cp.wait("Ready", lambda: condition(cp, name, ns, "Ready").get("status") == "True", 40)
    return pods, url


def test_scale_in_during_an_outage_keeps_the_claims_then_drains_them(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path,
    operator: OperatorProcess,
) -> None:  # fmt: skip
    cp = installed_chart
    pods, _ = setup(cp, ns, outage_db, "shrink", 3, tmp_path)
    assert claims(cp, ns, "shrink") == [f"spool-shrink-proxy-{i}" for i in range(3)]
    sts = cp.get("statefulset", "shrink-proxy", ns)
    assert sts is not None
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    outage_db.kill()  # the outage: shares wait in the spools
    for ordinal in (1, 2):
        pods.backlog(ordinal, 4000, seed=ordinal)
    cp.wait("the queues read", lambda: status(cp, "shrink", ns).get("queueDepth") == 8000, 40)
    cp.apply(pool("shrink", ns, proxy={"replicas": 1}))
    cp.wait("the StatefulSet at 1", lambda: (cp.get("statefulset", "shrink-proxy", ns) or {})
            .get("spec", {}).get("replicas") == 1, 30)  # fmt: skip
    for ordinal in (1, 2):  # the pods go; their writers can't store anything: outage
        pods.stop(ordinal)
    found = cp.wait(
        "two drain Jobs", lambda: len(drain_jobs(cp, ns)) == 2 and drain_jobs(cp, ns), 40
    )
    assert claims(cp, ns, "shrink") == [f"spool-shrink-proxy-{i}" for i in range(3)], "all kept"
    draining = cp.wait("status lists the claims draining", lambda: [
        c for c in (status(cp, "shrink", ns).get("spool") or {}).get("claims", [])
        if c["state"] == "Draining"], 30)  # fmt: skip
    assert {c["claim"] for c in draining} == {"spool-shrink-proxy-1", "spool-shrink-proxy-2"}
    assert all(c.get("shares") == 4000 for c in draining), draining  # as each pod last said
    # the operator's metrics say it too: the alert on a stalled drain reads them
    seen, of_pool = operator.metrics(), f'namespace="{ns}",pool="shrink"'
    assert seen[f'stratum_operator_spool_claims{{{of_pool},state="Draining"}}'] == 2
    assert seen[f'stratum_operator_spool_claims{{{of_pool},state="Kept"}}'] == 0
    assert seen[f"stratum_operator_spool_claims_shares{{{of_pool}}}"] == 8000
    for ordinal in (1, 2):
        claim = f'claim="spool-shrink-proxy-{ordinal}",{of_pool}'  # labels print sorted
        assert seen[f"stratum_operator_spool_claim_shares{{{claim}}}"] == 4000
        assert seen[f"stratum_operator_spool_claim_progress_timestamp_seconds{{{claim}}}"] > 0
    assert any(e["reason"] == "DrainStarted" for e in events(cp, ns))
    outage_db.start()  # the database is back: the drain Jobs run
    stored = [run_drain_job(cp, ns, job, pods)["stored"] for job in found]
    assert stored == [4000, 4000]
    cp.wait(
        "the drained claims deleted",
        lambda: claims(cp, ns, "shrink") == ["spool-shrink-proxy-0"],
        40,
    )
    reasons = cp.wait("two DrainSucceeded Events", lambda: len(drained := [
        e["message"] for e in events(cp, ns) if e["reason"] == "DrainSucceeded"]) == 2 and drained, 30)  # fmt: skip
    assert all("4000 shares stored" in m for m in reasons), reasons
    cp.wait(
        "status clear", lambda: not (status(cp, "shrink", ns).get("spool") or {}).get("claims"), 30
    )
    seen = operator.metrics()
    assert not [k for k in seen if "_spool_claim_" in k and of_pool in k], "drained: no series"
    assert seen[f"stratum_operator_spool_claims_shares{{{of_pool}}}"] == 0
    pods.stop_all()
    assert_exactly(_db(outage_db), 8000)


def test_a_drain_that_read_past_damage_keeps_the_claim_and_says_why(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path
) -> None:
    cp = installed_chart
    pods, _ = setup(cp, ns, outage_db, "rot", 2, tmp_path)
    outage_db.kill()
    pods.backlog(1, 2800, seed=5)  # three 256 KiB segments on the claim
    cp.apply(pool("rot", ns, proxy={"replicas": 1}))
    cp.wait("the StatefulSet at 1", lambda: (cp.get("statefulset", "rot-proxy", ns) or {})
            .get("spec", {}).get("replicas") == 1, 30)  # fmt: skip
    pods.stop(1)
    spool = pods.claim_dir(1) / "spool"
    segment = spool / segment_name(list_segments(spool)[1])
    spans = record_spans(segment)
    offset, length = spans[len(spans) // 2]
    rot(segment, offset + 100)  # the volume rots in the middle of a finished segment
    (job,) = cp.wait("a drain Job", lambda: drain_jobs(cp, ns), 40)
    outage_db.start()
    summary = run_drain_job(cp, ns, job, pods, exit_code=6)  # ExitCode.SPOOL_DAMAGED
    assert (summary["stored"], summary["quarantined_bytes"]) == (2799, length)
    (kept,) = cp.wait("status says the claim is kept", lambda: [
        c for c in (status(cp, "rot", ns).get("spool") or {}).get("claims", [])
        if c["state"] == "Kept"], 40)  # fmt: skip
    assert kept["claim"] == "spool-rot-proxy-1" and kept["job"] == job["metadata"]["name"]
    assert f"{length} bytes of its spool were damaged" in kept["message"], kept
    (warning,) = said(cp, ns, "SpoolDamaged")
    assert warning["type"] == "Warning" and "spool-rot-proxy-1 kept" in warning["message"]
    assert "quarantine.jsonl" in warning["message"]
    assert claims(cp, ns, "rot") == ["spool-rot-proxy-0", "spool-rot-proxy-1"], "evidence kept"
    pods.stop_all()
    assert_exactly(_db(outage_db), 2799)


def test_a_pod_replaced_in_an_outage_gets_its_claim_back(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path
) -> None:
    cp = installed_chart
    pods, _ = setup(cp, ns, outage_db, "again", 2, tmp_path)
    outage_db.kill()
    pods.backlog(1, 3000, seed=9)
    old = cp.get("pod", "again-proxy-1", ns)
    assert old is not None
    pods.stop(1)  # evicted, its node lost: the pod goes, mid-outage
    cp.wait("its successor", lambda: (cp.get("pod", "again-proxy-1", ns) or {}).get(
        "metadata", {}).get("uid") not in (None, old["metadata"]["uid"]), 40)  # fmt: skip
    successor = cp.get("pod", "again-proxy-1", ns)
    assert successor is not None
    (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in successor["spec"]["volumes"]
                if "persistentVolumeClaim" in v]  # fmt: skip
    assert claim == "spool-again-proxy-1", "the successor mounts its predecessor's claim"
    outage_db.start()  # (a writer started mid-outage exits 2 and the kubelet restarts it: skipped here)
    pods.start(2)  # the successor's writer, on the same directory
    pods.writers["again-proxy-1"].wait_for(QUEUE, lambda v: v == 0, 60)
    assert not drain_jobs(cp, ns), "a replaced pod needs no drain: it resumes its own claim"
    pods.stop_all()
    assert_exactly(_db(outage_db), 3000)


def test_deleting_a_pool_drains_its_claims_first(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path,
    operator: OperatorProcess,
) -> None:  # fmt: skip
    cp = installed_chart
    pods, _ = setup(cp, ns, outage_db, "gone", 2, tmp_path)
    found = cp.get("stratumpool", "gone", ns)
    assert found is not None and "stratum.io/drain-spools" in found["metadata"]["finalizers"]
    outage_db.kill()
    pods.backlog(0, 2500, seed=3)
    cp.kubectl("delete", "stratumpool", "gone", "-n", ns, "--wait=false")
    cp.wait("the proxies stopped", lambda: (cp.get("statefulset", "gone-proxy", ns) or {}).get(
        "spec", {}).get("replicas") == 0, 30)  # fmt: skip
    pods.stop_all()
    found_jobs = cp.wait(
        "drain Jobs", lambda: len(drain_jobs(cp, ns)) == 2 and drain_jobs(cp, ns), 40
    )
    assert cp.get("stratumpool", "gone", ns) is not None, "held until the claims are drained"
    outage_db.start()
    stored = sorted(run_drain_job(cp, ns, job, pods)["stored"] for job in found_jobs)
    assert stored == [0, 2500]
    cp.wait("the pool gone", lambda: cp.get("stratumpool", "gone", ns) is None, 60)
    assert claims(cp, ns, "gone") == []
    of_pool = f'namespace="{ns}",pool="gone"'
    cp.wait("its series gone with it", lambda: not [
        k for k in operator.metrics() if of_pool in k], 30)  # fmt: skip
    assert_exactly(_db(outage_db), 2500)


def test_abandoning_the_spools_deletes_at_once_and_says_how_many_were_lost(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path
) -> None:
    cp = installed_chart
    pods, _ = setup(cp, ns, outage_db, "drop", 1, tmp_path)
    outage_db.kill()
    pods.backlog(0, 1200, seed=4)
    cp.wait("the queue in status", lambda: status(cp, "drop", ns).get("queueDepth") == 1200, 40)
    cp.kubectl("annotate", "stratumpool", "drop", "-n", ns, "stratum.io/abandon-spools=true")
    cp.kubectl("delete", "stratumpool", "drop", "-n", ns, "--wait=false")
    cp.wait("the pool gone", lambda: cp.get("stratumpool", "drop", ns) is None, 40)
    warning = [e for e in events(cp, ns) if e["reason"] == "SpoolsAbandoned"]
    assert warning and warning[0]["type"] == "Warning"
    assert "about 1200 shares" in warning[0]["message"]
    assert claims(cp, ns, "drop") == []
    pods.writers["drop-proxy-0"].proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]


def _db(server: PostgresServer) -> Database:
    return Database("postgres", server.url("shares"), lambda sql: server.psql(sql, "shares"))


def old_deployment(ns: str, name: str) -> dict[str, Any]:
    """The proxies as the previous release deployed them: a Deployment, spools on emptyDirs."""
    labels = {"app.kubernetes.io/name": "stratum-pool", "app.kubernetes.io/instance": name,
              "app.kubernetes.io/component": "proxy",
              "app.kubernetes.io/managed-by": "stratum-operator", "stratum.io/pool": name}  # fmt: skip
    selector = {"stratum.io/pool": name, "app.kubernetes.io/component": "proxy"}
    container = {"name": "writer", "image": release_image("writer")}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{name}-proxy", "namespace": ns, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [container],
                         "volumes": [{"name": "spool", "emptyDir": {}}]}}}}  # fmt: skip


def test_a_deployment_era_pool_moves_to_the_statefulset_losing_nothing(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path
) -> None:
    cp = installed_chart
    url = outage_db.create_database("shares")
    cp.apply(secret(ns, url))
    assert WriterProcess(tmp_path / "m" / "spool", url).run_command("migrate").returncode == 0
    cp.apply(old_deployment(ns, "up"))
    old_pod = cp.wait("the old pod", lambda: [
        p for p in json.loads(cp.kubectl("get", "pods", "-n", ns, "-l", "stratum.io/pool=up",
                                         "-o", "json"))["items"]], 30)[0]  # fmt: skip
    old_writer = WriterProcess(tmp_path / "old" / "spool", url, "--batch-size", "1000",
                               "--drain-timeout", "3", host="127.0.0.60", port=9102).start()  # fmt: skip
    cp.set_pod_ready(ns, old_pod["metadata"]["name"], "127.0.0.60")
    outage_db.kill()  # an outage while the upgrade happens: the old spool holds shares
    fill(old_writer.spool, 3000, seed=11)
    old_writer.wait_for(QUEUE, lambda v: v == 3000)
    cp.apply(pool("up", ns, proxy={"replicas": 1}))
    migrated(cp, "up", ns)
    pods = Pods(cp, ns, "up", url, tmp_path)
    pods.start(1, writers=False)  # ready to take the miners; its own spool is not at stake
    # the StatefulSet controller counts the new pod ready, then the operator's next tick
    # reads the old pod's writer: slow on a machine running the whole suite (once >40 s)
    held = cp.wait("the Deployment held for its spool", lambda: "can't drain" in condition(
        cp, "up", ns, "Progressing").get("message", "") and condition(cp, "up", ns, "Progressing"), 90)  # fmt: skip
    assert held["reason"] == "RetiringDeployment"
    assert cp.get("deployment", "up-proxy", ns) is not None, "not while its spool can't drain"
    outage_db.start()
    old_writer.wait_for(QUEUE, lambda v: v == 0, 60)
    cp.wait("the Deployment retired", lambda: cp.get("deployment", "up-proxy", ns) is None, 40)
    assert said(cp, ns, "DeploymentRetired")
    assert old_writer.terminate(30) == 0  # the kubelet's SIGTERM to the old pod
    pods.stop_all()
    assert_exactly(_db(outage_db), 3000)
