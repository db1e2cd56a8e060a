"""One pass of convergence for one StratumPool: what to apply, in what order, and what it
found (an ``Outcome``; ``reporting.py`` turns it into status and Events).

Order matters and is enforced here: Secrets exist with the keys the pods read →
(Vitess: the keyspace placed) → ConfigMap → (Vitess: the keyspace Job) → migration Job
→ only once the Jobs have succeeded, the StatefulSet, its Services and PDB → the
Deployment of an older release retired once its spools can drain → spool claims whose
pod is gone drained and deleted. A failed Job is retried with backoff, and proxies are
never rolled out against a schema they don't match. The pass is idempotent, and it
converges whatever was edited or deleted by hand.

A full pass applies; a light one (the periodic tick in between) only reads the
StatefulSet it already knows and the pods' metrics, and falls back to a full pass when
anything suggests one is due.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from stratum_operator import job_gate, spool_claims
from stratum_operator.builders import Children, desired_objects, naming
from stratum_operator.defaulting import fill_replicas
from stratum_operator.images import ImageDefaults
from stratum_operator.k8s import applying, deleting, fetching, patching
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.retention_status import report_retention
from stratum_operator.spec import StratumPoolSpec, parse_spec
from stratum_operator.vitess_cluster import place_keyspace
from stratum_operator.vocabulary import ConditionType, Phase, Reason
from stratum_operator.workload import report_rollout, retire_deployment, roll_out
from stratum_operator.writer_scaling import scale_writers

FULL_PASS_S = 60.0  # a full re-apply at least this often; ticks between only read
_LIGHT_PHASES = (Phase.READY, Phase.PROGRESSING, Phase.DEGRADED)


async def reconcile(
    pool: dict[str, Any], memo: PoolMemory, *, full: bool, images: ImageDefaults
) -> Outcome:
    out = Outcome()
    annotations = pool["metadata"].get("annotations") or {}
    if annotations.get(naming.PAUSE_RECONCILIATION_ANNOTATION) == "true":
        out.condition(ConditionType.RECONCILIATION_PAUSED, True, Reason.PAUSED_BY_ANNOTATION,
                      f"{naming.PAUSE_RECONCILIATION_ANNOTATION} is set: nothing of this pool "
                      "is changed, scaled or restored until it is removed")  # fmt: skip
        return out
    out.condition(ConditionType.RECONCILIATION_PAUSED, False, Reason.RECONCILING,
                  f"{naming.PAUSE_RECONCILIATION_ANNOTATION} is not set")  # fmt: skip
    try:
        spec = parse_spec(dict(pool["spec"]), images)
    except ValidationError as exc:
        why = str(exc).splitlines()[0]
        out.condition(ConditionType.DEGRADED, True, Reason.INVALID_SPEC, why)
        out.condition(ConditionType.READY, False, Reason.INVALID_SPEC, why)
        return out
    await fill_replicas(pool, spec)
    if full or not await _light_tick(pool, spec, memo, out):
        await _converge(pool, spec, memo, out)
        memo.converged = (pool["metadata"].get("generation"), time.monotonic())
    return out


async def _light_tick(
    pool: dict[str, Any], spec: StratumPoolSpec, memo: PoolMemory, out: Outcome
) -> bool:
    """Between full passes a tick only reads: the StatefulSet as last seen (its watch
    keeps it fresh) for readiness, and the writers for scaling. False when a full pass
    is due: the spec changed, a minute passed (hand edits are put right), the pool is
    not serving yet, or the StatefulSet is gone or edited."""
    generation, at = memo.converged
    if generation != pool["metadata"].get("generation") or time.monotonic() - at > FULL_PASS_S:
        return False
    if (pool.get("status") or {}).get("phase") not in _LIGHT_PHASES:
        return False  # blocked or migrating: the full pass is what moves it on
    sts = memo.statefulset
    if sts is None or sts["metadata"].get("deletionTimestamp"):
        return False
    if sts["spec"].get("replicas") != spec.proxy.replicas:
        return False  # scaled by hand: put right now, not in a minute
    report_rollout(sts, spec, pool.get("status") or {}, memo, out)
    name, namespace = naming.name_of(pool)
    if memo.retiring_deployment:  # followed every tick until it is gone
        memo.retiring_deployment = await retire_deployment(name, namespace, spec, sts, out)
    if memo.claims_in_flight:  # only while a drain is under way: idle pools don't list
        await _tend_claims(pool, spec, memo, out)
    await scale_writers(pool, spec, memo, out)
    return True


async def _converge(
    pool: dict[str, Any], spec: StratumPoolSpec, memo: PoolMemory, out: Outcome
) -> None:
    name, namespace = naming.name_of(pool)
    if not await _secrets_usable(namespace, spec, out):
        return
    managed = False
    if spec.persistence.backend == "vitess":
        placement = await place_keyspace(namespace, spec, out)
        if placement is None:
            return
        managed = placement.managed
    children = desired_objects(name, namespace, spec, vitess_managed=managed)
    naming.own(pool, children.all())
    await applying.apply(children.config)
    if not await _schema_ready(children, pool.get("status") or {}, out):
        out.healthy()
        return
    sts = await roll_out(pool, children, spec, memo, out)
    memo.statefulset = sts
    for restored in memo.deleted_children:
        out.event(Reason.RESTORED, f"{restored} was deleted; re-created it")
    memo.deleted_children = []
    if memo.retiring_deployment:  # once after start; then only while one goes
        memo.retiring_deployment = await retire_deployment(name, namespace, spec, sts, out)
    # A claim loses its pod for good only when replicas go down: look after a scale-in,
    # while a drain is under way, and once after the operator starts (for what happened
    # while it was away). Idle pools cost no listing.
    seen = memo.replicas_seen
    if (seen is not None and spec.proxy.replicas < seen) or memo.claims_in_flight:
        await _tend_claims(pool, spec, memo, out)
    memo.replicas_seen = spec.proxy.replicas
    if spec.spool.ephemeral:
        out.condition(ConditionType.SPOOL_EPHEMERAL, True, Reason.EMPTY_DIR,
                      "spool.ephemeral: each pod's spool is an emptyDir; shares waiting in it "
                      "are lost with their pod")  # fmt: skip
    await _hold_deletion_for_claims(pool, spec)
    await _keep_retention(children, namespace, name, memo, out)
    await scale_writers(pool, spec, memo, out)


async def _keep_retention(
    children: Children, namespace: str, name: str, memo: PoolMemory, out: Outcome
) -> None:
    """The CronJob as the spec says, then what its runs said. Turned off (or SQLite,
    where the writer retains): a CronJob of ours left from before goes (it holds no
    data), looked for once after start and after each time one was applied."""
    if children.retention is not None:
        await applying.apply(children.retention)
        memo.retention_cronjob = True
        await report_retention(name, namespace, memo, out)
    elif memo.retention_cronjob:
        await deleting.delete("batch/v1", "CronJob", namespace, naming.retention_name(name))
        memo.retention_cronjob = False


async def _secrets_usable(namespace: str, spec: StratumPoolSpec, out: Outcome) -> bool:
    """Every Secret the pods read exists and has the keys they read: a mistake the API
    server can't see is named here (the key expected, never a value), not found by a
    Job failing minutes later."""
    missing, wrong = [], []
    for secret, keys in spec.secret_keys().items():
        found = await fetching.get("v1", "Secret", namespace, secret)
        if found is None:
            missing.append(repr(secret))
            continue
        has = sorted(found.get("data") or {})
        lacking = [k for k in keys if k not in has]
        if lacking:
            wrong.append(f"Secret {secret!r} has no key {', '.join(map(repr, lacking))} "
                         f"(its keys: {', '.join(has) or 'none'})")  # fmt: skip
    if missing:
        why = (f"Secret {', '.join(missing)} not found in namespace {namespace!r}; "
               "proxies are not rolled out until it exists")  # fmt: skip
        out.condition(ConditionType.DEGRADED, True, Reason.SECRET_MISSING, why)
        out.condition(ConditionType.READY, False, Reason.SECRET_MISSING, "waiting for Secrets")
        return False
    if wrong:
        why = "; ".join(wrong) + ": set the key the spec names, or name the key it has"
        out.condition(ConditionType.DEGRADED, True, Reason.SECRET_KEY_MISSING, why)
        out.condition(ConditionType.READY, False, Reason.SECRET_KEY_MISSING,
                      "waiting for Secret keys")  # fmt: skip
        return False
    return True


async def _tend_claims(
    pool: dict[str, Any], spec: StratumPoolSpec, memo: PoolMemory, out: Outcome
) -> None:
    """status.spool: the claims whose pod is gone, and what they still hold."""
    orphans = await spool_claims.tend(pool, spec, out, keep=spec.proxy.replicas, memo=memo)
    memo.claims_in_flight = bool(orphans)
    known = [o.shares for o in orphans if o.shares is not None]
    out.status["spool"] = {
        "claims": [o.as_status() for o in orphans],
        "sharesHeld": sum(known) if known else None,
    }


async def _hold_deletion_for_claims(pool: dict[str, Any], spec: StratumPoolSpec) -> None:
    """While spool claims may hold shares, deleting the pool waits for their drain.

    SQLite pools keep their database on the claims, which Kubernetes retains; nothing
    there is drained, so nothing waits. No other finalizer is ever put on a pool."""
    wanted = not spec.spool.ephemeral and spec.persistence.backend != "sqlite"
    await patching.set_finalizer(pool, naming.SPOOL_FINALIZER, present=wanted)


async def _schema_ready(children: Children, status: dict[str, Any], out: Outcome) -> bool:
    if children.keyspace is not None and not await job_gate.passed(
        job_gate.KEYSPACE, children.keyspace, status, out
    ):
        return False
    if children.migration is None:
        out.condition(ConditionType.SCHEMA_READY, True, Reason.MIGRATED_BY_WRITER,
                      "SQLite: each writer migrates its own database")  # fmt: skip
        return True
    return await job_gate.passed(job_gate.SCHEMA, children.migration, status, out)
