"""Replies leave in the order the requests came, as they would from a pool connection.

Some firmware sends every submit with one id and pairs replies by order alone. A pool
connection preserves that order; a proxy that answers some requests itself (a duplicate,
a stale job) while earlier ones still wait for the pool would break it and credit one
share with another's verdict. So each request takes a place in line when it arrives, an
answer fills its place, and only the filled head of the line is released.
"""

from __future__ import annotations

from collections import deque


class ReplySlot:
    """One request's place in line; ``line`` is its encoded reply once known."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line: bytes | None = None


class ReplyQueue:
    def __init__(self) -> None:
        self._line: deque[ReplySlot] = deque()

    def __len__(self) -> int:
        return len(self._line)

    def reserve(self) -> ReplySlot:
        slot = ReplySlot()
        self._line.append(slot)
        return slot

    def answer(self, slot: ReplySlot, reply: bytes, out: list[bytes]) -> None:
        """Fill ``slot`` and move every reply now at the head of the line to ``out``."""
        slot.line = reply
        line = self._line
        while line:
            head = line[0].line
            if head is None:
                return
            line.popleft()
            out.append(head)
