"""Patches of objects we don't own outright: the writer-worker annotation on running pods
(a merge patch; a rollout must not be triggered for it, so it is never on the
Deployment's template), and a keyspace added to a VitessCluster (a guarded JSON patch)."""

from __future__ import annotations

from typing import Any

from stratum_operator.k8s import resources
from stratum_operator.k8s.session import current


async def annotate(
    api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str]
) -> dict[str, Any]:
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
    """An RFC 6902 patch: for lists other controllers own (a VitessCluster's keyspaces),
    guarded by a ``test`` of resourceVersion so a concurrent edit is never overwritten."""
    result: dict[str, Any] = await current().request(
        "PATCH",
        resources.path(api_version, kind, namespace, name),
        operations,
        content_type="application/json-patch+json",
    )
    return result
