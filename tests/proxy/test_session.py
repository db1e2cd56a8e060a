"""The proxy's protocol rules, on the pure session: which share got which verdict.

Shares here are mined for real (SHA256d at a tiny difficulty) with the load
generator's own search, against jobs made the way the reference pool makes them.
"""

from __future__ import annotations

import pytest

from harness.session_rig import DIFF, EN1, MASK, Rig, line
from sharelog.event import Verdict
from sharelog.work import DIFF1_TARGET, Job, nbits_from_target
from stratum_proxy.admission import Refusal
from stratum_proxy.messages import Request, Response, parse
from stratum_proxy.session import Outbox
from stratum_sim.pool import job_params


def test_repeated_miner_ids_never_credit_a_verdict_to_the_wrong_share() -> None:
    rig = Rig()
    job = rig.handshake()
    first, second = rig.share(job, 1), rig.share(job, 2)
    rig.miner(4, "mining.submit", first)
    rig.miner(4, "mining.submit", second)  # the same id, as some firmware does
    up_first, up_second = rig.to_pool[-2], rig.to_pool[-1]
    assert up_first["id"] != up_second["id"], "each upstream request needs its own id"
    # The pool answers out of order: the second share is rejected, the first accepted.
    rig.pool({"id": up_second["id"], "result": None, "error": [23, "low difficulty", None]})
    rig.pool({"id": up_first["id"], "result": True, "error": None})
    by_en2 = {e.extranonce2: e for e in rig.events}
    assert by_en2[first[2]].accepted and by_en2[first[2]].error_code is None
    assert not by_en2[second[2]].accepted and by_en2[second[2]].error_code == 23
    assert [m["id"] for m in rig.to_miner[-2:]] == [4, 4]


def test_configure_before_subscribe_and_version_rolling_count_in_the_hash() -> None:
    rig = Rig()
    job = rig.handshake()
    assert rig.session.version_mask == MASK
    rig.miner(5, "mining.submit", rig.share(job, 7, vbits=0x1FFFE000))
    assert rig.to_pool[-1]["method"] == "mining.submit", "a valid rolled share goes upstream"
    rig.answer_last(True)
    (event,) = rig.events
    assert event.accepted and event.version_bits == "1fffe000"
    assert event.share_difficulty >= DIFF
    assert event.difficulty == DIFF


def test_duplicates_are_recognised_by_solution_and_answered_by_the_proxy() -> None:
    rig = Rig()
    job = rig.handshake()
    share = rig.share(job, 9)
    rig.miner(10, "mining.submit", share)
    rig.answer_last(True)
    sent = len(rig.to_pool)
    rig.miner(11, "mining.submit", share)  # same solution, different request id
    assert len(rig.to_pool) == sent, "a duplicate must not bother the pool"
    assert rig.to_miner[-1] == {"id": 11, "result": None, "error": [22, "duplicate share", None]}
    dup = rig.events[-1]
    assert (dup.accepted, dup.error_code) == (False, Verdict.DUPLICATE)
    assert dup.share_id != rig.events[0].share_id, "a second submission is its own event"


def test_below_target_share_is_rejected_locally_with_its_real_difficulty() -> None:
    rig = Rig()
    job = rig.handshake()
    rig.miner(12, "mining.submit", rig.share(job, 3, meets=False))
    assert rig.to_miner[-1]["error"][0] == Verdict.LOW_DIFFICULTY
    (event,) = rig.events
    assert event.error_code == Verdict.LOW_DIFFICULTY
    assert 0 < event.share_difficulty < DIFF


def test_local_reject_off_relays_everything_and_records_the_pools_verdict() -> None:
    rig = Rig(local_reject=False)
    job = rig.handshake()
    rig.miner(12, "mining.submit", rig.share(job, 3, meets=False))
    assert rig.to_pool[-1]["method"] == "mining.submit"
    rig.answer_last(None, [23, "low difficulty share", None])
    assert rig.events[0].error_code == 23 and rig.events[0].error_message == "low difficulty share"


def test_a_stale_job_is_recorded_and_an_unauthorized_worker_refused_unrecorded() -> None:
    rig = Rig()
    job = rig.handshake()
    stale = rig.share(job, 4)
    stale[1] = "gone"
    rig.miner(13, "mining.submit", stale)
    rig.miner(14, "mining.submit", rig.share(job, 5, login="mallory.rig"))
    assert [e.error_code for e in rig.events] == [Verdict.STALE]
    assert rig.to_miner[-1] == {"id": 14, "result": None,
                                "error": [24, "unauthorized worker", None]}  # fmt: skip
    assert rig.refused == [Refusal.UNAUTHORIZED]


def test_clean_jobs_forget_old_jobs() -> None:
    rig = Rig()
    job = rig.handshake()
    old_share = rig.share(job, 6)
    rig.pool({"id": None, "method": "mining.notify",
              "params": job_params("j2", job.nbits, clean=True)})  # fmt: skip
    rig.miner(15, "mining.submit", old_share)
    assert rig.events[-1].error_code == Verdict.STALE


