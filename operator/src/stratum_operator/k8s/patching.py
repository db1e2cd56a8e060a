"""Merge patches: the writer-worker annotation on running pods (a rollout must not be
triggered for it, so it is never on the Deployment's template)."""

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
