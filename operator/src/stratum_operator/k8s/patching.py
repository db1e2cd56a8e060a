"""Patches of objects we don't own outright: the writer-worker annotation on running pods
(a merge patch; a rollout must not be triggered for it, so it is never on the
StatefulSet's template), a keyspace added to a VitessCluster and our finalizer on a
StratumPool (guarded JSON patches), a StratumPool's status, and a StatefulSet scaled to
zero before its pool goes."""

from __future__ import annotations

from typing import Any

from stratum_operator.k8s import resources
from stratum_operator.k8s.errors import Conflict, Unprocessable
from stratum_operator.k8s.session import current


async def annotate(
    api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str | None]
) -> dict[str, Any]:
    """Set annotations (a None value removes one)."""
    result: dict[str, Any] = await current().request(
        "PATCH",
        resources.path(api_version, kind, namespace, name),
        {"metadata": {"annotations": annotations}},
        content_type="application/merge-patch+json",
    )
    return result


async def json_patch(
    api_version: str, kind: str, namespace: str, name: str, operations: list[dict[str, Any]]
) -> dict[str, Any]:
    """An RFC 6902 patch, as given (``patch_unless_moved`` adds the guard)."""
    result: dict[str, Any] = await current().request(
        "PATCH",
        resources.path(api_version, kind, namespace, name),
        operations,
        content_type="application/json-patch+json",
    )
    return result


async def patch_unless_moved(obj: dict[str, Any], operations: list[dict[str, Any]]) -> bool:
    """A JSON patch that applies only to ``obj`` as we read it: guarded by a ``test`` of
    its resourceVersion, for fields shared with others (finalizers, a VitessCluster's
    keyspaces) or set by a person. False when the object moved on meanwhile (a conflict,
    or 422 on the test): nothing was written, and the next pass sees it as it is now."""
    meta = obj["metadata"]
    guard = {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}
    try:
        await json_patch(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"],
                         [guard, *operations])  # fmt: skip
    except (Conflict, Unprocessable):
        return False
    return True


async def set_finalizer(obj: dict[str, Any], finalizer: str, *, present: bool) -> None:
    """Add or remove one finalizer, guarded by resourceVersion: the list is shared with
    whoever else finalizes the object, so it is never replaced whole."""
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if (finalizer in finalizers) == present:
        return
    op: dict[str, Any]
    if present:
        op = {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}
        if not finalizers:
            op = {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]}
    else:
        op = {"op": "remove", "path": f"/metadata/finalizers/{finalizers.index(finalizer)}"}
    await patch_unless_moved(obj, [op])


async def patch_status(
    api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
) -> dict[str, Any]:
    """A merge patch of the status subresource (a None value removes a field); the object
    as it is after it."""
    result: dict[str, Any] = await current().request(
        "PATCH",
        resources.path(api_version, kind, namespace, name) + "/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )
    return result


async def scale(api_version: str, kind: str, namespace: str, name: str, replicas: int) -> None:
    await current().request(
        "PATCH",
        resources.path(api_version, kind, namespace, name),
        {"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
    )
