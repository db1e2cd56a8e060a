"""``make bench-operator``: the operator on a real control plane, installed by our chart.

- ``apply_to_children_ms``: from creating a StratumPool to its ConfigMap, StatefulSet,
  Service and PDB all existing, p50/p99 over 50 pools (SQLite backend: no migration to
  wait for; the Job path adds the migration's own run time);
- ``idle_cpu_percent`` and ``rss_mb``: the operator process with 200 pools converged,
  over a minute of doing nothing but its timers;
- ``queue_to_decision_s``: from a real writer's queue crossing the target to the
  operator's scaling decision reaching the pod.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.report import Reporter
from harness.kubernetes import ROOT, ControlPlane
from harness.operator import OperatorProcess
from harness.procfs import cpu_seconds, rss_kb
from harness.service import kill_all_services
from harness.writer import QUEUE, WriterProcess, fill

POOLS = int(os.environ.get("BENCH_OPERATOR_POOLS", "200"))
TIMED = int(os.environ.get("BENCH_OPERATOR_TIMED", "50"))
IDLE_S = float(os.environ.get("BENCH_OPERATOR_IDLE_S", "60"))
NS = "bench"


def pool(name: str, **spec: Any) -> dict[str, Any]:
    body = {"upstreams": ["stratum+tcp://pool.example.com:3333"],
            "persistence": {"backend": "sqlite"}, "proxy": {"replicas": 1}, **spec}  # fmt: skip
    return {"apiVersion": "stratum.io/v1alpha1", "kind": "StratumPool",
            "metadata": {"name": name, "namespace": NS}, "spec": body}  # fmt: skip


def exists(cp: ControlPlane, path: str) -> bool:
    try:
        cp.request("GET", path)
        return True
    except Exception:
        return False


def children_paths(name: str) -> list[str]:
    return [f"/api/v1/namespaces/{NS}/configmaps/{name}-config",
            f"/apis/apps/v1/namespaces/{NS}/statefulsets/{name}-proxy",
            f"/api/v1/namespaces/{NS}/services/{name}",
            f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{name}-proxy"]  # fmt: skip


def create(cp: ControlPlane, body: dict[str, Any]) -> None:
    cp.request("POST", f"/apis/stratum.io/v1alpha1/namespaces/{NS}/stratumpools", body)


def measure_apply(report: Reporter, cp: ControlPlane) -> None:
    samples: list[float] = []
    for i in range(TIMED):
        name = f"timed-{i}"
        started = time.perf_counter()
        create(cp, pool(name))
        pending = children_paths(name)
        while pending:
            pending = [p for p in pending if not exists(cp, p)]
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"{name}: children missing after 60 s: {pending}")
        samples.append((time.perf_counter() - started) * 1e3)
    for label, values in (("", samples), ("_warm", samples[1:])):  # warm: after the first
        q = statistics.quantiles(values, n=100, method="inclusive")  # never past the data
        report.emit(backend="operator", system="ours", metric=f"apply_to_children{label}_p50_ms",
                    value=statistics.median(values), unit="ms", pools=len(values))  # fmt: skip
        report.emit(backend="operator", system="ours", metric=f"apply_to_children{label}_p99_ms",
                    value=q[98], unit="ms", pools=len(values))  # fmt: skip
    report.emit(backend="operator", system="ours", metric="first_pool_after_start_ms",
                value=samples[0], unit="ms")  # fmt: skip


def measure_idle(report: Reporter, cp: ControlPlane, op: OperatorProcess) -> None:
    for i in range(TIMED, POOLS):
        create(cp, pool(f"idle-{i}"))

    def converged() -> bool:
        items = cp.request("GET", f"/apis/stratum.io/v1alpha1/namespaces/{NS}/stratumpools")[
            "items"
        ]
        return len(items) >= POOLS and all(
            x.get("status", {}).get("observedGeneration") for x in items
        )

    cp.wait(f"{POOLS} pools converged", converged, 300)
    time.sleep(15)  # past the burst of first reconciles
    assert op.proc is not None
    cpu0, wall0 = cpu_seconds(op.proc.pid), time.perf_counter()
    time.sleep(IDLE_S)
    percent = (cpu_seconds(op.proc.pid) - cpu0) / (time.perf_counter() - wall0) * 100
    report.emit(backend="operator", system="ours", metric="idle_cpu_percent", value=percent,
                unit="% of a core", pools=POOLS)  # fmt: skip
    report.emit(backend="operator", system="ours", metric="rss_mb",
                value=rss_kb(op.proc.pid) / 1024, unit="MB", pools=POOLS)  # fmt: skip


def measure_scaling(report: Reporter, cp: ControlPlane, workdir: Path) -> None:
    name = "scaled"
    create(cp, pool(name, writer={"targetQueueDepth": 2000, "maxWorkers": 8}))

    def its_pods() -> list[dict[str, Any]]:
        items = cp.request("GET", f"/api/v1/namespaces/{NS}/pods")["items"]
        return [p for p in items if p["metadata"]["labels"].get("stratum.io/pool") == name]

    pods = cp.wait("its pod", its_pods, 60)
    pod = pods[0]["metadata"]["name"]
    spool = workdir / "spool"
    # One flusher and tiny batches into SQLite: a burst of shares keeps the queue over the
    # target long enough for the operator's 10 s timer to see it.
    writer = WriterProcess(spool, f"sqlite:///{workdir / 'shares.db'}", "--migrate",
                           "--batch-size", "10", "--workers", "1", "--max-workers", "1",
                           host="127.0.0.60", port=9102)  # fmt: skip
    writer.start()
    cp.set_pod_ready(NS, pod, "127.0.0.60")
    time.sleep(12)  # the operator sees the pod, queue empty
    fill(spool, 200_000)
    writer.wait_for(QUEUE, lambda v: v > 2000, 30)
    crossed = time.perf_counter()

    def decided() -> bool:
        found = cp.request("GET", f"/api/v1/namespaces/{NS}/pods/{pod}")
        return (
            int(found["metadata"].get("annotations", {}).get("stratum.io/writer-workers", "1")) > 1
        )

    cp.wait("the scaling decision on the pod", decided, 60)
    report.emit(backend="operator", system="ours", metric="queue_to_decision_s",
                value=time.perf_counter() - crossed, unit="s",
                note="the operator reads queues on a 10 s timer")  # fmt: skip


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    report = Reporter("operator")
    workdir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    cp = ControlPlane()
    op: OperatorProcess | None = None
    try:
        subprocess.run([str(cp.bin / "helm"), "install", "stratum-operator",
                        str(ROOT / "charts" / "stratum-operator"), "-n", "stratum-system",
                        "--create-namespace", "--kubeconfig", str(cp.kubeconfig)],
                       check=True, capture_output=True)  # fmt: skip
        cp.wait("the CRD", lambda: "stratumpools" in cp.kubectl("api-resources", check=False), 60)
        cp.kubectl("create", "namespace", NS)
        op = OperatorProcess(workdir, cp.kubeconfig_for("stratum-system", "stratum-operator"))
        op.spawn(op.command())
        # timing starts once kopf is up and watching (its liveness endpoint answers)
        cp.wait("the operator's health endpoint", lambda: _healthy(op.health_port), 60)
        measure_apply(report, cp)
        measure_scaling(report, cp, workdir)
        measure_idle(report, cp, op)
    finally:
        kill_all_services()  # the operator and the writer: nothing outlives the bench
        cp.stop()


if __name__ == "__main__":
    main()
