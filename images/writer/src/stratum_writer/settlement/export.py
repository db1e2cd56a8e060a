"""``export-shares`` output: the shares behind a settlement, one per line, as CSV or
JSON lines, so a miner can check their part: the ``work`` of the accepted ones sums to
the row's ``accepted_work``, and ``digest`` over their ids is the row's digest.

Columns: the share's fields in ``FIELDS`` order (``share_id`` as hex, times as ISO 8601
UTC with microseconds), then ``work``: the credited work in 2^-32-difficulty units, as decimal text
(``sharelog.work.work_units`` of an accepted share; 0 for any other verdict).
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sharelog.event import ACCEPTED, DIFFICULTY, FIELDS, Row
from sharelog.work import work_units
from stratum_writer.settlement.core import digest

COLUMNS = (*FIELDS, "work")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMES = {FIELDS.index("submitted_at"), FIELDS.index("responded_at")}


class ExportFormat(enum.Enum):
    CSV = "csv"
    JSONL = "jsonl"


def credited_work(row: Row) -> int:
    return work_units(row[DIFFICULTY]) if row[ACCEPTED] else 0


def _value(index: int, value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if index in _TIMES and value is not None:
        at = _EPOCH + timedelta(microseconds=value)
        return at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return value


def record(row: Row) -> dict[str, Any]:
    """One share as exported: by column name."""
    values = {name: _value(i, v) for i, (name, v) in enumerate(zip(FIELDS, row, strict=True))}
    values["work"] = str(credited_work(row))  # decimal text: past 2^64 for big difficulties
    return values


def lines(rows: Iterable[Row], form: ExportFormat) -> Iterator[str]:
    """The export, line by line (CSV starts with its header)."""
    if form is ExportFormat.JSONL:
        for row in rows:
            yield orjson.dumps(record(row)).decode() + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(record(row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def summary(rows: Iterable[Row]) -> dict[str, Any]:
    """What the export's accepted shares add up to: a settlement row's own figures."""
    accepted = [row for row in rows if row[ACCEPTED]]
    return {
        "accepted_shares": len(accepted),
        "accepted_work": str(sum(credited_work(row) for row in accepted)),
        "digest": digest(row[0] for row in accepted).hex(),
    }
