"""Replies leave in the order the requests came, as they would from a pool connection.

Some firmware sends every submit with one id and pairs replies by order alone. A pool
connection preserves that order; a proxy that answers some requests itself (a duplicate,
a stale job) while earlier ones still wait for the pool would break it and credit one
share with another's verdict. So each request takes a place in line when it arrives, an
answer fills its place, and only the filled head of the line is released.
"""

from __future__ import annotations


class ReplySlot:
    """One request's place in line; ``line`` is its encoded reply once known."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line: bytes | None = None


class ReplyQueue:
    """A list, not a deque: it is short or empty for nearly every miner, and an empty
    deque costs 600 bytes where a list costs 56 (this is per connection, times 100,000)."""

    __slots__ = ("_line",)

    def __init__(self) -> None:
        self._line: list[ReplySlot] = []

    def __len__(self) -> int:
        return len(self._line)

    def reserve(self) -> ReplySlot:
        slot = ReplySlot()
        self._line.append(slot)
        return slot

    def answer(self, slot: ReplySlot, reply: bytes, out: list[bytes]) -> None:
        """Fill ``slot`` and move every reply now at the head of the line to ``out``."""
        slot.line = reply
        released = 0
        for waiting in self._line:
            if waiting.line is None:
                break
            out.append(waiting.line)
            released += 1
        del self._line[:released]
