"""The scaling action: read every ready pod's writer queue, decide, tell the pods.

The decision itself is ``scaling.decide`` (pure). The count reaches each writer through
the ``stratum.io/writer-workers`` pod annotation, which a downward-API file mirrors into
the container: no restart, and never on the Deployment's template (that would roll the
pods). ``status.writer`` keeps the last decisions with their inputs, so a person can
see why; a ``stratum.io/pause-scaling: "true"`` annotation on the StratumPool stops it.
The recommendation history the stabilization window needs is kept in memory, not in
status: a status rewritten on every tick is churn (after a restart the window starts
afresh, which only delays a scale-down).

Traffic in status (miners, shares/s, queue) is what the pods said this tick: a rate per
pod from its own counter (a counter that went down is a restarted pod, counted from
zero), summed; a value nobody could measure is left out, never shown as 0.
"""

from __future__ import annotations

import time
from typing import Any

from stratum_operator import metrics
from stratum_operator.builders import naming
from stratum_operator.clock import timestamp
from stratum_operator.k8s import fetching, patching
from stratum_operator.observe import PodReading, read_pods, ready_pods
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.scaling import decide
from stratum_operator.spec import StratumPoolSpec
from stratum_operator.vocabulary import ConditionType, Reason

DECISIONS_KEPT = 5
RATE_WINDOW_S = 9.0  # a pod's shares/s is measured over about one tick, or more


async def scale_writers(
    pool: dict[str, Any], spec: StratumPoolSpec, memo: PoolMemory, out: Outcome
) -> None:
    name, namespace = naming.name_of(pool)
    status = pool.get("status") or {}
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
    report_traffic(readings, memo, out, now=time.monotonic())
    report_dead_letters(readings, out)
    annotations = pool["metadata"].get("annotations") or {}
    paused = annotations.get(naming.PAUSE_SCALING_ANNOTATION) == "true"
    writer_status.update(workers=current, paused=paused)
    if errors or not readings:
        why = "; ".join(f"{pod}: {err}" for pod, err in sorted(errors.items())) or "no ready pods"
        out.condition(
            ConditionType.SCALING_ACTIVE,
            False,
            Reason.METRICS_UNAVAILABLE,
            f"holding {current} writer workers: {why}"[:1000],
        )
        _report(namespace, name, writer_status, out, was=current)
        return
    if paused:
        out.condition(
            ConditionType.SCALING_ACTIVE,
            False,
            Reason.SCALING_PAUSED,
            f"{naming.PAUSE_SCALING_ANNOTATION} is set: holding {current} workers",
        )
        _report(namespace, name, writer_status, out, was=current)
        return
    writer_status.pop("history", None)  # kept in status by earlier releases
    decision, memo.scaling_history = decide(
        now=time.time(),
        current=current,
        depths={r.pod: r.queue for r in readings},
        target=spec.writer.target_queue_depth,
        lo=spec.writer.min_workers,
        hi=spec.writer.max_workers,
        window_s=spec.writer.scale_down_stabilization_seconds,
        history=memo.scaling_history,
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
    decisions = list(writer_status.get("decisions", []))
    if decision.changed:
        decisions.append(decision.record(timestamp()))
        change = f"writer workers {current} -> {decision.workers}: {decision.reason}"
        out.event(Reason.SCALED_WRITERS, change)
    writer_status.update(
        workers=decision.workers,
        lastReason=decision.reason,
        decisions=decisions[-DECISIONS_KEPT:],
    )
    _report(namespace, name, writer_status, out, was=current)
    read = f"{len(readings)} pods read; {decision.reason}"
    out.condition(ConditionType.SCALING_ACTIVE, True, Reason.READING_QUEUES, read)


def _report(
    namespace: str, name: str, writer_status: dict[str, Any], out: Outcome, *, was: int
) -> None:
    """status.writer, and the count told (and whether it changed) in the metrics."""
    out.status["writer"] = writer_status
    metrics.writer_workers(namespace, name, int(writer_status["workers"]), was=was)


def report_traffic(
    readings: list[PodReading], memo: PoolMemory, out: Outcome, *, now: float
) -> None:
    """Miners, shares/s and queue depth of the pods read this tick (see the module doc)."""
    counters = {r.pod: r.shares_total for r in readings if r.shares_total is not None}
    baselines, rates = memo.share_counters, memo.share_rates
    memo.share_counters = {p: baselines[p] for p in counters if p in baselines}
    memo.share_rates = {p: rates[p] for p in counters if p in rates}
    for pod, total in counters.items():
        _count(pod, now, total, memo.share_counters, memo.share_rates)
    known = list(memo.share_rates.values())
    miners = [r.miners for r in readings if r.miners is not None]
    # each pod's last queue, kept after it is gone: what its claim held when it went
    memo.pod_queues.update({r.pod: r.queue for r in readings})
    out.status.update(
        miners=sum(miners) if miners else None,
        sharesPerSecond=round(sum(known), 1) if known else None,
        queueDepth=sum(r.queue for r in readings) if readings else None,
    )
    versions = {r.schema_version for r in readings if r.schema_version}
    if versions:
        out.status["schemaVersion"] = ",".join(str(v) for v in sorted(versions))


def report_dead_letters(readings: list[PodReading], out: Outcome) -> None:
    """DeadLettersFull from the writers read this pass; nothing said when none was read
    (the condition keeps what it was)."""
    if not readings:
        return
    full = sorted(r.pod for r in readings if r.dead_letters_full)
    if full:
        out.condition(ConditionType.DEAD_LETTERS_FULL, True, Reason.DEAD_LETTER_CAP_REACHED,
                      f"the dead-letter file of {', '.join(full)} is at its cap "
                      "(spool.deadLetterLimit): refused shares wait in the spool, which "
                      "fills; replay the dead letters, then move the file away")  # fmt: skip
        return
    out.condition(ConditionType.DEAD_LETTERS_FULL, False, Reason.BELOW_DEAD_LETTER_CAP,
                  f"every dead-letter file of the {len(readings)} pods read has room")  # fmt: skip


def _count(
    pod: str, now: float, total: float,
    baselines: dict[str, tuple[float, float]], rates: dict[str, float],
) -> None:  # fmt: skip
    """One pod's rate: its counter's increase over at least ``RATE_WINDOW_S`` (passes
    may come seconds apart; shares come in bursts). A counter that went down is a
    restarted pod: everything it counted is new."""
    if pod not in baselines:
        baselines[pod] = (now, total)
        return
    since, before = baselines[pod]
    if total < before:
        rates[pod] = total / max(now - since, 1.0)
        baselines[pod] = (now, total)
    elif now - since >= RATE_WINDOW_S:
        rates[pod] = (total - before) / (now - since)
        baselines[pod] = (now, total)
