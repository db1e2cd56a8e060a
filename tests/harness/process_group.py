"""Test servers made of several processes (etcd + apiserver + ..., etcd + vtctld): each in
its own session, logging to a file in one temporary directory, all killed together."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


class ProcessGroup:
    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, argv: list[str], preexec: Callable[[], None] | None = None) -> None:
        log = (self.dir / f"{name}.log").open("wb")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, preexec_fn=preexec))  # fmt: skip

    def logs(self) -> dict[str, str]:
        return {p.name: p.read_text()[-1500:] for p in self.dir.glob("*.log")}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
