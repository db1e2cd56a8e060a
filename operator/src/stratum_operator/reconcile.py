"""One pass of convergence for one StratumPool: what to apply, in what order, and the
status that tells the truth about it.

Order matters and is enforced here: Secrets exist → (Vitess: the keyspace placed) →
ConfigMap → (Vitess: the keyspace Job) → migration Job → only once the Jobs have
succeeded, the Deployment, Service and PDB. A failed Job is retried with backoff, and
proxies are never rolled out against a schema they don't match. The pass is idempotent:
the create/update/resume handlers and the timer all run it, and it converges whatever
was edited or deleted by hand.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from stratum_operator import job_gate
from stratum_operator.builders import Children, desired_objects, naming
from stratum_operator.conditions import Condition, merge, phase
from stratum_operator.k8s import applying, fetching
from stratum_operator.spec import StratumPoolSpec, parse_spec
from stratum_operator.vitess_cluster import place_keyspace
from stratum_operator.writer_scaling import scale_writers

FULL_PASS_S = 60.0  # a full re-apply at least this often; timer ticks between only read


@dataclass
class Outcome:
    """What one pass found; turned into conditions and status at the end."""

    conditions: list[Condition] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)

    def condition(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.conditions.append(Condition(type_, status, reason, message))

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Any, *, scale: bool
) -> None:
    lock = memo.setdefault("lock", asyncio.Lock())
    async with lock:  # the timer and the event handlers never interleave on one pool
        out = Outcome()
        status = dict(body.get("status", {}))
        try:
            spec = parse_spec(dict(body.spec))
        except ValidationError as exc:
            out.condition("Degraded", True, "InvalidSpec", str(exc).splitlines()[0])
            for cond in _write_status(body, patch, status, out):
                kopf.warn(body, reason=cond.reason, message=cond.message)
            return
        if not (scale and await _light_tick(body, spec, status, memo, out)):
            await _converge(body, spec, status, memo, out, scale=scale)
            memo["converged"] = (body.metadata.get("generation"), time.monotonic())
        flipped = _write_status(body, patch, status, out)
        for cond in flipped:  # a condition is news only when it flips
            bad = (cond.type == "Degraded") == cond.status
            out.event(cond.reason, f"{cond.type} is {cond.status}: {cond.message}", warning=bad)
        for kind, reason, message in out.events:
            (kopf.warn if kind == "Warning" else kopf.info)(body, reason=reason, message=message)
        logger.debug("reconciled: %s", out.status.get("phase"))


async def _light_tick(
    body: kopf.Body, spec: StratumPoolSpec, status: dict[str, Any], memo: kopf.Memo, out: Outcome
) -> bool:
    """Between full passes a timer tick only reads: the Deployment (for readiness) and the
    writers (for scaling). False when a full pass is due: the spec changed, a minute
    passed (hand edits are put right), or the Deployment is gone (it is re-created)."""
    generation, at = memo.get("converged", (None, 0.0))
    if generation != body.metadata.get("generation") or time.monotonic() - at > FULL_PASS_S:
        return False
    if status.get("phase") not in ("Ready", "Progressing"):
        return False  # blocked or migrating: the full pass is what moves it on
    name, namespace = body.metadata.name, body.metadata.namespace
    assert name is not None and namespace is not None
    current = await fetching.get("apps/v1", "Deployment", namespace, naming.deployment_name(name))
    if current is None:
        return False
    _report_rollout(current, spec.proxy.replicas, out)
    await scale_writers(body, spec, status, memo, out)
    return True


async def _converge(
    body: kopf.Body,
    spec: StratumPoolSpec,
    status: dict[str, Any],
    memo: kopf.Memo,
    out: Outcome,
    *,
    scale: bool,
) -> None:
    name, namespace = body.metadata.name, body.metadata.namespace
    assert name is not None and namespace is not None
    missing = [
        secret
        for secret in spec.secret_names()
        if await fetching.get("v1", "Secret", namespace, secret) is None
    ]
    if missing:
        out.condition(
            "Degraded",
            True,
            "SecretMissing",
            f"Secret {', '.join(repr(m) for m in missing)} not found in namespace {namespace!r}; "
            "proxies are not rolled out until it exists",
        )
        out.condition("Ready", False, "SecretMissing", "waiting for Secrets")
        return
    managed = False
    if spec.persistence.backend == "vitess":
        placement = await place_keyspace(namespace, spec, out)
        if placement is None:
            return
        managed = placement.managed
    children = desired_objects(name, namespace, spec, vitess_managed=managed)
    kopf.adopt(children.all(), owner=body, strict=True)
    await applying.apply(children.config)
    if not await _schema_ready(children, status, out):
        out.condition("Degraded", False, "AsExpected", "")
        return
    await _roll_out(children, status, out)
    if scale:
        await scale_writers(body, spec, status, memo, out)


async def _schema_ready(children: Children, status: dict[str, Any], out: Outcome) -> bool:
    if children.keyspace is not None and not await job_gate.passed(
        job_gate.KEYSPACE, children.keyspace, status, out
    ):
        out.condition("Ready", False, "KeyspaceNotReady", "waiting for the Vitess keyspace Job")
        return False
    if children.migration is None:
        out.condition(
            "SchemaReady", True, "MigratedByWriter", "SQLite: each writer migrates its own database"
        )
        return True
    return await job_gate.passed(job_gate.SCHEMA, children.migration, status, out)


async def _roll_out(children: Children, status: dict[str, Any], out: Outcome) -> None:
    deployment = children.workload[0]
    meta = deployment["metadata"]
    before = await fetching.get("apps/v1", "Deployment", meta["namespace"], meta["name"])
    wanted_hash = deployment["spec"]["template"]["metadata"]["annotations"][
        naming.CONFIG_HASH_ANNOTATION
    ]
    if before is None and status.get("observedGeneration") is not None:
        out.event("Restored", f"Deployment {meta['name']} was missing; re-created it")
    elif before is not None:
        had = before["spec"]["template"]["metadata"].get("annotations", {})
        if had.get(naming.CONFIG_HASH_ANNOTATION) != wanted_hash:
            out.event("RollingOut", f"configuration changed ({wanted_hash}): rolling the proxies")
    applied = [await applying.apply(obj) for obj in children.workload]
    _report_rollout(applied[0], deployment["spec"]["replicas"], out)


def _report_rollout(deployment: dict[str, Any], desired: int, out: Outcome) -> None:
    current = deployment.get("status", {})
    ready = int(current.get("readyReplicas", 0))
    updated = int(current.get("updatedReplicas", 0))
    out.status.update(replicas=desired, readyReplicas=ready, ready=f"{ready}/{desired}")
    generation = deployment["metadata"].get("generation", 0)
    rolling = (
        updated < desired or ready < desired or current.get("observedGeneration", 0) < generation
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


def _write_status(
    body: kopf.Body, patch: kopf.Patch, status: dict[str, Any], out: Outcome
) -> list[Condition]:
    conditions, flipped = merge(
        status.get("conditions", []),
        out.conditions,
        _now(),
        int(body.metadata.get("generation", 0)),
    )
    out.status["phase"] = phase(out.conditions)
    out.status["conditions"] = conditions
    out.status["observedGeneration"] = body.metadata.get("generation")
    for key, value in out.status.items():
        if status.get(key) != value:  # an unchanged status is not written: no churn
            patch.status[key] = value
    return flipped
