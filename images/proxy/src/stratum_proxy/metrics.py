"""The proxy's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_HASHRATE_WINDOW_S = 600.0
_MAX_WORKERS = 10_000  # label cardinality bound: the busiest workers are kept
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
        self.hashrate = Gauge(
            "stratum_proxy_worker_hashrate", "Estimated hashes/s per worker over 10 minutes",
            ["worker"], registry=r,
        )  # fmt: skip
        self.tls_handshakes = Counter(
            "stratum_proxy_tls_handshakes", "Miner TLS handshakes completed", registry=r
        )
        self._work: dict[str, dict[int, float]] = {}  # worker -> minute -> difficulty
        # Children bound once: a labels() lookup per share is measurable at 20k shares/s.
        self._requests = {m: self.requests.labels(m) for m in (*KNOWN_METHODS, "other")}
        self._accepted = self.shares.labels("accepted", "")
        self._rejected: dict[int, Any] = {}

    def request(self, method: str) -> None:
        """Count by method; only known methods get a series of their own, so a miner
        inventing method names can't grow the metrics without bound."""
        self._requests.get(method, self._requests["other"]).inc()

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
        minute = int(time.monotonic() // 60)
        buckets = self._work.setdefault(worker, {})
        buckets[minute] = buckets.get(minute, 0.0) + difficulty

    def refresh_hashrate(self) -> None:
        """Hashrate = accepted difficulty x 2^32 / window; stale workers drop out.

        Ten per-minute sums a worker, so memory stays bounded whatever the share rate.
        """
        oldest = int((time.monotonic() - _HASHRATE_WINDOW_S) // 60)
        for worker in list(self._work):
            buckets = self._work[worker]
            for minute in [m for m in buckets if m < oldest]:
                del buckets[minute]
            if not buckets:
                del self._work[worker]
                with contextlib.suppress(KeyError):
                    self.hashrate.remove(worker)
        busiest = sorted(self._work, key=lambda w: -sum(self._work[w].values()))
        for worker in busiest[:_MAX_WORKERS]:
            total = sum(self._work[worker].values())
            self.hashrate.labels(worker).set(total * 2**32 / _HASHRATE_WINDOW_S)
