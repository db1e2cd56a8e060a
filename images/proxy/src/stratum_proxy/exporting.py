"""The side port off the miners' event loop: /metrics served from a thread of its own.

A scrape with 10,000 worker series is about a tenth of a second of Python. On the miners'
loop that is a tenth of a second every miner waits, per scrape, for anyone who can reach
the port. So the side port (``sharelog.status_http``: /metrics, /metrics/pod, /healthz,
/readyz) runs on an event loop in a thread of its own, and the per-worker series, the
one large family, are rendered there from copies at most every ``WORKER_SERIES_EVERY_S``
(a ten-minute average moves little in that time) and served from that rendering between.
The miners' loop pays nothing per scrape; the render thread holds the GIL for a few
milliseconds per rendering, not per scrape.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Mapping

from sharelog.status_http import StatusServer
from stratum_proxy.metrics import ProxyMetrics

WORKER_SERIES_EVERY_S = 5.0


class _CachedRendering:
    """``render(now)`` at most every ``every`` seconds; the last result in between."""

    def __init__(self, render: Callable[[float], bytes], every: float) -> None:
        self._render = render
        self._every = every
        self._body = b""
        self._at = float("-inf")

    def __call__(self) -> bytes:
        now = time.monotonic()
        if now - self._at >= self._every:
            self._body, self._at = self._render(now), now
        return self._body


class MetricsThread:
    """The StatusServer on an event loop in its own (daemon) thread."""

    def __init__(
        self,
        metrics: ProxyMetrics,
        ready: Callable[[], tuple[bool, str]],
        refresh: Callable[[], None],
        sidecars: Mapping[str, str],
    ) -> None:
        workers = _CachedRendering(metrics.workers.render, WORKER_SERIES_EVERY_S)
        self.status = StatusServer(metrics.registry, ready, refresh, sidecars, workers)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="metrics", daemon=True)

    async def start(self, host: str, port: int) -> int:
        """Bind and serve; the port bound (an OSError when it can't be)."""
        self._thread.start()
        bound = asyncio.run_coroutine_threadsafe(self.status.start(host, port), self._loop)
        return await asyncio.wrap_future(bound)

    async def close(self) -> None:
        closed: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            self.status.close(), self._loop
        )
        await asyncio.wrap_future(closed)
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5)
        if not self._thread.is_alive():
            self._loop.close()
