"""Choosing the pool a miner's session goes to: a failover list with backoff and probes.

The first healthy upstream in list order wins, so traffic returns to the primary once
it is back. A failed upstream is skipped until its backoff ends; a background probe
(a TCP connect) brings it back early when it answers.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger("stratum_proxy.upstream")


# errno values that name a shortage of this machine, never a fault of the peer
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                          errno.EADDRNOTAVAIL})  # fmt: skip


class NoUpstream(Exception):
    """Every upstream of the list is down."""


class LocalResources(Exception):
    """This machine could not open a connection (no file descriptor, buffer or port)."""


@dataclass(slots=True)
class _Health:
    failures: int = 0
    retry_at: float = 0.0


def _target(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 3333, parts.scheme in ("stratum+ssl", "ssl")


class UpstreamPool:
    def __init__(
        self,
        urls: list[str],
        *,
        insecure_tls: bool = False,
        ca_file: str | None = None,
        connect_timeout: float = 5.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
    ) -> None:
        self.urls = urls
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.health = {url: _Health() for url in urls}
        self.reconnects = 0
        self._tls = ssl.create_default_context(cafile=ca_file)
        if insecure_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    def candidates(self) -> list[str]:
        now = time.monotonic()
        ready = [u for u in self.urls if self.health[u].retry_at <= now]
        return ready or sorted(self.urls, key=lambda u: self.health[u].retry_at)

    async def connect(self, limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        """Open a connection to the best upstream; NoUpstream when none answers,
        LocalResources when this machine could not try."""
        errors = []
        for url in self.candidates():
            host, port, tls = _target(url)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=self._tls if tls else None,
                                            limit=limit),
                    self.connect_timeout,
                )  # fmt: skip
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                if isinstance(exc, OSError) and exc.errno in LOCAL_ERRNOS:
                    raise LocalResources(f"connecting to {url}: {exc}") from None
                self.mark_failed(url, str(exc) or type(exc).__name__)
                errors.append(f"{url}: {exc or type(exc).__name__}")
                continue
            self.mark_ok(url)
            return reader, writer, url
        raise NoUpstream("; ".join(errors) or "no upstream configured")

    def mark_failed(self, url: str, why: str) -> None:
        health = self.health[url]
        health.failures += 1
        delay = min(self.backoff_cap, self.backoff_base * 2 ** min(health.failures - 1, 10))
        health.retry_at = time.monotonic() + delay
        if health.failures == 1:
            log.warning("upstream %s failed (%s); skipping it for %.0fs", url, why, delay)

    def mark_ok(self, url: str) -> None:
        health = self.health[url]
        if health.failures:
            log.info("upstream %s is back after %d failures", url, health.failures)
        health.failures, health.retry_at = 0, 0.0

    def healthy(self, url: str) -> bool:
        return self.health[url].failures == 0

    async def probe_loop(self, interval: float = 5.0) -> None:
        """Bring failed upstreams back as soon as they accept connections again."""
        while True:
            await asyncio.sleep(interval)
            for url in self.urls:
                if self.health[url].failures == 0:
                    continue
                host, port, _ = _target(url)
                try:
                    _, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), self.connect_timeout
                    )
                except (OSError, TimeoutError):
                    continue
                writer.close()
                self.mark_ok(url)
