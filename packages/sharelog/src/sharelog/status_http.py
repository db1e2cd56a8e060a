"""The side port of both images: /metrics for Prometheus and the operator, /healthz, /readyz,
and, where a pod has sidecars, /metrics/pod (``pod_metrics``: the pod's metrics in one).

A few lines of asyncio rather than a web framework: four GET routes, no bodies in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sharelog import pod_metrics

_MAX_REQUEST = 8192


class StatusServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], tuple[bool, str]],
        refresh: Callable[[], None] = lambda: None,
        sidecars: Mapping[str, str] | None = None,
        appendix: Callable[[], bytes] = bytes,
    ) -> None:
        self.registry = registry
        self.ready = ready
        self.refresh = refresh  # brings gauges up to date, so a scrape never reads stale depth
        self.sidecars = dict(sidecars or {})  # name -> host:port of its /metrics
        # exposition rendered elsewhere, after the registry's (the proxy's per-worker series)
        self.appendix = appendix
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        parts = head[:_MAX_REQUEST].split(b" ", 2)
        path = parts[1].split(b"?")[0] if len(parts) > 1 else b""
        if path in (b"/metrics", pod_metrics.PATH):
            with contextlib.suppress(OSError):
                self.refresh()
            body = generate_latest(self.registry) + self.appendix()
            status, ctype = "200 OK", CONTENT_TYPE_LATEST
            if path == pod_metrics.PATH:
                body = await pod_metrics.merged(body, self.sidecars)
        elif path == b"/healthz":
            status, ctype, body = "200 OK", "text/plain", b"ok\n"
        elif path == b"/readyz":
            ok, why = self.ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            ctype, body = "text/plain", (why + "\n").encode()
        else:
            status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()
