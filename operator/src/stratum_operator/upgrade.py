"""What earlier releases left on a pool, removed on first sight.

Earlier builds of this operator let kopf keep state on each StratumPool: a finalizer (its timer
required one) and bookkeeping annotations. Nothing removes them now that kopf only
watches, and that finalizer would hold every pool forever once deleted. Removing them
is safe at any time: our own finalizer (``stratum.io/drain-spools``) is what protects
spool claims.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.k8s import patching

KOPF_FINALIZER = f"{naming.GROUP}/finalizer"
# kopf's diff base, and its progress per handler id (<prefix>/<id>) of those releases
KOPF_ANNOTATIONS = tuple(f"{naming.GROUP}/{key}" for key in (
    "last-handled-configuration", "converge", "drain_before_delete"))  # fmt: skip


def leftovers(pool: dict[str, Any]) -> list[str]:
    """kopf's annotations still on the pool."""
    return [k for k in pool["metadata"].get("annotations") or {} if k in KOPF_ANNOTATIONS]


async def forget_kopf_state(pool: dict[str, Any]) -> bool:
    """True when something was removed (the pool changed under the caller)."""
    meta = pool["metadata"]
    changed = False
    if KOPF_FINALIZER in (meta.get("finalizers") or []):
        await patching.set_finalizer(pool, KOPF_FINALIZER, present=False)
        changed = True
    stale = leftovers(pool)
    if stale:
        name, namespace = naming.name_of(pool)
        await patching.annotate(pool["apiVersion"], pool["kind"], namespace, name,
                                dict.fromkeys(stale))  # fmt: skip
        changed = True
    return changed
