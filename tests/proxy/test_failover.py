"""The first pool dies mid-run: miners move to the next, and shares in flight are lost,
never recorded as accepted."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from harness.databases import Database
from harness.proxy import ProxyProcess
from harness.sim import SimLoop, answers
from harness.writer import QUEUE, WriterProcess, migrate
from sharelog.event import Verdict


def test_primary_dies_miners_fail_over_and_in_flight_shares_are_lost(
    sim: SimLoop, postgres_db: Database, tmp_path: Path
) -> None:
    primary, primary_url = sim.pool()
    backup, backup_url = sim.pool()
    proxy = ProxyProcess(tmp_path, [primary_url, backup_url]).start()
    writer = WriterProcess(proxy.spool, postgres_db.url, "--batch-timeout-ms", "50")
    migrate(writer)
    writer.start()
    fleet = sim.fleet(proxy.listen_port, miners=20, shares_per_s=300, duration=8)
    time.sleep(2.5)
    primary.faults.stall = True  # it stops answering: submits pile up in flight...
    time.sleep(0.5)
    sim.run(primary.close())  # ...and then it is gone
    stats = fleet.result(60)
    heard = answers(stats)
    submitted = sum(s.submitted for s in stats)
    # A submit written into a connection the proxy is already closing is never read, so
    # never answered nor recorded; at most one per miner, in the instant of the failover.
    assert submitted - len(stats) <= sum(heard.values()) <= submitted
    live = proxy.metrics()
    assert live["stratum_proxy_upstream_failures_total"] >= 1
    assert proxy.terminate() == 0
    writer.wait_for(QUEUE, lambda v: v == 0)
    assert writer.terminate() == 0

    lost = postgres_db.scalar(
        f"SELECT count(*) FROM share_events WHERE error_code = {int(Verdict.UPSTREAM_LOST)}"
    )
    assert lost > 0, "the stalled primary held shares in flight"
    assert (
        postgres_db.scalar(
            "SELECT count(*) FROM share_events WHERE accepted AND error_code IS NOT NULL"
        )
        == 0
    )
    assert heard[Verdict.OTHER] == lost, "the miners heard 'upstream lost' for exactly those"
    judged = Counter(v.code for v in primary.ledger) + Counter(v.code for v in backup.ledger)
    assert postgres_db.scalar("SELECT count(*) FROM share_events WHERE accepted") == judged[None]
    by_upstream = postgres_db.query(
        "SELECT upstream, count(*) FROM share_events WHERE accepted GROUP BY 1 ORDER BY 1"
    )
    assert primary_url in by_upstream and backup_url in by_upstream, by_upstream
    after = postgres_db.scalar(
        f"SELECT count(*) FROM share_events WHERE upstream = '{backup_url}' AND accepted"
    )
    assert after == Counter(v.code for v in backup.ledger)[None] > 0
    assert postgres_db.scalar("SELECT count(*) FROM share_events") == sum(heard.values())
    assert heard[23] == 0, "miners mine on the backup's extranonce1, not the dead pool's"
