"""What a pass found, as the StratumPool shows it: the status fields that changed, and the
Events worth posting. Pure: the pool as it is and an ``Outcome`` in, a ``Report`` out.

An unchanged status is not written (no churn: a Ready, idle pool is never patched), a
condition's flip is news only for the pool's health (``conditions.flip_event``), and a
value nobody measured this time (None) is removed rather than shown stale or as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stratum_operator.clock import timestamp
from stratum_operator.conditions import flip_event, merge, phase
from stratum_operator.outcome import Event, Outcome


@dataclass(frozen=True)
class Report:
    status: dict[str, Any] = field(default_factory=dict)  # a merge patch of .status
    events: list[Event] = field(default_factory=list)


def report(pool: dict[str, Any], out: Outcome, *, now: str | None = None) -> Report:
    status = pool.get("status") or {}
    generation = int(pool["metadata"].get("generation") or 0)
    conditions, flipped = merge(status.get("conditions") or [], out.conditions,
                                now or timestamp(), generation)  # fmt: skip
    wanted = dict(out.status)
    if out.conditions:
        wanted["phase"] = phase(out.conditions).value
        wanted["conditions"] = conditions
        wanted["observedGeneration"] = generation
    patch = _merge_patch(status, wanted)
    events = list(out.events)
    for cond, prior in flipped:
        news = flip_event(cond, prior)
        if news is not None:
            reason, message, warning = news
            events.append(Event(reason, message, warning))
    return Report(patch, events)


def _merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) taking each field of ``new`` from ``old``: nested
    objects are merged by the server, so a key dropped from one is sent as None."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = _merge_patch(before, value)
            patch[key].update({k: None for k in before if k not in value})
        else:
            patch[key] = value
    return patch
