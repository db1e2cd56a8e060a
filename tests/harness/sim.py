"""The reference pool and the load generator on an event loop of their own thread.

Tests stay synchronous (they block on metrics and databases) while the pool keeps
answering and the miners keep mining in the background.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

from stratum_sim.miners import Behaviour, MinerStats, run_fleet
from stratum_sim.pool import ReferencePool

T = TypeVar("T")

DIFFICULTY = 2**-28  # a share in about sixteen hashes: miners are cheap, shares are real


class SimLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pools: list[ReferencePool] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def pool(
        self, *, network_difficulty: float = 1e6, tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> tuple[ReferencePool, str]:  # fmt: skip
        """A reference pool listening at ``host`` (a real node's gateway, for its pods)."""
        pool = ReferencePool(DIFFICULTY, network_difficulty=network_difficulty)
        port = self.run(pool.start(host, tls=tls))
        self.pools.append(pool)
        return pool, f"stratum+{'ssl' if tls else 'tcp'}://{host}:{port}"

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: fn(*args, **kwargs))

    def fleet(
        self, port: int, miners: int, shares_per_s: float, duration: float,
        behaviour: Behaviour | None = None, host: str = "127.0.0.1",
    ) -> concurrent.futures.Future[list[MinerStats]]:  # fmt: skip
        coro = run_fleet(host, port, miners, shares_per_s, duration, behaviour)
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        """Miners still mining are stopped (cancelled, and waited for) before the pools
        close: a test may end before its fleet's duration does."""

        async def stop_miners() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        for pool in self.pools:
            self.run(pool.close())
        self.run(stop_miners())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def answers(stats: list[MinerStats]) -> Counter[int | None]:
    """What the miners heard back, by Stratum error code (None: accepted)."""
    total: Counter[int | None] = Counter()
    for s in stats:
        total.update(s.answers)
    return total
