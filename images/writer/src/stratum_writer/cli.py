"""``stratum-writer``: run (drain the spool), migrate (apply the schema), replay (dead letters).

``drain`` empties a spool no proxy writes to any more (a claim whose pod is gone) and
exits; it is the operator's drain Job. export-vitess and verify-vschema are steps of the
operator's Vitess keyspace Job.

Exit codes are ``ExitCode``. Every failure at start is one line on stderr naming the
cause, never the password.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sharelog import logfmt
from sharelog.event_loop import prefer_uvloop
from sharelog.gc_tuning import freeze_startup_heap
from sharelog.spool import SpoolProducer, SpoolReader
from sharelog.status_http import StatusServer
from stratum_writer import __version__, database, retention, vitess_keyspace
from stratum_writer.backends import Backend
from stratum_writer.config import ConfigError, WriterConfig, database_url, load_config
from stratum_writer.deadletters import DeadLetterFile, read_dead_letters
from stratum_writer.delivery import Delivery
from stratum_writer.drain import Drainer
from stratum_writer.exits import ExitCode, StartupError
from stratum_writer.metrics import WriterMetrics
from stratum_writer.redacted_output import redact_output, say
from stratum_writer.redaction import redact
from stratum_writer.retention import RetentionPolicy, RetentionReport

log = logging.getLogger("stratum_writer")


def _shard_list(text: str) -> list[str]:
    return [shard.strip() for shard in text.split(",") if shard.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stratum-writer", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"stratum-writer {__version__}")
    p.add_argument("--config", type=Path, help="JSON settings file (the operator's ConfigMap)")
    p.add_argument("--database-url-file", type=Path, help="file holding the connection URL")
    p.add_argument("--spool", dest="spool_dir", type=Path, help="spool directory")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="drain the spool into the database until SIGTERM")
    run.add_argument("--batch-size", type=int)
    run.add_argument("--batch-timeout-ms", type=int)
    run.add_argument("--workers", type=int)
    run.add_argument("--max-workers", type=int)
    run.add_argument("--workers-file", type=Path)
    run.add_argument("--listen", help="HOST:PORT for /metrics, /healthz, /readyz")
    run.add_argument("--drain-timeout", dest="drain_timeout_s", type=float)
    run.add_argument("--dead-letter-file", type=Path)
    run.add_argument("--dead-letter-max-bytes", type=int)
    run.add_argument("--pg-strategy", choices=["unnest", "copy"])
    run.add_argument("--migrate", action="store_true", help="apply migrations first")
    drain = sub.add_parser("drain", help="empty a spool no proxy writes to any more, then exit")
    drain.add_argument("--listen", help="HOST:PORT for /metrics, /healthz, /readyz")
    drain.add_argument("--drain-timeout", dest="drain_timeout_s", type=float)
    drain.add_argument(
        "--summary-file", type=Path, help="also write the JSON summary here (a termination log)"
    )
    migrate = sub.add_parser("migrate", help="apply pending schema migrations, then exit")
    migrate.add_argument(
        "--down", type=int, default=0, metavar="N", help="revert the N newest migrations"
    )
    migrate.add_argument(
        "--drop-shares", action="store_true",
        help="allow a down migration that drops the shares stored (refused without it)",
    )  # fmt: skip
    retain = sub.add_parser("retain", help="remove shares and rollups past their retention")
    for command in (migrate, retain):
        command.add_argument(
            "--vitess-shards", type=_shard_list, metavar="SHARDS",
            help="the Vitess keyspace's shards, comma-separated (-80,80-): each is seen to",
        )  # fmt: skip
    retain.add_argument("--share-days", dest="retention_share_days", type=int)
    retain.add_argument("--rollup-days", dest="retention_rollup_days", type=int)
    retain.add_argument(
        "--now", type=datetime.fromisoformat, help="the time to retain from (default: now)"
    )
    retain.add_argument(
        "--summary-file", type=Path, help="also write the JSON report here (a termination log)"
    )
    replay = sub.add_parser("replay", help="re-submit dead-lettered shares after a fix")
    replay.add_argument("file", type=Path)
    export = sub.add_parser(
        "export-vitess", help="write schema.sql and vschema.json for a Vitess keyspace"
    )
    export.add_argument("directory", type=Path)
    verify = sub.add_parser(
        "verify-vschema", help="compare a keyspace's VSchema (GetVSchema output) with ours"
    )
    verify.add_argument("applied", type=Path, help="file holding 'vtctldclient GetVSchema' output")
    return p


async def _run(config: WriterConfig, migrate_first: bool, *, drain_to: Path | None = None) -> int:
    """``run``; or, with ``drain_to`` (the summary file, or /dev/null), ``drain``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if drain_to is not None:
        backend = await database.connect_waiting(config, config.max_workers, stop)
        url = database_url(config)
        SpoolProducer(config.spool_dir).close_sync()  # cut a torn tail, as a proxy would
    else:
        backend, url = await database.connect(config, config.max_workers)
    metrics = WriterMetrics()
    version = await database.schema_ready(
        backend, url, migrate_first or backend.dialect == "sqlite"
    )
    await database.privileges_granted(backend, url)
    metrics.schema_version.set(version)
    metrics.backend_up.set(1)
    freeze_startup_heap()
    reader = SpoolReader(config.spool_dir, sealed=drain_to is not None)
    dead_letters = DeadLetterFile(config.dead_letters, config.dead_letter_max_bytes)
    metrics.dead_letter_limit.set(config.dead_letter_max_bytes)
    drainer: Drainer | None = None
    delivery = Delivery(
        backend,
        metrics,
        dead_letters,
        max_attempts=config.max_attempts,
        give_up=lambda: drainer is not None and drainer.should_give_up(),
        stopping=lambda: drainer is not None and drainer.stopping,
    )
    drainer = Drainer(
        reader,
        delivery,
        metrics,
        dead_letters,
        batch_size=config.batch_size,
        batch_timeout=config.batch_timeout_ms / 1000,
        workers=config.workers,
        workers_file=config.workers_file,
    )

    def ready() -> tuple[bool, str]:
        up = metrics.backend_up._value.get() == 1
        return up, "ready" if up else "database unavailable; shares wait in the spool"

    server = StatusServer(metrics.registry, ready, drainer.update_gauges)
    host, port = config.listen_address()
    bound = await server.start(host, port)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)  # "where is it stuck?", live
    log.info(
        "writing shares from %s to %s (schema %d, metrics on :%d)",
        config.spool_dir, redact(url), version, bound,
    )  # fmt: skip
    retaining = _retain_sqlite(config, backend, metrics, stop) if drain_to is None else None
    try:
        await drainer.run(stop, config.drain_timeout_s, until_empty=drain_to is not None)
    finally:
        if retaining is not None:
            retaining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retaining
        await server.close()
        await backend.close()
        reader.close()
    depth = reader.queue_depth()
    log.info("stopped; %d shares left in the spool", depth.events)
    if drain_to is None:
        return ExitCode.DONE
    # every dead letter beside this spool, this process's and any earlier writer's
    dead = (
        sum(1 for _ in read_dead_letters(config.dead_letters))
        if config.dead_letters.exists()
        else 0
    )
    quarantined = reader.quarantine.held_bytes()  # this drain's and any earlier reader's
    return _drain_summary(metrics, depth.events, dead, quarantined, drain_to)


