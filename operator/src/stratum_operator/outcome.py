"""What one pass over a StratumPool found: conditions, status fields and Events to post.

Every part of the operator that looks at a pool (the reconcile pass, the workload, the
Job gates, the spool claims, writer scaling, deletion) reports here; only the pool loop
(``pool_loop.py``, through ``reporting.py``) writes it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stratum_operator.conditions import Condition
from stratum_operator.vocabulary import ConditionType, Reason


@dataclass(frozen=True)
class Event:
    reason: Reason
    message: str
    warning: bool = False


@dataclass
class Outcome:
    """What one pass found; turned into conditions and status at the end."""

    conditions: list[Condition] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def condition(self, type_: ConditionType, status: bool, reason: Reason, message: str) -> None:
        """The latest word on a condition type wins within one pass."""
        self.conditions = [c for c in self.conditions if c.type != type_]
        self.conditions.append(Condition(type_, status, reason, message))

    def healthy(self) -> None:
        """Degraded=False, said in words (an empty message reads as a bug)."""
        self.condition(ConditionType.DEGRADED, False, Reason.AS_EXPECTED, "no fault found")

    def event(self, reason: Reason, message: str, *, warning: bool = False) -> None:
        self.events.append(Event(reason, message, warning))

    def said(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
