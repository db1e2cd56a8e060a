"""Reading objects: one by name (None when it isn't there), or a labelled list."""

from __future__ import annotations

from typing import Any

from stratum_operator.k8s import resources
from stratum_operator.k8s.errors import NotFound
from stratum_operator.k8s.session import current


async def get(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await current().request(
            "GET", resources.path(api_version, kind, namespace, name)
        )
    except NotFound:
        return None
    return found


async def list_objects(
    api_version: str, kind: str, namespace: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    selector = resources.label_selector(labels)
    found = await current().request(
        "GET", resources.path(api_version, kind, namespace), params={"labelSelector": selector}
    )
    items: list[dict[str, Any]] = found.get("items", [])
    return items
