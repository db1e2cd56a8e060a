"""Per-worker, per-minute rollups: the one place that says how shares are counted.

Computed from the rows a batch actually inserted (never from replayed ones), and upserted
in the same transaction, so dashboards and payout windows agree with ``share_events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sharelog.event import (
    ACCEPTED,
    DIFFICULTY,
    ERROR_CODE,
    POOL,
    SHARD_KEY,
    SUBMITTED_AT,
    USER_IDENTITY,
    WORKER,
    Row,
    Verdict,
)

MINUTE_US = 60_000_000


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
    stale = int(Verdict.STALE)
    for row in rows:
        at = row[SUBMITTED_AT]
        key = (row[POOL], row[USER_IDENTITY], row[WORKER], at - at % MINUTE_US)
        try:
            stats = buckets[key]
        except KeyError:
            stats = buckets[key] = MinuteStats(*key, shard_key=row[SHARD_KEY])
        if row[ACCEPTED]:
            stats.accepted += 1
            stats.accepted_difficulty += row[DIFFICULTY]
        elif row[ERROR_CODE] == stale:
            stats.stale += 1
        else:
            stats.rejected += 1
    return [buckets[k] for k in sorted(buckets)]
