"""How a share event is encoded inside a spool record.

A record payload is a JSON array: the codec version, then the event's fields in
``FIELDS`` order with ``share_id`` as hex. JSON rather than a packed struct because
dead letters and debugging read it directly, and orjson makes it about a microsecond
each way; the version leads so a future layout can be read beside this one.
"""

from __future__ import annotations

from typing import Final

import orjson

from sharelog.event import FIELDS, Row, ShareEvent

VERSION: Final = 1
_WIDTH: Final = len(FIELDS) + 1
# How every payload ``encode`` writes begins (orjson writes no spaces): the spool looks
# for it to find the next record after damaged bytes (``sharelog.spool.salvage``).
PAYLOAD_PREFIX: Final = b"[%d," % VERSION


class PayloadError(ValueError):
    """A record whose checksum held but whose content is not a share event we can read."""


def encode(event: ShareEvent) -> bytes:
    return orjson.dumps(
        (
            VERSION,
            event.share_id.hex(),
            event.pool,
            event.upstream,
            event.user_identity,
            event.worker,
            event.shard_key,
            event.job_id,
            event.extranonce1,
            event.extranonce2,
            event.ntime,
            event.nonce,
            event.version_bits,
            event.difficulty,
            event.share_difficulty,
            event.accepted,
            event.error_code,
            event.error_message,
            event.block_candidate,
            event.submitted_at,
            event.responded_at,
            event.proxy_instance,
        )
    )


def decode(payload: bytes | memoryview) -> Row:
    """Decode one payload to a row; raise PayloadError when it is not one of ours."""
    try:
        values = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from exc
    if type(values) is not list or len(values) != _WIDTH or values[0] != VERSION:
        raise PayloadError("not a version-1 share event array")
    try:
        values[1] = bytes.fromhex(values[1])
    except (TypeError, ValueError) as exc:
        raise PayloadError("share_id is not hex") from exc
    return tuple(values[1:])  # shapes past here are checked by the database


def decode_many(payloads: list[bytes]) -> tuple[list[Row], list[tuple[bytes, str]]]:
    """Decode a batch: (rows, [(payload, reason)] for those that are not share events).

    One JSON parse for the whole batch instead of one per record; only when that fails
    (a damaged record somewhere) are records parsed one by one to single out the bad ones.
    """
    try:
        arrays = orjson.loads(b"[" + b",".join(payloads) + b"]")
    except orjson.JSONDecodeError:
        arrays = None
    if arrays is not None and len(arrays) == len(payloads):
        try:
            rows = [
                (bytes.fromhex(a[1]), *a[2:])
                for a in arrays
                if type(a) is list and len(a) == _WIDTH and a[0] == VERSION
            ]
        except (TypeError, ValueError):
            rows = []
        if len(rows) == len(payloads):
            return rows, []  # shapes past the width are checked by the database
    rows, bad = [], []
    for payload in payloads:
        try:
            rows.append(decode(payload))
        except PayloadError as exc:
            bad.append((payload, str(exc)))
    return rows, bad


def to_json(row: Row) -> dict[str, object]:
    """A row as a JSON-ready mapping, for dead letters and humans."""
    out: dict[str, object] = dict(zip(FIELDS, row, strict=True))
    out["share_id"] = row[0].hex()
    return out


def from_json(obj: dict[str, object]) -> Row:
    """The inverse of ``to_json``; raises PayloadError on a mapping that is not an event."""
    try:
        values = [obj[name] for name in FIELDS]
        values[0] = bytes.fromhex(str(values[0]))
    except (KeyError, ValueError) as exc:
        raise PayloadError(f"not a share event: {exc}") from exc
    return tuple(values)  # type: ignore[return-value] # checked by the database
