"""What the operator remembers of one pool between passes.

In memory only: an operator restart starts it afresh, and every default below says
what a fresh start assumes (where a default is True, something may have happened while
the operator was away, so the first pass looks). Nothing here is needed for
correctness across restarts; it saves listings and carries what a single reading can't
tell (a rollout's progress, a rate between two counter readings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RolloutMark = tuple[Any, ...]  # (generation, updated, ready, updateRevision)


@dataclass
class PoolMemory:
    # -- from the watch (pool_loop) ---------------------------------------------------
    # the StatefulSet as last delivered: light ticks read readiness from it
    statefulset: dict[str, Any] | None = None
    # (replicas, by whom) of a hand scale the watch saw, which our next apply may undo
    # before any pass reads it
    hand_scaled: tuple[int, str] | None = None
    # "Kind name" of children deleted by hand: told of when the next pass restores them
    deleted_children: list[str] = field(default_factory=list)

    # -- the passes (reconcile) -------------------------------------------------------
    # (metadata.generation, monotonic time) of the last full pass
    converged: tuple[int | None, float] = (None, 0.0)
    # a Deployment of an earlier release may still be retiring
    retiring_deployment: bool = True
    # a spool claim whose pod is gone may still be draining
    claims_in_flight: bool = True
    # spec.proxy.replicas at the last full pass: a decrease is a scale-in
    replicas_seen: int | None = None
    # a retention CronJob of ours may exist
    retention_cronjob: bool = True

    # -- the rollout (workload) -------------------------------------------------------
    # where the rollout stood and since when (monotonic): no move past the deadline is
    # a stuck rollout
    progress: tuple[RolloutMark, float] | None = None

    # -- spool claims -----------------------------------------------------------------
    # each pod's queue as last read, kept after the pod is gone: what its claim held
    pod_queues: dict[str, int] = field(default_factory=dict)
    # failed drain Jobs already told of in an Event
    drain_failures: set[str] = field(default_factory=set)
    # claim -> (fewest shares seen, when): when each draining claim last made progress
    drain_progress: dict[str, tuple[int | None, float]] = field(default_factory=dict)

    # -- writer scaling ---------------------------------------------------------------
    # (time, workers recommended): the scale-down stabilization window
    scaling_history: list[tuple[float, int]] = field(default_factory=list)
    # pod -> (monotonic time, shares counter) at the start of its rate window
    share_counters: dict[str, tuple[float, float]] = field(default_factory=dict)
    # pod -> its last measured shares/s
    share_rates: dict[str, float] = field(default_factory=dict)

    # -- retention --------------------------------------------------------------------
    # Job uid -> (completionTime, report) of every finished run read; None when it failed
    retention_runs: dict[str, tuple[str, dict[str, Any]] | None] = field(default_factory=dict)
