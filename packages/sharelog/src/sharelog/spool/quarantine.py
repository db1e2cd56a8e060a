"""The spool's quarantine file: bytes of the spool that are no record, kept for a person.

The reader never skips a byte it can't read without a copy: each unreadable span of a
segment goes here (``quarantine.jsonl`` beside the segments, on the same volume), fsynced
before the checkpoint can move past it and the segment be deleted. One JSON object per
line: the segment, the offset, why, when, and the bytes themselves (base64), at most
``MAX_RECORD`` of them a line. A span kept twice (a reader that crashed before its
checkpoint moved) is written once.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from sharelog.spool.format import MAX_RECORD, QUARANTINE, fsync_directory, segment_name


@dataclass(frozen=True, slots=True)
class Span:
    """One line of the quarantine file."""

    segment: str
    offset: int
    reason: str
    at: float
    data: bytes


def read_quarantine(path: Path) -> Iterator[Span]:
    """Every span in a quarantine file, in the order they were kept."""
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                entry = orjson.loads(line)
                yield Span(entry["segment"], int(entry["offset"]), str(entry["reason"]),
                           float(entry["at"]), base64.b64decode(entry["raw"]))  # fmt: skip


class Quarantine:
    """Where a spool's reader puts what it can't read."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / QUARANTINE
        self._kept: set[tuple[str, int]] | None = None  # spans in the file, read on first use
        self._held: tuple[int, int, int] = (-1, -1, 0)  # file size, mtime, bytes held

    def keep(self, segment: int, offset: int, data: bytes, reason: str) -> int:
        """Copy ``data`` (found at ``offset`` of ``segment``) here, durably; the bytes that
        were not here yet."""
        if self._kept is None:
            self._kept = (
                {(s.segment, s.offset) for s in read_quarantine(self.path)}
                if self.path.exists()
                else set()
            )
        name, lines, added = segment_name(segment), [], 0
        for start in range(0, len(data), MAX_RECORD):
            if (name, offset + start) in self._kept:
                continue
            chunk = data[start : start + MAX_RECORD]
            entry = {"segment": name, "offset": offset + start, "reason": reason,
                     "at": time.time(), "raw": base64.b64encode(chunk).decode()}  # fmt: skip
            lines.append(orjson.dumps(entry))
            self._kept.add((name, offset + start))
            added += len(chunk)
        if lines:
            self._append(b"\n".join(lines) + b"\n")
        return added

    def _append(self, text: bytes) -> None:
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_directory(self.path.parent)

    def held_bytes(self) -> int:
        """The spool bytes the quarantine file holds now (0 once a person moved it away)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        size, mtime, held = self._held
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
            held = sum(len(span.data) for span in read_quarantine(self.path))
            self._held = (stat.st_size, stat.st_mtime_ns, held)
        return held
