"""Stratum peers nobody on the team wrote, from the npm registry, pinned and cached
outside the repo: a miner on ``stratum-client`` and a pool on ``stratum`` (node-stratum).

The drivers beside this file (``foreign/*.js``) hold only the hashing; the protocol
code, framing and reply handling are the packages' own. When node or npm is missing or
the registry refuses, this fails with the reason: a test never skips for want of a peer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.databases import free_port

PACKAGES = ("stratum-client@1.1.0", "stratum@0.2.4")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stratum-operator"
DRIVERS = Path(__file__).parent / "foreign"


class ForeignPeerUnavailable(RuntimeError):
    """The foreign peer could not be installed or started here; the message says why."""


def node_modules() -> Path:
    prefix = CACHE / "foreign-npm" / "-".join(p.replace("@", "_") for p in PACKAGES)
    modules = prefix / "node_modules"
    if all((modules / p.rsplit("@", 1)[0] / "package.json").exists() for p in PACKAGES):
        return modules
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise ForeignPeerUnavailable("node and npm are needed (make provision installs them)")
    prefix.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                          "--no-save", *PACKAGES], capture_output=True, text=True, timeout=600,
                         check=False)  # fmt: skip
    if out.returncode != 0:
        raise ForeignPeerUnavailable(f"npm install {' '.join(PACKAGES)}: {out.stderr[-800:]}")
    return modules


def _node_env() -> dict[str, str]:
    return {**os.environ, "NODE_PATH": str(node_modules())}


def foreign_miner(port: int, worker: str, count: int, workdir: Path) -> list[dict[str, Any]]:
    """Run the stratum-client miner to the end: one dict per share, with what it was told."""
    log = workdir / f"foreign-miner-{worker}.err"
    with log.open("wb") as err:
        out = subprocess.run(["node", str(DRIVERS / "stratum_client_miner.js"), "127.0.0.1",
                              str(port), worker, str(count)], stdout=subprocess.PIPE, stderr=err,
                             env=_node_env(), timeout=90, check=False)  # fmt: skip
    if out.returncode != 0:
        raise AssertionError(f"the foreign miner exited {out.returncode}: {log.read_text()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


class ForeignPool:
    """The node-stratum pool as a process; ``ledger()`` is every verdict it gave."""

    def __init__(self, workdir: Path, difficulty: float) -> None:
        self.port = free_port()
        self.ledger_file = workdir / f"foreign-pool-{self.port}.jsonl"
        self.difficulty = difficulty
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"stratum+tcp://127.0.0.1:{self.port}"

    def start(self) -> ForeignPool:
        with self.ledger_file.open("wb") as out:
            self.proc = subprocess.Popen(["node", str(DRIVERS / "stratum_server_pool.js"),
                                          str(self.port), repr(self.difficulty)], stdout=out,
                                         stderr=subprocess.DEVNULL, env=_node_env())  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ForeignPeerUnavailable(f"the foreign pool exited {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise ForeignPeerUnavailable("the foreign pool did not listen within 30 s")

    def ledger(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.ledger_file.read_text().splitlines() if x.strip()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
