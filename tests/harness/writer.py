"""Run ``stratum-writer`` as the real process it is in a pod, and watch its metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from harness.databases import Database, free_port
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events

INSERTED = "stratum_writer_inserted_total"
QUEUE = "stratum_writer_queue_events"


def fill(spool: Path, count: int, *, seed: int = 1, start_us: int | None = None) -> list[bytes]:
    producer = SpoolProducer(spool, segment_bytes=256 << 10)
    ids = []
    events = (
        synthetic_events(count, seed=seed, start_us=start_us)
        if start_us
        else synthetic_events(count, seed=seed)
    )
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


def assert_exactly(db: Database, expected: int) -> None:
    rows = db.scalar("SELECT count(*) FROM share_events")
    distinct = db.scalar("SELECT count(DISTINCT share_id) FROM share_events")
    rolled = db.scalar(
        "SELECT coalesce(sum(accepted + rejected + stale), 0) FROM worker_stats_minute"
    )
    assert (rows, distinct, rolled) == (expected, expected, expected)


_started: list[WriterProcess] = []


def kill_all_writers() -> None:
    """Test teardown: no writer outlives its test, whatever the test's outcome."""
    while _started:
        _started.pop().kill()


class WriterProcess:
    def __init__(
        self, spool: Path, url: str, *extra: str, workers_file: Path | None = None
    ) -> None:
        self.spool = spool
        self.url = url
        self.port = free_port()
        self.extra = list(extra)
        self.workers_file = workers_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = spool.parent / f"writer-{self.port}.log"

    def argv(self, *command: str) -> list[str]:
        return [sys.executable, "-m", "stratum_writer.cli", "--spool", str(self.spool), *command]

    def env(self) -> dict[str, str]:
        return {**os.environ, "STRATUM_DATABASE_URL": self.url}

    def start(self) -> WriterProcess:
        argv = self.argv("run", "--listen", f"127.0.0.1:{self.port}", *self.extra)
        if self.workers_file is not None:
            argv += ["--workers-file", str(self.workers_file)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        _started.append(self)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"writer exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                self.metrics()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"writer did not serve metrics: {self.log.read_text()}")

    def run_command(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*command), env=self.env(), capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def wait_for(
        self, metric: str, predicate: Callable[[float], bool], timeout: float = 60
    ) -> float:
        deadline = time.monotonic() + timeout
        value = float("nan")
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"writer died ({self.proc.returncode}): {self.log.read_text()[-3000:]}"
                )
            value = self.metrics().get(metric, float("nan"))
            if predicate(value):
                return value
            time.sleep(0.1)
        raise AssertionError(f"{metric} stuck at {value}; log: {self.log.read_text()[-3000:]}")

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
