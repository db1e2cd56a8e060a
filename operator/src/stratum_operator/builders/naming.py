"""Names and labels of everything a StratumPool owns: one place, so builders, the
scaler and the status code find the same objects."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GROUP = "stratum.io"
MANAGED_BY = "stratum-operator"
WORKERS_ANNOTATION = f"{GROUP}/writer-workers"  # mirrored into the writer by downward API
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"  # on the pod template: a change rolls pods
PAUSE_SCALING_ANNOTATION = f"{GROUP}/pause-scaling"  # on the StratumPool


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


def metadata(name: str, namespace: str, pool: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(pool, component)}


def content_hash(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts: names Jobs after what they apply."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def deployment_name(pool: str) -> str:
    return f"{pool}-proxy"


def config_name(pool: str) -> str:
    return f"{pool}-config"


def service_name(pool: str) -> str:
    return pool


def pdb_name(pool: str) -> str:
    return f"{pool}-proxy"


def migration_job_name(pool: str, digest: str) -> str:
    return f"{pool}-migrate-{digest}"


def vitess_job_name(pool: str, digest: str) -> str:
    return f"{pool}-vitess-{digest}"
