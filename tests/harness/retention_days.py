"""Days of shares for retention tests: the clock is moved (``retain --now``), never
slept. The days start a month ahead of the real clock: ``migrate`` (run now) has made
the partitions up to the day after tomorrow, and ``retain`` makes the rest."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from harness.writer import WriterProcess
from sharelog.event import ShareEvent
from sharelog.synthetic import synthetic_events

BASE = datetime.combine(datetime.now(UTC).date() + timedelta(days=30), datetime.min.time(), UTC)


def day(n: int, hour: int = 12) -> datetime:
    return BASE + timedelta(days=n, hours=hour)


def us(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000


def _retain_args(now: datetime, shares: int, rollups: int) -> list[str]:
    return ["retain", "--share-days", str(shares), "--rollup-days", str(rollups),
            "--now", now.isoformat()]  # fmt: skip


def _report(stdout: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return report


def retain(
    writer: WriterProcess, now: datetime, shares: int = 2, rollups: int = 3
) -> dict[str, Any]:
    """One ``retain`` run at ``now``: its JSON report."""
    out = writer.run_command(*_retain_args(now, shares, rollups))
    assert out.returncode == 0, out.stderr
    return _report(out.stdout)


def retain_twice_at_once(
    writer: WriterProcess, now: datetime, shares: int, rollups: int
) -> list[dict[str, Any]]:
    """Two ``retain`` runs started together, both to succeed: their reports."""
    argv = writer.command(*_retain_args(now, shares, rollups))
    runs = [subprocess.Popen(argv, env=writer.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outs = [r.communicate(timeout=180) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outs
    return [_report(out) for out, _ in outs]


def days_of_shares(first: int, last: int, per_day: int) -> list[ShareEvent]:
    """per_day shares early in each day from day ``first`` to day ``last``."""
    events: list[ShareEvent] = []
    for n in range(first, last + 1):
        events += list(synthetic_events(per_day, seed=100 + n, start_us=us(day(n, 0))))
    return events
