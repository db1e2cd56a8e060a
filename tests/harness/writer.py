"""Run ``stratum-writer`` as the real process it is in a pod, and watch its metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harness.databases import free_port


class WriterProcess:
    def __init__(self, spool: Path, url: str, *extra: str, workers_file: Path | None = None) -> None:
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

    def wait_for(self, metric: str, predicate, timeout: float = 60) -> float:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        value = float("nan")
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"writer died ({self.proc.returncode}): {self.log.read_text()[-3000:]}")
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
