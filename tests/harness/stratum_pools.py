"""StratumPools on the test control plane: manifests, status reads, and the kubelet's
part for Job pods (there is no kubelet: tests mark a Job's pod finished)."""

from __future__ import annotations

import json
import time
from typing import Any

from harness.kubernetes import ControlPlane


def pool(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "upstreams": ["stratum+tcp://pool.example.com:3333"],
        "persistence": {"backend": "postgres", "databaseUrlSecret": {"name": "db"}},
        "proxy": {"replicas": 2},
    }
    body.update(spec)
    return {"apiVersion": "stratum.io/v1alpha1", "kind": "StratumPool",
            "metadata": {"name": name, "namespace": ns}, "spec": body}  # fmt: skip


def secret(ns: str, url: str = "postgresql://u:p@db:5432/shares") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
            "stringData": {"url": url}}  # fmt: skip


def status(cp: ControlPlane, name: str, ns: str) -> dict[str, Any]:
    found = cp.get("stratumpool", name, ns) or {}
    return dict(found.get("status", {}))


def condition(cp: ControlPlane, name: str, ns: str, type_: str) -> dict[str, Any]:
    for c in status(cp, name, ns).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return {}


def events(cp: ControlPlane, ns: str) -> list[dict[str, Any]]:
    return list(json.loads(cp.kubectl("get", "events", "-n", ns, "-o", "json"))["items"])


def said(cp: ControlPlane, ns: str, reason: str, timeout: float = 20) -> list[dict[str, Any]]:
    """The Events of ``reason``, once there is one: the operator posts a pass's Events when
    the pass ends, a moment after the changes it applied are visible."""
    found: list[dict[str, Any]] = cp.wait(
        f"a {reason} Event", lambda: [e for e in events(cp, ns) if e["reason"] == reason], timeout
    )
    return found


def job_pods(cp: ControlPlane, ns: str, job: str) -> list[dict[str, Any]]:
    out = cp.kubectl(
        "get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job}", "-o", "json"
    )
    return list(json.loads(out)["items"])


def finish_job_pod(cp: ControlPlane, ns: str, job: str, exit_code: int, message: str = "") -> None:
    """Play the kubelet: the Job's (newest unfinished) pod ran to completion with this exit
    code, leaving ``message`` as its termination message (its last words)."""

    def running() -> list[dict[str, Any]]:
        return [p for p in job_pods(cp, ns, job)
                if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]  # fmt: skip

    pod = cp.wait(f"a running pod of Job {job}", running, 30)[0]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    phase = "Succeeded" if exit_code == 0 else "Failed"
    container = pod["spec"]["containers"][0]["name"]
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                  "startedAt": now, "finishedAt": now, "message": message}  # fmt: skip
    cp.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/status", {"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
        "containerStatuses": [{"name": container, "ready": False, "restartCount": 0, "image": "x",
                               "imageID": "", "state": {"terminated": terminated}}],
    }}, "application/merge-patch+json")  # fmt: skip


def jobs(cp: ControlPlane, ns: str, component: str) -> list[dict[str, Any]]:
    out = cp.kubectl("get", "jobs", "-n", ns, "-l", f"app.kubernetes.io/component={component}",
                     "-o", "json")  # fmt: skip
    return list(json.loads(out)["items"])


def migrated(cp: ControlPlane, name: str, ns: str) -> str:
    """Wait for the migration Job, make it succeed, return its name."""
    found = cp.wait("the migration Job", lambda: jobs(cp, ns, "migration"), 30)
    job = found[0]["metadata"]["name"]
    finish_job_pod(cp, ns, job, 0)
    cp.wait(
        "SchemaReady", lambda: condition(cp, name, ns, "SchemaReady").get("status") == "True", 40
    )
    return str(job)


def proxy_pods(cp: ControlPlane, name: str, ns: str) -> list[dict[str, Any]]:
    out = cp.kubectl("get", "pods", "-n", ns, "-l", f"stratum.io/pool={name},app.kubernetes.io/component=proxy",
                     "-o", "json")  # fmt: skip
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def ready_pool(cp: ControlPlane, name: str, ns: str, **spec: Any) -> list[str]:
    """A pool migrated and rolled out, its pods made ready by us (the kubelet)."""
    cp.apply(secret(ns))
    cp.apply(pool(name, ns, **spec))
    migrated(cp, name, ns)
    replicas = spec.get("proxy", {}).get("replicas", 2)
    pods = cp.wait("the proxy pods", lambda: len(proxy_pods(cp, name, ns)) == replicas and
                   proxy_pods(cp, name, ns), 30)  # fmt: skip
    for i, p in enumerate(pods):
        cp.set_pod_ready(ns, p["metadata"]["name"], f"127.0.1.{10 + i}")
    cp.wait("Ready", lambda: status(cp, name, ns).get("phase") == "Ready", 40)
    return [p["metadata"]["name"] for p in pods]
