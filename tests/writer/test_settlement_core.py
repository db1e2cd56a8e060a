"""Settlement's pure core: the split of a day's reward, and what a pool day holds."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from fractions import Fraction

import pytest

from stratum_writer.settlement.core import (
    AcceptedShare,
    NothingToSettle,
    PoolDay,
    Terms,
    digest,
    settle,
    split,
)


def _check_split(amount: int, works: list[int]) -> list[int]:
    ties = [i.to_bytes(4, "big") for i in range(len(works))]
    parts = split(amount, works, ties)
    assert all(type(p) is int and p >= 0 for p in parts)
    assert sum(parts) == amount  # exactly, never a unit more or less
    total = sum(works)
    for part, work in zip(parts, works, strict=True):
        exact = Fraction(amount * work, total)
        assert exact - 1 < part < exact + 1  # each within one unit of its exact share
    return parts


@pytest.mark.parametrize(
    ("amount", "works"),
    [
        (625_000_000, [1]),  # one worker takes everything
        (1, [1, 1]),  # one unit, two equal claims: the tie-break decides
        (3, [1, 1]),
        (100, [1, 1, 1]),  # 33.33... each: one gets the extra unit
        (2, [1, 1, 1]),  # fewer units than workers
        (10**38, [2**96, 1, 1]),  # a giant beside two dust workers
        (7, [2**64 - 1, 2**64 + 1, 3]),
    ],
)
def test_the_split_adds_up_exactly_for_adversarial_fractions(amount: int, works: list[int]) -> None:
    _check_split(amount, works)


def test_ten_thousand_workers_with_primes_and_dust() -> None:
    rng = random.Random(7)
    works = [rng.choice([1, 3, 7, 2**61 - 1, rng.getrandbits(80) + 1]) for _ in range(10_000)]
    parts = _check_split(312_500_001, works)
    assert parts == _check_split(312_500_001, works)  # deterministic


def test_leftover_units_go_to_the_largest_remainders_then_the_most_work_then_the_digest() -> None:
    # 10 split 1:1:1 -> 3.33 each: one unit left, equal remainders and work: the smallest
    # tie-break (digest) wins it, whatever the order the rows come in
    assert split(10, [1, 1, 1], [b"\x02", b"\x01", b"\x03"]) == [3, 4, 3]
    # 5 split 2:1 -> 3.33 and 1.67: the larger remainder (0.67) takes the unit
    assert split(5, [2, 1], [b"\x00", b"\x01"]) == [3, 2]


def _shares(works: dict[tuple[str, str], list[float]], seed: int) -> list[AcceptedShare]:
    shares = []
    n = 0
    for (user, worker), difficulties in works.items():
        for d in difficulties:
            n += 1
            shares.append(
                AcceptedShare(user, worker, hash(user) & 0xFFFF, n.to_bytes(16, "big"), d)
            )
    random.Random(seed).shuffle(shares)
    return shares


def test_a_day_settles_the_same_in_any_order_with_the_fee_taken_first() -> None:
    works = {("alice", "a1"): [1024.0, 1024.0, 0.001], ("alice", "a2"): [1 / 3],
             ("bob", "b1"): [65536.5], ("carol", "c1"): [1024.0] * 3}  # fmt: skip
    terms = Terms(reward=312_500_017, external_hashrate=10**15, fee_basis_points=150)
    first = settle(_shares(works, 1), terms)
    assert first == settle(_shares(works, 2), terms)  # another order, the same rows
    assert terms.fee == 312_500_017 * 150 // 10_000
    assert sum(p.reward_part for p in first.workers) == terms.reward - terms.fee
    assert [(p.user_identity, p.worker) for p in first.workers] == sorted(works)
    alice = first.accounts[0]
    assert alice.user_identity == "alice" and alice.worker is None
    assert alice.reward_part == sum(p.reward_part for p in first.workers[:2])
    assert alice.accepted_shares == 4
    assert alice.digest == digest(
        s.share_id for s in _shares(works, 3) if s.user_identity == "alice"
    )
    assert first.accepted_work == sum(p.accepted_work for p in first.accounts)


def test_a_day_with_no_work_has_nothing_to_split_by() -> None:
    with pytest.raises(NothingToSettle):
        settle([], Terms(100, 0))


@pytest.mark.parametrize("offset", [480, -300, 345, 0, -720, 840])
def test_a_pool_day_is_the_utc_span_shifted_by_its_offset(offset: int) -> None:
    day = PoolDay("p", date(2026, 12, 1), offset)
    midnight = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()) * 1_000_000
    assert day.start_us == midnight - offset * 60_000_000
    assert day.end_us - day.start_us == 86_400_000_000
    assert day.holds(day.start_us) and day.holds(day.end_us - 1)
    assert not day.holds(day.start_us - 1) and not day.holds(day.end_us)


def test_offsets_and_terms_outside_their_ranges_are_refused() -> None:
    for offset in (-721, 841):
        with pytest.raises(ValueError, match="offset"):
            PoolDay("p", date(2026, 12, 1), offset)
    with pytest.raises(ValueError, match="basis points"):
        Terms(100, 0, 10_001)
    with pytest.raises(ValueError, match="reward"):
        Terms(10**39, 0)
