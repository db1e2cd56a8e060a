"""Settlement's pure core: which shares a pool day holds, what each worker did, and how
the day's reward is split. No I/O: the stores (``store.py`` and one per dialect) read
shares and write rows; everything that decides a number is here.

- A pool day: a share belongs to the day of ``submitted_at + offset`` (the pool's UTC
  offset in minutes, -720 ... +840), so day D is the UTC span
  [D 00:00 - offset, D+1 00:00 - offset).
- Work: each accepted share's ``work_units`` (``sharelog.work``: floor(difficulty x
  2^32)), summed as Python integers: the same in any order, on any backend.
- Digest: SHA-256 of the row's share ids (16 bytes each), sorted ascending, concatenated.
- The split: the fee (``fee_basis_points`` of the reward, rounded down) is taken first;
  the rest is split among the workers in proportion to their work by largest
  remainder: each gets floor(amount x work / total), and the units left over (fewer
  than there are workers) go one each to the largest remainders. Ties are broken by
  more work first, then by the smaller digest: the data decides, never a name a miner
  chose. The parts add up to the amount exactly.
- An account's (user's) part is the sum of its workers' parts.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sharelog.work import work_units

MIN_OFFSET_MINUTES = -720
MAX_OFFSET_MINUTES = 840
BASIS_POINTS = 10_000
NUMERIC_LIMIT = 10**39  # NUMERIC(39,0) / DECIMAL(39,0): every amount and sum stays below
_MINUTE_US = 60_000_000


class DayState(enum.Enum):
    """A day row exists once its first generation is settled."""

    SETTLED = "settled"


class ClosedHow(enum.Enum):
    """How a day was closed. Only by hand so far: proving a day complete (every spool's
    low-water mark past its end) is not built yet (docs/settlement.md)."""

    CLOSED_ANYWAY = "closed_anyway"  # settle --close-anyway DAY --reason TEXT


@dataclass(frozen=True)
class PoolDay:
    pool: str
    day: date
    offset_minutes: int

    def __post_init__(self) -> None:
        if not MIN_OFFSET_MINUTES <= self.offset_minutes <= MAX_OFFSET_MINUTES:
            raise ValueError(
                f"day offset {self.offset_minutes} min is outside "
                f"{MIN_OFFSET_MINUTES} ... +{MAX_OFFSET_MINUTES}"
            )

    @property
    def start_us(self) -> int:
        """The first microsecond (UTC, since the epoch) of the day's shares."""
        midnight = datetime.combine(self.day, time(), UTC)
        return int(midnight.timestamp()) * 1_000_000 - self.offset_minutes * _MINUTE_US

    @property
    def end_us(self) -> int:
        """The first microsecond after the day's shares."""
        return self.start_us + int(timedelta(days=1).total_seconds()) * 1_000_000

    def holds(self, submitted_at_us: int) -> bool:
        return self.start_us <= submitted_at_us < self.end_us


@dataclass(frozen=True)
class AcceptedShare:
    """What settlement reads of an accepted share."""

    user_identity: str
    worker: str
    shard_key: int
    share_id: bytes
    difficulty: float


@dataclass(frozen=True)
class Part:
    """One settlement row: a worker's (``worker`` set) or an account's (``worker`` None)."""

    user_identity: str
    worker: str | None
    shard_key: int
    accepted_shares: int
    accepted_work: int
    reward_part: int
    digest: bytes


@dataclass(frozen=True)
class Terms:
    """What the farm enters for a day: the reward (smallest unit), the pool's hashrate
    as it reports it (hashes per second), the fee kept before the split."""

    reward: int
    external_hashrate: int
    fee_basis_points: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.reward < NUMERIC_LIMIT:
            raise ValueError(f"reward must be an integer in 0 ... 10^39 - 1, got {self.reward}")
        if not 0 <= self.external_hashrate < NUMERIC_LIMIT:
            raise ValueError("external hashrate must be an integer in 0 ... 10^39 - 1")
        if not 0 <= self.fee_basis_points <= BASIS_POINTS:
            raise ValueError(f"fee must be 0 ... {BASIS_POINTS} basis points")

    @property
    def fee(self) -> int:
        return self.reward * self.fee_basis_points // BASIS_POINTS


@dataclass(frozen=True)
class Settlement:
    """A day's settlement as computed: its rows, sorted by key, and its totals."""

    workers: list[Part]
    accounts: list[Part]

    @property
    def accepted_shares(self) -> int:
        return sum(p.accepted_shares for p in self.workers)

    @property
    def accepted_work(self) -> int:
        return sum(p.accepted_work for p in self.workers)


def digest(share_ids: Iterable[bytes]) -> bytes:
    """SHA-256 of the share ids, sorted ascending, concatenated."""
    hasher = hashlib.sha256()
    for share_id in sorted(share_ids):
        hasher.update(share_id)
    return hasher.digest()


def split(amount: int, works: list[int], tie_breaks: list[bytes]) -> list[int]:
    """``amount`` split in proportion to ``works`` by largest remainder: integers that
    add up to ``amount`` exactly (module docstring; ``tie_breaks``: the digests)."""
    total = sum(works)
    if total <= 0 or any(w < 0 for w in works):
        raise ValueError("a split needs non-negative work adding up to more than zero")
    parts = [amount * w // total for w in works]
    left = amount - sum(parts)
    remainders = [amount * w % total for w in works]
    order = sorted(range(len(works)), key=lambda i: (-remainders[i], -works[i], tie_breaks[i]))
    for i in order[:left]:
        parts[i] += 1
    return parts


class NothingToSettle(ValueError):
    """A day with no accepted work: there is nothing to split its reward by."""


def settle(shares: Iterable[AcceptedShare], terms: Terms) -> Settlement:
    """The rows of one day from its accepted shares (any order) and the farm's terms."""
    ids: dict[tuple[str, str], list[bytes]] = {}
    works: dict[tuple[str, str], int] = {}
    keys: dict[str, int] = {}
    for share in shares:
        key = (share.user_identity, share.worker)
        ids.setdefault(key, []).append(share.share_id)
        works[key] = works.get(key, 0) + work_units(share.difficulty)
        keys[share.user_identity] = share.shard_key
    if not works or not sum(works.values()):
        raise NothingToSettle("the day holds no accepted work to split the reward by")
    order = sorted(works)
    digests = [digest(ids[key]) for key in order]
    parts = split(terms.reward - terms.fee, [works[key] for key in order], digests)
    workers = [
        Part(user, worker, keys[user], len(ids[(user, worker)]), works[(user, worker)], part, d)
        for (user, worker), part, d in zip(order, parts, digests, strict=True)
    ]
    if sum(p.accepted_work for p in workers) >= NUMERIC_LIMIT:
        raise ValueError("the day's accepted work does not fit NUMERIC(39,0)")
    user_ids: dict[str, list[bytes]] = {}
    for (user, _), share_ids in ids.items():
        user_ids.setdefault(user, []).extend(share_ids)
    return Settlement(workers, _accounts(workers, user_ids))


def _accounts(workers: list[Part], user_ids: dict[str, list[bytes]]) -> list[Part]:
    """Each user's totals: the sums of its workers' rows, the digest of all its shares."""
    by_user: dict[str, list[Part]] = {}
    for part in workers:
        by_user.setdefault(part.user_identity, []).append(part)
    return [
        Part(
            user,
            None,
            rows[0].shard_key,
            sum(p.accepted_shares for p in rows),
            sum(p.accepted_work for p in rows),
            sum(p.reward_part for p in rows),
            digest(user_ids[user]),
        )
        for user, rows in sorted(by_user.items())
    ]
