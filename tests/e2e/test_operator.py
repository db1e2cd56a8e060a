"""The operator against a real control plane, installed by our chart, acting as the chart's
ServiceAccount: what a pool operator sees after ``kubectl apply``.

There is no kubelet: the tests play it, marking a migration Job's pod succeeded or
failed, and proxy pods ready at 127.0.0.x where real writer processes listen.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.databases import PostgresServer
from harness.kubernetes import ControlPlane
from harness.stratum_pools import (
    condition,
    events,
    finish_job_pod,
    jobs,
    migrated,
    pool,
    proxy_pods,
    said,
    secret,
    status,
)
from harness.writer import QUEUE, WriterProcess, fill


def test_apply_creates_every_child_and_reports_ready(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(secret(ns))
    cp.apply(pool("main", ns))
    cp.wait("the ConfigMap", lambda: cp.get("configmap", "main-config", ns), 30)
    assert cp.get("statefulset", "main-proxy", ns) is None, "no proxies before the schema"
    assert condition(cp, "main", ns, "SchemaReady")["reason"] == "Migrating"
    job = migrated(cp, "main", ns)
    assert job.startswith("main-migrate-")
    statefulset = cp.wait("the StatefulSet", lambda: cp.get("statefulset", "main-proxy", ns), 30)
    service = cp.get("service", "main", ns)
    pdb = cp.get("poddisruptionbudget", "main-proxy", ns)
    assert service is not None and pdb is not None
    pod = statefulset["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["proxy", "writer"]
    assert pod["securityContext"]["runAsNonRoot"] and all(
        c["securityContext"]["readOnlyRootFilesystem"] for c in pod["containers"]
    )
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    for child in (statefulset, service, pdb):
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["kind"] == "StratumPool" and owner["name"] == "main" and owner["controller"]
    pods = cp.wait("the StatefulSet's two pods", lambda: len(proxy_pods(cp, "main", ns)) == 2 and
                   proxy_pods(cp, "main", ns), 30)  # fmt: skip
    for i, p in enumerate(pods):
        cp.set_pod_ready(ns, p["metadata"]["name"], f"127.0.0.{10 + i}")
    cp.wait("Ready", lambda: condition(cp, "main", ns, "Ready").get("status") == "True", 40)
    assert status(cp, "main", ns)["phase"] == "Ready"
    table = cp.kubectl("get", "sp", "-n", ns)
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PHASE", "READY", "MINERS", "SHARES/S", "QUEUE"]
    assert row.split()[:3] == ["main", "Ready", "2/2"]
    reasons = {e["reason"] for e in events(cp, ns)}
    assert {"MigrationStarted", "MigrationSucceeded"} <= reasons


def test_missing_secret_blocks_the_rollout_with_a_clear_condition(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(pool("nosecret", ns))
    cp.wait(
        "Degraded",
        lambda: condition(cp, "nosecret", ns, "Degraded").get("reason") == "SecretMissing",
        30,
    )
    cond = condition(cp, "nosecret", ns, "Degraded")
    assert "Secret 'db' not found" in cond["message"]
    assert status(cp, "nosecret", ns)["phase"] == "Blocked"
    time.sleep(2)
    assert cp.get("statefulset", "nosecret-proxy", ns) is None
    assert cp.kubectl("get", "jobs", "-n", ns, "-o", "name").strip() == ""
    assert any(e["reason"] == "SecretMissing" and e["type"] == "Warning" for e in events(cp, ns))
    cp.apply(secret(ns))  # fixed: the operator proceeds on its own
    cp.wait("the migration Job", lambda: jobs(cp, ns, "migration"), 30)


def test_config_change_rolls_hand_deleted_statefulset_returns_deletion_cleans_up(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(secret(ns))
    cp.apply(pool("life", ns))
    migrated(cp, "life", ns)
    first = cp.wait("the StatefulSet", lambda: cp.get("statefulset", "life-proxy", ns), 30)
    hash_key = "stratum.io/config-hash"
    old_hash = first["spec"]["template"]["metadata"]["annotations"][hash_key]
    cp.apply(pool("life", ns, persistence={"backend": "postgres", "databaseUrlSecret": {"name": "db"},
                                          "batchSize": 1000}))  # fmt: skip

    def new_hash() -> bool:
        d = cp.get("statefulset", "life-proxy", ns) or {}
        return d.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {}).get(
            hash_key
        ) not in (None, old_hash)

    cp.wait("a new config hash on the pod template", new_hash, 30)
    assert '"batch_size": 1000' in cp.get("configmap", "life-config", ns)["data"]["writer.json"]  # type: ignore[index]
    assert said(cp, ns, "RollingOut")
    cp.kubectl("delete", "statefulset", "life-proxy", "-n", ns, "--wait=false")
    cp.wait("the StatefulSet restored", lambda: (cp.get("statefulset", "life-proxy", ns) or {}).get(
        "metadata", {}).get("uid") not in (None, first["metadata"]["uid"]), 40)  # fmt: skip
    assert said(cp, ns, "Restored")
    cp.kubectl("delete", "stratumpool", "life", "-n", ns, "--wait=false")
    # its two spool claims are drained first: play the kubelet for their drain Jobs
    drains = cp.wait("a drain Job per claim", lambda: len(jobs(cp, ns, "drain")) == 2 and
                     jobs(cp, ns, "drain"), 40)  # fmt: skip
    assert cp.get("stratumpool", "life", ns) is not None, "held by its finalizer meanwhile"
    for job in drains:
        finish_job_pod(cp, ns, job["metadata"]["name"], 0)
    for kind, child in (("statefulset", "life-proxy"), ("configmap", "life-config"), ("service", "life"),
                        ("poddisruptionbudget", "life-proxy")):  # fmt: skip
        cp.wait(
            f"{kind} {child} garbage-collected",
            lambda k=kind, c=child: cp.get(k, c, ns) is None,
            60,
        )
    assert cp.get("secret", "db", ns) is not None, "what it doesn't own stays"


class Kubelet:
    """Mirrors each pod's worker annotation into its writer's workers file, as the
    downward-API volume does in a real pod."""

    def __init__(self, cp: ControlPlane, ns: str, files: dict[str, Path]) -> None:
        self.cp, self.ns, self.files = cp, ns, files
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for pod, path in self.files.items():
                found = self.cp.get("pod", pod, self.ns) or {}
                value = (
                    found.get("metadata", {})
                    .get("annotations", {})
                    .get("stratum.io/writer-workers")
                )
                if value and (not path.exists() or path.read_text() != value):
                    path.write_text(value)


def test_writer_workers_follow_the_queue_up_then_down_after_the_window(
    installed_chart: ControlPlane, ns: str, outage_db: PostgresServer, tmp_path: Path
) -> None:
    cp = installed_chart
    url = outage_db.create_database("shares")
    cp.apply(secret(ns, url))
    writer_spec = {"minWorkers": 1, "maxWorkers": 6, "targetQueueDepth": 5000,
                   "scaleDownStabilizationSeconds": 25}  # fmt: skip
    cp.apply(pool("scaled", ns, writer=writer_spec))
    migrated(cp, "scaled", ns)
    pods = cp.wait("two proxy pods", lambda: len(proxy_pods(cp, "scaled", ns)) == 2 and
                   proxy_pods(cp, "scaled", ns), 30)  # fmt: skip
    writers, files = [], {}
    for i, p in enumerate(pods):
        name, ip = p["metadata"]["name"], f"127.0.0.{20 + i}"
        spool = tmp_path / name / "spool"
        files[name] = tmp_path / name / "workers"
        files[name].parent.mkdir(parents=True)
        files[name].write_text("1")
        w = WriterProcess(
            spool, url, "--batch-size", "500", workers_file=files[name], host=ip, port=9102
        )
        if i == 0:
            assert w.run_command("migrate").returncode == 0
        writers.append(w.start())
        cp.set_pod_ready(ns, name, ip)
    kubelet = Kubelet(cp, ns, files)
    try:
        outage_db.kill()  # the database goes away: the spool becomes the queue
        fill(writers[0].spool, 30_000)
        writers[0].wait_for(QUEUE, lambda v: v >= 30_000)
        # a pass may read the queue while it still fills: wait for the whole of it
        cp.wait("workers scaled up for the whole queue", lambda: (status(cp, "scaled", ns).get(
            "writer") or {}).get("workers", 0) >= 4 and status(cp, "scaled", ns).get(
            "queueDepth", 0) >= 30_000, 40)  # fmt: skip
        writers[0].wait_for("stratum_writer_workers", lambda v: v >= 4, 20)
        outage_db.start()  # back: the writers drain, the queue falls
        writers[0].wait_for(QUEUE, lambda v: v == 0, 60)
        held_since = time.monotonic()
        cp.wait("workers scaled down", lambda: (status(cp, "scaled", ns).get("writer") or {}).get(
            "workers") == 1, 90)  # fmt: skip
        assert time.monotonic() - held_since >= 15, "not before the stabilization window"
        decisions = status(cp, "scaled", ns)["writer"]["decisions"]
        assert [d["workers"] for d in decisions][-2:][-1] == 1
        assert len(decisions) <= 3, f"no flapping: {decisions}"
        assert {"queueDepths", "target", "windowSeconds", "reason"} <= decisions[0].keys()
        assert any(e["reason"] == "ScaledWriters" for e in events(cp, ns))
        assert condition(cp, "scaled", ns, "ScalingActive")["status"] == "True"
    finally:
        kubelet.stop.set()