def _retain_sqlite(
    config: WriterConfig, backend: Backend, metrics: WriterMetrics, stop: asyncio.Event
) -> asyncio.Task[None] | None:
    """SQLite's retention runs in its writer, hourly (docs/writer.md says why)."""
    if backend.dialect != "sqlite" or config.retention_share_days is None:
        return None

    def count(report: RetentionReport) -> None:
        for table, rows in report.removed.items():
            metrics.retention_removed.labels(table).inc(rows)
        metrics.retention_last_run.set_to_current_time()
        log.info("retention: %s", json.dumps(report.as_dict()))

    return asyncio.create_task(retention.retain_every(backend, _policy(config), stop, count))


def _drain_summary(
    metrics: WriterMetrics, left: int, dead: int, quarantined: int, path: Path
) -> int:
    """One JSON line on stdout and in ``path`` (the operator reads it from the pod's
    termination message); the exit code says whether the volume may go."""
    summary = {
        "stored": int(metrics.inserted._value.get()),
        "already_stored": int(metrics.duplicates._value.get()),
        "left": left,
        "dead_letters": dead,
        "quarantined_bytes": quarantined,
    }
    line = json.dumps(summary)
    print(line, flush=True)
    with contextlib.suppress(OSError):
        path.write_text(line)
    if left:
        return ExitCode.STOPPED_EARLY
    if quarantined:  # shares may be in those bytes: the volume stays for a person
        return ExitCode.SPOOL_DAMAGED
    return ExitCode.DEAD_LETTERS_LEFT if dead else ExitCode.DONE


