"""The pod's metrics in one scrape: this process's own and its sidecars'.

Scrapers that find targets by the ``prometheus.io/*`` pod annotations read one port and
one path per pod, so a proxy pod's writer would never be seen by them. The proxy's side
port therefore also serves ``/metrics/pod``: its own exposition followed by each
sidecar's, read over loopback when scraped (Istio's agent merges a pod's metrics the same
way). The metric names of the two never meet (``stratum_proxy_*``, ``stratum_writer_*``).
A sidecar that does not answer in time is left out and said so by
``stratum_pod_sidecar_up{sidecar="..."} 0``, so its absence alerts instead of looking
like an idle writer. The Prometheus Operator's PodMonitor scrapes each container's own
port instead and never reads this path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

PATH = b"/metrics/pod"
SIDECAR_UP = "stratum_pod_sidecar_up"
TIMEOUT_S = 2.0
_MAX_BODY = 32 << 20  # a sidecar's exposition; far above any real one


class SidecarUnreadable(Exception):
    """A sidecar's metrics could not be read: not listening, too slow, or not a 200."""


async def read_sidecar(address: str) -> bytes:
    """GET ``/metrics`` from ``host:port`` (HTTP/1.0, so the body ends the connection);
    the proxy's settings refuse an address that is not HOST:PORT, so a bad one here is
    only unreadable."""
    host, _, port = address.rpartition(":")
    try:
        return await asyncio.wait_for(_get(host, int(port)), TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
        raise SidecarUnreadable(f"{address}: {exc!r}") from exc


async def _get(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        response = await reader.read(_MAX_BODY)
    finally:
        writer.close()
    head, sep, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if not sep or len(status) < 2 or status[1] != b"200":
        raise SidecarUnreadable(f"answered {head[:80]!r}")
    return body


async def merged(own: bytes, sidecars: Mapping[str, str]) -> bytes:
    """``own`` exposition, then every readable sidecar's, then whether each was read."""
    names = sorted(sidecars)
    found = await asyncio.gather(*(read_sidecar(sidecars[n]) for n in names),
                                 return_exceptions=True)  # fmt: skip
    parts = [own if own.endswith(b"\n") or not own else own + b"\n"]
    up = [f"# HELP {SIDECAR_UP} 1 when the sidecar's metrics were read for this scrape",
          f"# TYPE {SIDECAR_UP} gauge"]  # fmt: skip
    for name, body in zip(names, found, strict=True):
        if isinstance(body, bytes):
            parts.append(body if body.endswith(b"\n") or not body else body + b"\n")
        up.append(f'{SIDECAR_UP}{{sidecar="{name}"}} {0 if isinstance(body, BaseException) else 1}')
    if names:
        parts.append(("\n".join(up) + "\n").encode())
    return b"".join(parts)
