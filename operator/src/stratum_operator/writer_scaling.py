"""The scaling action: read every ready pod's writer queue, decide, tell the pods.

The decision itself is ``scaling.decide`` (pure). The count reaches each writer through
the ``stratum.io/writer-workers`` pod annotation, which a downward-API file mirrors into
the container: no restart, and never on the Deployment's template (that would roll the
pods). ``status.writer`` keeps the last decisions with their inputs, so a person can
see why; a ``stratum.io/pause-scaling: "true"`` annotation on the StratumPool stops it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import kopf

from stratum_operator.builders import naming
from stratum_operator.k8s import fetching, patching
from stratum_operator.observe import PodReading, read_pods, ready_pods
from stratum_operator.outcome import Outcome
from stratum_operator.scaling import decide
from stratum_operator.spec import StratumPoolSpec

DECISIONS_KEPT = 5


async def scale_writers(
    body: kopf.Body, spec: StratumPoolSpec, status: dict[str, Any], memo: kopf.Memo, out: Outcome
) -> None:
    name, namespace = body.metadata.name, body.metadata.namespace
    assert name is not None and namespace is not None
    writer_status = dict(status.get("writer") or {})
    current = int(writer_status.get("workers") or spec.writer.min_workers)
    if not out.status.get("readyReplicas"):  # the Deployment says none: nothing to read
        pods: list[dict[str, Any]] = []
        readings: list[PodReading] = []
        errors: dict[str, str] = {}
    else:
        pods = await fetching.list_objects("v1", "Pod", namespace, naming.selector(name, "proxy"))
        ready = ready_pods(pods)
        readings, errors = await read_pods(ready, spec.proxy.metrics_port, spec.writer.metrics_port)
    _report_traffic(readings, memo, out)
    paused = body.metadata.annotations.get(naming.PAUSE_SCALING_ANNOTATION) == "true"
    writer_status.update(workers=current, paused=paused)
    if errors or not readings:
        why = "; ".join(f"{pod}: {err}" for pod, err in sorted(errors.items())) or "no ready pods"
        out.condition(
            "ScalingActive",
            False,
            "MetricsUnavailable",
            f"holding {current} writer workers: {why}"[:1000],
        )
        out.status["writer"] = writer_status
        return
    if paused:
        out.condition(
            "ScalingActive",
            False,
            "Paused",
            f"{naming.PAUSE_SCALING_ANNOTATION} is set: holding {current} workers",
        )
        out.status["writer"] = writer_status
        return
    history = [(float(t), int(w)) for t, w in writer_status.get("history", [])]
    decision, history = decide(
        now=time.time(),
        current=current,
        depths={r.pod: r.queue for r in readings},
        target=spec.writer.target_queue_depth,
        lo=spec.writer.min_workers,
        hi=spec.writer.max_workers,
        window_s=spec.writer.scale_down_stabilization_seconds,
        history=history,
    )
    stale = [
        p
        for p in pods
        if p["metadata"].get("annotations", {}).get(naming.WORKERS_ANNOTATION)
        != str(decision.workers)
    ]
    for pod in stale:  # new pods start at minWorkers from the template: bring them in line
        await patching.annotate(
            "v1",
            "Pod",
            namespace,
            pod["metadata"]["name"],
            {naming.WORKERS_ANNOTATION: str(decision.workers)},
        )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    decisions = list(writer_status.get("decisions", []))
    if decision.changed:
        decisions.append(decision.record(now))
        out.event(
            "ScaledWriters", f"writer workers {current} -> {decision.workers}: {decision.reason}"
        )
    writer_status.update(
        workers=decision.workers,
        lastReason=decision.reason,
        decisions=decisions[-DECISIONS_KEPT:],
        history=[[round(t, 1), w] for t, w in history],
    )
    out.status["writer"] = writer_status
    out.condition(
        "ScalingActive", True, "ReadingQueues", f"{len(readings)} pods read; {decision.reason}"
    )


def _report_traffic(readings: list[Any], memo: kopf.Memo, out: Outcome) -> None:
    """Miners, shares/s (from the counters' change since the last tick) and queue depth."""
    total = sum(r.shares_total for r in readings)
    now = time.monotonic()
    last = memo.get("shares")
    rate = 0.0
    if last is not None and now > last[0]:
        rate = max(total - last[1], 0.0) / (now - last[0])  # a restarted pod resets to 0
    memo["shares"] = (now, total)
    # each pod's last queue, kept after it is gone: what its claim held when it went
    memo.setdefault("pod_queues", {}).update({r.pod: r.queue for r in readings})
    out.status.update(
        miners=sum(r.miners for r in readings),
        sharesPerSecond=round(rate, 1),
        queueDepth=sum(r.queue for r in readings),
    )
    versions = {r.schema_version for r in readings if r.schema_version}
    if versions:
        out.status["schemaVersion"] = ",".join(str(v) for v in sorted(versions))
