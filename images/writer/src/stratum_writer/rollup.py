"""Per-worker, per-minute rollups: the one place that says how shares are counted.

Computed from the rows a batch actually inserted (never from replayed ones), and upserted
in the same transaction, so dashboards and payout windows agree with ``share_events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sharelog.event import COLUMN, Row, Verdict

MINUTE_US = 60_000_000

_POOL = COLUMN["pool"]
_USER = COLUMN["user_identity"]
_WORKER = COLUMN["worker"]
_SHARD = COLUMN["shard_key"]
_ACCEPTED = COLUMN["accepted"]
_CODE = COLUMN["error_code"]
_DIFF = COLUMN["difficulty"]
_AT = COLUMN["submitted_at"]


@dataclass(slots=True)
class MinuteStats:
    """Counters for one (pool, user, worker, minute). ``minute`` is in microseconds."""

    pool: str
    user_identity: str
    worker: str
    minute: int
    shard_key: int
    accepted: int = 0
    rejected: int = 0  # refused for any reason but staleness, and never-answered shares
    stale: int = 0
    accepted_difficulty: float = 0.0


def rollup(rows: Iterable[Row]) -> list[MinuteStats]:
    """Aggregate rows into minute buckets, sorted by key.

    Sorted so that parallel flushers upserting overlapping buckets take row locks in the
    same order and cannot deadlock each other.
    """
    buckets: dict[tuple[str, str, str, int], MinuteStats] = {}
    for row in rows:
        minute = row[_AT] - row[_AT] % MINUTE_US
        key = (row[_POOL], row[_USER], row[_WORKER], minute)
        stats = buckets.get(key)
        if stats is None:
            stats = buckets[key] = MinuteStats(*key, shard_key=row[_SHARD])
        if row[_ACCEPTED]:
            stats.accepted += 1
            stats.accepted_difficulty += row[_DIFF]
        elif row[_CODE] == Verdict.STALE:
            stats.stale += 1
        else:
            stats.rejected += 1
    return [buckets[k] for k in sorted(buckets)]
