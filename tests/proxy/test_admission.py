"""What the proxy refuses before anything is stored, on the pure session: a share is
recorded only from an authorized worker on a subscribed connection, within its rate,
under names the database can store; every refusal is answered, counted and not stored."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.session_rig import DIFF, EN1, MASK, Rig
from sharelog.event import TEXT_LIMITS
from sharelog.work import Job
from stratum_proxy.admission import Refusal, SubmitBudget, printable
from stratum_proxy.logins import authorize_refusal, upstream_login
from stratum_proxy.session import Outbox
from stratum_sim.pool import job_params


def _subscribed_only(rig: Rig) -> Job:
    """Version rolling configured, subscribed, a job in hand, and no worker authorized."""
    rig.miner(1, "mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}])
    rig.answer_last({"version-rolling": True, "version-rolling.mask": f"{MASK:08x}"})
    rig.miner(2, "mining.subscribe", ["test/1"])
    rig.answer_last([[["mining.notify", "1"]], EN1, 4])
    rig.pool({"id": None, "method": "mining.set_difficulty", "params": [DIFF]})
    params = job_params("j1", 0x1D00FFFF, clean=True)
    rig.pool({"id": None, "method": "mining.notify", "params": params})
    return Job.from_notify(params)


# -- attribution (finding 2) ----------------------------------------------------------------


def test_a_submit_on_a_connection_that_never_subscribed_is_refused_and_not_stored() -> None:
    rig = Rig()
    rig.miner(4, "mining.submit", ["alice.rig1", "j1", "00000000", "00000000", "00000000"])
    assert rig.to_miner == [{"id": 4, "result": None, "error": [25, "not subscribed", None]}]
    assert (rig.events, rig.to_pool, rig.refused) == ([], [], [Refusal.NOT_SUBSCRIBED])


@pytest.mark.parametrize("local_reject", [True, False])
def test_a_worker_never_authorized_is_refused_and_not_stored(local_reject: bool) -> None:
    rig = Rig(local_reject=local_reject)
    job = _subscribed_only(rig)
    sent = len(rig.to_pool)
    rig.miner(4, "mining.submit", rig.share(job, 1, login="mallory.rig9"))
    assert rig.to_miner[-1]["error"] == [24, "unauthorized worker", None]
    assert len(rig.to_pool) == sent, "not relayed: nobody can be credited with it"
    assert (rig.events, rig.refused) == ([], [Refusal.UNAUTHORIZED])


def test_submits_past_the_rate_are_refused_unrecorded_and_not_relayed() -> None:
    rig = Rig(max_submits_per_s=0.01, submit_rate_window=400)  # 4 at once, then hardly any
    job = rig.handshake()
    sent, told = len(rig.to_pool), len(rig.to_miner)
    for i in range(6):
        rig.miner(10 + i, "mining.submit", rig.share(job, 100 + i))
    assert len(rig.to_pool) - sent == 4
    assert len(rig.to_miner) == told, "the refusals wait behind the verdicts before them"
    for request in rig.to_pool[-4:]:
        rig.pool({"id": request["id"], "result": True, "error": None})
    assert [m["error"] for m in rig.to_miner[-2:]] == [[20, "rate limited", None]] * 2
    assert len(rig.events) == 4 and all(e.accepted for e in rig.events)
    assert rig.refused == [Refusal.RATE_LIMITED] * 2


def test_the_submit_budget_refills_at_its_rate_up_to_a_windows_worth() -> None:
    budget = SubmitBudget(100, 10, now=0.0)
    assert sum(budget.take(100, 10, 0.0) for _ in range(1500)) == 1000
    assert sum(budget.take(100, 10, 0.5) for _ in range(100)) == 50
    assert sum(budget.take(100, 10, 1000.0) for _ in range(1500)) == 1000, "never past 10 s"


# -- what one connection can make the proxy hold (finding 1) ---------------------------------


def test_duplicates_are_remembered_per_live_job_up_to_a_cap() -> None:
    rig = Rig(max_shares_per_job=3)
    job = rig.handshake()
    shares = [rig.share(job, 200 + i, meets=False) for i in range(4)]  # answered by the proxy
    for i, params in enumerate(shares):
        rig.miner(20 + i, "mining.submit", params)
    rig.miner(24, "mining.submit", shares[0])
    errors = [m["error"] for m in rig.to_miner[-5:]]
    assert [e[0] for e in errors] == [23, 23, 23, 20, 22]
    assert errors[3][1] == "too many shares for one job: at most 3"
    assert [e.error_code for e in rig.events] == [23, 23, 23, 22], "the refused one: no row"
    assert rig.refused == [Refusal.JOB_SHARES_FULL]
    params = job_params("j2", job.nbits, clean=True)
    rig.pool({"id": None, "method": "mining.notify", "params": params})
    fresh = Job.from_notify(params)
    rig.miner(25, "mining.submit", rig.share(fresh, 300))
    assert rig.to_pool[-1]["method"] == "mining.submit", "a new job has room again"


def test_names_authorized_on_one_connection_are_capped_in_flight_too() -> None:
    rig = Rig(max_workers=2)
    rig.miner(1, "mining.authorize", ["a.1", "x"])
    rig.miner(2, "mining.authorize", ["b.1", "x"])  # both still in flight
    rig.miner(3, "mining.authorize", ["c.1", "x"])
    rig.miner(4, "mining.authorize", ["a.1", "x"])  # the same name again costs nothing
    assert [m["params"][0] for m in rig.to_pool] == ["a.1", "b.1", "a.1"]
    for request in rig.to_pool:
        rig.pool({"id": request["id"], "result": True, "error": None})
    assert rig.to_miner[2] == {
        "id": 3, "result": None, "error": [20, "too many workers on one connection: at most 2", None]
    }  # fmt: skip
    assert rig.refused == [Refusal.TOO_MANY_WORKERS]


# -- a submit crossing its authorize (finding 3) ----------------------------------------------


def test_a_submit_crossing_its_authorize_waits_and_goes_up_under_the_farm_login() -> None:
    rig = Rig(upstream_account="farm")
    job = _subscribed_only(rig)
    rig.miner(3, "mining.authorize", ["alice.rig1", "secret"])
    authorize = rig.to_pool[-1]
    assert authorize["params"] == ["farm.alice_rig1", "x"]
    rig.miner(4, "mining.submit", rig.share(job, 1))
    assert rig.to_pool[-1] is authorize, "held: the pool has not answered the authorize yet"
    rig.pool({"id": authorize["id"], "result": True, "error": None})
    assert rig.to_pool[-1]["params"][0] == "farm.alice_rig1", "the login the pool authorized"
    rig.answer_last(True)
    assert [m["id"] for m in rig.to_miner if "result" in m] == [1, 2, 3, 4]
    (event,) = rig.events
    assert (event.accepted, event.worker) == (True, "alice.rig1")


@pytest.mark.parametrize("how", ["refused", "timed out", "lost"])
def test_a_submit_held_for_an_authorize_that_fails_is_refused_unrecorded(how: str) -> None:
    rig = Rig(submit_timeout=5.0)
    job = _subscribed_only(rig)
    rig.miner(3, "mining.authorize", ["alice.rig1", "x"])
    rig.miner(4, "mining.submit", rig.share(job, 1))
    out = Outbox()
    if how == "refused":
        rig.answer_last(False, [24, "no such worker", None])
    elif how == "timed out":
        rig.session.expire(rig.session.pending[rig.to_pool[-1]["id"]].sent_at + 6, out)
    else:
        rig.session.upstream_lost("upstream lost: upstream_closed", out)
    rig._take(out)
    assert rig.to_pool[-1]["method"] == "mining.authorize", "never relayed"
    assert [m["id"] for m in rig.to_miner if "result" in m] == [1, 2, 3, 4]
    assert rig.to_miner[-1]["error"] == [24, "unauthorized worker", None]
    assert (rig.events, rig.refused) == ([], [Refusal.UNAUTHORIZED])


# -- what the database can't store (finding 4) -----------------------------------------------


@pytest.mark.parametrize(
    ("login", "why"),
    [
        ("alice\x00.rig1", "holds a control character"),
        ("alice.rig\n1", "holds a control character"),
        ("alice.\x9f", "holds a control character"),
        ("a." + "r" * (TEXT_LIMITS["worker"] - 1), "longer than 128 characters"),
        ("", "must be a non-empty string"),
        (7, "must be a non-empty string"),
    ],
)
def test_a_name_the_database_cant_store_is_refused_at_authorize(login: object, why: str) -> None:
    rig = Rig()
    rig.miner(3, "mining.authorize", [login, "x"])
    assert rig.to_pool == [], "never sent to the pool"
    assert rig.to_miner == [{"id": 3, "result": None,
                             "error": [20, f"invalid worker name: {why}", None]}]  # fmt: skip
    assert rig.refused == [Refusal.INVALID_WORKER_NAME]


def test_the_longest_storable_name_is_authorized() -> None:
    longest = "a." + "r" * (TEXT_LIMITS["worker"] - 2)
    rig = Rig()
    job = rig.handshake(longest)
    rig.miner(4, "mining.submit", rig.share(job, 1, login=longest))
    rig.answer_last(True)
    assert [e.worker for e in rig.events] == [longest]


@pytest.mark.parametrize("job_id", ["j\x001", "j" * (TEXT_LIMITS["job_id"] + 1)])
def test_a_submit_whose_job_id_cant_be_stored_is_refused_unrecorded(job_id: str) -> None:
    rig = Rig()
    job = rig.handshake()
    params = rig.share(job, 1)
    params[1] = job_id
    rig.miner(4, "mining.submit", params)
    assert rig.to_miner[-1]["error"][:1] == [20]
    assert "invalid job id" in rig.to_miner[-1]["error"][1]
    assert (rig.events, rig.refused) == ([], [Refusal.INVALID_JOB_ID])


def test_a_submit_the_database_cant_store_is_refused_at_once_not_held() -> None:
    rig = Rig()
    rig.miner(2, "mining.subscribe", ["test/1"])  # in flight: attributable submits wait
    rig.miner(4, "mining.submit", ["w" * 5000, "j1", "00000000", "00000000", "00000000"])
    assert rig.refused == [Refusal.INVALID_WORKER_NAME], "refused before it could be held"
    rig.answer_last([[["mining.notify", "1"]], EN1, 4])
    assert rig.to_miner[-1]["error"] == [
        20, "invalid worker name: longer than 128 characters", None
    ]  # fmt: skip


def test_the_pools_message_is_stored_without_its_control_characters() -> None:
    rig = Rig()
    job = rig.handshake()
    rig.miner(4, "mining.submit", rig.share(job, 1))
    rig.answer_last(None, [23, "low\x00 difficulty\r\n", None])
    (event,) = rig.events
    assert event.error_message == "low\ufffd difficulty\ufffd\ufffd"
    assert rig.to_miner[-1]["error"] == [23, "low\x00 difficulty\r\n", None], "relayed as sent"
    assert printable("plain é ✓") == "plain é ✓"


# -- each miner distinct at the pool (finding 9) ---------------------------------------------


def test_two_miners_with_the_same_rig_name_stay_two_workers_upstream() -> None:
    rig = Rig(upstream_account="farm")
    job = rig.handshake("alice.rig1")
    rig.miner(5, "mining.authorize", ["bob.rig1", "x"])
    rig.answer_last(True)
    logins = [m["params"][0] for m in rig.to_pool if m["method"] == "mining.authorize"]
    assert logins == ["farm.alice_rig1", "farm.bob_rig1"]
    for i, login in enumerate(("alice.rig1", "bob.rig1")):
        rig.miner(6 + i, "mining.submit", rig.share(job, 10 + i, login=login))
        assert rig.to_pool[-1]["params"][0] == f"farm.{login.replace('.', '_')}"
        rig.answer_last(True)
    assert [(e.user_identity, e.worker) for e in rig.events] == [
        ("alice", "alice.rig1"), ("bob", "bob.rig1")
    ]  # fmt: skip


def test_an_authorize_without_an_id_goes_up_mapped_and_authorizes_the_worker() -> None:
    rig = Rig(upstream_account="farm")
    job = _subscribed_only(rig)
    rig.miner(None, "mining.authorize", ["alice.rig1", "secret"])
    assert rig.to_pool[-1]["params"] == ["farm.alice_rig1", "x"], "never the miner's own"
    rig.answer_last(True)
    assert rig.to_miner[-1] == {"id": None, "result": True, "error": None}
    rig.miner(4, "mining.submit", rig.share(job, 1))
    assert rig.to_pool[-1]["params"][0] == "farm.alice_rig1"


def test_the_separator_is_configurable_and_may_not_hide_in_an_account() -> None:
    rig = Rig(upstream_account="farm", worker_separator="+")
    rig.handshake("alice.rig_1")
    authorize = next(m for m in rig.to_pool if m["method"] == "mining.authorize")
    assert authorize["params"][0] == "farm.alice+rig_1"
    rig.miner(5, "mining.authorize", ["al+ice.rig1", "x"])
    assert rig.to_miner[-1]["error"] == [
        20, "invalid worker name: the account part may not hold '+'", None
    ]  # fmt: skip


admissible = st.text(alphabet="ab_.", min_size=1, max_size=6).filter(
    lambda login: authorize_refusal(login, "farm", "_") is None
)


@given(a=admissible, b=admissible)
def test_no_two_admissible_logins_share_an_upstream_worker(a: str, b: str) -> None:
    if a != b:
        assert upstream_login(a, "farm", "_") != upstream_login(b, "farm", "_")
