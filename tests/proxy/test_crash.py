"""SIGKILL the proxy at random moments under load: no share a miner heard about is lost
or doubled, and each is stored with the verdict its miner was told.

A kill is the one failure the proxy gets no say in. What it can promise is that a miner
was only ever told about a share whose event had already been written (the kernel keeps
a written file through the death of its process), so a new proxy on the same spool and
the writer behind it deliver exactly what was told.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.writer import QUEUE, WriterProcess, migrate
from stratum_sim.miners import Behaviour

KILLS = 24
RATE = 1200  # shares/s offered by the fleet


@pytest.mark.slow
def test_random_sigkills_under_load_lose_and_double_nothing_told(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    port, spool = proxy.listen_port, proxy.spool
    rng = random.Random(7)
    fleet = sim.fleet(port, miners=40, shares_per_s=RATE, duration=KILLS * 0.9 + 3,
                      behaviour=Behaviour(keep_heard=True))  # fmt: skip
    time.sleep(1.5)
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.2, 1.0))
        proxy.kill()  # SIGKILL: no shutdown, no flush, no goodbye
        proxy = ProxyProcess(tmp_path, [url], listen_port=port).start()
    stats = fleet.result(120)
    assert proxy.terminate(30) == 0

    db = tmp_path / "shares.db"
    writer = WriterProcess(spool, f"sqlite:///{db}")
    migrate(writer)
    writer.start()
    writer.wait_for(QUEUE, lambda v: v == 0, timeout=120)
    writer.terminate()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT job_id, extranonce1, extranonce2, ntime, nonce, accepted, error_code "
            "FROM share_events"
        ).fetchall()
        distinct = conn.execute("SELECT count(DISTINCT share_id) FROM share_events").fetchone()[0]

    heard = [h for s in stats for h in s.heard]
    told = sum(len(s.heard) for s in stats)
    assert told > RATE * KILLS * 0.5, f"only {told} shares answered: the fleet stalled"
    stored = Counter((r[:5], None if r[5] else r[6]) for r in rows)
    missing = [h for h in heard if stored[(h[:5], h[5])] != 1]
    assert not missing, f"{len(missing)} of {told} told shares not stored exactly once"
    assert distinct == len(rows), "a share stored twice"
    by_share = Counter(r[:5] for r in rows)
    assert max(by_share.values()) == 1, "one share, two rows"

    # The pool's ledger: every verdict it gave that the proxy lived to read is stored as
    # given. What it judged while the proxy was being killed was never told to anyone.
    ledger = {(v.job_id, v.extranonce1, v.extranonce2, v.ntime, v.nonce): v.code
              for v in pool.ledger}  # fmt: skip
    pool_verdicts = [(r[:5], None if r[5] else r[6]) for r in rows if r[6] is None or r[6] > 0]
    wrong = [(k, code, ledger.get(k)) for k, code in pool_verdicts if ledger.get(k) != code]
    assert not wrong, f"stored verdicts that differ from the pool's: {wrong[:5]}"
    told_keys = {h[:5] for h in heard}
    unrecorded = [k for k in ledger if k not in by_share]
    assert not told_keys & set(unrecorded)
    assert len(unrecorded) <= KILLS * 40, "more in flight at the kills than miners can have"
