"""What ``kubectl stratum status`` shows, read through kubectl: the pool, its pods (their
metrics through the API server's pod proxy, so it works from outside the cluster), its
Jobs, its Service and its recent Warning Events."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from stratum_operator.builders import naming
from stratum_operator.job_status import state_of
from stratum_operator.observe import samples

_RECENT_WARNINGS = 8


class PluginError(Exception):
    """kubectl refused or the pool is not there: the one line to print."""


@dataclass
class PodStatus:
    name: str
    ready: bool
    miners: int | None = None
    shares_total: float | None = None
    queue: int | None = None
    oldest_age_s: float | None = None
    workers: int | None = None
    unreadable: str = ""  # why its metrics could not be read


@dataclass
class PoolStatus:
    name: str
    namespace: str
    phase: str
    ready: str
    conditions: list[dict[str, Any]]
    miners_address: str
    pods: list[PodStatus] = field(default_factory=list)
    writer: dict[str, Any] = field(default_factory=dict)  # workers, the last decisions
    jobs: list[dict[str, str]] = field(default_factory=list)
    retention: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)  # miners, shares/s, queue

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kubectl(*args: str) -> str:
    # a kubectl plugin runs the user's own kubectl, from PATH, with fixed arguments
    out = subprocess.run(  # noqa: S603
        ["kubectl", *args],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if out.returncode != 0:
        raise PluginError(out.stderr.strip() or f"kubectl {' '.join(args)} failed")
    return out.stdout


def _json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def _metrics(namespace: str, pod: str, port: int) -> dict[str, float]:
    return samples(
        kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/metrics")
    )


def _pod(namespace: str, pod: dict[str, Any], proxy_port: int, writer_port: int) -> PodStatus:
    name = pod["metadata"]["name"]
    conditions = pod.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    found = PodStatus(name, ready)
    if not ready:
        return found
    try:
        proxy = _metrics(namespace, name, proxy_port)
        writer = _metrics(namespace, name, writer_port)
    except PluginError as exc:
        found.unreadable = str(exc).splitlines()[-1][:200]
        return found
    found.miners = int(proxy.get("stratum_proxy_miners", 0))
    found.shares_total = proxy.get("stratum_proxy_shares_total", 0.0)
    found.queue = int(writer.get("stratum_writer_queue_events", 0))
    found.oldest_age_s = writer.get("stratum_writer_oldest_event_age_seconds", 0.0)
    found.workers = int(writer.get("stratum_writer_workers", 0))
    return found


def _address(service: dict[str, Any] | None) -> str:
    if service is None:
        return "(no Service yet)"
    port = service["spec"]["ports"][0]["port"]
    ingress = service.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    if ingress:
        host = ingress[0].get("ip") or ingress[0].get("hostname")
        return f"{host}:{port}"
    kind = service["spec"].get("type", "ClusterIP")
    pending = "; no external address yet" if kind == "LoadBalancer" else ""
    return f"{service['spec'].get('clusterIP')}:{port} ({kind}{pending})"


def gather(name: str, namespace: str) -> PoolStatus:
    pool = _json("get", "stratumpool", name, "-n", namespace)
    spec, status = pool.get("spec", {}), pool.get("status", {})
    labels = f"{naming.GROUP}/pool={name}"
    pods = _json(
        "get", "pods", "-n", namespace, "-l", f"{labels},app.kubernetes.io/component=proxy"
    )
    try:
        service: dict[str, Any] | None = _json(
            "get", "service", naming.service_name(name), "-n", namespace
        )
    except PluginError:
        service = None
    jobs = _json("get", "jobs", "-n", namespace, "-l", labels)["items"]
    events = _json("get", "events", "-n", namespace, "--field-selector",
                   f"involvedObject.name={name},type=Warning")["items"]  # fmt: skip
    proxy_port = spec.get("proxy", {}).get("metricsPort", 9101)
    writer_port = spec.get("writer", {}).get("metricsPort", 9102)
    recent = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return PoolStatus(
        name=name,
        namespace=namespace,
        phase=status.get("phase", "(no status yet)"),
        ready=status.get("ready", ""),
        conditions=status.get("conditions", []),
        miners_address=_address(service),
        pods=[
            _pod(namespace, p, proxy_port, writer_port)
            for p in sorted(pods["items"], key=lambda p: p["metadata"]["name"])
        ],
        writer=status.get("writer", {}),
        jobs=[
            {
                "name": j["metadata"]["name"],
                "component": j["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""),
                "state": state_of(j).value,
            }
            for j in jobs
        ],
        retention=status.get("retention", {}),
        warnings=[
            {
                "reason": e.get("reason"),
                "message": e.get("message"),
                "count": e.get("count", 1),
                "last": e.get("lastTimestamp") or e.get("eventTime"),
            }
            for e in recent[-_RECENT_WARNINGS:]
        ],
        traffic={k: status[k] for k in ("miners", "sharesPerSecond", "queueDepth") if k in status},
    )
