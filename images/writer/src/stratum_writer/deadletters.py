"""Dead letters: shares the database refused for their content, kept with the reason.

One JSON object per line, fsynced before the spool checkpoint moves past the share, so a
poison event is never lost, only set aside. ``stratum-writer replay FILE`` re-submits.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from sharelog.codec import PayloadError, from_json, to_json
from sharelog.event import Row


class DeadLetterFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0

    def add_row(self, row: Row, reason: str) -> None:
        self._append({"reason": reason, "at": time.time(), "event": to_json(row)})

    def add_payload(self, payload: bytes, reason: str) -> None:
        """A spool record that is not a readable event: kept raw for a human to look at."""
        raw = base64.b64encode(payload).decode()
        self._append({"reason": reason, "at": time.time(), "raw": raw})

    def _append(self, entry: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(entry) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.count += 1


def read_dead_letters(path: str | os.PathLike[str]) -> Iterator[tuple[int, Row | None, str]]:
    """Yield ``(line number, row or None, reason)``; None for entries without an event."""
    with Path(path).open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield number, None, "line is not JSON"
                continue
            event = entry.get("event") if isinstance(entry, dict) else None
            if not isinstance(event, dict):
                yield number, None, "entry holds no share event (raw spool record)"
                continue
            try:
                yield number, from_json(event), str(entry.get("reason", ""))
            except PayloadError as exc:
                yield number, None, str(exc)
