"""The proxy's Prometheus metrics, in a registry of its own, and the per-worker series.

Everything here is written on the miners' event loop and read by the side port's thread
(``exporting``). The registry's metrics are prometheus_client's, which lock. The
per-worker sums (``WorkerHashrate``) are plain dicts the miners' loop alone writes; the
side port reads them only through ``dict.copy()``, one C call that the GIL makes whole,
so it never sees a dict in the middle of a change.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stratum_proxy.admission import Refusal

_RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
HASHRATE_WINDOW_S = 600.0
MAX_WORKER_SERIES = 10_000  # label cardinality bound: the busiest workers are exported
MAX_TRACKED_WORKERS = 4 * MAX_WORKER_SERIES  # workers summed; a new one past this waits
WORKER_SERIES = "stratum_proxy_worker_hashrate"
KNOWN_METHODS = (
    "mining.subscribe", "mining.authorize", "mining.submit", "mining.configure",
    "mining.extranonce.subscribe", "mining.suggest_difficulty", "mining.suggest_target",
    "mining.get_transactions", "client.get_version",
)  # fmt: skip


class ProxyMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Gauge("stratum_proxy_miners", "Open miner connections", registry=r)
        self.connections_total = Counter(
            "stratum_proxy_connections", "Miner connections accepted", registry=r
        )
        self.refused = Counter(
            "stratum_proxy_connections_refused", "Connections refused, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.closed = Counter(
            "stratum_proxy_disconnects", "Miner connections closed, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.requests = Counter(
            "stratum_proxy_requests", "Miner requests, by method", ["method"], registry=r
        )
        self.shares = Counter(
            "stratum_proxy_shares", "Shares by verdict and Stratum error code",
            ["verdict", "code"], registry=r,
        )  # fmt: skip
        self.requests_refused = Counter(
            "stratum_proxy_requests_refused", "Requests refused unrecorded, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.protocol_errors = Counter(
            "stratum_proxy_protocol_errors", "Miner lines that were not valid Stratum", registry=r
        )
        self.upstream_rtt = Histogram(
            "stratum_proxy_upstream_rtt_seconds", "Submit to upstream verdict",
            buckets=_RTT_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream_reconnects = Counter(
            "stratum_proxy_upstream_failures", "Upstream connections lost or refused", registry=r
        )
        self.spool_dropped = Gauge(
            "stratum_proxy_spool_dropped", "Share events the spool could not take", registry=r
        )
        self.spool_appended = Gauge(
            "stratum_proxy_spool_appended", "Share events appended to the spool", registry=r
        )
        self.tls_handshakes = Counter(
            "stratum_proxy_tls_handshakes", "Miner TLS handshakes completed", registry=r
        )
        self.workers = WorkerHashrate()
        # Children bound once: a labels() lookup per share is measurable at 20k shares/s.
        self._requests = {m: self.requests.labels(m) for m in (*KNOWN_METHODS, "other")}
        self._accepted = self.shares.labels("accepted", "")
        self._refusals = {r: self.requests_refused.labels(r.value) for r in Refusal}
        self._rejected: dict[int, Any] = {}

    def request(self, method: str) -> None:
        """Count by method; only known methods get a series of their own, so a miner
        inventing method names can't grow the metrics without bound."""
        self._requests.get(method, self._requests["other"]).inc()

    def refusal(self, reason: Refusal) -> None:
        self._refusals[reason].inc()

    def share(self, error_code: int | None) -> None:
        if error_code is None:
            self._accepted.inc()
            return
        child = self._rejected.get(error_code)
        if child is None:
            label = str(error_code) if len(self._rejected) < 32 else "other"  # pools' codes vary
            child = self._rejected[error_code] = self.shares.labels("rejected", label)
        child.inc()

    def accepted_work(self, worker: str, difficulty: float) -> None:
        self.workers.add(worker, difficulty, time.monotonic())


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class WorkerHashrate:
    """Accepted difficulty per worker and minute, over the last ten minutes.

    ``add`` is the miners' loop's, per accepted share: a dict update, and once a minute a
    sweep that drops the minutes out of the window. ``render`` is the side port's: the
    busiest ``MAX_WORKER_SERIES`` workers as exposition text, hashrate = accepted
    difficulty x 2^32 / window.
    """

    __slots__ = ("_minute", "_work")

    def __init__(self) -> None:
        self._work: dict[str, dict[int, float]] = {}  # worker -> minute -> difficulty
        self._minute = 0

    def add(self, worker: str, difficulty: float, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            self._forget_before(minute - int(HASHRATE_WINDOW_S // 60) + 1)
        buckets = self._work.get(worker)
        if buckets is None:
            if len(self._work) >= MAX_TRACKED_WORKERS:
                return
            buckets = self._work[worker] = {}
        buckets[minute] = buckets.get(minute, 0.0) + difficulty

    def _forget_before(self, oldest: int) -> None:
        for worker in list(self._work):
            buckets = self._work[worker]
            for minute in [m for m in buckets if m < oldest]:
                del buckets[minute]
            if not buckets:
                del self._work[worker]

    def render(self, now: float) -> bytes:
        """The exposition of the busiest workers (any thread; reads copies only)."""
        oldest = int(now // 60) - int(HASHRATE_WINDOW_S // 60) + 1
        totals: dict[str, float] = {}
        for worker, buckets in self._work.copy().items():
            total = sum(v for m, v in buckets.copy().items() if m >= oldest)
            if total > 0:
                totals[worker] = total
        busiest = heapq.nlargest(MAX_WORKER_SERIES, totals.items(), key=lambda kv: kv[1])
        scale = 2**32 / HASHRATE_WINDOW_S
        lines = [f"# HELP {WORKER_SERIES} Estimated hashes/s per worker over 10 minutes\n"
                 f"# TYPE {WORKER_SERIES} gauge\n"]  # fmt: skip
        lines += [f'{WORKER_SERIES}{{worker="{_label_value(w)}"}} {t * scale!r}\n'
                  for w, t in busiest]  # fmt: skip
        return "".join(lines).encode()
