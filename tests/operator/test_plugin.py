"""``kubectl stratum status`` rendered: pure, from what the cluster said."""

from __future__ import annotations

from stratum_operator.plugin.gather import PodStatus, PoolStatus
from stratum_operator.plugin.render import render


def test_the_screen_says_what_a_pool_operator_looks_for() -> None:
    found = PoolStatus(
        name="main", namespace="pools", phase="Degraded", ready="1/2",
        conditions=[{"type": "Degraded", "status": "True", "reason": "ReplicasUnavailable",
                     "message": "1 of 2 proxy pods ready"}],
        miners_address="203.0.113.7:3333",
        pods=[PodStatus("main-proxy-0", True, 120, 5400.0, 310, 0.4, 2),
              PodStatus("main-proxy-1", False)],
        writer={"workers": 2, "lastReason": "queue 310 of 20000",
                "decisions": [{"time": "2026-11-26T23:00:00Z", "workers": 2,
                               "reason": "up: queue 45000", "depths": {"main-proxy-0": 45000}}]},
        jobs=[{"component": "migration", "name": "main-migrate-ab12", "state": "Complete"}],
        retention={"oldestRetainedDay": "2026-08-28", "oldestShare": "2026-08-28T00:00:01Z",
                   "lastRun": "2026-11-26T23:17:04Z"},
        warnings=[{"reason": "ReplicasUnavailable", "message": "1 of 2 proxy pods ready",
                   "count": 1, "last": "2026-11-26T23:20:00Z"}],
        traffic={"miners": 120, "sharesPerSecond": 41.5, "queueDepth": 310},
    )  # fmt: skip
    screen = render(found)
    assert "Phase:           Degraded (1/2 ready)" in screen
    assert "Miners connect:  203.0.113.7:3333" in screen
    assert "120 miners, 41.5 shares/s, 310 shares queued" in screen
    row = next(line for line in screen.splitlines() if "main-proxy-0" in line).split()
    assert row == ["main-proxy-0", "yes", "120", "5400", "310", "0.4", "2"]
    assert next(line for line in screen.splitlines() if "main-proxy-1" in line).split()[:3] == [
        "main-proxy-1", "no", "-"]  # fmt: skip
    assert "up: queue 45000" in screen and "depths={'main-proxy-0': 45000}" in screen
    assert "kept from 2026-08-28" in screen and "main-migrate-ab12" in screen


def test_nothing_measured_reads_as_a_dash_never_zero() -> None:
    screen = render(PoolStatus("p", "ns", "Migrating", "", [], "(no Service yet)"))
    assert "-, miners" not in screen and "Traffic:         - miners, - shares/s" in screen
    assert "Jobs:\n  none" in screen and "Recent warnings:\n  none" in screen
