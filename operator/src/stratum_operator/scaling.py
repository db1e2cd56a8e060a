"""How many parallel flushers each writer runs, decided from queue depth.

The rule is the one pool operators already know from the HorizontalPodAutoscaler and
KEDA: ``desired = ceil(current * metric / target)`` with a 10% tolerance, clamped to
[min, max]. The metric is the deepest queue among the ready pods (the one falling
behind decides). Scaling up happens at once: a growing queue is shares waiting. Scaling
down takes the *highest* recommendation of the stabilization window, so a dip in a
noisy signal never takes workers away that the next second needs: no flapping.

Everything here is pure; the handler feeds it readings and the history kept in status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TOLERANCE = 0.1
MAX_HISTORY = 120  # recommendations kept: at one reading per 10 s, 20 minutes of window


@dataclass(frozen=True)
class Decision:
    workers: int
    changed: bool
    reason: str
    inputs: dict[str, Any]

    def record(self, at: str) -> dict[str, Any]:
        """The status entry: what was seen, and what was decided."""
        return {"time": at, "workers": self.workers, "reason": self.reason, **self.inputs}


def recommend(current: int, depths: list[int], target: int, lo: int, hi: int) -> int:
    busiest = max(depths)
    ratio = busiest / target
    if abs(ratio - 1) <= TOLERANCE:
        return max(lo, min(hi, current))
    return max(lo, min(hi, math.ceil(max(current, 1) * ratio)))


def decide(
    *,
    now: float,
    current: int,
    depths: dict[str, int],
    target: int,
    lo: int,
    hi: int,
    window_s: float,
    history: list[tuple[float, int]],
) -> tuple[Decision, list[tuple[float, int]]]:
    """The next worker count and the updated recommendation history."""
    raw = recommend(current, list(depths.values()), target, lo, hi)
    kept = [(t, w) for t, w in history if now - t < window_s][-MAX_HISTORY:]
    kept.append((now, raw))
    inputs = {
        "queueDepths": dict(sorted(depths.items())),
        "target": target,
        "recommended": raw,
        "windowSeconds": int(window_s),
    }
    if raw > current:
        workers, reason = raw, f"queue {max(depths.values())} over target {target}: scale up"
    elif raw < current:
        workers = max(w for _, w in kept)  # the window's highest: down only once it is all low
        if workers < current:
            reason = f"queue below target for {int(window_s)}s: scale down"
        else:
            workers = current
            reason = f"queue below target, holding for the {int(window_s)}s window"
    else:
        workers, reason = current, "queue near target"
    workers = max(lo, min(hi, workers))
    return Decision(workers, workers != current, reason, inputs), kept
