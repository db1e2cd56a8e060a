"""The operator's own Prometheus metrics: how often it reconciles, how long, and errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, start_http_server

RECONCILES = Counter(
    "stratum_operator_reconciles", "Reconcile passes, by trigger and result", ["trigger", "result"]
)
RECONCILE_SECONDS = Histogram(
    "stratum_operator_reconcile_seconds",
    "Time of one reconcile pass",
    ["trigger"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

RETENTION_REMOVED = Counter(
    "stratum_operator_retention_removed_rows",
    "Rows the pools' retention runs removed (PostgreSQL counts a dropped day by the "
    "planner's estimate of its rows)",
    ["namespace", "pool", "table"],
)


@contextmanager
def reconciling(trigger: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        RECONCILES.labels(trigger, "error").inc()
        raise
    else:
        RECONCILES.labels(trigger, "ok").inc()
    finally:
        RECONCILE_SECONDS.labels(trigger).observe(time.perf_counter() - started)


def serve(port: int) -> None:
    start_http_server(port)
