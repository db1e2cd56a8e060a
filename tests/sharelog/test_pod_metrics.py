"""``/metrics/pod``: one scrape carries the pod's processes, and a sidecar that is down,
slow or broken is a series that says so, never a failed or stalled scrape."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client import CollectorRegistry, Counter, Gauge

from sharelog import pod_metrics
from sharelog.status_http import StatusServer


def _registry(name: str, value: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge(name, "a gauge", registry=registry).set(value)
    Counter(f"{name}_events", "a counter", registry=registry).inc(3)
    return registry


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return str(r.read().decode())


async def _serve_pod(sidecars: dict[str, str]) -> tuple[StatusServer, int]:
    proxy = StatusServer(_registry("stratum_proxy_thing", 1), lambda: (True, "ok"),
                         sidecars=sidecars)  # fmt: skip
    return proxy, await proxy.start("127.0.0.1", 0)


def test_the_pod_path_carries_both_processes_and_says_the_sidecar_is_up() -> None:
    async def run() -> tuple[str, str]:
        writer = StatusServer(_registry("stratum_writer_thing", 7), lambda: (True, "ok"))
        writer_port = await writer.start("127.0.0.1", 0)
        proxy, port = await _serve_pod({"writer": f"127.0.0.1:{writer_port}"})
        own, pod = await asyncio.gather(asyncio.to_thread(_get, port, "/metrics"),
                                        asyncio.to_thread(_get, port, "/metrics/pod"))  # fmt: skip
        await proxy.close()
        await writer.close()
        return own, pod

    own, pod = asyncio.run(run())
    assert "stratum_writer_thing" not in own and pod_metrics.SIDECAR_UP not in own
    assert "stratum_proxy_thing 1.0" in pod and "stratum_writer_thing 7.0" in pod
    assert "stratum_writer_thing_events_total 3.0" in pod
    assert f'{pod_metrics.SIDECAR_UP}{{sidecar="writer"}} 1' in pod
    # each metric family is declared once: the exposition stays valid
    types = [line for line in pod.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types))


def test_a_sidecar_down_slow_or_broken_is_said_and_the_scrape_still_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts and never answers

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 500 Internal Server Error\r\n\r\nno\n")
        await writer.drain()
        writer.close()

    async def run() -> tuple[str, float]:
        slow = await asyncio.start_server(silent, "127.0.0.1", 0)
        bad = await asyncio.start_server(broken, "127.0.0.1", 0)
        gone = await asyncio.start_server(broken, "127.0.0.1", 0)
        gone_port = gone.sockets[0].getsockname()[1]
        gone.close()
        await gone.wait_closed()
        sidecars = {"slow": f"127.0.0.1:{slow.sockets[0].getsockname()[1]}",
                    "bad": f"127.0.0.1:{bad.sockets[0].getsockname()[1]}",
                    "gone": f"127.0.0.1:{gone_port}"}  # fmt: skip
        proxy, port = await _serve_pod(sidecars)
        started = asyncio.get_running_loop().time()
        pod = await asyncio.to_thread(_get, port, "/metrics/pod")
        took = asyncio.get_running_loop().time() - started
        await proxy.close()
        slow.close()
        bad.close()
        return pod, took

    pod, took = asyncio.run(run())
    assert "stratum_proxy_thing 1.0" in pod
    for name in ("slow", "bad", "gone"):
        assert f'{pod_metrics.SIDECAR_UP}{{sidecar="{name}"}} 0' in pod
    assert (
        took < pod_metrics.TIMEOUT_S + 3
    )  # a silent sidecar costs the scrape its timeout, no more
