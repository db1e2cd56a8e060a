"""The whole share path on real parts: miners -> proxy -> reference pool, spool -> writer
-> PostgreSQL. What the pool decided, what the miners heard and what the database holds
must be the same story, share for share.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.databases import Database, db_verdicts
from harness.proxy import ProxyProcess
from harness.sim import SimLoop, answers
from harness.writer import QUEUE, WriterProcess, migrate
from stratum_sim.miners import Behaviour


def test_every_share_the_pool_judged_is_stored_once_with_its_verdict(
    sim: SimLoop, postgres_db: Database, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    writer = WriterProcess(proxy.spool, postgres_db.url, "--batch-timeout-ms", "50")
    migrate(writer)
    writer.start()
    bad = Behaviour(duplicate_rate=0.03, low_difficulty_rate=0.03, stale_rate=0.03)
    stats = sim.fleet(proxy.listen_port, miners=40, shares_per_s=400, duration=6, behaviour=bad)
    sim.call(pool.new_job, clean=False)  # a job change mid-run, as every pool does
    heard = answers(stats.result(60))
    submitted = sum(s.submitted for s in stats.result())
    assert submitted > 1500
    assert sum(heard.values()) == submitted, "every submit got an answer"

    live = proxy.metrics()
    assert live['stratum_proxy_shares_total{code="",verdict="accepted"}'] == heard[None]
    assert live["stratum_proxy_spool_dropped"] == 0
    assert proxy.terminate() == 0
    writer.wait_for(QUEUE, lambda v: v == 0)
    assert writer.terminate() == 0

    rows = postgres_db.scalar("SELECT count(*) FROM share_events")
    assert (
        rows == submitted == postgres_db.scalar("SELECT count(DISTINCT share_id) FROM share_events")
    )
    assert db_verdicts(postgres_db) == heard, "the database says what the miners were told"
    pool_side = Counter(v.code for v in pool.ledger)
    relayed = db_verdicts(
        postgres_db, "error_message IS NULL OR error_message NOT LIKE '%answered by proxy%'"
    )
    assert relayed == pool_side, "every share the pool judged, with the pool's verdict"
    assert heard[None] > 0 and heard[22] > 0 and heard[23] > 0 and heard[21] > 0
    # accounting the payouts rely on: the difficulty a share was worth and what it reached
    assert (
        postgres_db.scalar(
            "SELECT count(*) FROM share_events WHERE accepted AND share_difficulty < difficulty"
        )
        == 0
    )
    assert postgres_db.scalar("SELECT sum(accepted) FROM worker_stats_minute") == heard[None]
