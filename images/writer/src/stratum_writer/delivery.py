"""Getting one batch into the database, whatever the database is doing.

- Outage (connection refused, server gone, auth, schema missing, disk full): retry forever
  with capped exponential backoff and jitter. The spool holds the shares meanwhile, so
  waiting costs nothing but queue depth.
- Transient (deadlock, lock timeout): a few retries, then treated as data.
- Data (the database refuses the content): split the batch in halves until the refused
  share stands alone, dead-letter it with the database's reason, commit the rest.
- The dead-letter file at its cap: the refused share is held, and with it its batch and
  the spool's checkpoint, so it stays in the spool; the database is asked again and the
  file looked at again with backoff, until one of them takes it or shutdown begins (no
  share after it can move the checkpoint, so there is nothing to drain past it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence

from sharelog.event import Row
from stratum_writer.backends import Backend, ErrorKind, StoreResult
from stratum_writer.deadletters import DeadLetterFile, DeadLettersFull
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
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.give_up = give_up  # shutdown's deadline has passed
        self.stopping = stopping  # shutdown has begun: a share held for room waits no more
        self._outage_since: float | None = None
        self._outage_logged = 0.0
        self.holding = 0  # refused shares (or records) waiting for room in the dead letters
        self._full_logged = 0.0

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
            return await self._set_aside(rows[0], exc)
        middle = len(rows) // 2
        left = await self.deliver(rows[:middle])
        right = await self.deliver(rows[middle:])
        return StoreResult(left.inserted + right.inserted, left.duplicates + right.duplicates)

    async def _set_aside(self, row: Row, exc: Exception) -> StoreResult:
        """Dead-letter one refused share; at the file's cap, hold it (see the module doc)."""
        attempt = 0
        try:
            while True:
                reason = describe(exc)
                try:
                    self.dead_letters.add_row(row, reason)
                except DeadLettersFull as full:
                    attempt += 1
                    await self._wait_for_room(full, attempt)
                    try:
                        result = await self.backend.store([row])
                    except asyncio.CancelledError:
                        raise
                    except Exception as again:
                        if self.backend.classify(again) is ErrorKind.DATA:
                            exc = again  # refused still: the newest reason is kept
                        continue
                    self.metrics.inserted.inc(result.inserted)
                    self.metrics.duplicates.inc(result.duplicates)
                    return result
                self.metrics.dead_letters.inc()
                log.error("dead-lettered share %s of %s/%s: %s",
                          row[0].hex(), row[3], row[4], reason)  # fmt: skip
                return StoreResult(0, 0)
        finally:
            if attempt:
                self._release_hold()

    async def set_aside_record(self, payload: bytes, reason: str) -> None:
        """A spool record that is no share event, dead-lettered raw; held at the cap too."""
        attempt = 0
        try:
            while True:
                try:
                    self.dead_letters.add_payload(payload, reason)
                    break
                except DeadLettersFull as full:
                    attempt += 1
                    await self._wait_for_room(full, attempt)
        finally:
            if attempt:
                self._release_hold()
        self.metrics.dead_letters.inc()
        log.error("dead-lettered an unreadable spool record: %s", reason)

    async def _wait_for_room(self, full: DeadLettersFull, attempt: int) -> None:
        """The ``attempt``-th wait (from 1) of a share held at the dead letters' cap;
        Abandoned at shutdown. The first counts it in ``holding``, until ``_release_hold``."""
        now = time.monotonic()
        if attempt == 1:
            self.holding += 1
            self.metrics.dead_letters_full.set(1)
        if attempt == 1 or now - self._full_logged >= _OUTAGE_LOG_EVERY_S:
            self._full_logged = now
            log.error("%s: a refused share waits in the spool, and the checkpoint with it, "
                      "until there is room (replay the file, then move it away)", full)  # fmt: skip
        if self.stopping() or self.give_up():
            raise Abandoned(str(full))
        await asyncio.sleep(backoff(min(attempt - 1, 16), 0.2, self.backoff_cap))

    def _release_hold(self) -> None:
        self.holding -= 1
        if not self.holding:
            self.metrics.dead_letters_full.set(0)
            log.warning("no refused share waits for room in the dead letters any more")

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
