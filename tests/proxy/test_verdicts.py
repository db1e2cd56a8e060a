"""Every verdict reaches the right share, and the spool, before the miner hears it.

Each test puts one firmware or pool behaviour on the wire with a scripted miner and the
real proxy process, then compares three things: what the miner heard, what the pool
judged, and what the spool holds.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.spool_reader import spooled
from harness.stratum_client import ScriptedMiner, verdict_of
from sharelog.event import ShareEvent


def _until(predicate: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _identity(e: ShareEvent) -> tuple[str, str, str, str]:
    return (e.worker, e.job_id, e.extranonce2, e.nonce)


def test_one_id_for_every_submit_and_local_answers_keep_the_request_order(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    pool.faults.answer_delay_s = 0.2  # the pool's verdicts come well after the proxy's own
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    first = miner.share()
    burst = [
        (first, None),
        (miner.share(meets=False), 23),
        (miner.share(), None),
        (miner.share(job_id="deadbeef"), 21),
        (miner.share(), None),
        (miner.share(login="mallory.rig9"), 24),
        (first, 22),
        (miner.share(), None),
    ]
    for params, _ in burst:
        miner.submit(params, msg_id=4)  # as firmware that pairs replies by order alone
    heard = [verdict_of(r) for r in miner.replies_until(len(burst))]
    assert heard == [code for _, code in burst]
    told = Counter(
        (p[0], p[1], p[2], p[4], code)
        for (p, _), code in zip(burst, heard, strict=True)
        if code != 24  # a worker never authorized: refused, and nobody's share to store
    )
    stored = Counter((*_identity(e), e.error_code) for e in spooled(proxy.spool))
    assert stored == told, "every attributable share is stored with the verdict its miner heard"


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_the_pools_verdicts_are_recorded_after_the_miner_has_gone(
    sim: SimLoop, tmp_path: Path, how: str
) -> None:
    pool, url = sim.pool()
    pool.faults.answer_delay_s = 1.0
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    for i in range(30):
        miner.submit(miner.share(), msg_id=100 + i)
    _until(lambda: len(pool.ledger) == 30)
    miner.reset() if how == "rst" else miner.close()
    _until(lambda: len(spooled(proxy.spool)) == 30)
    events = spooled(proxy.spool)
    assert all(e.accepted for e in events), Counter(e.error_code for e in events)
    assert {(v.extranonce2, v.nonce) for v in pool.ledger} == {
        (e.extranonce2, e.nonce) for e in events
    }
    reason = "miner_reset" if how == "rst" else "miner_closed"
    proxy.wait_for(f'stratum_proxy_disconnects_total{{reason="{reason}"}}', lambda v: v == 1)
    assert proxy.metrics().get("stratum_proxy_upstream_failures_total", 0) == 0
    assert "failed" not in proxy.log.read_text(), "a miner leaving is no upstream failure"


def test_submits_with_a_null_id_are_recorded_and_answered(sim: SimLoop, tmp_path: Path) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    miner.submit(miner.share(), msg_id=None)
    miner.submit(miner.share(), msg_id=None)
    replies = miner.replies_until(2)
    assert [(r["id"], verdict_of(r)) for r in replies] == [(None, None), (None, None)]
    assert len(pool.ledger) == 2
    assert [e.accepted for e in spooled(proxy.spool)] == [True, True]


def test_odd_length_hex_is_an_error_reply_and_the_connection_lives_on(
    sim: SimLoop, tmp_path: Path
) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    odd = miner.share()
    odd[2] = "abc"
    miner.submit(miner.share(), msg_id=4)
    miner.submit(odd, msg_id=5)
    miner.submit(miner.share(), msg_id=6)
    replies = miner.replies_until(3)
    assert [r["id"] for r in replies] == [4, 5, 6]
    assert [verdict_of(r) for r in replies] == [None, 20, None]
    assert "extranonce2 must be whole bytes of hex" in replies[1]["error"][1]
    assert len(spooled(proxy.spool)) == 2
    assert "connection failed" not in proxy.log.read_text()


@pytest.mark.parametrize("depth", [17, 255, 1023])
def test_deep_nesting_is_refused_where_it_is_parsed(
    sim: SimLoop, tmp_path: Path, depth: int
) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    nested = b"[" * (depth - 1) + b"]" * (depth - 1)  # inside the top object: depth levels
    miner.send(b'{"id":1,"method":"mining.subscribe","params":' + nested + b"}\n")
    (reply,) = miner.replies_until(1)
    assert reply["id"] == 1 and reply["error"][0] == -32600
    assert "nested deeper than 16 levels" in reply["error"][1]
    miner.replies.clear()
    miner.handshake()  # the connection lives on
    assert proxy.alive() and "Traceback" not in proxy.log.read_text()


def test_shutdown_with_lingering_miners_prints_no_traceback(sim: SimLoop, tmp_path: Path) -> None:
    pool, url = sim.pool()
    pool.faults.answer_delay_s = 60  # their last shares stay in flight past the grace
    proxy = ProxyProcess(tmp_path, [url], shutdown_grace_s=1).start()
    miners = [ScriptedMiner(proxy.listen_port, f"acct.rig{i}") for i in range(3)]
    for miner in miners:
        miner.handshake()
        miner.submit(miner.share())
    _until(lambda: len(pool.ledger) == 3)
    assert proxy.terminate(30) == 0
    log = proxy.log.read_text()
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert "ending 3 connections still open" in log
    lost = spooled(proxy.spool)
    assert [e.error_code for e in lost] == [-2, -2, -2], "in flight at the end: recorded lost"


def test_a_miner_hears_a_verdict_only_once_its_event_is_in_the_spool_file(
    sim: SimLoop, tmp_path: Path
) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    assert proxy.proc is not None
    pid = proxy.proc.pid
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    for i in range(60):
        params = miner.share(meets=i % 3 != 0)  # some answered by the proxy, some by the pool
        miner.submit(params, msg_id=10 + i)
        miner.replies_until(i + 1)
        os.kill(pid, signal.SIGSTOP)  # freeze it the instant the miner has heard
        try:
            on_disk = {e.extranonce2 for e in spooled(proxy.spool)}
        finally:
            os.kill(pid, signal.SIGCONT)
        assert params[2] in on_disk, f"share {i} was answered before it was written"


def test_a_share_crossing_the_subscribe_reply_keeps_the_identity_the_pool_judged(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    pool.faults.eager_notify = True  # configure error, the job, then the subscribe result
    pool.faults.subscribe_reply_delay_s = 0.5
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.send(
        {"id": 1, "method": "mining.configure", "params": [["version-rolling"], {}]},
        {"id": 2, "method": "mining.subscribe", "params": []},
        {"id": 3, "method": "mining.authorize", "params": [miner.login, "x"]},
    )
    while miner.job is None:
        miner.read()
    miner.extranonce1 = "00000001"  # firmware that assumes; the pool's first is this one
    params = miner.share()
    miner.submit(params, msg_id=4)  # before the subscribe result has reached the proxy
    replies = miner.replies_until(4)
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert replies[1]["result"][1] == "00000001" and verdict_of(replies[3]) is None
    (event,) = spooled(proxy.spool)
    (judged,) = pool.ledger
    assert (event.accepted, event.extranonce1) == (True, judged.extranonce1)
    assert event.share_difficulty >= event.difficulty > 0


@pytest.mark.parametrize(
    "nbits",
    [
        "1ffffffff",  # no 32-bit word: the header can't hold it
        "-1",
        "ff7fffff",  # exponent 255: a target of thousands of bits
        "227fffff",  # exponent 0x22: past 256 bits
        "00000000",
    ],
)
def test_a_job_with_absurd_nbits_records_every_share_and_keeps_the_miner(
    sim: SimLoop, tmp_path: Path, nbits: str
) -> None:
    pool, url = sim.pool()
    pool.faults.notify_nbits = nbits  # judged under the real nbits; sent with this one
    proxy = ProxyProcess(tmp_path, [url]).start()
    miner = ScriptedMiner(proxy.listen_port)
    miner.handshake()
    assert miner.notify is not None and miner.notify[6] == nbits
    job_id, ntime = miner.notify[0], miner.notify[7]
    sent = [[miner.login, job_id, f"{i:08x}", ntime, f"{i * 7919:08x}"] for i in range(1, 6)]
    for i, params in enumerate(sent):
        miner.submit(params, msg_id=10 + i)
    replies = miner.replies_until(len(sent))  # a closed connection raises here
    assert [r["id"] for r in replies] == [10 + i for i in range(len(sent))]
    heard = [verdict_of(r) for r in replies]
    _until(lambda: len(spooled(proxy.spool)) == len(sent))
    events = spooled(proxy.spool)
    assert Counter((e.extranonce2, e.error_code) for e in events) == Counter(
        (p[2], code) for p, code in zip(sent, heard, strict=True)
    ), "every share is recorded with the verdict its miner heard"
    assert not any(e.block_candidate for e in events), "no target: no block candidate"
    miner.submit([miner.login, job_id, "000000ff", ntime, "00000001"], msg_id=99)
    assert miner.replies_until(len(sent) + 1)[-1]["id"] == 99, "the connection lives on"
    assert proxy.metrics().get("stratum_proxy_disconnects_total", 0) == 0
