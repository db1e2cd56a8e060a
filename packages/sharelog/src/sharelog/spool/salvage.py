"""Reading past damage: where the next record starts after bytes that are no record.

Pure, bytes in and offsets out. The reader, the queue-depth count and start-up recovery
all follow these rules, so they agree on what a record is and how many there are:

- records follow one another (``format.parse``); one whose length or checksum can't be
  right is damage, and so is one cut short that has a record after it;
- after damage, the next record is the first place where a header, its length and its
  checksum agree *and* the payload decodes as a share event. The checksum covers the
  payload alone, so a header can agree with garbage by chance; a payload that also
  decodes can't;
- a record cut short at the very end, with nothing readable after it, is a write in
  flight while the producer may still finish it, and otherwise a torn write (a crash
  mid-write: it was never whole, so never told).

Records lost in damage are not counted: a record's sequence number is the count of
readable records before it, the producer names its next segment by the same count, and
a reader that crosses into a segment named otherwise takes the name as the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from sharelog.codec import PAYLOAD_PREFIX, PayloadError, decode
from sharelog.spool.format import HEADER, MAX_RECORD, Damage, crc32, parse


@dataclass(frozen=True, slots=True)
class Survey:
    """What a walk over a segment's bytes found."""

    records: int  # readable records
    end: int  # just past the last of them: what follows is unreadable (or nothing)
    skipped: int  # damaged bytes crossed between readable records


def next_record(buf: bytes, start: int) -> int | None:
    """The offset of the first record that counts after ``start`` (not at it), or None."""
    view = memoryview(buf)
    size, hsize = len(buf), HEADER.size
    at = buf.find(PAYLOAD_PREFIX, start + 1 + hsize)
    while at >= 0:
        length, checksum = HEADER.unpack_from(buf, at - hsize)
        end = at + length
        if 0 < length <= MAX_RECORD and end <= size:
            payload = view[at:end]
            if crc32(payload) == checksum and _is_share_event(payload):
                return at - hsize
        at = buf.find(PAYLOAD_PREFIX, at + 1)
    return None


def _is_share_event(payload: memoryview) -> bool:
    try:
        decode(payload)
    except PayloadError:
        return False
    return True


def starts_with_record(buf: bytes) -> bool:
    """True when ``buf`` begins with a whole record whose length and checksum agree."""
    try:
        return next(parse(buf), None) is not None
    except Damage:
        return False


def damage_at_start(buf: bytes) -> str | None:
    """Why the record ``buf`` begins with can't be right; None when it is whole and right,
    or only cut short by the end of ``buf``."""
    try:
        next(parse(buf), None)
    except Damage as exc:
        return str(exc)
    return None


def is_torn(buf: bytes, start: int) -> bool:
    """True when the bytes from ``start`` to the end are the beginning of one record:
    fewer than a header, or a header whose record runs past the end."""
    if len(buf) - start < HEADER.size:
        return True
    length: int = HEADER.unpack_from(buf, start)[0]
    return 0 < length <= MAX_RECORD and start + HEADER.size + length > len(buf)


def survey(buf: bytes, start: int) -> Survey:
    """Walk the records from ``start``, crossing damage wherever a record follows it."""
    records, skipped, pos = 0, 0, start
    while True:
        stopped = pos
        try:
            for stopped, _ in parse(buf, pos):  # noqa: B007 - the last end is where it stopped
                records += 1
        except Damage:
            pass
        resume = next_record(buf, stopped) if stopped < len(buf) else None
        if resume is None:
            return Survey(records, stopped, skipped)
        skipped += resume - stopped
        pos = resume
