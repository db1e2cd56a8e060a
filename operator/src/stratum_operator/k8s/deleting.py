"""Deleting: a Job before it is retried, the Deployment a StatefulSet replaced, and a
spool claim once its drain Job proved it empty (guarded by its uid: a claim made anew
under the same name is never deleted on the old one's proof)."""

from __future__ import annotations

import contextlib

from stratum_operator.k8s import resources
from stratum_operator.k8s.errors import NotFound
from stratum_operator.k8s.session import current


async def delete(
    api_version: str, kind: str, namespace: str, name: str, *, uid: str | None = None
) -> None:
    options: dict[str, object] = {"propagationPolicy": "Background"}
    if uid is not None:
        options["preconditions"] = {"uid": uid}
    with contextlib.suppress(NotFound):  # already gone: what deleting wanted
        await current().request(
            "DELETE", resources.path(api_version, kind, namespace, name), options
        )
