"""Writer scaling: up at once, down only after the window, never flapping."""

from __future__ import annotations

import itertools
import random

from stratum_operator.scaling import decide


def run(readings: list[int], *, window: float = 60, step: float = 10, start: int = 1) -> list[int]:
    current, out = start, []
    history: list[tuple[float, int]] = []
    for i, depth in enumerate(readings):
        decision, history = decide(
            now=i * step,
            current=current,
            depths={"pod-a": depth, "pod-b": depth // 2},
            target=1000,
            lo=1,
            hi=8,
            window_s=window,
            history=history,
        )
        current = decision.workers
        out.append(current)
    return out


def test_scales_up_at_once_with_the_deepest_queue() -> None:
    assert run([4000]) == [4]
    assert run([100_000]) == [8], "clamped to max"


def test_near_target_holds() -> None:
    assert run([1050, 950, 1000], start=3) == [3, 3, 3]


def test_scales_down_only_after_the_whole_window_is_low() -> None:
    workers = run([4000] + [0] * 9, window=60, step=10)
    assert workers[:6] == [4, 4, 4, 4, 4, 4], "holds through the 60 s window"
    assert workers[6] < 4 and workers[-1] == 1


def test_a_noisy_signal_does_not_flap() -> None:
    rng = random.Random(7)
    readings = [rng.choice([3500, 200, 4000, 100, 3800]) for _ in range(60)]
    workers = run(readings, window=120, step=10)
    changes = sum(1 for a, b in itertools.pairwise(workers) if a != b)
    assert changes <= 2, workers
    assert min(workers[3:]) >= 4


def test_the_decision_says_why_and_with_what() -> None:
    decision, _ = decide(
        now=0,
        current=2,
        depths={"p1": 9000, "p0": 10},
        target=1000,
        lo=1,
        hi=16,
        window_s=300,
        history=[],
    )
    record = decision.record("2026-01-01T00:00:00Z")
    assert decision.changed and record["workers"] == 16 and "scale up" in record["reason"]
    assert record["queueDepths"] == {"p0": 10, "p1": 9000} and record["target"] == 1000
