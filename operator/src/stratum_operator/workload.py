"""The proxy workload: the StatefulSet rolled out and read back, and the Deployment of
pools created before StatefulSets retired without losing what its pods' spools hold.

A Deployment-era pod keeps its spool on an emptyDir that dies with it. So the old
Deployment goes only once the StatefulSet's pods are all ready to take its miners *and*
every old pod's writer says the database is up and its queue is under one batch: then
SIGTERM's drain (which a database outage would cut short) stores what is left.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import Children, naming
from stratum_operator.k8s import applying, deleting, fetching
from stratum_operator.observe import read_writer, ready_pods
from stratum_operator.outcome import Outcome
from stratum_operator.spec import StratumPoolSpec


async def roll_out(children: Children, status: dict[str, Any], out: Outcome) -> dict[str, Any]:
    """Apply the StatefulSet (then its Services and PDB); the StatefulSet as it is now."""
    sts = children.workload[0]
    meta = sts["metadata"]
    before = await fetching.get("apps/v1", "StatefulSet", meta["namespace"], meta["name"])
    wanted = sts["spec"]["template"]["metadata"]["annotations"][naming.CONFIG_HASH_ANNOTATION]
    if before is None and status.get("observedGeneration") is not None:
        out.event("Restored", f"StatefulSet {meta['name']} was missing; re-created it")
    elif before is not None:
        had = before["spec"]["template"]["metadata"].get("annotations", {})
        if had.get(naming.CONFIG_HASH_ANNOTATION) != wanted:
            out.event("RollingOut", f"configuration changed ({wanted}): rolling the proxies")
    applied = [await applying.apply(obj) for obj in children.workload]
    report_rollout(applied[0], sts["spec"]["replicas"], out)
    return applied[0]


def report_rollout(sts: dict[str, Any], desired: int, out: Outcome) -> None:
    current = sts.get("status", {})
    ready = int(current.get("readyReplicas", 0))
    updated = int(current.get("updatedReplicas", 0))
    out.status.update(replicas=desired, readyReplicas=ready, ready=f"{ready}/{desired}")
    generation = sts["metadata"].get("generation", 0)
    revisions = current.get("currentRevision") != current.get("updateRevision")
    rolling = (
        updated < desired
        or ready < desired
        or current.get("observedGeneration", 0) < generation
        or (revisions and bool(current.get("updateRevision")))
    )
    out.condition(
        "Progressing",
        rolling,
        "RollingOut" if rolling else "Complete",
        f"{updated} of {desired} pods updated, {ready} ready",
    )
    out.condition("Degraded", False, "AsExpected", "")
    out.condition(
        "Ready",
        ready >= desired and not rolling,
        "AllReplicasReady" if ready >= desired else "ReplicasNotReady",
        f"{ready}/{desired} proxy pods ready",
    )


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
    out.event("DeploymentRetired", f"the Deployment's {len(old_pods)} pods go now, their "
              f"writers storing the last {held} shares of their spools")  # fmt: skip
    return False


def _holding(out: Outcome, why: str) -> None:
    out.condition("Progressing", True, "RetiringDeployment",
                  f"moving from the Deployment to the StatefulSet: {why}")  # fmt: skip


def _owner_kind(pod: dict[str, Any]) -> str:
    owners = pod["metadata"].get("ownerReferences") or [{}]
    return str(owners[0].get("kind", ""))
