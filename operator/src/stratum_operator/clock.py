"""Time as Kubernetes writes it: RFC 3339 in UTC, which ``kubectl describe`` shows as a
time (an epoch number in status would read as ``1.7957e+09``)."""

from __future__ import annotations

import calendar
import time

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def timestamp(at: float | None = None) -> str:
    return time.strftime(_FORMAT, time.gmtime(time.time() if at is None else at))


def seconds(stamp: str | None) -> float:
    """The epoch seconds of a ``timestamp()``; 0 for none."""
    return float(calendar.timegm(time.strptime(stamp, _FORMAT))) if stamp else 0.0