def test_block_candidate_when_the_hash_meets_the_network_target() -> None:
    rig = Rig()
    job = rig.handshake(network_difficulty=DIFF)  # every valid share solves a block
    rig.miner(16, "mining.submit", rig.share(job, 8))
    rig.answer_last(True)
    assert rig.events[0].block_candidate
    ordinary = Rig()
    job = ordinary.handshake(network_difficulty=1e9)
    ordinary.miner(16, "mining.submit", ordinary.share(job, 8))
    ordinary.answer_last(True)
    assert not ordinary.events[0].block_candidate


def test_login_rewritten_to_the_farm_account_keeps_the_worker_name() -> None:
    rig = Rig(upstream_account="farm")
    job = rig.handshake("alice.rig1")
    authorize = next(m for m in rig.to_pool if m["method"] == "mining.authorize")
    assert authorize["params"] == ["farm.alice_rig1", "x"]
    rig.miner(17, "mining.submit", rig.share(job, 10))
    assert rig.to_pool[-1]["params"][0] == "farm.alice_rig1"
    rig.answer_last(True)
    event = rig.events[0]
    assert (event.user_identity, event.worker) == ("alice", "alice.rig1")


def test_timeout_and_lost_upstream_are_never_recorded_as_accepted() -> None:
    rig = Rig(submit_timeout=5.0)
    job = rig.handshake()
    rig.miner(18, "mining.submit", rig.share(job, 11))
    sent_at = rig.session.pending[rig.to_pool[-1]["id"]].sent_at
    out = Outbox()
    rig.session.expire(sent_at + 4.9, out)
    assert not out.events
    rig.session.expire(sent_at + 5.1, out)
    rig._take(out)
    rig.miner(19, "mining.submit", rig.share(job, 12))
    out = Outbox()
    rig.session.upstream_lost("pool went away", out)
    rig._take(out)
    assert [(e.accepted, e.error_code) for e in rig.events] == [
        (False, Verdict.TIMEOUT), (False, Verdict.UPSTREAM_LOST)
    ]  # fmt: skip
    assert [m["id"] for m in rig.to_miner[-2:]] == [18, 19], "the miner hears back either way"
    late = rig.to_pool[-1]["id"]
    rig.pool({"id": late, "result": True, "error": None})  # too late: already settled
    assert len(rig.events) == 2


@pytest.mark.parametrize(
    "method",
    ["client.reconnect", "client.show_message", "mining.set_extranonce", "vendor.custom"],
)
def test_pool_requests_reach_the_miner_untouched(method: str) -> None:
    rig = Rig()
    rig.handshake()
    raw = line({"id": None, "method": method, "params": ["ffff0000", 4]})
    out = Outbox()
    rig.session.from_upstream(parse(raw.strip()), raw, out)
    assert out.to_miner == [raw]


def test_set_extranonce_changes_the_header_the_proxy_rebuilds() -> None:
    rig = Rig()
    job = rig.handshake()
    rig.pool({"id": None, "method": "mining.set_extranonce", "params": ["0000ffff", 4]})
    assert rig.session.extranonce1 == "0000ffff"
    rig.miner(20, "mining.submit", rig.share(job, 13, en1="0000ffff"))
    assert rig.to_pool[-1]["method"] == "mining.submit", "valid under the new extranonce1"
    rig.answer_last(True)
    assert rig.events[0].extranonce1 == "0000ffff" and rig.events[0].share_difficulty >= DIFF


def test_unknown_miner_methods_and_notifications_are_forwarded() -> None:
    rig = Rig()
    rig.miner(30, "mining.suggest_difficulty", [0.5])
    rig.miner(31, "vendor.hello", [])
    assert [m["method"] for m in rig.to_pool] == ["mining.suggest_difficulty", "vendor.hello"]
    rig.answer_last("hi")
    assert rig.to_miner == [], "31's reply waits behind 30's: replies keep the request order"
    rig.pool({"id": rig.to_pool[0]["id"], "result": True, "error": None})
    assert rig.to_miner == [
        {"id": 30, "result": True, "error": None},
        {"id": 31, "result": "hi", "error": None},
    ]


def test_malformed_submits_get_an_error_and_no_share() -> None:
    rig = Rig()
    rig.handshake()
    for params in ([], ["a"], ["a", "j1", "zz", "00", "00"], ["a", 1, 2, 3, 4], [None] * 6):
        rig.miner(40, "mining.submit", params)
        assert rig.to_miner[-1]["error"][0] == 20
    assert rig.events == []


