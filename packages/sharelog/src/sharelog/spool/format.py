"""The on-disk layout of the spool, defined once for the producer and the consumer.

A spool directory holds segment files named by the sequence number of their first
record (``00000000000000000042.seg``), so event counts follow from names without
reading, one ``checkpoint.json`` written by the consumer, and the writer's dead letters
(``dead-letters.jsonl``, shares the database refused): on the same volume, so the
producer's size limit counts them too.

A segment is an 8-byte magic, then records: ``<u32 length><u32 crc32(payload)><payload>``.
The producer writes whole records in one ``write`` and finishes a segment before it
creates the next, so once a segment has a successor its bytes are final: what a reader
finds there after looking at the directory is all there will be. Bytes that are no
record are read past (``salvage.py``) and copied to ``quarantine.jsonl``
(``quarantine.py``) before the checkpoint moves past them.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAGIC: Final = b"SHLOG\x00\x00\x01"
HEADER: Final = struct.Struct("<II")
MAX_RECORD: Final = 1 << 20  # a share event is ~400 bytes; anything near this is corruption
SUFFIX: Final = ".seg"
CHECKPOINT: Final = "checkpoint.json"
DEAD_LETTERS: Final = "dead-letters.jsonl"
QUARANTINE: Final = "quarantine.jsonl"  # what the reader could not read (spool/quarantine.py)

crc32 = zlib.crc32


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the spool: segment (its first record's sequence), byte offset, and the
    sequence number of the record that starts there."""

    segment: int
    offset: int
    seq: int

    @classmethod
    def start_of(cls, segment: int) -> Position:
        return cls(segment, len(MAGIC), segment)


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """Segment ids (first sequence numbers) in order."""
    out = []
    for entry in os.scandir(directory):
        name = entry.name
        if name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit():
            out.append(int(name[: -len(SUFFIX)]))
    out.sort()
    return out


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), crc32(payload)) + payload


class Damage(Exception):
    """The bytes where parsing stopped are not a valid record; the message says why (the
    caller knows where)."""


def parse(buf: bytes | memoryview, start: int = 0) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(end_offset, payload)`` for each complete record in ``buf`` from ``start``.

    Stops silently at an incomplete record (the caller decides whether that is a write
    still in flight or a torn tail) and raises Damage at a record that cannot be right.
    """
    view = memoryview(buf)
    size = len(view)
    pos = start
    unpack = HEADER.unpack_from
    hsize = HEADER.size
    while pos + hsize <= size:
        length, checksum = unpack(view, pos)
        if length == 0 or length > MAX_RECORD:
            raise Damage(f"impossible record length {length}")
        end = pos + hsize + length
        if end > size:
            return
        payload = view[pos + hsize : end]
        if crc32(payload) != checksum:
            raise Damage("checksum mismatch")
        yield end, payload
        pos = end


def evidence_bytes(directory: Path) -> int:
    """The size of what the writer set aside beside the spool, on the same volume: the
    dead-letter file and the quarantine (0 for a file that isn't there). Both count
    against the spool's size limit."""
    total = 0
    for name in (DEAD_LETTERS, QUARANTINE):
        with contextlib.suppress(FileNotFoundError):
            total += (directory / name).stat().st_size
    return total


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(directory: Path, position: Position) -> None:
    """Atomically record that everything before ``position`` is committed."""
    tmp = directory / (CHECKPOINT + ".tmp")
    body = json.dumps(
        {"segment": position.segment, "offset": position.offset, "seq": position.seq}
    ).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / CHECKPOINT)
    fsync_directory(directory)


def read_checkpoint(directory: Path) -> Position | None:
    try:
        raw = json.loads((directory / CHECKPOINT).read_bytes())
        return Position(int(raw["segment"]), int(raw["offset"]), int(raw["seq"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable spool checkpoint {directory / CHECKPOINT}: {exc}") from exc
