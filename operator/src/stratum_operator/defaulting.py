"""Defaults the CRD can't express, written into the spec once.

``spec.proxy.replicas`` defaults to 2, or to 1 for sqlite (the only count it allows);
a CRD default can't depend on another field, so the API server leaves it unset and the
operator fills it in on its first pass. It must be there: it is the ``/scale``
subresource's replica path, and the API server answers ``/scale`` with an error while
it is missing (so ``kubectl scale`` and an HPA could not work).
"""

from __future__ import annotations

from typing import Any

from stratum_operator.k8s import patching
from stratum_operator.spec import StratumPoolSpec


async def fill_replicas(pool: dict[str, Any], spec: StratumPoolSpec) -> None:
    proxy = (pool.get("spec") or {}).get("proxy") or {}
    if "replicas" in proxy:
        return
    path = "/spec/proxy/replicas" if "proxy" in pool["spec"] else "/spec/proxy"
    value: Any = spec.proxy.replicas if path.endswith("replicas") else {
        "replicas": spec.proxy.replicas}  # fmt: skip
    await patching.patch_unless_moved(pool, [{"op": "add", "path": path, "value": value}])
