"""The load generator mines like a fleet: at its rate, across reconnects, and only what
it can (never before it knows its extranonce1)."""

from __future__ import annotations

import time

from harness.sim import SimLoop, answers


def test_after_a_reconnect_miners_resume_at_their_rate(sim: SimLoop) -> None:
    pool, url = sim.pool()
    port = int(url.rsplit(":", 1)[1])
    fleet = sim.fleet(port, miners=4, shares_per_s=200, duration=4)
    time.sleep(2)
    sim.call(pool.drop_all)  # every miner loses its connection halfway
    stats = fleet.result(30)
    submitted = sum(s.submitted for s in stats)
    assert submitted >= 560, f"{submitted} shares in 4 s at 200/s: the fleet stalled"
    assert all(s.disconnects >= 1 for s in stats)


def test_miners_wait_for_their_extranonce1_when_the_job_comes_first(sim: SimLoop) -> None:
    pool, url = sim.pool()
    pool.faults.eager_notify = True
    pool.faults.subscribe_reply_delay_s = 0.3
    port = int(url.rsplit(":", 1)[1])
    stats = sim.fleet(port, miners=4, shares_per_s=100, duration=2).result(30)
    heard = answers(stats)
    assert heard[None] == sum(s.submitted for s in stats) > 50, heard
