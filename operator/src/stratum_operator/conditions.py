"""Status conditions that change only on transition, and the phase they add up to.

A condition's ``lastTransitionTime`` moves only when its status flips, so ``kubectl
describe`` tells how long something has been true; reason and message follow the
latest observation. The list is written whole (merge patches replace lists), so two
writers can never interleave half a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratum_operator.vocabulary import BLOCKING, ConditionType, Phase, Reason


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    status: bool
    reason: Reason
    message: str


def merge(
    old: list[dict[str, Any]], new: list[Condition], now: str, generation: int
) -> tuple[list[dict[str, Any]], list[tuple[Condition, dict[str, Any] | None]]]:
    """The full new list, and each condition whose status flipped with what it was."""
    before = {c.get("type"): c for c in old or []}
    out, flipped = [], []
    for cond in new:
        status = "True" if cond.status else "False"
        prior = before.pop(cond.type.value, None)
        changed = prior is None or prior.get("status") != status
        if changed:
            flipped.append((cond, prior))
        out.append(
            {
                "type": cond.type.value,
                "status": status,
                "reason": cond.reason.value,
                "message": cond.message,
                "lastTransitionTime": now if changed else prior["lastTransitionTime"],  # type: ignore[index]
                "observedGeneration": generation,
            }
        )
    out.extend(before.values())  # conditions not re-evaluated this time keep their state
    order = list(ConditionType)
    return sorted(out, key=lambda c: _position(order, c["type"])), flipped


def _position(order: list[ConditionType], type_: str) -> int:
    try:
        return order.index(ConditionType(type_))
    except ValueError:
        return len(order)


def is_true(conditions: list[dict[str, Any]], type_: ConditionType) -> bool:
    return any(c.get("type") == type_.value and c.get("status") == "True" for c in conditions)


def phase(conditions: list[Condition]) -> Phase:
    """One word for ``kubectl get``: the first that applies."""
    by_type = {c.type: c for c in conditions}
    paused = by_type.get(ConditionType.RECONCILIATION_PAUSED)
    if paused is not None and paused.status:
        return Phase.PAUSED
    degraded = by_type.get(ConditionType.DEGRADED)
    if degraded is not None and degraded.status:
        return Phase.BLOCKED if degraded.reason in BLOCKING else Phase.DEGRADED
    keyspace = by_type.get(ConditionType.KEYSPACE_READY)
    if keyspace is not None and not keyspace.status:
        failed = keyspace.reason == Reason.KEYSPACE_FAILED
        return Phase.KEYSPACE_FAILED if failed else Phase.KEYSPACE
    schema = by_type.get(ConditionType.SCHEMA_READY)
    if schema is not None and not schema.status:
        return Phase.SCHEMA_FAILED if schema.reason == Reason.MIGRATION_FAILED else Phase.MIGRATING
    ready = by_type.get(ConditionType.READY)
    if ready is not None and ready.status:
        return Phase.READY
    return Phase.PROGRESSING


def flip_event(cond: Condition, prior: dict[str, Any] | None) -> tuple[Reason, str, bool] | None:
    """The Event a flip is worth, if any: (reason, message, warning).

    Only the pool's health is news here: Ready and Degraded. Every other condition's
    steps are reported by the code that takes them (MigrationStarted, RollingOut...),
    once. A Warning only for what went wrong."""
    if cond.type == ConditionType.READY:
        if cond.status:
            return cond.reason, cond.message, False
        if prior is None or prior.get("status") != "True":
            return None  # not ready yet on the way up is not news: the steps say why
        return cond.reason, f"no longer ready: {cond.message}", cond.reason != Reason.ROLLING_OUT
    if cond.type == ConditionType.DEGRADED:
        if cond.status:
            return cond.reason, cond.message, True
        if prior is None:
            return None
        was = prior.get("reason", "")
        return Reason.RECOVERED, f"no longer degraded (was {was}): {cond.message}", False
    return None
