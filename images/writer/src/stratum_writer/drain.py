"""The writer's main loop: read the spool in batches, hand them to parallel flushers.

One feeder reads batches in log order (size N or T milliseconds after the first share,
whichever comes first) into a short queue; N flushers store them concurrently. The
spool reader only advances its checkpoint over the committed prefix, so the order in
which flushers finish does not matter. N comes from a file the operator rewrites
(a downward-API projection of a pod annotation), re-read every second. While a refused
share waits for room in the dead-letter file (``delivery.py``) the feeder reads no
further: what follows stays in the spool, not in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sharelog.codec import decode_many
from sharelog.event import SUBMITTED_AT, Row
from sharelog.spool import Batch, SpoolReader
from stratum_writer.config import DEFAULT_BATCH_SIZE
from stratum_writer.deadletters import DeadLetterFile
from stratum_writer.delivery import Abandoned, Delivery
from stratum_writer.metrics import WriterMetrics

log = logging.getLogger("stratum_writer.drain")

_POLL_S = 0.005
_STOP_CHECK_S = 0.2  # a feeder waiting for room looks at SIGTERM and the deadline this often
_MAX_WORKERS = 64


@dataclass(slots=True)
class Job:
    batches: list[Batch]
    rows: list[Row]
    oldest_us: int
    unreadable: list[tuple[bytes, str]]  # records that are no share event, and why


def read_worker_count(path: Path | None, current: int) -> int:
    """The worker count the operator asks for; the current one when the file is unusable."""
    if path is None:
        return current
    try:
        text = path.read_text().strip().strip('"')
    except OSError:
        return current
    if not text:
        return current
    try:
        wanted = int(text)
    except ValueError:
        log.warning("ignoring worker count %r from %s: not a number", text, path)
        return current
    return max(1, min(_MAX_WORKERS, wanted))


class Drainer:
    def __init__(
        self,
        reader: SpoolReader,
        delivery: Delivery,
        metrics: WriterMetrics,
        dead_letters: DeadLetterFile,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_timeout: float = 0.2,
        workers: int = 1,
        workers_file: Path | None = None,
    ) -> None:
        self.reader = reader
        self.delivery = delivery
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.workers_file = workers_file
        self.target_workers = read_worker_count(workers_file, workers)
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=2)
        self._fed_all = False
        self._damage_reported = 0
        self._flushers: list[asyncio.Task[None]] = []
        self._retire = 0
        self._jobs: dict[int, int] = {}  # id(job) -> oldest submitted_at, while in flight
        self._stopping = False
        self._until_empty = False
        self._deadline = float("inf")

    # -- public ---------------------------------------------------------------------------

    def should_give_up(self) -> bool:
        """True once shutdown's drain deadline has passed."""
        return self._stopping and time.monotonic() >= self._deadline

    @property
    def stopping(self) -> bool:
        """Shutdown has begun (SIGTERM): draining until the deadline."""
        return self._stopping

    async def run(
        self, stop: asyncio.Event, drain_timeout: float, *, until_empty: bool = False
    ) -> None:
        """Drain until ``stop``; then finish what the spool holds within ``drain_timeout``.

        ``until_empty``: no producer writes any more (a claim whose pod is gone), so the
        end of the spool is the end of the work; ``stop`` still bounds it by the deadline.
        """
        self._until_empty = until_empty
        feeder = asyncio.create_task(self._feed(stop, drain_timeout), name="feeder")
        scaler = asyncio.create_task(self._scale_loop(), name="scaler")
        try:
            await feeder
            self._fed_all = True
            remaining = max(self._deadline - time.monotonic(), 0.1)
            _, pending = await asyncio.wait(list(self._flushers), timeout=remaining)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            scaler.cancel()
            await asyncio.gather(scaler, return_exceptions=True)
            self.update_gauges()

    def update_gauges(self) -> None:
        depth = self.reader.queue_depth()
        self.metrics.queue_events.set(depth.events)
        self.metrics.queue_bytes.set(depth.bytes)
        self.metrics.dead_letter_bytes.set(self.dead_letters.size())
        self.metrics.spool_quarantine.set(self.reader.quarantine.held_bytes())
        oldest = min(self._jobs.values(), default=None)
        age = 0.0 if oldest is None else max(time.time() - oldest / 1e6, 0.0)
        self.metrics.oldest_age.set(age)
        self.metrics.workers.set(len(self._flushers) - self._retire)

    # -- feeding --------------------------------------------------------------------------

    async def _feed(self, stop: asyncio.Event, drain_timeout: float) -> None:
        self._rescale()
        while True:
            self._notice_stop(stop, drain_timeout)
            if self.should_give_up():
                log.warning("drain deadline reached; the rest stays in the spool")
                return
            if self.delivery.holding:  # the dead letters are full: read no further
                if self._stopping:
                    return
                await asyncio.sleep(_STOP_CHECK_S)
                continue
            job = await self._next_job()
            if job is None:
                if self._stopping or self._until_empty:
                    return  # everything readable has been handed out
                continue
            if not await self._hand_out(job, stop, drain_timeout):
                log.warning("drain deadline reached; the rest stays in the spool")
                return

    def _notice_stop(self, stop: asyncio.Event, drain_timeout: float) -> None:
        if stop.is_set() and not self._stopping:
            self._stopping = True
            self._deadline = time.monotonic() + drain_timeout
            log.info("stopping: %d shares in the spool; draining for up to %.0fs",
                     self.reader.queue_depth().events, drain_timeout)  # fmt: skip

    async def _hand_out(self, job: Job, stop: asyncio.Event, drain_timeout: float) -> bool:
        """Queue ``job`` for the flushers; False when the drain deadline comes first.

        While the database is down the flushers hold their batches and the queue stays
        full, so the wait for room must still hear SIGTERM and honour its deadline. A job
        never queued was never committed: its shares stay in the spool.
        """
        while True:
            try:
                await asyncio.wait_for(self._queue.put(job), _STOP_CHECK_S)
                return True
            except TimeoutError:
                self._notice_stop(stop, drain_timeout)
                if self.should_give_up():
                    return False

    async def _next_job(self) -> Job | None:
        batches: list[Batch] = []
        count = 0
        deadline = 0.0
        while count < self.batch_size:
            batch = self.reader.read(self.batch_size - count)
            if batch is not None:
                if not batches:
                    deadline = time.monotonic() + self.batch_timeout
                batches.append(batch)
                count += len(batch.payloads)
                continue
            if not batches:
                if not self._stopping:  # idle: look again shortly (the caller re-checks stop)
                    await asyncio.sleep(_POLL_S)
                return None
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(_POLL_S)
        damaged = self.reader.torn_bytes + self.reader.corrupt_bytes
        if damaged > self._damage_reported:
            self.metrics.spool_damaged.inc(damaged - self._damage_reported)
            self._damage_reported = damaged
        return self._decode(batches)

    def _decode(self, batches: list[Batch]) -> Job:
        payloads = (
            batches[0].payloads
            if len(batches) == 1
            else [p for batch in batches for p in batch.payloads]
        )
        rows, bad = decode_many(payloads)
        oldest = min(
            (r[SUBMITTED_AT] for r in rows[:1] + rows[-1:]), default=int(time.time() * 1e6)
        )
        return Job(batches, rows, oldest, bad)

    # -- flushing -------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            if self._retire > 0:
                self._retire -= 1
                return
            try:
                job = await asyncio.wait_for(self._queue.get(), 0.1)
            except TimeoutError:
                if self._fed_all and self._queue.empty():
                    return
                continue
            self._jobs[id(job)] = job.oldest_us
            try:
                while job.unreadable:  # set aside first (held at the cap), once each
                    payload, reason = job.unreadable[0]
                    await self.delivery.set_aside_record(
                        payload, f"unreadable spool record: {reason}"
                    )
                    job.unreadable.pop(0)
                if job.rows:
                    await self.delivery.deliver(job.rows)
            except Abandoned:
                return  # not committed: these shares stay in the spool for the next start
            except Exception:
                # Whatever it was, the batch is not dropped: a lost job would hold the
                # checkpoint behind it until a restart. It goes back on the queue.
                log.exception("delivering a batch of %d failed unexpectedly; retrying it",
                              len(job.rows))  # fmt: skip
                await asyncio.sleep(1.0)
                self._queue.put_nowait(job)
                continue
            finally:
                self._jobs.pop(id(job), None)
            for batch in job.batches:
                self.reader.commit(batch)

    def _rescale(self) -> None:
        self._flushers = [t for t in self._flushers if not t.done()]
        active = len(self._flushers) - self._retire
        if self.target_workers > active:
            for _ in range(self.target_workers - active):
                if self._retire:
                    self._retire -= 1
                    continue
                self._flushers.append(asyncio.create_task(self._flush_loop(), name="flusher"))
            log.info("flush workers: %d", self.target_workers)
        elif self.target_workers < active:
            self._retire += active - self.target_workers  # each exits after its current job
            log.info("flush workers: %d", self.target_workers)

    async def _scale_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            wanted = read_worker_count(self.workers_file, self.target_workers)
            if wanted != self.target_workers:
                self.target_workers = wanted
            self._rescale()