async def _replay(config: WriterConfig, path: Path) -> int:
    if not path.exists():
        raise StartupError(f"no such dead-letter file: {path}")
    backend, _ = await database.connect(config, 1)
    metrics = WriterMetrics()
    failed_file = path.with_name(path.name + ".failed")
    failed_file.unlink(missing_ok=True)
    still = DeadLetterFile(failed_file)
    delivery = Delivery(backend, metrics, still, max_attempts=config.max_attempts)
    rows = []
    unreadable = 0
    for number, row, reason in read_dead_letters(path):
        if row is None:
            unreadable += 1
            print(f"{path}:{number}: skipped: {reason}", file=sys.stderr)
        else:
            rows.append(row)
    try:
        result = await delivery.deliver(rows) if rows else None
    finally:
        await backend.close()
    inserted = result.inserted if result else 0
    present = result.duplicates if result else 0
    print(
        f"replayed {len(rows)} shares: {inserted} inserted, {present} already stored, "
        f"{still.count} still failing" + (f" (in {failed_file})" if still.count else "")
        + (f", {unreadable} entries unreadable" if unreadable else "")
    )  # fmt: skip
    return ExitCode.STILL_FAILING if still.count or unreadable else ExitCode.DONE


def _dump_tasks() -> None:
    for task in asyncio.all_tasks():
        stack = io.StringIO()
        task.print_stack(limit=12, file=stack)
        log.warning("task %s:\n%s", task.get_name(), stack.getvalue())


def _vitess_files(args: argparse.Namespace) -> int:
    """The keyspace Job's first and last steps; they need no settings and no database."""
    if args.command == "export-vitess":
        for path in vitess_keyspace.export(args.directory):
            print(f"wrote {path}")
        return ExitCode.DONE
    try:
        applied = json.loads(args.applied.read_text())
    except (OSError, ValueError) as exc:
        print(f"stratum-writer: cannot read the applied VSchema: {exc}", file=sys.stderr)
        return ExitCode.CANNOT_START
    differences = vitess_keyspace.vschema_differences(
        json.loads(vitess_keyspace.vschema_text()), applied
    )
    for line in differences:
        print(f"stratum-writer: VSchema differs: {line}", file=sys.stderr)
    if not differences:
        print("VSchema verified: the keyspace holds the VSchema this writer needs")
    return ExitCode.STILL_FAILING if differences else ExitCode.DONE


# a command's own options, not settings
_COMMAND_OPTIONS = {"config", "command", "migrate", "file", "summary_file", "down",
                    "drop_shares", "now"}  # fmt: skip


def _policy(config: WriterConfig) -> RetentionPolicy:
    if config.retention_share_days is None or config.retention_rollup_days is None:
        raise StartupError("retain needs --share-days and --rollup-days (or the settings)")
    return RetentionPolicy(config.retention_share_days, config.retention_rollup_days)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("export-vitess", "verify-vschema"):
        return _vitess_files(args)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in _COMMAND_OPTIONS}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"stratum-writer: {exc}", file=sys.stderr)
        return ExitCode.CANNOT_START
    logfmt.configure(config.log_level)
    address = _address(config)
    redact_output(address)
    prefer_uvloop()
    try:
        if args.command == "migrate":
            return asyncio.run(database.migrate(config, args.down, args.drop_shares))
        if args.command == "retain":
            return asyncio.run(
                database.retain(config, _policy(config), args.now, args.summary_file)
            )
        if args.command == "replay":
            return asyncio.run(_replay(config, args.file))
        if args.command == "drain":
            return asyncio.run(_run(config, False, drain_to=args.summary_file or Path(os.devnull)))
        return asyncio.run(_run(config, args.migrate))
    except (ConfigError, StartupError) as exc:
        say(f"stratum-writer: {exc}", address)
        return exc.code if isinstance(exc, StartupError) else ExitCode.CANNOT_START


def _address(config: WriterConfig) -> str | None:
    """The database URL, for redaction's sake; None where there is none to read yet (the
    command that needs it then fails, saying why)."""
    try:
        return database_url(config)
    except ConfigError:
        return None


if __name__ == "__main__":
    sys.exit(main())
