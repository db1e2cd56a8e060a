"""MySQL literals: hostile text stays text, impossible values are refused before the server."""

from __future__ import annotations

import math

import pytest

from sharelog.synthetic import synthetic_events
from stratum_writer.backends.sql_literals import real, row_literal, text, timestamp


def test_text_escapes_everything_mysql_treats_specially() -> None:
    assert text("a'b\\c\"d\0\n\r\x1a") == "'a\\'b\\\\c\\\"d\\0\\n\\r\\Z'"
    assert text(None) == "NULL"


def test_timestamps_are_utc_with_microseconds() -> None:
    assert timestamp(1_767_225_600_123_456) == "'2026-01-01 00:00:00.123456'"


@pytest.mark.parametrize("bad", [math.inf, math.nan, "1.0"])
def test_non_finite_or_non_numbers_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        real(bad)  # type: ignore[arg-type]


def test_a_row_has_one_literal_per_field() -> None:
    row = next(synthetic_events(1)).as_row()
    literal = row_literal(row)
    assert literal.startswith("(X'") and literal.endswith(")")
    assert literal.count(",") >= 20


def test_hostile_text_in_any_text_field_is_escaped() -> None:
    row = list(next(synthetic_events(1)).as_row())
    row[4] = "rig'); DROP TABLE share_events; --\\"
    literal = row_literal(tuple(row))  # type: ignore[arg-type]
    assert "'rig\\'); DROP TABLE share_events; --\\\\'" in literal


@pytest.mark.parametrize("index", [1, 5, 14, 18])
def test_wrong_types_are_refused(index: int) -> None:
    row = list(next(synthetic_events(1)).as_row())
    row[index] = 1.5
    with pytest.raises(ValueError):
        row_literal(tuple(row))  # type: ignore[arg-type]
