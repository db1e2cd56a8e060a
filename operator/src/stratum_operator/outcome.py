"""What one pass over a StratumPool found: conditions, status fields and Events to post.

Every part of the operator that looks at a pool (the reconcile pass, the workload, the
spool claims, writer scaling, deletion) reports here; only the reconcile loop and the
deletion handler write it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stratum_operator.conditions import Condition


@dataclass
class Outcome:
    """What one pass found; turned into conditions and status at the end."""

    conditions: list[Condition] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)

    def condition(self, type_: str, status: bool, reason: str, message: str) -> None:
        """The latest word on a condition type wins within one pass."""
        self.conditions = [c for c in self.conditions if c.type != type_]
        self.conditions.append(Condition(type_, status, reason, message))

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))
