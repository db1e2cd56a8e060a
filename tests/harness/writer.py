"""Run ``stratum-writer`` as the real process it is in a pod, and watch its metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.databases import Database
from harness.service import ServiceProcess
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events

INSERTED = "stratum_writer_inserted_total"
QUEUE = "stratum_writer_queue_events"


def fill(spool: Path, count: int, *, seed: int = 1, **shape: Any) -> list[bytes]:
    """``count`` synthetic shares spooled (``shape``: ``synthetic_events``' own knobs)."""
    producer = SpoolProducer(spool, segment_bytes=256 << 10)
    ids = []
    events = synthetic_events(count, seed=seed, **shape)
    for i, e in enumerate(events):
        producer.append(e)
        ids.append(e.share_id)
        if i % 500 == 499:
            producer.flush_sync()
    producer.close_sync()
    return ids


def migrate(writer: WriterProcess) -> None:
    out = writer.run_command("migrate")
    assert out.returncode == 0, out.stderr


# the worker registry against share_events, in SQL every dialect runs: registry rows,
# rows whose first and last seen equal the shares' own, distinct workers in the shares
REGISTRY_CHECK = """SELECT (SELECT count(*) FROM workers),
 (SELECT count(*) FROM workers w JOIN (SELECT pool, user_identity, worker,
   min(submitted_at) AS f, max(submitted_at) AS l FROM share_events
   GROUP BY pool, user_identity, worker) e ON w.pool = e.pool
   AND w.user_identity = e.user_identity AND w.worker = e.worker
   AND w.first_seen = e.f AND w.last_seen = e.l),
 (SELECT count(*) FROM (SELECT DISTINCT pool, user_identity, worker FROM share_events) d)"""


def registry(output: str) -> tuple[int, ...]:
    """REGISTRY_CHECK's one row, as any client printed it."""
    return tuple(int(v) for v in output.replace("|", "\t").split())


def assert_exactly(db: Database, expected: int) -> None:
    rows = db.scalar("SELECT count(*) FROM share_events")
    distinct = db.scalar("SELECT count(DISTINCT share_id) FROM share_events")
    rolled = db.scalar(
        "SELECT coalesce(sum(accepted + rejected + stale), 0) FROM worker_stats_minute"
    )
    assert (rows, distinct, rolled) == (expected, expected, expected)
    workers, exact, seen = registry(db.query(REGISTRY_CHECK))
    assert workers == exact == seen, f"registry {workers}, exact {exact}, workers {seen}"


class WriterProcess(ServiceProcess):
    name = "writer"

    def __init__(
        self,
        spool: Path,
        url: str,
        *extra: str,
        workers_file: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        config: Path | None = None,
    ) -> None:
        super().__init__(spool.parent, host, port)
        self.spool = spool
        self.url = url
        self.extra = list(extra)
        self.workers_file = workers_file
        self.config = config  # a settings file, as the operator's ConfigMap gives one

    def command(self, *command: str) -> list[str]:
        settings = ["--config", str(self.config)] if self.config else []
        return [sys.executable, "-m", "stratum_writer.cli", *settings, "--spool",
                str(self.spool), *command]  # fmt: skip

    def env(self) -> dict[str, str]:
        return {**os.environ, "STRATUM_DATABASE_URL": self.url}

    def start(self) -> WriterProcess:
        argv = self.command("run", "--listen", f"{self.host}:{self.port}", *self.extra)
        if self.workers_file is not None:
            argv += ["--workers-file", str(self.workers_file)]
        self.spawn(argv)
        return self

    def run_command(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*command), env=self.env(), capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
