"""A dashboard's SQL as Grafana sends it: its macros and variables expanded the way
Grafana's PostgreSQL and MySQL data sources document them, so the very query runs on
the real servers (no Grafana is to be had here). Only the macros our dashboards use
are known; any other ``$__`` left over fails the test rather than passing unexpanded.

Variables are known only as ``${name:sqlstring}``, Grafana's SQL string format: each
value in single quotes, a single quote in it doubled, several joined by commas. Any
other form (``$pool``, ``'$pool'``, ``${pool}``) fails the test: Grafana would put the
value into the SQL as it is. Values go in last, so nothing in one is read as a macro.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

_GROUP = re.compile(r"\$__timeGroup(Alias)?\(\s*([\w.]+)\s*,\s*'?(\d+)([smh])'?\s*\)")
_FILTER = re.compile(r"\$__timeFilter\(\s*([\w.]+)\s*\)")
_UNITS = {"s": 1, "m": 60, "h": 3600}
_VARIABLE = re.compile(r"\$\{(\w+):sqlstring\}")


def sqlstring(values: str | Sequence[str]) -> str:
    """Grafana's ``sqlstring`` format of a variable's value(s)."""
    chosen = [values] if isinstance(values, str) else list(values)
    return ",".join("'" + value.replace("'", "''") + "'" for value in chosen)


def expand(sql: str, dialect: str, start: datetime, end: datetime, *, interval_s: int,
           variables: Mapping[str, str | Sequence[str]]) -> str:  # fmt: skip
    """``dialect``: postgres or mysql (MariaDB and MySQL share Grafana's MySQL source)."""
    sql = sql.replace("$__interval_ms", str(interval_s * 1000))
    sql = sql.replace("$__interval", f"{interval_s}s")
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))
    if dialect == "postgres":

        def moment(t: datetime) -> str:
            return f"'{t.strftime('%Y-%m-%dT%H:%M:%SZ')}'"

        def group(column: str, seconds: int) -> str:
            return f"floor(extract(epoch from {column})/{seconds})*{seconds}"
    else:

        def moment(t: datetime) -> str:
            return f"FROM_UNIXTIME({int(t.timestamp())})"

        def group(column: str, seconds: int) -> str:
            return f"cast(cast(UNIX_TIMESTAMP({column})/({seconds}) as signed)*{seconds} as signed)"

    sql = _GROUP.sub(lambda m: group(m[2], int(m[3]) * _UNITS[m[4]])
                     + (' AS "time"' if m[1] else ""), sql)  # fmt: skip
    sql = _FILTER.sub(lambda m: f"{m[1]} BETWEEN {moment(start)} AND {moment(end)}", sql)
    sql = sql.replace("$__timeFrom()", moment(start)).replace("$__timeTo()", moment(end))
    left = re.findall(r"\$\{[^}]*\}?|\$\w+", _VARIABLE.sub("", sql))
    assert not left, f"not expanded: {left} in {sql}"
    unknown = set(_VARIABLE.findall(sql)) - set(variables)
    assert not unknown, f"no value for {unknown} in {sql}"
    return _VARIABLE.sub(lambda m: sqlstring(variables[m[1]]), sql)
