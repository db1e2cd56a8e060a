"""No miner can hurt the others, on the real proxy between scripted miners and the
reference pool: a share is stored only when it can be attributed, one connection holds
and sends only so much, each miner stays distinct at the pool, and nothing the database
can't store reaches the spool (here proven through the real writer into PostgreSQL).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.databases import Database
from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.spool_reader import spooled
from harness.stratum_client import ScriptedMiner, verdict_of
from harness.writer import QUEUE, WriterProcess, migrate
from sharelog.event import TEXT_LIMITS

REFUSED = 'stratum_proxy_requests_refused_total{{reason="{}"}}'


def test_submits_that_cant_be_attributed_are_answered_and_never_stored(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    honest = ScriptedMiner(proxy.listen_port)
    honest.handshake()
    stranger = ScriptedMiner(proxy.listen_port, "mallory.rig1")  # never subscribes
    stranger.submit(["mallory.rig1", honest.share()[1], "00000001", "00000000", "00000000"])
    lurker = ScriptedMiner(proxy.listen_port, "eve.rig1")  # subscribes, never authorizes
    lurker.send({"id": 2, "method": "mining.subscribe", "params": []})
    lurker.replies_until(1)
    lurker.submit(honest.share(login="eve.rig1"), msg_id=5)
    honest.submit(honest.share(), msg_id=6)
    honest.submit(honest.share(login="mallory.rig9"), msg_id=7)  # a name it never authorized
    assert [verdict_of(r) for r in stranger.replies_until(1)] == [25]
    assert [verdict_of(r) for r in lurker.replies_until(2)[1:]] == [24]
    assert [verdict_of(r) for r in honest.replies_until(2)] == [None, 24]
    assert [(e.worker, e.accepted) for e in spooled(proxy.spool)] == [("alice.rig1", True)]
    assert [v.worker for v in pool.ledger] == ["alice.rig1"], "the rest never reached the pool"
    metrics = proxy.metrics()
    assert metrics[REFUSED.format("not_subscribed")] == 1
    assert metrics[REFUSED.format("unauthorized")] == 2


def test_submits_past_a_connections_rate_are_refused_unrecorded_and_not_relayed(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], max_submits_per_s=0.05, submit_rate_window_s=100).start()
    miner = ScriptedMiner(proxy.listen_port)  # 5 submits at once, then one every 20 s
    miner.handshake()
    shares = [miner.share() for _ in range(12)]
    for i, params in enumerate(shares):
        miner.submit(params, msg_id=10 + i)
    replies = miner.replies_until(12)
    assert [verdict_of(r) for r in replies] == [None] * 5 + [20] * 7
    assert {r["error"][1] for r in replies[5:]} == {"rate limited"}
    assert len(pool.ledger) == 5 and len(spooled(proxy.spool)) == 5
    assert proxy.metrics()[REFUSED.format("rate_limited")] == 7


def test_a_flood_of_unique_solutions_holds_a_bounded_set_per_job(
    sim: SimLoop, tmp_path: Path
) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], max_submits_per_s=1e6).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    miner.submit(miner.share(meets=False))
    miner.replies_until(1)
    miner.replies.clear()
    warm = proxy.rss_kb()
    flood, batch = 30_000, 1000
    for start in range(0, flood, batch):
        lines = [{"id": start + i, "method": "mining.submit", "params": miner.share(meets=False)}
                 for i in range(batch)]  # fmt: skip
        miner.send(*lines)
        miner.replies_until(start + batch)
    heard = Counter(verdict_of(r) for r in miner.replies)
    remembered = 4096 - 1  # the job's first share came before the flood
    assert heard == {23: remembered, 20: flood - remembered}, "4,096 solutions a job, no more"
    assert miner.replies[-1]["error"][1] == "too many shares for one job: at most 4096"
    growth_mb = (proxy.rss_kb() - warm) / 1024
    assert growth_mb < 4, f"one connection made the proxy hold {growth_mb:.1f} MB more"
    assert len(spooled(proxy.spool)) == 4096, "what was refused is not stored"
    assert proxy.metrics()[REFUSED.format("job_shares_full")] == flood - remembered


def test_one_connection_authorizes_at_most_64_names(sim: SimLoop, tmp_path: Path) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.send({"id": 1, "method": "mining.subscribe", "params": []},
               *({"id": 2 + i, "method": "mining.authorize", "params": [f"u{i}.r", "x"]}
                 for i in range(65)))  # fmt: skip
    replies = miner.replies_until(66)
    assert [r["result"] for r in replies[1:]] == [True] * 64 + [None]
    assert replies[-1]["error"] == [20, "too many workers on one connection: at most 64", None]
    assert proxy.metrics()[REFUSED.format("too_many_workers")] == 1


def test_a_submit_crossing_its_authorize_goes_up_under_the_login_the_pool_authorized(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    pool.faults.eager_notify = True  # the job first, then the subscribe and authorize results
    pool.faults.subscribe_reply_delay_s = 0.5
    proxy = ProxyProcess(tmp_path, [url], upstream_account="farm").start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.send(
        {"id": 1, "method": "mining.configure", "params": [["version-rolling"], {}]},
        {"id": 2, "method": "mining.subscribe", "params": []},
        {"id": 3, "method": "mining.authorize", "params": [miner.login, "x"]},
    )
    while miner.job is None:
        miner.read()
    miner.extranonce1 = "00000001"  # firmware that assumes; the pool's first is this one
    miner.submit(miner.share(), msg_id=4)  # before the authorize's answer reaches the proxy
    replies = miner.replies_until(4)
    assert [(r["id"], verdict_of(r)) for r in replies[2:]] == [(3, None), (4, None)]
    (judged,) = pool.ledger
    assert (judged.worker, judged.code) == ("farm.alice_rig1", None)
    (event,) = spooled(proxy.spool)
    assert (event.worker, event.accepted) == ("alice.rig1", True)


def test_two_miners_with_the_same_rig_name_are_two_workers_at_the_pool(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], upstream_account="farm",
                         upstream_worker_separator="--").start()  # fmt: skip
    for login in ("alice.rig1", "bob.rig1"):
        miner = ScriptedMiner(proxy.listen_port, login)
        miner.handshake()
        miner.submit(miner.share())
        assert verdict_of(miner.replies_until(1)[0]) is None
    assert [v.worker for v in pool.ledger] == ["farm.alice--rig1", "farm.bob--rig1"]
    assert [e.worker for e in spooled(proxy.spool)] == ["alice.rig1", "bob.rig1"]


def test_nothing_the_database_cant_store_reaches_the_spool(
    sim: SimLoop, postgres_db: Database, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    pool.faults.reject_code = 23
    pool.faults.reject_message = "low\x00 difficulty\x1b[31m"
    proxy = ProxyProcess(tmp_path, [url]).start()
    writer = WriterProcess(proxy.spool, postgres_db.url, "--batch-timeout-ms", "50")
    migrate(writer)
    writer.start()
    longest = "a." + "r" * (TEXT_LIMITS["worker"] - 2)  # the column's width exactly
    miner = ScriptedMiner(proxy.listen_port, longest)
    miner.handshake()
    for bad in ("bob\x00.rig1", "bob.\x07", longest + "r"):
        miner.send({"id": 9, "method": "mining.authorize", "params": [bad, "x"]})
    refusals = [r["error"][1] for r in miner.replies_until(3)]
    assert refusals == ["invalid worker name: holds a control character"] * 2 + [
        "invalid worker name: longer than 128 characters"
    ]
    nul_job = miner.share()
    nul_job[1] = "1\x00"
    miner.submit(nul_job, msg_id=10)
    miner.submit(miner.share(), msg_id=11)  # stored: rejected by the pool with its message
    replies = miner.replies_until(5)[3:]
    assert [verdict_of(r) for r in replies] == [20, 23]
    assert replies[0]["error"][1] == "invalid job id: holds a control character"
    assert proxy.terminate() == 0
    writer.wait_for(QUEUE, lambda v: v == 0)
    assert writer.terminate() == 0
    assert not (proxy.spool / "dead-letters.jsonl").exists(), "no poison row"
    row = postgres_db.query("SELECT worker, error_code, error_message FROM share_events")
    assert row == f"{longest}|23|low\ufffd difficulty\ufffd[31m"
    assert [v.worker for v in pool.ledger] == [longest], "the refused never reached the pool"