def test_requests_in_flight_are_bounded_and_refused_shares_still_recorded() -> None:
    rig = Rig(max_pending=4)
    job = rig.handshake()
    for i in range(3):
        rig.miner(50 + i, "vendor.slow", [])
    rig.miner(53, "mining.submit", rig.share(job, 21))
    assert len(rig.session.pending) == 4
    before = len(rig.to_miner)
    rig.miner(54, "vendor.slow", [])
    rig.miner(55, "mining.submit", rig.share(job, 22))  # the pool is this far behind
    assert len(rig.session.pending) == 4
    (refused,) = rig.events
    assert (refused.accepted, refused.error_code) == (False, Verdict.OTHER)
    assert refused.error_message == "too many submits in flight (answered by proxy)"
    assert len(rig.to_miner) == before, "the refusals wait behind the requests before them"
    for request in reversed(rig.to_pool[-4:]):  # the pool answers in any order
        rig.pool({"id": request["id"], "result": True, "error": None})
    replies = rig.to_miner[before:]
    assert [r["id"] for r in replies] == [50, 51, 52, 53, 54, 55]
    assert replies[4]["error"] == [20, "too many requests in flight", None]
    assert replies[5]["error"] == [20, "too many submits in flight", None]


def test_responses_and_notifications_pass_both_ways() -> None:
    rig = Rig()
    rig.miner(None, "mining.extranonce.subscribe", [])
    assert rig.to_pool[-1]["id"] is None
    msg = parse(b'{"id": 77, "result": "1.0", "error": null}')
    assert isinstance(msg, Response)
    out = Outbox()
    rig.session.from_miner(msg, b'{"id":77}\n', out)  # the miner answering client.get_version
    assert out.to_upstream == [b'{"id":77}\n']
    assert isinstance(parse(b'{"id":1,"method":"m","params":null}'), Request)


def test_a_plain_false_rejection_is_stored_with_a_real_message() -> None:
    rig = Rig()
    job = rig.handshake()
    rig.miner(60, "mining.submit", rig.share(job, 61))
    rig.answer_last(False, None)  # {"result": false, "error": null}
    (event,) = rig.events
    assert (event.accepted, event.error_code, event.error_message) == (False, 20, "rejected")


def test_a_share_before_the_subscribe_result_waits_for_it_and_is_hashed_under_its_en1() -> None:
    rig = Rig()  # a subscribe and an authorize in flight are the pool's to answer first
    rig.miner(2, "mining.subscribe", ["test/1"])
    rig.miner(3, "mining.authorize", ["alice.rig1", "x"])
    subscribe_id, authorize_id = rig.to_pool[0]["id"], rig.to_pool[1]["id"]
    rig.pool({"id": None, "method": "mining.set_difficulty", "params": [DIFF]})
    params = job_params("j1", nbits_from_target(int(DIFF1_TARGET / 1e6)), clean=True)
    rig.pool({"id": None, "method": "mining.notify", "params": params})
    share = rig.share(Job.from_notify(params), 70, vbits=0)[:5]  # the pool's en1, EN1
    rig.miner(4, "mining.submit", share)
    assert rig.to_pool[-1]["method"] == "mining.authorize", "held, not answered 25 or 24"
    rig.pool({"id": subscribe_id, "result": [[["mining.notify", "1"]], EN1, 4], "error": None})
    assert rig.to_pool[-1]["method"] == "mining.authorize", "its worker is not authorized yet"
    rig.pool({"id": authorize_id, "result": True, "error": None})
    assert rig.to_pool[-1]["method"] == "mining.submit", "relayed once the pool has answered"
    rig.answer_last(True)
    (event,) = rig.events
    assert event.accepted and event.extranonce1 == EN1
    assert event.share_difficulty >= DIFF == event.difficulty
    assert [m["id"] for m in rig.to_miner if "result" in m] == [2, 3, 4]


def test_null_id_submits_are_relayed_as_submits_and_recorded() -> None:
    rig = Rig()
    job = rig.handshake()
    rig.miner(None, "mining.submit", rig.share(job, 80))
    assert isinstance(rig.to_pool[-1]["id"], int), "our own id upstream, to pair the verdict"
    rig.answer_last(True)
    assert rig.to_miner[-1] == {"id": None, "result": True, "error": None}
    assert [e.accepted for e in rig.events] == [True]


def test_a_flood_of_requests_behind_an_unanswered_one_ends_the_connection() -> None:
    rig = Rig(max_waiting_replies=8)
    job = rig.handshake()
    rig.miner(5, "vendor.slow", [])  # the pool never answers this one
    out_before = len(rig.to_miner)
    for i in range(7):
        rig.miner(6 + i, "mining.submit", rig.share(job, 90 + i, meets=False))
    out = Outbox()
    raw = line({"id": 99, "method": "mining.submit", "params": rig.share(job, 99)})
    rig.session.from_miner(parse(raw.strip()), raw, out)
    assert out.close is not None and out.close.value == "miner_flooding"
    assert len(rig.to_miner) == out_before, "nothing overtakes the unanswered request"
    assert len(rig.events) + len(out.events) == 8, "every share's fate is still recorded"
