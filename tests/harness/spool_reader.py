"""Every event a spool directory holds, read from the files as they are on disk."""

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
