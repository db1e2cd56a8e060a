"""The consumer side of the spool, used by the writer.

The reader hands out batches in log order; batches may be committed to the database
out of order by parallel flushers, so the checkpoint only advances over the longest
committed prefix. A crash between a database commit and the checkpoint replays a few
batches, which the database ignores because inserts are idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from sharelog.spool import salvage
from sharelog.spool.format import (
    MAGIC,
    MAX_RECORD,
    Damage,
    Position,
    list_segments,
    parse,
    read_checkpoint,
    segment_name,
    write_checkpoint,
)
from sharelog.spool.quarantine import Quarantine

log = logging.getLogger("sharelog.spool")

_CHUNK = 2 * MAX_RECORD  # always holds at least one whole record


@dataclass(slots=True)
class Batch:
    """A run of consecutive records, ``start`` inclusive to ``end`` exclusive."""

    payloads: list[bytes]
    start: Position
    end: Position
    done: bool = field(default=False)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """What is in the spool past the checkpoint: the writer's backlog."""

    events: int
    bytes: int


class SpoolReader:
    """Read batches from a spool directory and commit them back as the database takes them.

    ``sealed``: no producer writes to this spool any more (a drain), so its last segment
    is as final as the others and whatever can't be read there is quarantined too.
    """

    def __init__(self, directory: str | os.PathLike[str], *, sealed: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sealed = sealed
        self.quarantine = Quarantine(self.directory)
        self.torn_bytes = 0  # a record cut short at the end of a finished segment
        self.corrupt_bytes = 0  # anything else that is no record
        self.committed: Position | None = read_checkpoint(self.directory)
        self._pos: Position | None = self.committed
        self._fd = -1
        self._fd_segment = -1
        self._in_flight: deque[Batch] = deque()
        self._count_cache: tuple[int, int, int] = (-1, 0, 0)  # segment, offset, records

    # -- reading --------------------------------------------------------------------------

    def read(self, max_records: int) -> Batch | None:
        """Up to ``max_records`` complete records past what was handed out; None if none."""
        pos = self._locate()
        if pos is None:
            return None
        start = pos
        payloads: list[bytes] = []
        while len(payloads) < max_records:
            data = self._pread(pos.segment, pos.offset, _CHUNK)
            got = end = 0
            with contextlib.suppress(Damage):  # past the good records, _past_the_end sees to it
                for end, payload in parse(data):  # noqa: B007 - the last end is the new offset
                    payloads.append(bytes(payload))
                    got += 1
                    if len(payloads) == max_records:
                        break
            if got:
                pos = Position(pos.segment, pos.offset + end, pos.seq + got)
                continue
            moved = self._past_the_end(pos)
            if moved is None:
                break
            pos = moved
        self._pos = pos
        if not payloads:
            if pos != start:  # only unreadable bytes, or a finished segment's end, crossed
                self._in_flight.append(Batch([], start, pos, done=True))
                self._advance()
            return None
        batch = Batch(payloads, start, pos)
        self._in_flight.append(batch)
        return batch

    def _locate(self) -> Position | None:
        """The read position, finding the first segment when the spool was empty."""
        if self._pos is not None:
            return self._pos
        segments = list_segments(self.directory)
        if not segments:
            return None
        self._pos = Position.start_of(segments[0])
        if self.committed is None:
            self.committed = self._pos
        return self._pos

    def _pread(self, segment: int, offset: int, size: int | None) -> bytes:
        """``size`` bytes at ``offset`` (None: all up to the end of the segment)."""
        if self._fd_segment != segment:
            self._close_fd()
            try:
                self._fd = os.open(self.directory / segment_name(segment), os.O_RDONLY)
            except FileNotFoundError:
                return b""
            self._fd_segment = segment
        if size is None:
            size = os.fstat(self._fd).st_size - offset
        return os.pread(self._fd, size, offset) if size > 0 else b""

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._fd_segment = -1, -1

    def _successor(self, segment: int) -> int | None:
        later = [s for s in list_segments(self.directory) if s > segment]
        return later[0] if later else None

    def _past_the_end(self, pos: Position) -> Position | None:
        """No record could be read at ``pos``: where reading goes on, or None to wait.

        The directory is looked at first and the segment read after: the producer writes
        its last records to a segment before it creates the next, so once a successor is
        seen, a read of the old segment returns all it will ever hold. Only what doesn't
        parse there is damage.
        """
        successor = self._successor(pos.segment)
        final = self.sealed or successor is not None
        head = self._pread(pos.segment, pos.offset, _CHUNK)
        if salvage.starts_with_record(head):
            return pos  # written since the first read: read on
        rest = head if len(head) < _CHUNK else self._pread(pos.segment, pos.offset, None)
        why = salvage.damage_at_start(rest)
        resume = salvage.next_record(rest, 0) if rest else None
        if resume is not None:  # a record after the bad bytes: they can't be a write in flight
            self._set_aside(pos, rest[:resume], why or "a record's length runs past the next")
            return Position(pos.segment, pos.offset + resume, pos.seq)
        if not final:
            return None  # the live segment: a record being written, or damage not yet passed
        if rest:
            self._set_aside(pos, rest, why or "a record cut short (a torn write)", torn=not why)
            return Position(pos.segment, pos.offset + len(rest), pos.seq)
        if successor is None:
            return None  # sealed, and read to the end
        if successor != pos.seq:
            log.warning("spool: segment %s starts at record %d; the reader counted %d",
                        segment_name(successor), successor, pos.seq)  # fmt: skip
        return Position.start_of(successor)

    def _set_aside(self, pos: Position, data: bytes, why: str, *, torn: bool = False) -> None:
        """Quarantine bytes that are no record, durably, before the checkpoint passes them."""
        kept = self.quarantine.keep(pos.segment, pos.offset, data, why)
        if torn:
            self.torn_bytes += len(data)
        else:
            self.corrupt_bytes += len(data)
        log.error(
            "spool: %s at offset %d of %s: %d bytes set aside in %s (%d new there)",
            why, pos.offset, segment_name(pos.segment), len(data), self.quarantine.path.name,
            kept,
        )  # fmt: skip

    # -- committing -----------------------------------------------------------------------

    def commit(self, batch: Batch) -> bool:
        """Mark ``batch`` stored; advance the checkpoint over the committed prefix.

        Returns True when the checkpoint moved.
        """
        batch.done = True
        return self._advance()

    def _advance(self) -> bool:
        """Move the checkpoint over the done prefix; delete the segments wholly before it."""
        advanced: Position | None = None
        while self._in_flight and self._in_flight[0].done:
            advanced = self._in_flight.popleft().end
        if advanced is None:
            return False
        write_checkpoint(self.directory, advanced)
        self.committed = advanced
        for seg in list_segments(self.directory):
            if seg >= advanced.segment:
                break
            if seg == self._fd_segment:
                self._close_fd()
            (self.directory / segment_name(seg)).unlink(missing_ok=True)
        return True

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def close(self) -> None:
        self._close_fd()

    # -- depth ----------------------------------------------------------------------------

    def queue_depth(self) -> QueueDepth:
        """Events and bytes past the checkpoint, exact, at the cost of a header walk of
        the live segment's new bytes since the last call."""
        segments = list_segments(self.directory)
        if not segments:
            return QueueDepth(0, 0)
        committed = self.committed or Position.start_of(segments[0])
        live = [s for s in segments if s >= committed.segment]
        total = 0  # record bytes only: segment magics are not backlog
        for seg in live:
            try:
                total += (self.directory / segment_name(seg)).stat().st_size - len(MAGIC)
            except FileNotFoundError:
                continue
        last = live[-1] if live else segments[-1]
        events = last + self._count_records(last) - committed.seq
        return QueueDepth(max(events, 0), max(total - (committed.offset - len(MAGIC)), 0))

    def _count_records(self, segment: int) -> int:
        """Readable records in ``segment``, by the reader's own rules (``salvage``)."""
        seg, offset, count = self._count_cache
        if seg != segment:
            offset, count = len(MAGIC), 0
        path = self.directory / segment_name(segment)
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return 0
        found = salvage.survey(data, 0)
        count += found.records
        self._count_cache = (segment, offset + found.end, count)
        return count
