"""Deleting: a failed migration Job is removed before it is retried."""

from __future__ import annotations

from stratum_operator.k8s import resources
from stratum_operator.k8s.session import ApiError, current


async def delete(api_version: str, kind: str, namespace: str, name: str) -> None:
    try:
        await current().request(
            "DELETE",
            resources.path(api_version, kind, namespace, name),
            {"propagationPolicy": "Background"},
        )
    except ApiError as exc:
        if exc.status != 404:
            raise
