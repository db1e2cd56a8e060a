"""The proxy workload: the StatefulSet rolled out and read back, and the Deployment of
pools created before StatefulSets retired without losing what its pods' spools hold.

A Deployment-era pod keeps its spool on an emptyDir that dies with it. So the old
Deployment goes only once the StatefulSet's pods are all ready to take its miners *and*
every old pod's writer says the database is up and its queue is under one batch: then
SIGTERM's drain (which a database outage would cut short) stores what is left.
"""

from __future__ import annotations

import time
from typing import Any

from stratum_operator.builders import Children, naming
from stratum_operator.conditions import is_true
from stratum_operator.k8s import applying, deleting, fetching, resources
from stratum_operator.observe import read_writer, ready_pods
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.spec import StratumPoolSpec
from stratum_operator.vocabulary import ConditionType, Reason


async def roll_out(
    pool: dict[str, Any], children: Children, spec: StratumPoolSpec, memo: PoolMemory,
    out: Outcome,
) -> dict[str, Any]:  # fmt: skip
    """Apply the StatefulSet (then its Services and PDB); the StatefulSet as it is now.

    What was there before tells what happened: nothing, on a pool that had rolled out,
    is a StatefulSet deleted by hand; a replica count someone else set (the watch saw it,
    ``memo.hand_scaled``, even if it was gone by the time we read), a hand ``kubectl
    scale``; another configuration hash, a rollout."""
    sts = children.workload[0]
    meta = sts["metadata"]
    status = pool.get("status") or {}
    before = await fetching.get("apps/v1", "StatefulSet", meta["namespace"], meta["name"])
    hand, memo.hand_scaled = memo.hand_scaled, None
    if hand is None and before is not None:
        hand = hand_scaled(before)
    wanted = sts["spec"]["template"]["metadata"]["annotations"][naming.CONFIG_HASH_ANNOTATION]
    if before is None and status.get("replicas") is not None:
        out.event(Reason.RESTORED, f"StatefulSet {meta['name']} was missing; re-created it")
    elif before is None:
        out.event(Reason.ROLLING_OUT, f"rolling out {spec.proxy.replicas} proxy pods "
                  f"(StatefulSet {meta['name']})")  # fmt: skip
    elif before is not None:
        had = before["spec"]["template"]["metadata"].get("annotations", {})
        replicas = before["spec"].get("replicas")
        if had.get(naming.CONFIG_HASH_ANNOTATION) != wanted:
            out.event(Reason.ROLLING_OUT, f"configuration changed ({wanted}): rolling the proxies")
        elif hand is not None and hand[0] != spec.proxy.replicas:
            out.event(Reason.RESTORED, f"StatefulSet {meta['name']} had {hand[0]} replicas, set "
                      f"by hand ({hand[1]}); back to spec.proxy.replicas "
                      f"({spec.proxy.replicas})")  # fmt: skip
        elif replicas != spec.proxy.replicas:
            out.event(Reason.SCALED, f"proxies {replicas} -> {spec.proxy.replicas}")
    applied = [await applying.apply(obj) for obj in children.workload]
    report_rollout(applied[0], spec, status, memo, out)
    return applied[0]


def hand_scaled(sts: dict[str, Any]) -> tuple[int, str] | None:
    """(replicas, by whom) when the StatefulSet's replica count was last set by someone
    else than us (``kubectl scale``, an edit), read from its managedFields: our apply
    takes the field back, so this is true only until we have put it right."""
    for entry in sts["metadata"].get("managedFields") or []:
        owns = entry.get("fieldsV1", {}).get("f:spec", {})
        if "f:replicas" in owns and entry.get("manager") != applying.FIELD_MANAGER:
            return int(sts["spec"].get("replicas", 1)), str(entry.get("manager", "unknown"))
    return None


