"""The share event: the one record the proxy produces, the spool carries and the writer stores.

Everything that describes a share lives here and nowhere else: the fields and their
order, the size limit of every text field (the migrations' column widths are checked
against these by the tests), the verdict codes, and how a share's identity is derived.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Final


class Verdict(IntEnum):
    """Stratum V1 error codes, plus the two fates a share can meet without a pool answer.

    A share that timed out or whose upstream connection was lost is *not* accepted: it is
    recorded with its own negative code so payouts never count a share nobody confirmed.
    """

    OTHER = 20
    STALE = 21  # job not found: the share arrived after the job was replaced
    DUPLICATE = 22
    LOW_DIFFICULTY = 23
    UNAUTHORIZED = 24
    NOT_SUBSCRIBED = 25
    TIMEOUT = -1
    UPSTREAM_LOST = -2


# Widths of the text columns. Values longer than these are refused by every backend
# (PostgreSQL varchar, MySQL strict mode, SQLite CHECK constraints), so the proxy
# clips untrusted strings to them before an event is ever built.
TEXT_LIMITS: Final[dict[str, int]] = {
    "pool": 63,
    "upstream": 255,
    "user_identity": 128,
    "worker": 128,
    "job_id": 64,
    "extranonce1": 16,
    "extranonce2": 32,
    "ntime": 8,
    "nonce": 8,
    "version_bits": 8,
    "error_message": 255,
    "proxy_instance": 253,
}

# The fields in their storage order. The spool codec, the writer's column lists and the
# migrations all follow this order.
FIELDS: Final[tuple[str, ...]] = (
    "share_id",
    "pool",
    "upstream",
    "user_identity",
    "worker",
    "shard_key",
    "job_id",
    "extranonce1",
    "extranonce2",
    "ntime",
    "nonce",
    "version_bits",
    "difficulty",
    "share_difficulty",
    "accepted",
    "error_code",
    "error_message",
    "block_candidate",
    "submitted_at",
    "responded_at",
    "proxy_instance",
)

# Column positions, so consumers working on plain tuples don't hard-code numbers.
COLUMN: Final[dict[str, int]] = {name: i for i, name in enumerate(FIELDS)}
# The same positions as literal constants, so a type checker knows each column's type
# when a row is indexed with them (tests check they agree with FIELDS).
POOL: Final = 1
USER_IDENTITY: Final = 3
WORKER: Final = 4
SHARD_KEY: Final = 5
DIFFICULTY: Final = 12
ACCEPTED: Final = 14
ERROR_CODE: Final = 15
SUBMITTED_AT: Final = 18

_TIME_PREFIX_BYTES: Final = 7  # microseconds since the epoch: 2^56 us lasts ~2283 years
_HASH_BYTES: Final = 16 - _TIME_PREFIX_BYTES


def make_share_id(
    submitted_at_us: int,
    upstream: str,
    job_id: str,
    extranonce1: str,
    extranonce2: str,
    ntime: str,
    nonce: str,
    version_bits: str | None,
) -> bytes:
    """Derive a share's 16-byte identity.

    The same event always gets the same id, so a replay after a crash is ignored by the
    database instead of paid twice. A miner submitting the same solution again is a new
    event (a later ``submitted_at``) with its own verdict. The time prefix makes the
    primary-key index grow at its end, which loads measurably faster than a random key.
    """
    solution = "\x1f".join(
        (upstream, job_id, extranonce1, extranonce2, ntime, nonce, version_bits or "")
    ).encode()
    digest = hashlib.blake2b(solution, digest_size=_HASH_BYTES).digest()
    return submitted_at_us.to_bytes(_TIME_PREFIX_BYTES, "big") + digest


def first_share_id_at(submitted_at_us: int) -> bytes:
    """The smallest share_id of any share submitted at or after ``submitted_at_us``:
    every share submitted earlier sorts below it, so a span of time is a key range."""
    return submitted_at_us.to_bytes(_TIME_PREFIX_BYTES, "big") + bytes(_HASH_BYTES)


def submitted_at_of(share_id: bytes) -> int:
    """When a share was submitted (microseconds), read from its id's time prefix."""
    return int.from_bytes(share_id[:_TIME_PREFIX_BYTES], "big")


def make_shard_key(user_identity: str) -> int:
    """The Vitess sharding column: a stable, positive 63-bit hash of the miner's account.

    One user's shares and rollups share a key, so they live on one shard and payout
    queries stay single-shard. Positive 63 bits fit PostgreSQL's signed BIGINT too.
    """
    digest = hashlib.blake2b(user_identity.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def clip(field: str, value: str) -> str:
    """Clip an untrusted string to its column width (by characters, as SQL counts)."""
    limit = TEXT_LIMITS[field]
    return value if len(value) <= limit else value[:limit]


@dataclass(slots=True, frozen=True)
class ShareEvent:
    """One submitted share and its fate. Field order is ``FIELDS``."""

    share_id: bytes
    pool: str
    upstream: str
    user_identity: str
    worker: str
    shard_key: int
    job_id: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    difficulty: float
    share_difficulty: float
    accepted: bool
    error_code: int | None
    error_message: str | None
    block_candidate: bool
    submitted_at: int  # microseconds since the Unix epoch, UTC
    responded_at: int | None
    proxy_instance: str

    def as_row(self) -> Row:
        """The event as a tuple in ``FIELDS`` order, the shape the writer batches."""
        return (
            self.share_id,
            self.pool,
            self.upstream,
            self.user_identity,
            self.worker,
            self.shard_key,
            self.job_id,
            self.extranonce1,
            self.extranonce2,
            self.ntime,
            self.nonce,
            self.version_bits,
            self.difficulty,
            self.share_difficulty,
            self.accepted,
            self.error_code,
            self.error_message,
            self.block_candidate,
            self.submitted_at,
            self.responded_at,
            self.proxy_instance,
        )

    @classmethod
    def from_row(cls, row: Row) -> ShareEvent:
        return cls(*row)


# A share event as a plain tuple in FIELDS order: what the writer moves around in bulk,
# because building 100,000 objects a second costs more than the database insert.
Row = tuple[
    bytes, str, str, str, str, int, str, str, str, str, str, str | None,
    float, float, bool, int | None, str | None, bool, int, int | None, str,
]  # fmt: skip
