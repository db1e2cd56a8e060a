"""Dead letters: shares the database refused for their content, kept with the reason.

One JSON object per line, fsynced before the spool checkpoint moves past the share, so a
poison event is never lost, only set aside. ``stratum-writer replay FILE`` re-submits.

The file has a cap (``dead_letter_max_bytes``): it lies on the spool's volume. An entry
that would take it past the cap is refused with ``DeadLettersFull``, and the writer then
keeps the share in the spool instead (``delivery.py``).
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


class DeadLettersFull(Exception):
    """The dead-letter file is at its cap: what would go there stays where it is."""


class DeadLetterFile:
    def __init__(self, path: str | os.PathLike[str], max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes  # None: no cap (replay's file of shares still failing)
        self.count = 0

    def size(self) -> int:
        """Its size now (a person may have moved it away after a replay)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def add_row(self, row: Row, reason: str) -> None:
        self._append({"reason": reason, "at": time.time(), "event": to_json(row)})

    def add_payload(self, payload: bytes, reason: str) -> None:
        """A spool record that is not a readable event: kept raw for a human to look at."""
        raw = base64.b64encode(payload).decode()
        self._append({"reason": reason, "at": time.time(), "raw": raw})

    def _append(self, entry: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(entry) + b"\n"
        if self.max_bytes is not None:
            size = self.size()
            if size + len(line) > self.max_bytes:
                raise DeadLettersFull(
                    f"the dead-letter file {self.path} holds {size} bytes of its "
                    f"{self.max_bytes}-byte cap"
                )
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
