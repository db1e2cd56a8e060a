"""The ``settle`` and ``export-shares`` commands: the database opened, the schema
checked, the run done, its report printed. The work is ``settlement`` 's."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sharelog.event import POOL, SUBMITTED_AT
from stratum_writer import database
from stratum_writer.backends import Backend, redact
from stratum_writer.backends.base import load_migrations
from stratum_writer.config import WriterConfig
from stratum_writer.deadletters import read_dead_letters
from stratum_writer.delivery import describe
from stratum_writer.exits import ExitCode, StartupError
from stratum_writer.settlement import (
    SettlementRefused,
    SettleRequest,
    export_shares,
    settle_day,
    store_for,
)
from stratum_writer.settlement.core import ClosedHow, NothingToSettle, PoolDay, Terms
from stratum_writer.settlement.export import ExportFormat, lines, summary


@dataclass(frozen=True)
class SettleArgs:
    pool_day: PoolDay
    terms: Terms
    close_anyway: date | None
    reason: str | None
    dead_letter_files: Sequence[Path]
    summary_file: Path | None


def settlement_version(dialect: str) -> int:
    """The schema version that made the settlement tables, in ``dialect``'s history."""
    return next(m.version for m in load_migrations(dialect) if "settlement" in m.name)


async def _open(config: WriterConfig) -> tuple[Backend, str]:
    backend, url = await database.connect(config, 1)
    version = await database.schema_ready(backend, url, False)
    if version < (needed := settlement_version(backend.dialect)):
        await backend.close()
        raise StartupError(
            f"the schema on {redact(url)} is at version {version}, before settlement "
            f"({needed}): run 'stratum-writer migrate'",
            ExitCode.NOT_MIGRATED,
        )
    return backend, url


def _closing(args: SettleArgs) -> tuple[ClosedHow, str]:
    """How the day may be closed. Completeness is not proven yet (no spool low-water
    marks), so only by hand: never silently."""
    day = args.pool_day.day
    if args.close_anyway is None:
        raise StartupError(
            f"day {day}: this writer cannot prove a day complete yet (no spool low-water "
            f"marks): to settle it anyway, say so with --close-anyway {day} --reason TEXT",
            ExitCode.SETTLEMENT_REFUSED,
        )
    if args.close_anyway != day:
        raise StartupError(
            f"--close-anyway names {args.close_anyway}, not the day settled ({day})",
            ExitCode.SETTLEMENT_REFUSED,
        )
    if not args.reason or not args.reason.strip():
        raise StartupError("--close-anyway needs --reason TEXT: it is kept on record")
    return ClosedHow.CLOSED_ANYWAY, args.reason.strip()


def dead_lettered(files: Sequence[Path], pool_day: PoolDay) -> int:
    """The shares of the pool day set aside in these dead-letter files."""
    count = 0
    for path in files:
        for _, row, _ in read_dead_letters(path):
            if row is not None and row[POOL] == pool_day.pool and pool_day.holds(row[SUBMITTED_AT]):
                count += 1
    return count


async def settle(config: WriterConfig, args: SettleArgs) -> int:
    how, reason = _closing(args)
    try:
        dead = dead_lettered(args.dead_letter_files, args.pool_day)
    except OSError as exc:
        raise StartupError(f"cannot read a dead-letter file: {exc}") from None
    now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
    request = SettleRequest(args.pool_day, args.terms, how, reason, dead, now_us)
    backend, url = await _open(config)
    try:
        async with store_for(backend) as store:
            report = await settle_day(store, request)
    except (SettlementRefused, NothingToSettle) as exc:
        raise StartupError(str(exc), ExitCode.SETTLEMENT_REFUSED) from None
    except Exception as exc:
        raise StartupError(f"settlement failed on {redact(url)}: {describe(exc)}") from None
    finally:
        await backend.close()
    line = json.dumps(report.as_dict())
    print(line, flush=True)
    if args.summary_file is not None:
        with contextlib.suppress(OSError):
            args.summary_file.write_text(line)
    return ExitCode.DONE


async def export(config: WriterConfig, pool: str, day: date, user: str | None,
                 worker: str | None, form: ExportFormat) -> int:  # fmt: skip
    """The shares on stdout; what their accepted ones add up to on stderr, one JSON line."""
    backend, url = await _open(config)
    try:
        async with store_for(backend) as store:
            rows = await export_shares(store, pool, day, user, worker)
    except SettlementRefused as exc:
        raise StartupError(str(exc), ExitCode.SETTLEMENT_REFUSED) from None
    except Exception as exc:
        raise StartupError(f"export failed on {redact(url)}: {describe(exc)}") from None
    finally:
        await backend.close()
    sys.stdout.writelines(lines(rows, form))
    sys.stdout.flush()
    print(json.dumps(summary(rows)), file=sys.stderr)
    return ExitCode.DONE
