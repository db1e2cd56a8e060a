"""Our images' processes as the tests run them: real CLIs, watched through their side port.

Both the proxy and the writer serve /metrics, /healthz and /readyz on one port (the
shared ``sharelog.status_http``), so starting, scraping, waiting and stopping them is
one piece of code. No process outlives its test: teardown kills whatever is left.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import procfs
from harness.databases import free_port

_METRIC_LINE = re.compile(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$")
_started: list[ServiceProcess] = []


def kill_all_services(keep: Sequence[ServiceProcess] = ()) -> None:
    """Test teardown: no process outlives its test, whatever the test's outcome (but the
    session-wide ones in ``keep``)."""
    for proc in [p for p in _started if p not in keep]:
        _started.remove(proc)
        proc.kill()


def parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


class ServiceProcess:
    name = "service"

    def __init__(self, log_dir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host  # a "pod IP" (127.0.0.x) when the test plays the kubelet
        self.port = port or free_port()  # the side port: /metrics, /healthz, /readyz
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = log_dir / f"{self.name}-{self.port}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def spawn(self, argv: list[str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        _started.append(self)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not serve metrics: {self.log.read_text()}")

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://{self.host}:{self.port}/metrics", timeout=5) as r:
            return parse_metrics(r.read().decode())

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}{path}", timeout=5) as r:
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
                    f"{self.name} died ({self.proc.returncode}): {self.log.read_text()[-3000:]}"
                )
            value = self.metrics().get(metric, float("nan"))
            if predicate(value):
                return value
            time.sleep(0.1)
        if self.alive() and self.proc is not None:  # the writer dumps its tasks' stacks
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
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

    def rss_kb(self) -> int:
        assert self.proc is not None
        return procfs.rss_kb(self.proc.pid)
