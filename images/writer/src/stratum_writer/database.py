"""The commands that open the database and look after it: connecting (waiting out an
outage where that is the right thing), the schema check every writer makes at start,
``migrate`` and ``retain``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from stratum_writer import retention
from stratum_writer.backends import Backend, open_backend
from stratum_writer.backends.base import MigrationRefused, latest_migration
from stratum_writer.config import WriterConfig, database_url
from stratum_writer.delivery import describe
from stratum_writer.exits import ExitCode, StartupError
from stratum_writer.redaction import redact
from stratum_writer.retention import RetentionPolicy

log = logging.getLogger("stratum_writer")

_CONNECT_RETRY_CAP_S = 30.0


async def connect(config: WriterConfig, pool_size: int) -> tuple[Backend, str]:
    url = database_url(config)
    try:
        backend = open_backend(
            url, pg_strategy=config.pg_strategy, vitess_shards=config.vitess_shards
        )
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    try:
        await asyncio.wait_for(backend.connect(pool_size), 15)
    except Exception as exc:
        raise StartupError(
            f"cannot connect to {redact(url)}: {describe(exc)}", unreachable=True
        ) from None
    return backend, url


async def connect_waiting(config: WriterConfig, pool_size: int, stop: asyncio.Event) -> Backend:
    """For ``drain``: a database that is down is an outage to wait out, not a reason to exit
    (its Job would burn its retries on it); a wrong URL still fails at once."""
    delay = 1.0
    while True:
        try:
            return (await connect(config, pool_size))[0]
        except StartupError as exc:
            if not exc.unreachable:
                raise
            log.warning("%s; retrying in %.0fs", exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            raise StartupError("stopped while waiting for the database", ExitCode.STOPPED_EARLY)
        delay = min(delay * 2, _CONNECT_RETRY_CAP_S)


async def migrate(config: WriterConfig, down: int, drop_shares: bool) -> int:
    backend, url = await connect(config, 1)
    try:
        done = await backend.migrate(down=down, drop_shares=drop_shares)
        version = await backend.schema_version()
        if not down:  # PostgreSQL: today's partition and the days ahead, from the start
            await retention.prepare(backend, datetime.now(UTC))
    except MigrationRefused as exc:
        raise StartupError(f"{redact(url)}: {exc}", ExitCode.SCHEMA_REFUSED) from None
    except Exception as exc:
        raise StartupError(f"migration failed on {redact(url)}: {describe(exc)}") from None
    finally:
        await backend.close()
    what = "reverted" if down else "applied"
    log.info("schema at version %d; %s now: %s", version, what, done or "none")
    print(f"schema version {version} ({what}: {', '.join(map(str, done)) or 'none'})")
    return ExitCode.DONE


async def schema_ready(backend: Backend, url: str, migrate_first: bool) -> int:
    """The schema version a writer can run on; it migrates first when told (SQLite
    always: its database is the pod's own file). Closes the backend when it can't."""
    try:
        if migrate_first or backend.dialect == "sqlite":
            await backend.migrate()
        version = await backend.schema_version()
    except MigrationRefused as exc:
        await backend.close()
        raise StartupError(f"{redact(url)}: {exc}", ExitCode.SCHEMA_REFUSED) from None
    except Exception as exc:
        await backend.close()
        raise StartupError(f"cannot read the schema on {redact(url)}: {describe(exc)}") from None
    if version == 0:
        await backend.close()
        raise StartupError(
            f"the schema on {redact(url)} is not migrated: run 'stratum-writer migrate'",
            ExitCode.NOT_MIGRATED,
        )
    if version > (known := latest_migration(backend.dialect)):
        await backend.close()
        raise StartupError(
            f"the schema on {redact(url)} is at version {version}, newer than this writer "
            f"knows ({known}): run the writer that migrated it, or migrate down with it",
            ExitCode.SCHEMA_REFUSED,
        )
    return version


async def privileges_granted(backend: Backend, url: str) -> None:
    """A writer's user lacking a grant storing needs fails at start, naming it, rather
    than retrying a refused batch forever. Closes the backend when it fails."""
    try:
        missing = await backend.missing_privileges()
    except Exception as exc:
        await backend.close()
        raise StartupError(f"cannot check privileges on {redact(url)}: {describe(exc)}") from None
    if missing:
        await backend.close()
        raise StartupError(
            f"the database user of {redact(url)} lacks what the writer needs: "
            f"{'; '.join(missing)} (docs/writer.md lists the grants)"
        )


async def retain(config: WriterConfig, policy: RetentionPolicy, now: datetime | None,
                 summary_file: Path | None) -> int:  # fmt: skip
    """One retention run (the operator's CronJob): one JSON line of what it did, on
    stdout and in ``summary_file`` (the Job's termination message)."""
    backend, url = await connect(config, 1)
    try:
        await schema_ready(backend, url, backend.dialect == "sqlite")
        report = await retention.retain(backend, policy, now or datetime.now(UTC))
    except StartupError:
        raise
    except Exception as exc:
        raise StartupError(f"retention failed on {redact(url)}: {describe(exc)}") from None
    finally:
        await backend.close()
    line = json.dumps(report.as_dict())
    print(line, flush=True)
    if summary_file is not None:
        with contextlib.suppress(OSError):
            summary_file.write_text(line)
    log.info("retention: %s", line)
    return ExitCode.DONE
