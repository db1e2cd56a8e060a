"""A pool operator's everyday acts on the real control plane: a clean install's Events
and log, deleting a pool with the operator gone, pausing a pool during an incident,
``kubectl scale``, a Service deleted by hand, and an idle pool left alone.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from harness.kubernetes import ControlPlane
from harness.operator import OperatorProcess
from harness.stratum_pools import (
    condition,
    events,
    migrated,
    pool,
    proxy_pods,
    ready_pool,
    said,
    secret,
    status,
)

LOCAL = {"persistence": {"backend": "sqlite"}, "proxy": {}}  # one replica: its default


@contextmanager
def operator_gone(operator: OperatorProcess) -> Iterator[None]:
    """The operator stopped dead (as after ``helm uninstall``), then resumed."""
    assert operator.proc is not None
    os.kill(operator.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(operator.proc.pid, signal.SIGCONT)


def test_a_clean_install_posts_only_good_news_once_under_our_name(
    installed_chart: ControlPlane, ns: str, operator: OperatorProcess
) -> None:
    cp = installed_chart
    ready_pool(cp, "clean", ns)
    time.sleep(12)  # a tick or two more: nothing new to say
    # the pool's own (the controllers' Events about our fake loopback pod IPs aside)
    posted = [e for e in events(cp, ns) if e["involvedObject"]["kind"] == "StratumPool"]
    assert posted, "the steps are told"
    bad = [(e["reason"], e["message"]) for e in posted if e["type"] == "Warning"]
    assert bad == [], "no Warning on success"
    assert {e["source"].get("component") for e in posted} == {"stratum-operator"}
    assert all(e["message"].strip() and not e["message"].endswith(":") for e in posted)
    reasons = Counter(e["reason"] for e in posted)
    assert "Restored" not in reasons, "the first rollout restores nothing"
    assert reasons["MigrationSucceeded"] == 1 and "Migrated" not in reasons, "one per step"
    assert max(reasons.values()) == 1 and all(e.get("count", 1) == 1 for e in posted), reasons
    assert reasons["AllReplicasReady"] == 1
    meta = cp.get("stratumpool", "clean", ns)["metadata"]  # type: ignore[index]
    assert not [a for a in meta.get("annotations", {}) if "kopf" in a or "last-handled" in a]
    # the log: one line per decision or transition, naming the pool; no routine ticks
    log = operator.log.read_text()
    assert "Handler '" not in log and "Timer '" not in log, "no line per routine pass"
    mine = [line for line in log.splitlines() if f"[{ns}/clean]" in line]
    assert any("MigrationSucceeded" in line for line in mine), log[-2000:]


def test_a_pool_without_claims_to_drain_has_no_finalizer_and_deletes_without_the_operator(
    installed_chart: ControlPlane, ns: str, operator: OperatorProcess
) -> None:
    cp = installed_chart
    cp.apply(pool("local", ns, **LOCAL))
    cp.wait("its StatefulSet", lambda: cp.get("statefulset", "local-proxy", ns), 30)
    time.sleep(2)
    assert cp.get("stratumpool", "local", ns)["metadata"].get("finalizers") is None  # type: ignore[index]
    cp.apply(secret(ns))
    cp.apply(pool("pg", ns))
    assert cp.get("stratumpool", "pg", ns)["metadata"].get("finalizers") is None, (  # type: ignore[index]
        "nothing to protect before its pods and claims exist"
    )
    migrated(cp, "pg", ns)
    cp.wait("the drain finalizer, once claims may hold shares", lambda: (cp.get(
        "stratumpool", "pg", ns) or {}).get("metadata", {}).get("finalizers") ==
        ["stratum.io/drain-spools"], 30)  # fmt: skip
    with operator_gone(operator):
        cp.kubectl("delete", "stratumpool", "local", "-n", ns, "--wait=false")
        cp.wait("deleted with no operator running", lambda: cp.get("stratumpool", "local", ns)
                is None, 20)  # fmt: skip


def test_pause_reconciliation_leaves_hand_edits_alone_until_removed(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    cp.apply(pool("incident", ns, **LOCAL))
    cp.wait("its Service", lambda: cp.get("service", "incident", ns), 30)
    cp.kubectl("annotate", "sp", "incident", "-n", ns, "stratum.io/pause-reconciliation=true")
    cp.wait("Paused", lambda: status(cp, "incident", ns).get("phase") == "Paused", 20)
    assert condition(cp, "incident", ns, "ReconciliationPaused")["status"] == "True"
    assert "Paused" in cp.kubectl("get", "sp", "incident", "-n", ns)
    cp.kubectl("delete", "service", "incident", "-n", ns)
    time.sleep(15)  # longer than a tick: nothing comes back while paused
    assert cp.get("service", "incident", ns) is None
    cp.kubectl("annotate", "sp", "incident", "-n", ns, "stratum.io/pause-reconciliation-")
    cp.wait("the Service back", lambda: cp.get("service", "incident", ns), 20)
    assert condition(cp, "incident", ns, "ReconciliationPaused")["status"] == "False"


def test_kubectl_scale_sets_the_proxy_replicas(installed_chart: ControlPlane, ns: str) -> None:
    cp = installed_chart
    cp.apply(secret(ns))
    cp.apply(pool("scalable", ns))
    migrated(cp, "scalable", ns)
    cp.wait("its StatefulSet", lambda: cp.get("statefulset", "scalable-proxy", ns), 30)
    cp.kubectl("scale", "sp", "scalable", "-n", ns, "--replicas=3")
    cp.wait("3 replicas", lambda: (cp.get("statefulset", "scalable-proxy", ns) or {}).get(
        "spec", {}).get("replicas") == 3, 20)  # fmt: skip
    scale = cp.request(
        "GET", f"/apis/stratum.io/v1alpha1/namespaces/{ns}/stratumpools/scalable/scale"
    )
    assert scale["spec"]["replicas"] == 3
    selector = "app.kubernetes.io/component=proxy,stratum.io/pool=scalable"
    cp.wait("the selector an HPA needs", lambda: cp.request("GET", f"/apis/stratum.io/v1alpha1/"
            f"namespaces/{ns}/stratumpools/scalable/scale")["status"].get("selector") == selector,
            20)  # fmt: skip
    assert len(proxy_pods(cp, "scalable", ns)) == 3
    # a pool that left replicas to its default (1 for sqlite) answers /scale too: the
    # operator writes the default into the spec, where /scale reads it
    cp.apply(pool("tiny", ns, **LOCAL))
    cp.wait("/scale of a defaulted pool", lambda: _scale_replicas(cp, ns, "tiny") == 1, 20)


def _scale_replicas(cp: ControlPlane, ns: str, name: str) -> int | None:
    try:
        found = cp.request(
            "GET", f"/apis/stratum.io/v1alpha1/namespaces/{ns}/stratumpools/{name}/scale"
        )
    except OSError:  # 500 while spec.proxy.replicas is missing
        return None
    return int(found["spec"]["replicas"])


def test_a_deleted_service_returns_at_once_and_an_idle_status_is_not_rewritten(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    ready_pool(cp, "steady", ns)
    before = cp.get("service", "steady", ns)
    assert before is not None
    cp.kubectl("delete", "service", "steady", "-n", ns)
    started = time.monotonic()
    cp.wait("the Service back", lambda: (cp.get("service", "steady", ns) or {}).get(
        "metadata", {}).get("uid") not in (None, before["metadata"]["uid"]), 10)  # fmt: skip
    assert time.monotonic() - started < 5
    restored = said(cp, ns, "Restored")
    assert "Service steady was deleted" in restored[0]["message"], restored
    time.sleep(3)
    version = cp.get("stratumpool", "steady", ns)["metadata"]["resourceVersion"]  # type: ignore[index]
    time.sleep(25)  # two ticks and more: an unchanged status is not written
    assert cp.get("stratumpool", "steady", ns)["metadata"]["resourceVersion"] == version  # type: ignore[index]
    shown = json.loads(cp.kubectl("get", "sp", "steady", "-n", ns, "-o", "json"))["status"]
    assert "history" not in shown.get("writer", {})


def test_what_earlier_builds_left_on_a_pool_is_removed(
    installed_chart: ControlPlane, ns: str
) -> None:
    cp = installed_chart
    old = pool("upgraded", ns, **LOCAL)
    old["metadata"]["finalizers"] = ["stratum.io/finalizer"]  # kopf's, for its timer
    old["metadata"]["annotations"] = {"stratum.io/last-handled-configuration": "{}",
                                      "stratum.io/converge": "{}", "team": "mining"}  # fmt: skip
    cp.apply(old)

    def cleaned() -> bool:
        meta = (cp.get("stratumpool", "upgraded", ns) or {}).get("metadata", {})
        return not meta.get("finalizers") and meta.get("annotations", {}).keys() <= {
            "team", "kubectl.kubernetes.io/last-applied-configuration"}  # fmt: skip

    cp.wait("kopf's finalizer and annotations gone", cleaned, 20)
    meta = cp.get("stratumpool", "upgraded", ns)["metadata"]  # type: ignore[index]
    assert meta["annotations"]["team"] == "mining", "the user's own stay"
    cp.kubectl("delete", "stratumpool", "upgraded", "-n", ns, "--wait=false")
    cp.wait("deletable", lambda: cp.get("stratumpool", "upgraded", ns) is None, 20)
