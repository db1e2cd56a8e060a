"""One pass of convergence for one StratumPool: what to apply, in what order, and the
status that tells the truth about it.

Order matters and is enforced here: Secrets exist → (Vitess: the keyspace placed) →
ConfigMap → (Vitess: the keyspace Job) → migration Job → only once the Jobs have
succeeded, the StatefulSet, its Services and PDB → the Deployment of an older release
retired once its spools can drain → spool claims whose pod is gone drained and deleted.
A failed Job is retried with backoff, and proxies are never rolled out against a schema
they don't match. The pass is idempotent: the create/update/resume handlers and the
timer all run it, and it converges whatever was edited or deleted by hand.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from stratum_operator import job_gate, spool_claims
from stratum_operator.builders import Children, desired_objects, naming
from stratum_operator.conditions import Condition, merge, phase
from stratum_operator.k8s import applying, fetching, patching
from stratum_operator.outcome import Outcome
from stratum_operator.spec import StratumPoolSpec, parse_spec
from stratum_operator.vitess_cluster import place_keyspace
from stratum_operator.workload import report_rollout, retire_deployment, roll_out
from stratum_operator.writer_scaling import scale_writers

FULL_PASS_S = 60.0  # a full re-apply at least this often; timer ticks between only read


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Any, *, scale: bool
) -> None:
    if body.metadata.get("deletionTimestamp"):
        return  # being deleted: deletion.finalize drains it; nothing is re-applied
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
    current = await fetching.get("apps/v1", "StatefulSet", namespace, naming.proxy_name(name))
    if current is None:
        return False
    report_rollout(current, spec.proxy.replicas, out)
    if memo.get("retiring_deployment"):  # followed every tick until it is gone
        memo["retiring_deployment"] = await retire_deployment(name, namespace, spec, current, out)
    if memo.get("claims_in_flight"):  # only while a drain is under way: idle pools don't list
        await _tend_claims(body, spec, memo, out)
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
    sts = await roll_out(children, status, out)
    if memo.get("retiring_deployment", True):  # once after start; then only while one goes
        memo["retiring_deployment"] = await retire_deployment(name, namespace, spec, sts, out)
    # A claim loses its pod for good only when replicas go down: look after a scale-in,
    # while a drain is under way, and once after the operator starts (for what happened
    # while it was away). Idle pools cost no listing.
    shrunk = spec.proxy.replicas < memo.get("replicas_seen", spec.proxy.replicas)
    if shrunk or memo.get("claims_in_flight", True):
        await _tend_claims(body, spec, memo, out)
    memo["replicas_seen"] = spec.proxy.replicas
    if spec.spool.ephemeral:
        out.condition("SpoolEphemeral", True, "EmptyDir",
                      "spool.ephemeral: each pod's spool is an emptyDir; shares waiting in it "
                      "are lost with their pod")  # fmt: skip
    await _hold_deletion_for_claims(body, spec)
    if scale:
        await scale_writers(body, spec, status, memo, out)


async def _tend_claims(
    body: kopf.Body, spec: StratumPoolSpec, memo: kopf.Memo, out: Outcome
) -> None:
    """status.spool: the claims whose pod is gone, and what they still hold."""
    orphans = await spool_claims.tend(body, spec, out, keep=spec.proxy.replicas,
                                      last_queues=memo.get("pod_queues", {}))  # fmt: skip
    memo["claims_in_flight"] = bool(orphans)
    known = [o.shares for o in orphans if o.shares is not None]
    out.status["spool"] = {
        "claims": [o.as_status() for o in orphans],
        "sharesHeld": sum(known) if known else None,
    }


async def _hold_deletion_for_claims(body: kopf.Body, spec: StratumPoolSpec) -> None:
    """While spool claims may hold shares, deleting the pool waits for their drain.

    SQLite pools keep their database on the claims, which Kubernetes retains; nothing
    there is drained, so nothing waits."""
    wanted = not spec.spool.ephemeral and spec.persistence.backend != "sqlite"
    await patching.set_finalizer(dict(body), naming.SPOOL_FINALIZER, present=wanted)


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
