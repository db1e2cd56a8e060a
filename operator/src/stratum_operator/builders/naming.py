"""Names and labels of everything a StratumPool owns: one place, so builders, the
scaler and the status code find the same objects."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GROUP = "stratum.io"
VERSION = "v1alpha1"
PLURAL = "stratumpools"
MANAGED_BY = "stratum-operator"
WORKERS_ANNOTATION = f"{GROUP}/writer-workers"  # mirrored into the writer by downward API
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"  # on the pod template: a change rolls pods
PAUSE_SCALING_ANNOTATION = f"{GROUP}/pause-scaling"  # on the StratumPool
# on the StratumPool during an incident: the operator changes nothing of it
PAUSE_RECONCILIATION_ANNOTATION = f"{GROUP}/pause-reconciliation"
# on the StratumPool: delete it without draining its spool claims (their shares are lost)
ABANDON_SPOOLS_ANNOTATION = f"{GROUP}/abandon-spools"
# on the StratumPool while any of its spool claims may hold shares: deletion waits for
# the drain; it is the operator's own, added and removed by it alone
SPOOL_FINALIZER = f"{GROUP}/drain-spools"
# on each spool claim (the StatefulSet controller overwrites a claim's labels with its
# selector's, so the component label can't tell a claim apart; this one can)
SPOOL_CLAIM_LABEL = f"{GROUP}/spool-claim"
DRAIN_COMPONENT = "drain"  # the drain Jobs'
ORDINAL_LABEL = "apps.kubernetes.io/pod-index"  # set by the StatefulSet controller


def name_of(pool: dict[str, Any]) -> tuple[str, str]:
    """A StratumPool's (name, namespace)."""
    meta = pool["metadata"]
    return str(meta["name"]), str(meta["namespace"])


def own(pool: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """Make the StratumPool each object's controlling owner: deleting the pool deletes
    them (the garbage collector), and nobody else may adopt them."""
    meta = pool["metadata"]
    ref = {"apiVersion": pool.get("apiVersion", f"{GROUP}/{VERSION}"),
           "kind": pool.get("kind", "StratumPool"), "name": meta["name"], "uid": meta["uid"],
           "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    for obj in objects:
        obj["metadata"]["ownerReferences"] = [ref]


def labels(pool: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "stratum-pool",
        "app.kubernetes.io/instance": pool,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{GROUP}/pool": pool,
    }


def selector(pool: str, component: str) -> dict[str, str]:
    """The immutable part: a Deployment's selector can never change after creation."""
    return {f"{GROUP}/pool": pool, "app.kubernetes.io/component": component}


def pool_of(obj: dict[str, Any]) -> str:
    """The pool a child belongs to, from its label."""
    return str((obj["metadata"].get("labels") or {}).get(f"{GROUP}/pool", ""))


def claim_selector(pool: str) -> dict[str, str]:
    return {f"{GROUP}/pool": pool, SPOOL_CLAIM_LABEL: "true"}


def metadata(name: str, namespace: str, pool: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(pool, component)}


def content_hash(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts: names Jobs after what they apply."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def proxy_name(pool: str) -> str:
    """The proxy StatefulSet (and, before it, the Deployment it replaced)."""
    return f"{pool}-proxy"


def pods_service_name(pool: str) -> str:
    """The StatefulSet's governing headless Service: each pod's stable DNS name."""
    return f"{pool}-proxy-pods"


def claim_name(pool: str, ordinal: int) -> str:
    """What the StatefulSet controller names the claim of pod ``ordinal``."""
    return f"spool-{proxy_name(pool)}-{ordinal}"


def claim_ordinal(pool: str, claim: str) -> int | None:
    prefix = f"spool-{proxy_name(pool)}-"
    tail = claim[len(prefix) :] if claim.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def drain_job_name(pool: str, ordinal: int, claim_uid: str) -> str:
    """One drain Job per claim (its uid: a claim made anew is drained anew)."""
    return f"{pool}-drain-{ordinal}-{claim_uid[:8]}"


def config_name(pool: str) -> str:
    return f"{pool}-config"


def service_name(pool: str) -> str:
    return pool


def pdb_name(pool: str) -> str:
    return f"{pool}-proxy"


def migration_job_name(pool: str, digest: str) -> str:
    return f"{pool}-migrate-{digest}"


def retention_name(pool: str) -> str:
    return f"{pool}-retention"


def vitess_job_name(pool: str, digest: str) -> str:
    return f"{pool}-vitess-{digest}"
