"""``kubectl stratum status``, run by real kubectl as a plugin against the real control
plane, in each phase a pool operator meets: Blocked, Migrating, Ready (its pods' own
metrics read through the API server's pod proxy) and Degraded; and ``-o json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.kubernetes import ControlPlane
from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.stratum_pools import migrated, pool, proxy_pods, secret, status
from harness.writer import WriterProcess


def stratum(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    """As a person types it: kubectl finds kubectl-stratum on PATH and runs it."""
    path = os.pathsep.join([str(Path(sys.executable).parent), str(cp.bin), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "KUBECONFIG": str(cp.kubeconfig)}
    return subprocess.run(["kubectl", "stratum", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def host_address() -> str:
    """This host's own (non-loopback) IPv4 address."""
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True)
    ours = [a for a in found.stdout.split() if "." in a and not a.startswith("127.")]
    assert ours, "the pod-proxy test needs a non-loopback IPv4 address on this host"
    return ours[0]


def shown(cp: ControlPlane, name: str, ns: str) -> dict[str, Any]:
    out = stratum(cp, "status", name, "-n", ns, "-o", "json")
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def test_status_in_each_phase(
    installed_chart: ControlPlane, ns: str, sim: SimLoop, tmp_path: Path
) -> None:
    cp = installed_chart
    # Blocked: the Secret is missing, and the screen says so with the reason
    cp.apply(pool("shown", ns))
    cp.wait("Blocked", lambda: status(cp, "shown", ns).get("phase") == "Blocked", 30)
    text = stratum(cp, "status", "shown", "-n", ns)
    assert text.returncode == 0, text.stderr
    assert "Phase:           Blocked" in text.stdout and "SecretMissing" in text.stdout
    assert "SecretMissing" in {w["reason"] for w in shown(cp, "shown", ns)["warnings"]}
    # Migrating: the migration Job is there, running
    cp.apply(secret(ns))
    cp.wait("Migrating", lambda: status(cp, "shown", ns).get("phase") == "Migrating", 30)
    found = shown(cp, "shown", ns)
    assert found["phase"] == "Migrating"
    assert [j["state"] for j in found["jobs"] if j["component"] == "migration"] == ["Running"]
    # Ready: two pods, each a real proxy and writer at its pod IP, read through the API
    # server's pod proxy, which refuses loopback addresses: the first pod is at this
    # host's own address (read), the second on loopback (unreadable, and said why)
    migrated(cp, "shown", ns)
    pods = cp.wait("two proxy pods", lambda: len(proxy_pods(cp, "shown", ns)) == 2 and
                   proxy_pods(cp, "shown", ns), 30)  # fmt: skip
    _, upstream = sim.pool()
    for p, ip in zip(pods, (host_address(), "127.0.1.61"), strict=True):
        name = p["metadata"]["name"]
        proxy = ProxyProcess(tmp_path / name, [upstream], host=ip, metrics_port=9101).start()
        WriterProcess(proxy.spool, f"sqlite:///{tmp_path / name}.db", host=ip, port=9102).start()
        cp.set_pod_ready(ns, name, ip)
    cp.wait("Ready", lambda: status(cp, "shown", ns).get("phase") == "Ready", 40)
    found = shown(cp, "shown", ns)
    assert found["phase"] == "Ready" and found["ready"] == "2/2"
    assert [p["ready"] for p in found["pods"]] == [True, True]
    first, second = found["pods"]
    assert (first["queue"], first["workers"], first["miners"], first["unreadable"]) == (0, 1, 0, "")
    assert second["queue"] is None and "address not allowed" in second["unreadable"], second
    assert found["miners_address"].endswith(":3333 (LoadBalancer; no external address yet)")
    assert {j["component"]: j["state"] for j in found["jobs"]}["migration"] == "Complete"
    screen = stratum(cp, "status", "shown", "-n", ns).stdout
    assert "Phase:           Ready (2/2 ready)" in screen and "AllReplicasReady" in screen
    # Degraded: a ready pool loses a pod outside a rollout
    cp.set_pod_ready(ns, pods[1]["metadata"]["name"], "127.0.1.61", ready=False)
    cp.wait("Degraded", lambda: status(cp, "shown", ns).get("phase") == "Degraded", 30)
    found = shown(cp, "shown", ns)
    assert found["phase"] == "Degraded"
    assert any(c["type"] == "Degraded" and c["reason"] == "ReplicasUnavailable"
               for c in found["conditions"])  # fmt: skip
    assert [p["ready"] for p in found["pods"]] == [True, False]
    assert "ReplicasUnavailable" in {w["reason"] for w in found["warnings"]}


def test_a_pool_that_is_not_there_is_one_clear_line(installed_chart: ControlPlane, ns: str) -> None:
    out = stratum(installed_chart, "status", "nosuchpool", "-n", ns)
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("kubectl stratum:") and "nosuchpool" in line and "not found" in line
