"""Server-side apply: we own the fields we set and nothing else.

Forced, so a field someone edited by hand comes back to what the StratumPool says;
fields we never set (an HPA's replicas, another controller's annotations) stay theirs.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.k8s import resources
from stratum_operator.k8s.session import current

FIELD_MANAGER = "stratum-operator"


async def apply(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await current().request(
        "PATCH",
        resources.path_of(obj),
        obj,
        content_type="application/apply-patch+yaml",  # JSON is YAML
        params={"fieldManager": FIELD_MANAGER, "force": "true"},
    )
    return result
