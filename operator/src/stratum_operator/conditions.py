"""Status conditions that change only on transition.

A condition's ``lastTransitionTime`` moves only when its status flips, so ``kubectl
describe`` tells how long something has been true; reason and message follow the
latest observation. The list is written whole (merge patches replace lists), so two
writers can never interleave half a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TYPES = ("Ready", "KeyspaceReady", "SchemaReady", "Progressing", "Degraded", "ScalingActive",
         "SpoolEphemeral")  # fmt: skip


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def merge(
    old: list[dict[str, Any]], new: list[Condition], now: str, generation: int
) -> tuple[list[dict[str, Any]], list[Condition]]:
    """The full new list, and the conditions whose status flipped (for Events)."""
    before = {c.get("type"): c for c in old or []}
    out, flipped = [], []
    for cond in new:
        status = "True" if cond.status else "False"
        prior = before.pop(cond.type, None)
        changed = prior is None or prior.get("status") != status
        if changed:
            flipped.append(cond)
        out.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": now if changed else prior["lastTransitionTime"],  # type: ignore[index]
                "observedGeneration": generation,
            }
        )
    out.extend(before.values())  # conditions not re-evaluated this time keep their state
    return sorted(out, key=lambda c: TYPES.index(c["type"]) if c["type"] in TYPES else 99), flipped


_BLOCKED = ("SecretMissing", "InvalidSpec", "VitessClusterMissing", "KeyspaceNotDeclared")


def phase(conditions: list[Condition]) -> str:
    """One word for ``kubectl get``: the first that applies."""
    by_type = {c.type: c for c in conditions}
    degraded = by_type.get("Degraded")
    if degraded is not None and degraded.status:
        return "Blocked" if degraded.reason in _BLOCKED else "Degraded"
    keyspace = by_type.get("KeyspaceReady")
    if keyspace is not None and not keyspace.status:
        return (
            "Keyspace"
            if keyspace.reason in ("Running", "WaitingForVitessCluster")
            else "KeyspaceFailed"
        )
    schema = by_type.get("SchemaReady")
    if schema is not None and not schema.status:
        return "Migrating" if schema.reason == "Migrating" else "SchemaFailed"
    ready = by_type.get("Ready")
    if ready is not None and ready.status:
        return "Ready"
    return "Progressing"
