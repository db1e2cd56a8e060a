"""The benchmark's rows as the baselines feed them to each database's own tools."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sharelog.event import FIELDS, Row
from stratum_writer.backends.sql_literals import timestamp


def csv_rows(
    rows: Iterable[Row], *, null: str, bytes_fmt: Callable[[bytes], str]
) -> Iterable[list[str]]:
    for r in rows:
        out = []
        for name, v in zip(FIELDS, r, strict=True):
            if v is None:
                out.append(null)
            elif name == "share_id":
                out.append(bytes_fmt(v))  # type: ignore[arg-type]
            elif name in ("submitted_at", "responded_at"):
                out.append(timestamp(v)[1:-1] + ("+00" if null == "" else ""))  # type: ignore[arg-type]
            elif isinstance(v, bool):
                out.append(("t" if v else "f") if null == "" else ("1" if v else "0"))
            else:
                out.append(str(v))
        yield out


def my_params(r: Row) -> tuple[Any, ...]:
    """A row as aiomysql parameters (share_id as hex: aiomysql 0.3 can't escape bytes
    with PyMySQL 1.2)."""
    values: list[Any] = list(r)
    values[0] = r[0].hex()
    values[18] = timestamp(r[18])[1:-1]
    values[19] = None if r[19] is None else timestamp(r[19])[1:-1]
    return tuple(values)
