"""The operator's own Prometheus metrics: its passes, and what it decided for each pool.

Every series an alert or a dashboard panel reads exists from the start at 0 (a pass's
error counter, a pool's scaling decisions, its claims by state), so the first error
is an increase and not a series appearing. A pool's series go with the pool.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server


class Trigger(enum.Enum):
    """Why a reconcile pass ran."""

    FULL = "full"  # the pool changed, a child was deleted, or the last pass failed
    TICK = "tick"  # the periodic look at the pods (scaling, rollout)
    DELETE = "delete"  # the pool is being deleted: its claims drain first


class Result(enum.Enum):
    OK = "ok"
    ERROR = "error"


class Direction(enum.Enum):
    UP = "up"
    DOWN = "down"


RECONCILES = Counter(
    "stratum_operator_reconciles", "Reconcile passes, by trigger and result", ["trigger", "result"]
)
RECONCILE_SECONDS = Histogram(
    "stratum_operator_reconcile_seconds",
    "Time of one reconcile pass",
    ["trigger"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
for _trigger in Trigger:
    RECONCILE_SECONDS.labels(_trigger.value)
    for _result in Result:
        RECONCILES.labels(_trigger.value, _result.value)

RETENTION_REMOVED = Counter(
    "stratum_operator_retention_removed_rows",
    "Rows the pools' retention runs removed (PostgreSQL counts a dropped day by the "
    "planner's estimate of its rows)",
    ["namespace", "pool", "table"],
)
WRITER_WORKERS = Gauge(
    "stratum_operator_writer_workers", "Writer workers each pool's writers are told to run",
    ["namespace", "pool"],
)  # fmt: skip
SCALING_DECISIONS = Counter(
    "stratum_operator_writer_scaling_decisions",
    "Changes of a pool's writer workers, by direction",
    ["namespace", "pool", "direction"],
)
SPOOL_CLAIMS = Gauge(
    "stratum_operator_spool_claims", "Spool claims whose pod is gone, by state",
    ["namespace", "pool", "state"],
)  # fmt: skip
SPOOL_CLAIMS_SHARES = Gauge(
    "stratum_operator_spool_claims_shares",
    "Shares held by a pool's spool claims whose pod is gone, as far as known",
    ["namespace", "pool"],
)
CLAIM_SHARES = Gauge(
    "stratum_operator_spool_claim_shares",
    "Shares one spool claim whose pod is gone still holds, when known",
    ["namespace", "pool", "claim"],
)
CLAIM_PROGRESS = Gauge(
    "stratum_operator_spool_claim_progress_timestamp_seconds",
    "When a draining claim last held fewer shares than before, or began draining",
    ["namespace", "pool", "claim"],
)
_PER_POOL = (RETENTION_REMOVED, WRITER_WORKERS, SCALING_DECISIONS, SPOOL_CLAIMS,
             SPOOL_CLAIMS_SHARES, CLAIM_SHARES, CLAIM_PROGRESS)  # fmt: skip


@contextmanager
def reconciling(trigger: Trigger) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        RECONCILES.labels(trigger.value, Result.ERROR.value).inc()
        raise
    else:
        RECONCILES.labels(trigger.value, Result.OK.value).inc()
    finally:
        RECONCILE_SECONDS.labels(trigger.value).observe(time.perf_counter() - started)


def writer_workers(namespace: str, pool: str, workers: int, *, was: int) -> None:
    """The count a pass told the pool's writers; a change counts as a decision."""
    WRITER_WORKERS.labels(namespace, pool).set(workers)
    for direction in Direction:
        SCALING_DECISIONS.labels(namespace, pool, direction.value)
    if workers != was:
        direction = Direction.UP if workers > was else Direction.DOWN
        SCALING_DECISIONS.labels(namespace, pool, direction.value).inc()


def spool_claims(
    namespace: str, pool: str, by_state: Mapping[str, int], shares: Mapping[str, int],
    progress: Mapping[str, float],
) -> None:  # fmt: skip
    """A pool's claims whose pod is gone: a count for every state (0 included), and per
    claim what it holds and when its drain last made progress. Claims no longer listed
    lose their series."""
    for metric in (CLAIM_SHARES, CLAIM_PROGRESS):
        metric.remove_by_labels({"namespace": namespace, "pool": pool})
    for state, count in by_state.items():
        SPOOL_CLAIMS.labels(namespace, pool, state).set(count)
    SPOOL_CLAIMS_SHARES.labels(namespace, pool).set(sum(shares.values()))
    for claim, held in shares.items():
        CLAIM_SHARES.labels(namespace, pool, claim).set(held)
    for claim, at in progress.items():
        CLAIM_PROGRESS.labels(namespace, pool, claim).set(at)


def forget_pool(namespace: str, pool: str) -> None:
    """The pool is gone: so are its series."""
    for metric in _PER_POOL:
        metric.remove_by_labels({"namespace": namespace, "pool": pool})


def serve(port: int) -> None:
    start_http_server(port)
