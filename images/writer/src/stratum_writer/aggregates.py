"""What a batch adds to the tables kept beside ``share_events``: the one place that says it.

Each aggregate is computed from the rows a batch actually inserted (never from replayed
ones) and upserted in the same transaction, so it always agrees with ``share_events``:

- ``worker_stats_minute``: per (pool, user, worker, minute), shares accepted, rejected
  and stale, and the accepted difficulty;
- ``workers``: the worker registry, the first and last share of each (pool, user,
  worker), so "workers active in the last hour" is one indexed query. A worker is
  registered by its first share, not by ``mining.authorize``: the writer sees shares
  only, and a name that never submits costs the payout tables nothing (anyone can
  authorize any name on most pools, and a registry filled by them is a table an
  attacker can grow).

Each is described once, as an ``Aggregate``: its table, its columns in row order with
their kinds, its key, and how a stored value merges with a batch's. Every backend
renders its upsert from that description; none spells the columns again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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


class Kind(enum.Enum):
    """A column's type, as every dialect has one of each."""

    TEXT = "text"
    TIMESTAMP = "timestamp"  # microseconds since the epoch in the row, UTC
    INTEGER = "integer"  # 64-bit
    REAL = "real"


class Merge(enum.Enum):
    """How a stored value and a batch's value for the same key become one."""

    ADD = "add"
    LEAST = "least"
    GREATEST = "greatest"

    def sql(
        self, stored: str, new: str, *, least: str = "LEAST", greatest: str = "GREATEST"
    ) -> str:
        if self is Merge.ADD:
            return f"{stored} + {new}"
        return f"{least if self is Merge.LEAST else greatest}({stored}, {new})"


AggregateRow = tuple[Any, ...]


@dataclass(frozen=True)
class Aggregate:
    table: str
    columns: tuple[tuple[str, Kind], ...]  # row order
    key: tuple[str, ...]  # the primary key; rows come sorted by it
    merge: tuple[tuple[str, Merge], ...]  # the columns a repeat updates; others never change
    compute: Callable[[Iterable[Row]], list[AggregateRow]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(kind for _, kind in self.columns)


def minute_stats(rows: Iterable[Row]) -> list[AggregateRow]:
    """``worker_stats_minute`` rows, sorted by key: parallel flushers upserting
    overlapping buckets take row locks in the same order and cannot deadlock."""
    buckets: dict[tuple[str, str, str, int], list[Any]] = {}
    stale = int(Verdict.STALE)
    for row in rows:
        at = row[SUBMITTED_AT]
        key = (row[POOL], row[USER_IDENTITY], row[WORKER], at - at % MINUTE_US)
        counts = buckets.get(key)
        if counts is None:  # shard_key, accepted, rejected, stale, accepted_difficulty
            counts = buckets[key] = [row[SHARD_KEY], 0, 0, 0, 0.0]
        if row[ACCEPTED]:
            counts[1] += 1
            counts[4] += row[DIFFICULTY]
        elif row[ERROR_CODE] == stale:
            counts[3] += 1
        else:  # refused for any reason but staleness, and never-answered shares
            counts[2] += 1
    return [(*key, *buckets[key]) for key in sorted(buckets)]


def workers_seen(rows: Iterable[Row]) -> list[AggregateRow]:
    """``workers`` rows, sorted by key: each worker's first and last share in the rows."""
    seen: dict[tuple[str, str, str], list[int]] = {}
    for row in rows:
        key = (row[POOL], row[USER_IDENTITY], row[WORKER])
        at = row[SUBMITTED_AT]
        span = seen.get(key)
        if span is None:
            seen[key] = [row[SHARD_KEY], at, at]
        elif at < span[1]:
            span[1] = at
        elif at > span[2]:
            span[2] = at
    return [(*key, *seen[key]) for key in sorted(seen)]


MINUTE_STATS = Aggregate(
    table="worker_stats_minute",
    columns=(
        ("pool", Kind.TEXT),
        ("user_identity", Kind.TEXT),
        ("worker", Kind.TEXT),
        ("minute", Kind.TIMESTAMP),
        ("shard_key", Kind.INTEGER),
        ("accepted", Kind.INTEGER),
        ("rejected", Kind.INTEGER),
        ("stale", Kind.INTEGER),
        ("accepted_difficulty", Kind.REAL),
    ),
    key=("pool", "user_identity", "worker", "minute"),
    merge=(
        ("accepted", Merge.ADD),
        ("rejected", Merge.ADD),
        ("stale", Merge.ADD),
        ("accepted_difficulty", Merge.ADD),
    ),
    compute=minute_stats,
)
WORKERS = Aggregate(
    table="workers",
    columns=(
        ("pool", Kind.TEXT),
        ("user_identity", Kind.TEXT),
        ("worker", Kind.TEXT),
        ("shard_key", Kind.INTEGER),
        ("first_seen", Kind.TIMESTAMP),
        ("last_seen", Kind.TIMESTAMP),
    ),
    key=("pool", "user_identity", "worker"),
    merge=(("first_seen", Merge.LEAST), ("last_seen", Merge.GREATEST)),
    compute=workers_seen,
)
# upserted in this order in every batch's transaction (one lock order for all flushers)
AGGREGATES = (MINUTE_STATS, WORKERS)
