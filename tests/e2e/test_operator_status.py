"""What the operator says about a pool, on the real control plane: a failed migration and
its evidence, a pool's health as it loses and regains pods, a rollout that is stuck, and a
Secret with the wrong key. Each is what a pool operator reads in ``kubectl get`` and
``kubectl describe`` when something goes wrong.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.kubernetes import ControlPlane
from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.stratum_pools import (
    condition,
    events,
    finish_job_pod,
    job_pods,
    jobs,
    migrated,
    pool,
    proxy_pods,
    ready_pool,
    said,
    secret,
    status,
)
from harness.writer import WriterProcess

LAST_WORDS = "stratum-writer: cannot reach the database at db:5432: connection refused"


def warnings(cp: ControlPlane, ns: str) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in events(cp, ns) if e["type"] == "Warning"]


def test_a_failed_migration_keeps_its_job_and_quotes_its_last_words(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(secret(ns))
    cp.apply(pool("badschema", ns))
    cp.wait("Ready=False while migrating", lambda: condition(cp, "badschema", ns, "Ready").get(
        "reason") == "SchemaNotReady", 30)  # fmt: skip
    (job,) = cp.wait("the migration Job", lambda: jobs(cp, ns, "migration"), 30)
    name = job["metadata"]["name"]
    # the Job controller retries a pod that exits 1: the condition says what it said
    finish_job_pod(cp, ns, name, 1, LAST_WORDS)
    cp.wait("the failed pod quoted while the Job retries", lambda: "pods failed" in condition(
        cp, "badschema", ns, "SchemaReady").get("message", ""), 30)  # fmt: skip
    cond = condition(cp, "badschema", ns, "SchemaReady")
    assert cond["reason"] == "Migrating" and LAST_WORDS in cond["message"], cond
    # exit 2 is the writer's "my settings are wrong": the Job fails at once
    finish_job_pod(cp, ns, name, 2, LAST_WORDS)
    cp.wait("MigrationFailed", lambda: condition(cp, "badschema", ns, "SchemaReady").get("reason")
            == "MigrationFailed", 40)  # fmt: skip
    cond = condition(cp, "badschema", ns, "SchemaReady")
    assert LAST_WORDS in cond["message"] and f"kubectl logs job/{name}" in cond["message"]
    assert status(cp, "badschema", ns)["phase"] == "SchemaFailed"
    retry_at = status(cp, "badschema", ns)["schema"]["retryAt"]
    assert time.strptime(retry_at, "%Y-%m-%dT%H:%M:%SZ"), "a time, not an epoch number"
    time.sleep(3)  # passes go on: the evidence stays
    assert cp.get("job", name, ns) is not None, "the failed Job is kept for its logs"
    assert len(job_pods(cp, ns, name)) == 2, "and its pods"
    failed = [w for w in warnings(cp, ns) if w[0] == "MigrationFailed"]
    assert len(failed) == 1 and LAST_WORDS in failed[0][1], "one Event, with the last words"
    assert cp.get("statefulset", "badschema-proxy", ns) is None
    # after the backoff, the next attempt is a new Job beside the failed one
    retry = f"{name}-2"
    cp.wait("the second attempt", lambda: cp.get("job", retry, ns), 60)
    assert cp.get("job", name, ns) is not None, "kept while the next attempt runs"
    finish_job_pod(cp, ns, retry, 0)
    cp.wait("SchemaReady", lambda: condition(cp, "badschema", ns, "SchemaReady").get("status")
            == "True", 40)  # fmt: skip
    cp.wait("the failed attempt deleted once one succeeded", lambda: cp.get("job", name, ns)
            is None, 30)  # fmt: skip
    assert "lastError" not in status(cp, "badschema", ns)["schema"]


def test_a_secret_with_the_wrong_key_blocks_with_the_key_named(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    value = "postgresql://u:hunter2@db:5432/shares"
    cp.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
              "stringData": {"DATABASE_URL": value}})  # fmt: skip
    cp.apply(pool("wrongkey", ns))
    cp.wait("Blocked", lambda: status(cp, "wrongkey", ns).get("phase") == "Blocked", 30)
    cond = condition(cp, "wrongkey", ns, "Degraded")
    assert cond["reason"] == "SecretKeyMissing"
    assert "no key 'url'" in cond["message"] and "DATABASE_URL" in cond["message"]
    assert "hunter2" not in json.dumps(status(cp, "wrongkey", ns)), "never a value"
    assert condition(cp, "wrongkey", ns, "Ready")["reason"] == "SecretKeyMissing"
    assert jobs(cp, ns, "migration") == [], "nothing runs against a URL it can't read"
    cp.apply(secret(ns))  # fixed: it proceeds on its own
    cp.wait("the migration Job", lambda: jobs(cp, ns, "migration"), 30)


def test_a_ready_pool_that_loses_a_pod_is_degraded_then_recovers(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    pods = ready_pool(cp, "health", ns)
    cp.set_pod_ready(ns, pods[1], "127.0.1.11", ready=False)
    # the operator hears of readiness through the StatefulSet's status (its watch), and
    # looks again in its full pass each minute: a watch event late under the whole
    # suite's load (seen once in a clean-clone run) is caught by that pass
    cp.wait("Degraded", lambda: status(cp, "health", ns).get("phase") == "Degraded", 75)
    degraded = condition(cp, "health", ns, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "ReplicasUnavailable"
    assert "1 of 2 proxy pods ready" in degraded["message"]
    assert condition(cp, "health", ns, "Progressing")["status"] == "False", "not a rollout"
    ready = condition(cp, "health", ns, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReplicasNotReady"
    assert "ReplicasUnavailable" in {r for r, _ in warnings(cp, ns)}
    cp.set_pod_ready(ns, pods[1], "127.0.1.11")
    cp.wait("Ready again", lambda: status(cp, "health", ns).get("phase") == "Ready", 75)
    assert condition(cp, "health", ns, "Degraded")["status"] == "False"
    assert any(e["reason"] == "Recovered" and e["type"] == "Normal" for e in events(cp, ns))


def test_a_hand_scale_is_put_right_at_once_and_said_so(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    ready_pool(cp, "handscale", ns)
    cp.kubectl("scale", "statefulset", "handscale-proxy", "-n", ns, "--replicas=5")
    cp.wait("back to 2 replicas", lambda: (cp.get("statefulset", "handscale-proxy", ns) or {})
            .get("spec", {}).get("replicas") == 2, 20)  # fmt: skip
    restored = said(cp, ns, "Restored")
    assert "set by hand (kubectl" in restored[0]["message"], restored
    for c in status(cp, "handscale", ns)["conditions"]:  # reasons agree with statuses
        assert not (c["type"] == "Ready" and c["status"] == "False"
                    and c["reason"] == "AllReplicasReady"), c  # fmt: skip


def test_a_rollout_that_makes_no_progress_is_reported_stuck(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    spec = {"proxy": {"replicas": 2, "progressDeadlineSeconds": 30}}
    ready_pool(cp, "stuck", ns, **spec)
    # a new configuration: its pods never become ready (this kubelet does nothing)
    cp.apply(pool("stuck", ns, proxy={"replicas": 2, "progressDeadlineSeconds": 30,
                                      "submitTimeoutSeconds": 20}))  # fmt: skip
    cp.wait("Progressing", lambda: condition(cp, "stuck", ns, "Progressing").get("reason")
            == "RollingOut", 30)  # fmt: skip
    assert status(cp, "stuck", ns)["phase"] == "Progressing"
    cp.wait("the deadline", lambda: condition(cp, "stuck", ns, "Progressing").get("reason")
            == "ProgressDeadlineExceeded", 75)  # fmt: skip
    assert condition(cp, "stuck", ns, "Progressing")["status"] == "False"
    assert condition(cp, "stuck", ns, "Degraded")["reason"] == "RolloutStuck"
    assert status(cp, "stuck", ns)["phase"] == "Degraded"
    assert "RolloutStuck" in {r for r, _ in warnings(cp, ns)}


def test_shares_per_second_is_per_pod_and_unknown_is_left_empty(
    installed_chart: ControlPlane, ns: str, sim: SimLoop, tmp_path: Path
) -> None:
    """Two pods, each a real proxy with miners and a real writer at its pod IP, read by
    the operator. A pod leaving, coming back or restarting must not turn the rate into 0
    or a spike; when no pod can be read, miners, shares/s and queue are empty, not 0."""
    cp = installed_chart
    _, upstream = sim.pool()
    cp.apply(secret(ns))
    cp.apply(pool("traffic", ns))
    migrated(cp, "traffic", ns)
    pods = cp.wait("two proxy pods", lambda: len(proxy_pods(cp, "traffic", ns)) == 2 and
                   proxy_pods(cp, "traffic", ns), 30)  # fmt: skip
    names = [p["metadata"]["name"] for p in pods]
    proxies = []
    for i, name in enumerate(names):
        ip = f"127.0.1.{40 + i}"
        proxy = ProxyProcess(tmp_path / name, [upstream], host=ip, metrics_port=9101).start()
        WriterProcess(proxy.spool, f"sqlite:///{tmp_path / name}.db", host=ip, port=9102).start()
        proxies.append(proxy)
        cp.set_pod_ready(ns, name, ip)
    per_pod = 20  # shares/s
    fleets = [sim.fleet(p.listen_port, miners=4, shares_per_s=per_pod, duration=150)
              for p in proxies]  # fmt: skip
    seen: list[float] = []

    def rate() -> float:
        value = status(cp, "traffic", ns).get("sharesPerSecond")
        if value is not None:
            seen.append(float(value))
        return float(value or 0)

    cp.wait("the pool's rate", lambda: rate() > 1.5 * per_pod, 45)
    assert status(cp, "traffic", ns)["miners"] == 8
    # one pod not ready: the other's rate, not 0
    cp.set_pod_ready(ns, names[1], "127.0.1.41", ready=False)
    cp.wait("one pod's rate", lambda: 0.5 * per_pod < rate() < 1.5 * per_pod, 40)
    cp.set_pod_ready(ns, names[1], "127.0.1.41")
    cp.wait("both again", lambda: rate() > 1.5 * per_pod, 40)
    # a proxy restarts: its counter starts again from 0, which is not a negative rate
    proxies[0].terminate()
    proxies[0].start()
    cp.wait("miners back", lambda: status(cp, "traffic", ns).get("miners") == 8, 60)
    cp.wait("the rate after the restart", lambda: rate() > 1.5 * per_pod, 40)
    assert max(seen) < 2 * per_pod * 1.5, f"no spike from a reset or a returning pod: {seen}"
    # nobody to read: unknown, shown empty rather than 0
    for i, name in enumerate(names):
        cp.set_pod_ready(ns, name, f"127.0.1.{40 + i}", ready=False)
    cp.wait("unknown", lambda: "sharesPerSecond" not in status(cp, "traffic", ns), 30)
    shown = status(cp, "traffic", ns)
    assert "miners" not in shown and "queueDepth" not in shown, shown
    header, row = cp.kubectl("get", "sp", "traffic", "-n", ns).splitlines()[:2]
    assert " 0 " not in row, f"unknown is not 0:\n{header}\n{row}"
    assert not any(f.done() and f.exception() for f in fleets)
