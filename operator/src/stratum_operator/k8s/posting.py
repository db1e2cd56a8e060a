"""Posting an Event about an object, under the operator's own name.

``kubectl describe`` and ``kubectl get events`` show the source as
``stratum-operator``; the message is capped at the API's 1 KiB.
"""

from __future__ import annotations

import socket
from typing import Any

from stratum_operator.clock import timestamp
from stratum_operator.k8s import resources
from stratum_operator.k8s.session import current

COMPONENT = "stratum-operator"
_MESSAGE_MAX = 1024


async def post_event(obj: dict[str, Any], reason: str, message: str, *, warning: bool) -> None:
    meta = obj["metadata"]
    now = timestamp()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "reason": reason,
        "message": message[:_MESSAGE_MAX],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname()[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    await current().request("POST", resources.path("v1", "Event", meta["namespace"]), event)
