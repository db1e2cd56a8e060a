"""Peers we compare against, installed from PyPI into venvs of their own, cached.

aiostratum-proxy 1.1 pins PyYAML 3.12, which no longer builds on Python 3.11; PyYAML
5.4.1 (the last that accepts its bare ``yaml.load``) builds with Cython < 3 and old
setuptools, so the peer runs unmodified beside ours.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stratum-operator"


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or started here; the message says why."""


def _pip(venv: Path, *args: str) -> None:
    out = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *args],
                         capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if out.returncode != 0:
        raise PeerUnavailable(f"pip install {' '.join(args)}: {out.stderr.strip()[-500:]}")


def aiostratum_venv() -> Path:
    venv = CACHE / "peers" / "aiostratum-proxy-1.1"
    exe = venv / "bin" / "aiostratum-proxy"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv, "setuptools<70", "wheel", "cython<3")
    _pip(venv, "--no-build-isolation", "PyYAML==5.4.1")
    _pip(venv, "--no-deps", "aiostratum-proxy==1.1", "aiojsonrpc2==1.0.0")
    return exe


_CONFIG = """\
proxies:
- name: bench
  max_workers: 65536
  worker_class: aiostratum_proxy.protocols.stratum.StratumWorkerProtocol
  pool_class: aiostratum_proxy.protocols.stratum.StratumPoolProtocol
  listen:
  - host: 127.0.0.1
    port: {port}
  pools:
  - name: reference
    host: {pool_host}
    port: {pool_port}
    account_name: bench.proxy
    account_password: x
"""


class AiostratumProxy:
    def __init__(self, workdir: Path, pool_host: str, pool_port: int) -> None:
        self.workdir = workdir
        self.pool_host, self.pool_port = pool_host, pool_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> AiostratumProxy:
        try:
            exe = aiostratum_venv()
        except (OSError, subprocess.SubprocessError) as exc:
            raise PeerUnavailable(f"install failed: {exc}") from None
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "aiostratum.yaml"
        config.write_text(_CONFIG.format(port=self.port, pool_host=self.pool_host,
                                         pool_port=self.pool_port))  # fmt: skip
        log = (self.workdir / "aiostratum.log").open("wb")
        self.proc = subprocess.Popen([str(exe), "-c", str(config), "-q"], stdout=log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = (self.workdir / "aiostratum.log").read_text()[-800:]
                raise PeerUnavailable(f"exited {self.proc.returncode}: {text}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise PeerUnavailable("did not listen within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
