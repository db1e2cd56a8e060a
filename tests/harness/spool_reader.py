"""Every event a spool directory holds, read from the files as they are on disk; and the
bit rot the damage tests inflict on them."""

from __future__ import annotations

from pathlib import Path

from sharelog.codec import decode
from sharelog.event import ShareEvent
from sharelog.spool.format import MAGIC, list_segments, parse, segment_name


def spooled(directory: Path) -> list[ShareEvent]:
    """All complete records of all segments, checkpoint or not, in spool order."""
    events = []
    for segment in list_segments(directory):
        data = (directory / segment_name(segment)).read_bytes()
        if data.startswith(MAGIC):
            events += [ShareEvent.from_row(decode(p)) for _, p in parse(data, len(MAGIC))]
    return events


def record_spans(segment: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record of a segment file, header included."""
    data, out, at = segment.read_bytes(), [], len(MAGIC)
    for end, _ in parse(data, len(MAGIC)):
        out.append((at, end - at))
        at = end
    return out


def rot(segment: Path, offset: int, count: int = 3) -> bytes:
    """Bit rot: ``count`` bytes inverted at ``offset``; returns them as they are now."""
    with segment.open("r+b") as fh:
        fh.seek(offset)
        rotten = bytes(b ^ 0xFF for b in fh.read(count))
        fh.seek(offset)
        fh.write(rotten)
    return rotten
