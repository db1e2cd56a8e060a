"""The consumer side of the spool, used by the writer.

The reader hands out batches in log order; batches may be committed to the database
out of order by parallel flushers, so the checkpoint only advances over the longest
committed prefix. A crash between a database commit and the checkpoint replays a few
batches, which the database ignores because inserts are idempotent.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from sharelog.spool.format import (
    HEADER,
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
    """Read batches from a spool directory and commit them back as the database takes them."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.torn_bytes = 0
        self.corrupt_bytes = 0
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
            base = pos.offset
            data = self._pread(pos.segment, base, _CHUNK)
            got = 0
            end = 0
            want = max_records - len(payloads)
            try:
                for end, payload in parse(data):  # noqa: B007 - the last end is the new offset
                    payloads.append(bytes(payload))
                    got += 1
                    if got == want:
                        break
            except Damage as exc:
                if got:
                    pos = Position(pos.segment, base + end, pos.seq + got)
                if got == 0:
                    moved = self._skip_damage(pos, str(exc))
                    if moved is None:
                        break
                    pos = moved
                continue
            if got:
                pos = Position(pos.segment, base + end, pos.seq + got)
            else:
                moved = self._next_segment_if_finished(pos)
                if moved is None:
                    break
                pos = moved
        self._pos = pos
        if not payloads:
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

    def _pread(self, segment: int, offset: int, size: int) -> bytes:
        if self._fd_segment != segment:
            self._close_fd()
            try:
                self._fd = os.open(self.directory / segment_name(segment), os.O_RDONLY)
            except FileNotFoundError:
                return b""
            self._fd_segment = segment
        return os.pread(self._fd, size, offset)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._fd_segment = -1, -1

    def _successor(self, segment: int) -> int | None:
        later = [s for s in list_segments(self.directory) if s > segment]
        return later[0] if later else None

    def _next_segment_if_finished(self, pos: Position) -> Position | None:
        """At the end of the readable data: move on if the producer has moved on."""
        successor = self._successor(pos.segment)
        if successor is None:
            return None  # the live segment: more may come
        # The producer finishes a segment before it creates the next one, so what is left
        # past our offset now can only be a torn write from a crash.
        try:
            size = (self.directory / segment_name(pos.segment)).stat().st_size
        except FileNotFoundError:
            size = pos.offset
        if size > pos.offset:
            self.torn_bytes += size - pos.offset
            log.warning(
                "spool: skipped a torn record of %d bytes at the end of %s",
                size - pos.offset,
                segment_name(pos.segment),
            )
        if successor != pos.seq:
            log.warning(
                "spool: segment %s starts at record %d, expected %d",
                segment_name(successor),
                successor,
                pos.seq,
            )
        return Position.start_of(successor)

    def _skip_damage(self, pos: Position, why: str) -> Position | None:
        """A record that can never be right: skip the segment's rest if it is finished."""
        successor = self._successor(pos.segment)
        if successor is None:
            return None  # the producer will cut it off on its next start
        size = (self.directory / segment_name(pos.segment)).stat().st_size
        self.corrupt_bytes += size - pos.offset
        log.error(
            "spool: %s in %s; %d bytes after it are unreadable and skipped",
            why,
            segment_name(pos.segment),
            size - pos.offset,
        )
        return Position.start_of(successor)

    # -- committing -----------------------------------------------------------------------

    def commit(self, batch: Batch) -> bool:
        """Mark ``batch`` stored; advance the checkpoint over the committed prefix.

        Returns True when the checkpoint moved.
        """
        batch.done = True
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
        pos, size, unpack, hsize = 0, len(data), HEADER.unpack_from, HEADER.size
        while pos + hsize <= size:
            length = unpack(data, pos)[0]
            if length == 0 or pos + hsize + length > size:
                break
            pos += hsize + length
            count += 1
        self._count_cache = (segment, offset + pos, count)
        return count
