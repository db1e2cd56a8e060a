"""Reading what each ready pod says about itself: its proxy's and its writer's /metrics.

Runs for every pool on every timer tick, so it is bounded: 2 s per scrape, all pods at
once. A pod that doesn't answer is reported, not guessed at.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

_TIMEOUT = aiohttp.ClientTimeout(total=2)


@dataclass(frozen=True)
class PodReading:
    pod: str
    miners: int | None  # None: the proxy didn't answer (the writer did)
    shares_total: float | None
    queue: int
    workers: int
    schema_version: int
    # its writer holds a refused share in the spool: the dead-letter file is at its cap
    dead_letters_full: bool = False


def ready_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def is_ready(pod: dict[str, Any]) -> bool:
        status = pod.get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        deleting = pod["metadata"].get("deletionTimestamp") is not None
        return conditions.get("Ready") == "True" and bool(status.get("podIP")) and not deleting

    return [p for p in pods if is_ready(p)]


def samples(text: str) -> dict[str, float]:
    """Prometheus text as one number per sample name (labels summed)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def _scrape(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(url) as response:
        response.raise_for_status()
        return samples(await response.text())


async def read_pods(
    pods: list[dict[str, Any]], proxy_port: int, writer_port: int
) -> tuple[list[PodReading], dict[str, str]]:
    """Readings of the pods that answered, and why the others didn't."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:

        async def one(pod: dict[str, Any]) -> PodReading:
            ip = pod["status"]["podIP"]
            writer, proxy = await asyncio.gather(
                _scrape(session, f"http://{ip}:{writer_port}/metrics"),
                _scrape(session, f"http://{ip}:{proxy_port}/metrics"),
                return_exceptions=True,
            )
            if isinstance(writer, BaseException):
                raise writer  # the queue is the scaling signal: without it, no reading
            answered = not isinstance(proxy, BaseException)
            samples = proxy if not isinstance(proxy, BaseException) else {}
            # without the proxy's answer its miners and shares are unknown, not 0;
            # scaling goes on from the writer's queue
            return PodReading(
                pod=pod["metadata"]["name"],
                miners=int(samples.get("stratum_proxy_miners", 0)) if answered else None,
                shares_total=samples.get("stratum_proxy_shares_total", 0.0) if answered else None,
                queue=int(writer.get("stratum_writer_queue_events", 0)),
                workers=int(writer.get("stratum_writer_workers", 0)),
                schema_version=int(writer.get("stratum_writer_schema_version", 0)),
                dead_letters_full=writer.get("stratum_writer_dead_letters_full", 0) == 1,
            )

        results = await asyncio.gather(*(one(p) for p in pods), return_exceptions=True)
    readings, errors = [], {}
    for pod, result in zip(pods, results, strict=True):
        if isinstance(result, BaseException):
            errors[pod["metadata"]["name"]] = f"{type(result).__name__}: {result}"[:200]
        else:
            readings.append(result)
    return readings, errors


@dataclass(frozen=True)
class WriterState:
    queue: int  # shares in its spool, not yet committed
    database_up: bool


async def read_writer(pod: dict[str, Any], writer_port: int) -> WriterState | None:
    """One writer's queue and database state, or None when it doesn't answer."""
    ip = pod.get("status", {}).get("podIP")
    if not ip:
        return None
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            samples = await _scrape(session, f"http://{ip}:{writer_port}/metrics")
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None
    return WriterState(
        queue=int(samples.get("stratum_writer_queue_events", 0)),
        database_up=samples.get("stratum_writer_backend_up", 0) == 1,
    )
