"""The operator's metrics: what its alerts and dashboard read, from the first pass on."""

from __future__ import annotations

from prometheus_client import REGISTRY

from stratum_operator import metrics
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.spool_claims import ClaimState, OrphanClaim, drain_progress


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_the_error_counter_exists_before_the_first_error() -> None:
    """An alert on ``increase(...{result="error"})`` sees the first error as an increase."""
    for trigger in metrics.Trigger:
        assert value("stratum_operator_reconciles_total", trigger=trigger.value,
                     result="error") is not None  # fmt: skip


def test_a_drain_makes_progress_when_its_claim_holds_fewer_shares() -> None:
    memo = PoolMemory()

    def draining(shares: int | None) -> list[OrphanClaim]:
        return [OrphanClaim("spool-p-proxy-1", 1, ClaimState.DRAINING, shares),
                OrphanClaim("spool-p-proxy-2", 2, ClaimState.KEPT, 10)]  # fmt: skip

    assert drain_progress(draining(None), memo, now=100) == {"spool-p-proxy-1": 100}  # began
    assert drain_progress(draining(None), memo, now=200) == {"spool-p-proxy-1": 100}
    assert drain_progress(draining(500), memo, now=300) == {"spool-p-proxy-1": 300}  # known
    assert drain_progress(draining(500), memo, now=400) == {"spool-p-proxy-1": 300}  # stuck
    assert drain_progress(draining(600), memo, now=500) == {"spool-p-proxy-1": 300}  # more?
    assert drain_progress(draining(499), memo, now=600) == {"spool-p-proxy-1": 600}
    assert drain_progress([], memo, now=700) == {}  # drained: forgotten
    assert drain_progress(draining(499), memo, now=800) == {"spool-p-proxy-1": 800}


def test_a_pools_claim_series_follow_its_claims_and_go_with_it() -> None:
    states = {s.value: 0 for s in ClaimState} | {"Draining": 1}
    metrics.spool_claims("ns", "p", states, {"c1": 40}, {"c1": 123.0})
    assert value("stratum_operator_spool_claim_shares", namespace="ns", pool="p", claim="c1") == 40
    assert value("stratum_operator_spool_claims", namespace="ns", pool="p", state="Kept") == 0
    metrics.spool_claims("ns", "p", {s.value: 0 for s in ClaimState}, {}, {})
    assert value("stratum_operator_spool_claim_shares", namespace="ns", pool="p",
                 claim="c1") is None  # fmt: skip
    assert value("stratum_operator_spool_claims_shares", namespace="ns", pool="p") == 0
    metrics.writer_workers("ns", "p", 4, was=2)
    metrics.writer_workers("ns", "p", 4, was=4)
    assert value("stratum_operator_writer_scaling_decisions_total", namespace="ns", pool="p",
                 direction="up") == 1  # fmt: skip
    assert value("stratum_operator_writer_scaling_decisions_total", namespace="ns", pool="p",
                 direction="down") == 0  # fmt: skip
    metrics.forget_pool("ns", "p")
    for name in ("stratum_operator_spool_claims", "stratum_operator_writer_workers"):
        assert not [s for m in REGISTRY.collect() if m.name == name.removesuffix("_total")
                    for s in m.samples if s.labels.get("pool") == "p"]  # fmt: skip
