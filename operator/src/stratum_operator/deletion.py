"""Deleting a StratumPool whose spool claims may hold shares.

The pool carries the ``stratum.io/drain-spools`` finalizer while it has claims, so a
``kubectl delete`` marks it and waits: its StatefulSet is scaled to zero (each pod's
writer drains on SIGTERM, within its deadline), every claim is then drained by a Job and
deleted once proven empty, and only then is the finalizer removed and the pool gone,
its children with it. A drain that fails keeps its claim and the pool, and says why.

``stratum.io/abandon-spools: "true"`` on the pool is the explicit way out: its claims
are deleted at once, and a Warning Event says how many shares were last measured in
them (they are lost).
"""

from __future__ import annotations

from typing import Any

from stratum_operator import spool_claims
from stratum_operator.builders import naming
from stratum_operator.images import ImageDefaults
from stratum_operator.k8s import deleting, fetching, patching
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.spec import parse_spec
from stratum_operator.vocabulary import Reason


async def finalize(
    pool: dict[str, Any], memo: PoolMemory, images: ImageDefaults
) -> tuple[Outcome, bool]:
    """One look at a pool being deleted: what it found, and whether the pool may go now.
    The caller removes our finalizer then, after posting what was found (the pool is
    gone the moment the finalizer is)."""
    out = Outcome()
    if naming.SPOOL_FINALIZER not in (pool["metadata"].get("finalizers") or []):
        return out, True
    name, namespace = naming.name_of(pool)
    spec = parse_spec(dict(pool["spec"]), images)
    claims = await fetching.list_objects(
        "v1", "PersistentVolumeClaim", namespace, naming.claim_selector(name)
    )
    annotations = pool["metadata"].get("annotations") or {}
    if annotations.get(naming.ABANDON_SPOOLS_ANNOTATION) == "true":
        await _abandon(pool, claims, out)
        return out, True
    sts = await fetching.get("apps/v1", "StatefulSet", namespace, naming.proxy_name(name))
    if sts is not None and sts["spec"].get("replicas"):
        await patching.scale("apps/v1", "StatefulSet", namespace, naming.proxy_name(name), 0)
        out.event(Reason.DRAINING, f"stopping {sts['spec']['replicas']} proxy pods; their "
                  "spool claims are drained before the pool goes")  # fmt: skip
    orphans = await spool_claims.tend(pool, spec, out, keep=0, memo=memo)
    if claims:
        states = ", ".join(f"{o.name}: {o.state.value}" for o in orphans) or "pods stopping"
        waiting = f"{len(claims)} spool claims to drain: {states}"
        out.status["spool"] = {"claims": [o.as_status() for o in orphans], "waiting": waiting}
        return out, False
    return out, True


async def _abandon(pool: dict[str, Any], claims: list[dict[str, Any]], out: Outcome) -> None:
    _, namespace = naming.name_of(pool)
    status = pool.get("status") or {}
    held = int(status.get("queueDepth") or 0)
    held += sum(int(c.get("shares") or 0) for c in (status.get("spool") or {}).get("claims", []))
    for claim in claims:
        meta = claim["metadata"]
        await deleting.delete("v1", "PersistentVolumeClaim", namespace, meta["name"],
                              uid=meta["uid"])  # fmt: skip
    out.event(Reason.SPOOLS_ABANDONED, f"{naming.ABANDON_SPOOLS_ANNOTATION}: {len(claims)} spool "
              f"claims deleted undrained; about {held} shares (as last measured) are lost",
              warning=True)  # fmt: skip
