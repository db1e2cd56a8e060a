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

import kopf

from stratum_operator import spool_claims
from stratum_operator.builders import naming
from stratum_operator.k8s import deleting, fetching, patching
from stratum_operator.outcome import Outcome
from stratum_operator.spec import parse_spec

RETRY_S = 5.0


async def finalize(body: kopf.Body, memo: kopf.Memo, logger: Any) -> None:
    """One look at a pool being deleted; kopf.TemporaryError until its claims are gone."""
    if naming.SPOOL_FINALIZER not in (body.metadata.get("finalizers") or []):
        return
    name, namespace = str(body.metadata.name), str(body.metadata.namespace)
    spec = parse_spec(dict(body.spec))
    claims = await fetching.list_objects(
        "v1", "PersistentVolumeClaim", namespace, naming.claim_selector(name)
    )
    if body.metadata.annotations.get(naming.ABANDON_SPOOLS_ANNOTATION) == "true":
        await _abandon(body, claims)
        return
    sts = await fetching.get("apps/v1", "StatefulSet", namespace, naming.proxy_name(name))
    if sts is not None and sts["spec"].get("replicas"):
        await patching.scale("apps/v1", "StatefulSet", namespace, naming.proxy_name(name), 0)
        kopf.info(body, reason="Draining", message=f"stopping {sts['spec']['replicas']} proxy "
                  "pods; their spool claims are drained before the pool goes")  # fmt: skip
    out = Outcome()
    orphans = await spool_claims.tend(body, spec, out, keep=0,
                                      last_queues=memo.get("pod_queues", {}))  # fmt: skip
    for kind, reason, message in out.events:
        (kopf.warn if kind == "Warning" else kopf.info)(body, reason=reason, message=message)
    if claims:
        states = ", ".join(f"{o.name}: {o.state.value}" for o in orphans) or "pods stopping"
        logger.info("waiting for %d spool claims to drain (%s)", len(claims), states)
        raise kopf.TemporaryError(f"{len(claims)} spool claims to drain: {states}", delay=RETRY_S)
    await patching.set_finalizer(dict(body), naming.SPOOL_FINALIZER, present=False)


async def _abandon(body: kopf.Body, claims: list[dict[str, Any]]) -> None:
    namespace = str(body.metadata.namespace)
    status = body.get("status", {})
    held = int(status.get("queueDepth") or 0)
    held += sum(int(c.get("shares") or 0) for c in (status.get("spool") or {}).get("claims", []))
    for claim in claims:
        meta = claim["metadata"]
        await deleting.delete("v1", "PersistentVolumeClaim", namespace, meta["name"],
                              uid=meta["uid"])  # fmt: skip
    kopf.warn(body, reason="SpoolsAbandoned",
              message=f"{naming.ABANDON_SPOOLS_ANNOTATION}: {len(claims)} spool claims deleted "
              f"undrained; about {held} shares (as last measured) are lost")  # fmt: skip
    await patching.set_finalizer(dict(body), naming.SPOOL_FINALIZER, present=False)
