"""The producer side of the spool, used by the proxy.

``append`` only touches memory. What was appended during one turn of the event loop is
written out together at the start of the next, by one ``write(2)``: on the loop itself
(a write to the page cache takes microseconds), or on the spool's own thread while the
disk is stalling or when every write is fsynced, so a slow disk never stalls the loop.

``when_written(callback)`` is the durability barrier: the callback runs, right after the
write, once everything appended so far has been handed to the kernel (``written()`` is
the same as a future). The proxy answers a miner only then, so a crash of the process
(SIGKILL, OOM) can't lose a share a miner was told about: what the kernel holds
survives the process. A power loss or kernel crash can still take what the kernel had
not yet written back. With ``fsync_interval`` set, every write is also fsynced before
its callbacks run, and writes are grouped so that at most one fsync happens per interval
(a group commit): then a told share survives a power loss too, and a verdict waits at
most about one interval plus the fsync.

When the spool is over its size limit, or the disk refuses a write, events are dropped
and counted, loudly, and mining goes on: a stalled farm costs more than the shares a
full disk loses. The limit bounds what the writer has not committed plus what it set aside
on the same volume: its dead-letter file and the quarantine of unreadable bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sharelog.codec import encode
from sharelog.event import ShareEvent
from sharelog.spool.format import HEADER, MAGIC, crc32, evidence_bytes
from sharelog.spool.recovery import open_segment, recover_tail, uncommitted_bytes

log = logging.getLogger("sharelog.spool")

_DROP_LOG_EVERY_S = 10.0
_RESCAN_EVERY_S = 1.0
_HOUSEKEEPING_EVERY_S = 0.25  # fsync interval and rescans when no share comes
# A write(2) to the page cache takes microseconds. One that took longer than this means
# the disk is stalling (dirty-page throttling, a struggling network volume): writes then
# go to the spool's thread, so the event loop (jobs, the pool's messages) keeps moving,
# until a write there is fast again.
_SLOW_WRITE_S = 0.005


class SpoolProducer:
    """Append share events to a spool directory without ever blocking the caller.

    One producer per directory. ``open`` recovers from a crash: a torn record at the end
    of the last segment is cut off, and writing resumes in a fresh segment.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 64 << 20,
        fsync_interval: float | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.appended = 0
        self._dropped_full = 0
        self._dropped_io = 0  # written from the flush thread only
        self.write_errors = 0
        self._buf = bytearray()
        self._buf_count = 0
        self._io_lock = threading.Lock()
        self._closed = False
        self._last_drop_log = 0.0
        self._last_fsync = time.monotonic()
        self._last_rescan = 0.0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        # The barrier: callbacks for the events buffered now, which the next write carries.
        # Writes are numbered; ``written_generation`` is the last one that returned.
        self._callbacks: list[Callable[[], object]] = []
        self.pending_generation = 1  # the number the buffered events will be written under
        self.written_generation = 0
        self._write_scheduled = False
        self._writing: asyncio.Future[None] | None = None  # the write on the thread now
        self.writes = 0  # write(2) batches: appended / writes is the grouping achieved
        self._disk_slow = False  # writes go to the thread while the disk is stalling
        self.fsyncs = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        self._next_seq, self._segment = recover_tail(self.directory)
        self._fd = open_segment(self.directory, self._segment)
        self._segment_size = os.fstat(self._fd).st_size
        self._disk_bytes = self._bytes_on_volume()

    # -- the hot path -------------------------------------------------------------------

    def append(self, event: ShareEvent) -> bool:
        """Queue one event for the spool. Returns False when it had to be dropped."""
        return self.append_payload(encode(event))

    def append_payload(self, payload: bytes) -> bool:
        size = len(payload) + HEADER.size
        if self._closed or self._disk_bytes + len(self._buf) + size > self.max_bytes:
            self._dropped_full += 1
            self._log_drop("spool is full" if not self._closed else "spool is closed")
            return False
        self._buf += HEADER.pack(len(payload), crc32(payload))
        self._buf += payload
        self._buf_count += 1
        self.appended += 1
        if self._loop is not None and not self._write_scheduled:
            self._write_scheduled = True
            self._loop.call_soon(self._start_write)
        return True

    def when_written(self, callback: Callable[[], object]) -> int:
        """Run ``callback`` once every event appended so far has been written; returns the
        generation that write will have (compare with ``written_generation``).

        "Written" means a ``write(2)`` returned: a crash of this process can no longer lose
        it. It also counts when the write failed and the events were dropped (counted in
        ``dropped``): nobody is left waiting on a disk that refuses. Callbacks run on the
        loop, in the order they were given, right after the write: no task, no future,
        no extra turn of the loop per waiter.
        """
        assert self._loop is not None, "start() the producer on the running loop first"
        self._callbacks.append(callback)
        if not self._write_scheduled:
            self._write_scheduled = True
            self._loop.call_soon(self._start_write)
        return self.pending_generation

    def written(self) -> asyncio.Future[None]:
        """``when_written`` as a future, for code that awaits (flush, shutdown, tests)."""
        assert self._loop is not None, "start() the producer on the running loop first"
        future: asyncio.Future[None] = self._loop.create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)

        self.when_written(resolve)
        return future

    # -- what operators watch -------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Events lost because the spool was full or the disk refused them."""
        return self._dropped_full + self._dropped_io

    @property
    def buffered(self) -> int:
        return self._buf_count

    @property
    def backlog_bytes(self) -> int:
        """What the size limit bounds, as of the last rescan: spool bytes past the writer's
        checkpoint, and the writer's dead letters and quarantine beside them."""
        return self._disk_bytes

    def _bytes_on_volume(self) -> int:
        return uncommitted_bytes(self.directory) + evidence_bytes(self.directory)

    # -- writing ------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start writing on the running loop: group writes, plus the periodic housekeeping."""
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-write")
        self._task = self._loop.create_task(self._housekeeping(), name="spool-housekeeping")
        return self._task

    def _start_write(self) -> None:
        """Hand what the last loop turn appended to the thread; one write at a time."""
        self._write_scheduled = False
        if self._writing is not None or self._loop is None or self._executor is None:
            return  # the write in flight starts the next one when it is done
        wait = self._group_commit_wait()
        if wait > 0:  # fsync mode: gather more behind the next fsync
            self._write_scheduled = True
            self._loop.call_later(wait, self._start_write)
            return
        buf, count = self._take()
        callbacks, self._callbacks = self._callbacks, []
        if not count and not callbacks and not self._housekeeping_due():
            return
        generation = self.pending_generation
        self.pending_generation += 1
        self.writes += 1 if count else 0
        sync = bool(count) and self.fsync_interval is not None
        started = time.monotonic()
        if not sync and not self._disk_slow:
            self._write_out(buf, count)  # on the loop: no thread hand-off on the reply path
            self._note_write_time(time.monotonic() - started)
            self._release(generation, callbacks)
            return
        write = functools.partial(self._write_out, buf, count, force_fsync=sync)
        self._writing = self._loop.run_in_executor(self._executor, write)
        self._writing.add_done_callback(
            lambda done: self._write_done(done, generation, callbacks, started)
        )

    def _release(self, generation: int, callbacks: list[Callable[[], object]]) -> None:
        self.written_generation = generation
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one waiter's bug must not keep the others waiting
                log.exception("a spool-write callback failed")

    def _note_write_time(self, took: float) -> None:
        slow = took > _SLOW_WRITE_S
        if slow != self._disk_slow:
            self._disk_slow = slow
            if slow:
                log.warning("spool write took %.0f ms: writing on a thread until the disk "
                            "is fast again", took * 1000)  # fmt: skip
            else:
                log.info("spool writes are fast again: writing on the event loop")

    def _write_done(
        self, done: asyncio.Future[None], generation: int,
        callbacks: list[Callable[[], object]], started: float,
    ) -> None:  # fmt: skip
        self._writing = None
        if not done.cancelled() and done.exception() is not None:
            log.error("spool write failed: %r", done.exception())
        elif self.fsync_interval is None:
            self._note_write_time(time.monotonic() - started)
        self._release(generation, callbacks)
        if (self._buf_count or self._callbacks) and not self._write_scheduled:
            self._start_write()  # what arrived meanwhile, grouped into one write

    def _group_commit_wait(self) -> float:
        if self.fsync_interval is None or self._closed or not self._buf_count:
            return 0.0
        return self._last_fsync + self.fsync_interval - time.monotonic()

    async def _housekeeping(self) -> None:
        """The fsync interval and the rescan of what the writer freed, with no share coming."""
        while not self._closed:
            await asyncio.sleep(_HOUSEKEEPING_EVERY_S)
            if self._housekeeping_due():
                await self.flush()

    def _housekeeping_due(self) -> bool:
        now = time.monotonic()
        fsync_due = (
            self.fsync_interval is not None and now - self._last_fsync >= self.fsync_interval
        )
        return fsync_due or now - self._last_rescan > _RESCAN_EVERY_S

    async def flush(self) -> None:
        """Write out everything appended so far (and do the housekeeping that is due)."""
        await self.written()

    def flush_sync(self) -> None:
        """Flush from synchronous code (tools, tests, shutdown without a loop)."""
        buf, count = self._take()
        self._write_out(buf, count)

    async def close(self) -> None:
        """Stop writing and write out everything appended so far, durably."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._writing is not None:
            await asyncio.wait([self._writing])
            await asyncio.sleep(0)  # let its done-callback run
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        callbacks, self._callbacks = self._callbacks, []
        self._release(self.pending_generation, callbacks)
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def close_sync(self) -> None:
        self._closed = True
        self._close_sync()

    def _close_sync(self) -> None:
        buf, count = self._take()
        self._write_out(buf, count, force_fsync=True)
        with self._io_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _take(self) -> tuple[bytes, int]:
        buf, count = bytes(self._buf), self._buf_count
        self._buf.clear()
        self._buf_count = 0
        return buf, count

    def _write_out(self, buf: bytes, count: int, *, force_fsync: bool = False) -> None:
        with self._io_lock:
            if self._fd < 0:
                self._dropped_io += count
                return
            if count:
                self._write_records(buf, count)
            now = time.monotonic()
            if force_fsync or (
                self.fsync_interval is not None and now - self._last_fsync >= self.fsync_interval
            ):
                os.fsync(self._fd)
                self.fsyncs += 1
                self._last_fsync = now
            if self._segment_size >= self.segment_bytes:
                self._rotate()
            if now - self._last_rescan > _RESCAN_EVERY_S:
                # The writer deletes committed segments (and sets refused shares aside):
                # learn how much room is left.
                self._disk_bytes = self._bytes_on_volume()
                self._last_rescan = now

    def _write_records(self, buf: bytes, count: int) -> None:
        before = self._segment_size
        try:
            view = memoryview(buf)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self.write_errors += 1
            self._dropped_io += count
            try:  # leave no torn record behind for the writer to trip over
                os.ftruncate(self._fd, before)
            except OSError:
                log.exception("spool: could not truncate a failed write in %s", self._segment)
            log.error(
                "spool write failed (%s): dropped %d events, %d dropped in total",
                exc.strerror or exc,
                count,
                self.dropped,
            )
            return
        self._segment_size += len(buf)
        self._disk_bytes += len(buf)
        self._next_seq += count

    def _rotate(self) -> None:
        os.close(self._fd)
        self._segment = self._next_seq
        self._fd = open_segment(self.directory, self._segment)
        self._segment_size = len(MAGIC)

    def _log_drop(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_EVERY_S:
            self._last_drop_log = now
            log.error("%s: dropping share events, %d dropped so far", why, self.dropped)
