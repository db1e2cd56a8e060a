"""Getting one batch into the database, whatever the database is doing.

- Outage (connection refused, server gone, auth, schema missing, disk full): retry forever
  with capped exponential backoff and jitter. The spool holds the shares meanwhile, so
  waiting costs nothing but queue depth.
- Transient (deadlock, lock timeout): a few retries, then treated as data.
- Data (the database refuses the content): split the batch in halves until the refused
  share stands alone, dead-letter it with the database's reason, commit the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence

from sharelog.event import Row
from stratum_writer.backends import Backend, ErrorKind, StoreResult
from stratum_writer.deadletters import DeadLetterFile
from stratum_writer.metrics import WriterMetrics

log = logging.getLogger("stratum_writer.delivery")

_OUTAGE_LOG_EVERY_S = 30.0


class Abandoned(Exception):
    """Shutdown came while the database was away; the batch stays in the spool."""


def backoff(attempt: int, base: float, cap: float) -> float:
    """Half fixed, half random: spreads many writers' retries, never waits near zero."""
    ceiling = min(cap, base * (2**attempt))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def describe(exc: BaseException) -> str:
    """One line naming the error, never the connection URL (drivers don't include it)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Delivery:
    def __init__(
        self,
        backend: Backend,
        metrics: WriterMetrics,
        dead_letters: DeadLetterFile,
        *,
        max_attempts: int = 5,
        backoff_base: float = 0.05,
        backoff_cap: float = 10.0,
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.give_up = give_up
        self._outage_since: float | None = None
        self._outage_logged = 0.0

    async def deliver(self, rows: Sequence[Row]) -> StoreResult:
        """Store ``rows``; every row ends up in the database or in the dead-letter file."""
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                result = await self.backend.store(rows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = self.backend.classify(exc)
                self.metrics.retries.labels(kind.value).inc()
                if kind is ErrorKind.OUTAGE:
                    self._note_outage(exc)
                    if self.give_up():
                        raise Abandoned(describe(exc)) from exc
                    await asyncio.sleep(backoff(min(attempt, 16), 0.2, self.backoff_cap))
                    attempt += 1
                    continue
                if kind is ErrorKind.TRANSIENT and attempt + 1 < self.max_attempts:
                    log.warning("batch of %d failed, retrying: %s", len(rows), describe(exc))
                    await asyncio.sleep(backoff(attempt, self.backoff_base, self.backoff_cap))
                    attempt += 1
                    continue
                return await self._split(rows, exc)
            self._note_up()
            self.metrics.flush_seconds.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(rows))
            self.metrics.inserted.inc(result.inserted)
            self.metrics.duplicates.inc(result.duplicates)
            return result

    async def _split(self, rows: Sequence[Row], exc: Exception) -> StoreResult:
        if len(rows) == 1:
            reason = describe(exc)
            self.dead_letters.add_row(rows[0], reason)
            self.metrics.dead_letters.inc()
            log.error(
                "dead-lettered share %s of %s/%s: %s",
                rows[0][0].hex(),
                rows[0][3],
                rows[0][4],
                reason,
            )
            return StoreResult(0, 0)
        middle = len(rows) // 2
        left = await self.deliver(rows[:middle])
        right = await self.deliver(rows[middle:])
        return StoreResult(left.inserted + right.inserted, left.duplicates + right.duplicates)

    def _note_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.metrics.backend_up.set(0)
        if self._outage_since is None:
            self._outage_since = now
            self._outage_logged = now
            log.error(
                "database unavailable (%s); shares wait in the spool and will be retried",
                describe(exc),
            )
        elif now - self._outage_logged >= _OUTAGE_LOG_EVERY_S:
            self._outage_logged = now
            log.error(
                "database still unavailable after %.0fs (%s)", now - self._outage_since,
                describe(exc),
            )  # fmt: skip

    def _note_up(self) -> None:
        self.metrics.backend_up.set(1)
        if self._outage_since is not None:
            log.warning(
                "database is back after %.1fs; draining the spool",
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
