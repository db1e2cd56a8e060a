"""Opening a spool for writing: what a crash left behind, and how much is still unstored.

A producer that starts (after a crash, a SIGKILL, a new pod on an old claim) and the
writer's ``drain`` both cut a torn record off the end of the last segment, so readers
never trip over half a write. Damage elsewhere in that segment is left where it is, and
so is every readable record after it: writing resumes in a new segment, and the reader,
finding the old one finished, reads it to its end and moves the damage to quarantine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sharelog.spool.format import (
    MAGIC,
    fsync_directory,
    list_segments,
    read_checkpoint,
    segment_name,
)
from sharelog.spool.salvage import is_torn, survey

log = logging.getLogger("sharelog.spool")


def recover_tail(directory: Path) -> tuple[int, int]:
    """Cut a torn tail off the last segment; return (next sequence, segment to write)."""
    segments = list_segments(directory)
    checkpoint = read_checkpoint(directory)
    floor = checkpoint.seq if checkpoint else 0
    if not segments:
        return floor, floor
    last = segments[-1]
    path = directory / segment_name(last)
    data = path.read_bytes()
    if len(data) < len(MAGIC):  # a crash between creating the segment and its magic
        _cut(path, 0)
        return max(last, floor), last
    if not data.startswith(MAGIC):
        log.error("spool: %s starts with a damaged magic; its records are read all the same",
                  path.name)  # fmt: skip
    found = survey(data, len(MAGIC))
    torn = found.end < len(data) and is_torn(data, found.end)
    damaged = found.skipped + (0 if torn else len(data) - found.end)
    if damaged:
        log.error(
            "spool: %s holds %d damaged bytes; its %d readable records are kept, the writer "
            "moves the damage to quarantine",
            path.name, damaged, found.records,
        )  # fmt: skip
    if torn:
        log.warning(
            "spool: cut a torn tail of %d bytes off %s (a crash mid-write); "
            "%d complete records kept",
            len(data) - found.end, path.name, found.records,
        )  # fmt: skip
        _cut(path, found.end)
    next_seq = max(last + found.records, floor)
    # Resume in a fresh segment, unless the last one holds nothing yet.
    return next_seq, last if found.records == 0 and last == next_seq else next_seq


def _cut(path: Path, size: int) -> None:
    """Truncate ``path`` to ``size`` bytes (0: a fresh magic instead), durably."""
    with path.open("r+b") as fh:
        fh.truncate(size)
        if not size:
            fh.write(MAGIC)
        fh.flush()
        os.fsync(fh.fileno())


def open_segment(directory: Path, first_seq: int) -> int:
    """The segment starting at ``first_seq``, for appending; its magic written if new."""
    path = directory / segment_name(first_seq)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if os.fstat(fd).st_size == 0:
        os.write(fd, MAGIC)
        fsync_directory(directory)
    return fd


def uncommitted_bytes(directory: Path) -> int:
    """Bytes the writer has not committed yet: what the size limit bounds.

    Disk use is at most this plus one segment, since the writer deletes a segment
    once the checkpoint has moved past it.
    """
    try:
        checkpoint = read_checkpoint(directory)
    except ValueError:
        checkpoint = None
    total = 0
    for seg in list_segments(directory):
        if checkpoint is not None and seg < checkpoint.segment:
            continue
        try:
            total += (directory / segment_name(seg)).stat().st_size
        except FileNotFoundError:
            continue
    if checkpoint is not None:
        total -= min(checkpoint.offset, total)
    return total