def report_rollout(
    sts: dict[str, Any], spec: StratumPoolSpec, status: dict[str, Any], memo: PoolMemory,
    out: Outcome, *, now: float | None = None,
) -> None:  # fmt: skip
    """Progressing, Ready and Degraded from the StatefulSet, as a pool operator means them.

    A rollout is a StatefulSet generation (template or replica count) that has not yet
    had all its pods updated and ready: Progressing, until it completes (its generation
    is then kept in ``status.rolledOutGeneration``) or makes no progress for
    ``spec.proxy.progressDeadlineSeconds`` (stuck: Degraded). Outside a rollout, fewer
    ready pods than wanted on a pool that was Ready is Degraded, not progress."""
    now = time.monotonic() if now is None else now
    desired = spec.proxy.replicas
    current = sts.get("status", {})
    ready = int(current.get("readyReplicas", 0))
    updated = int(current.get("updatedReplicas", 0))
    generation = int(sts["metadata"].get("generation", 0))
    settled = (
        int(current.get("observedGeneration", 0)) >= generation
        and current.get("currentRevision") == current.get("updateRevision")
        and updated >= desired
        and ready >= desired
        and sts["spec"].get("replicas") == desired
    )
    done = int(status.get("rolledOutGeneration") or 0)
    out.status.update(replicas=desired, readyReplicas=ready, ready=f"{ready}/{desired}",
                      selector=resources.label_selector(naming.selector(naming.pool_of(sts),
                                                                      "proxy")))  # fmt: skip
    conditions = status.get("conditions") or []
    was_ready = is_true(conditions, ConditionType.READY) or any(
        c.get("type") == ConditionType.DEGRADED and c.get("reason") == Reason.REPLICAS_UNAVAILABLE
        for c in conditions
    )
    if settled:
        memo.progress = None
        out.status["rolledOutGeneration"] = max(done, generation)
        out.condition(ConditionType.PROGRESSING, False, Reason.COMPLETE,
                      f"all {desired} pods updated and ready")  # fmt: skip
        out.condition(ConditionType.READY, True, Reason.ALL_REPLICAS_READY,
                      f"{ready}/{desired} proxy pods ready")  # fmt: skip
        out.healthy()
        return
    counts = f"{updated} of {desired} pods updated, {ready} ready"
    if generation > done or sts["spec"].get("replicas") != desired:  # a rollout under way
        mark = (generation, updated, ready, current.get("updateRevision"))
        if memo.progress is None or memo.progress[0] != mark:
            memo.progress = (mark, now)
        stalled = now - memo.progress[1]
        out.condition(ConditionType.READY, False, Reason.ROLLING_OUT, f"rolling out: {counts}")
        if stalled > spec.proxy.progress_deadline_seconds:
            why = (f"no progress for {int(stalled)}s (progressDeadlineSeconds "
                   f"{spec.proxy.progress_deadline_seconds}): {counts}")  # fmt: skip
            out.condition(ConditionType.PROGRESSING, False, Reason.PROGRESS_DEADLINE_EXCEEDED, why)
            out.condition(ConditionType.DEGRADED, True, Reason.ROLLOUT_STUCK, why)
        else:
            out.condition(ConditionType.PROGRESSING, True, Reason.ROLLING_OUT, counts)
            out.healthy()
        return
    memo.progress = None
    out.condition(ConditionType.PROGRESSING, False, Reason.COMPLETE,
                  f"all {desired} pods at the current revision")  # fmt: skip
    out.condition(ConditionType.READY, False, Reason.REPLICAS_NOT_READY,
                  f"{ready}/{desired} proxy pods ready")  # fmt: skip
    if was_ready:
        out.condition(ConditionType.DEGRADED, True, Reason.REPLICAS_UNAVAILABLE,
                      f"{ready} of {desired} proxy pods ready; the pool was Ready. Miners of "
                      "the others reconnect to the ready ones")  # fmt: skip
    else:
        out.healthy()


async def retire_deployment(
    name: str, namespace: str, spec: StratumPoolSpec, sts: dict[str, Any], out: Outcome
) -> bool:
    """Remove the pool's Deployment-era proxies once nothing in their spools can be lost;
    True while they are still there (the caller looks again on its next tick)."""
    old = await fetching.get("apps/v1", "Deployment", namespace, naming.proxy_name(name))
    if old is None or old["metadata"].get("deletionTimestamp"):
        return False
    labels = old["metadata"].get("labels") or {}
    if (
        labels.get(f"{naming.GROUP}/pool") != name
        or labels.get("app.kubernetes.io/managed-by") != naming.MANAGED_BY
    ):
        return False  # not the proxies of an earlier release of ours: never touched
    if int(sts.get("status", {}).get("readyReplicas", 0)) < spec.proxy.replicas:
        _holding(out, "the StatefulSet's pods are not all ready to take their miners yet")
        return True
    pods = await fetching.list_objects("v1", "Pod", namespace, naming.selector(name, "proxy"))
    old_pods = [p for p in ready_pods(pods) if _owner_kind(p) == "ReplicaSet"]
    held = 0
    for pod in old_pods:
        writer = await read_writer(pod, spec.writer.metrics_port)
        drainable = writer is not None and writer.database_up
        if writer is None or not drainable or writer.queue >= spec.persistence.batch_size:
            seen = "no answer" if writer is None else f"{writer.queue} shares queued"
            if writer is not None and not writer.database_up:
                seen += ", database down"
            _holding(out, f"pod {pod['metadata']['name']} ({seen}) can't drain its spool yet")
            return True
        held += writer.queue
    await deleting.delete("apps/v1", "Deployment", namespace, naming.proxy_name(name))
    out.event(Reason.DEPLOYMENT_RETIRED, f"the Deployment's {len(old_pods)} pods go now, their "
              f"writers storing the last {held} shares of their spools")  # fmt: skip
    return False


def _holding(out: Outcome, why: str) -> None:
    out.condition(ConditionType.PROGRESSING, True, Reason.RETIRING_DEPLOYMENT,
                  f"moving from the Deployment to the StatefulSet: {why}")  # fmt: skip


def _owner_kind(pod: dict[str, Any]) -> str:
    owners = pod["metadata"].get("ownerReferences") or [{}]
    return str(owners[0].get("kind", ""))
