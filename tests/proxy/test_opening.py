"""A connection's first lines, before the pool is dialled (pure: no network)."""

from __future__ import annotations

import pytest

from stratum_proxy.closing import Closed, CloseReason
from stratum_proxy.opening import Opening

AUTHORIZE = b'{"id":2,"method":"mining.authorize","params":["a.1","x"]}'
SUBSCRIBE = b'{"id":1,"method":"mining.subscribe","params":[]}'
CONFIGURE = b'{"id":1,"method":"mining.configure","params":[["version-rolling"],{}]}'


def opening(**over: int) -> Opening:
    return Opening(**{"max_held": 16, "max_held_bytes": 16384, "max_errors": 50, **over})


@pytest.mark.parametrize("dial", [SUBSCRIBE, CONFIGURE])
def test_blank_lines_are_ignored_and_a_subscribe_or_configure_dials(dial: bytes) -> None:
    o = opening()
    assert [o.take(b""), o.take(b"")] == [None, None]
    assert o.held == []  # nothing to relay, no reason to dial
    assert o.take(dial) is None
    assert o.dial and o.held == [dial]


def test_garbage_is_answered_at_once_until_a_request_is_held_then_it_waits_its_turn() -> None:
    o = opening()
    answer = o.take(b"nonsense")
    assert answer is not None and b"-32700" in answer and o.protocol_errors == 1
    assert o.take(AUTHORIZE) is None and o.take(b"more nonsense") is None
    o.take(SUBSCRIBE)
    assert o.held == [AUTHORIZE, b"more nonsense", SUBSCRIBE] and o.protocol_errors == 1


def test_garbage_past_the_budget_closes() -> None:
    o = opening(max_errors=3)
    o.take(b"x")
    o.take(b"y")
    with pytest.raises(Closed) as closed:
        o.take(b"z")
    assert closed.value.reason is CloseReason.MINER_INVALID_LINES


@pytest.mark.parametrize("over", [{"max_held": 3}, {"max_held_bytes": 3 * len(AUTHORIZE)}])
def test_requests_without_a_subscribe_are_held_only_so_far(over: dict[str, int]) -> None:
    o = opening(**over)
    for _ in range(3):
        o.take(AUTHORIZE)
    with pytest.raises(Closed) as closed:
        o.take(AUTHORIZE)
    assert closed.value.reason is CloseReason.MINER_NO_SUBSCRIBE


def test_the_deadline_says_silent_or_no_subscribe() -> None:
    assert opening().deadline_passed(30).reason is CloseReason.MINER_SILENT
    o = opening()
    o.take(b"")
    assert o.deadline_passed(30).reason is CloseReason.MINER_NO_SUBSCRIBE
